"""Real X windows for the voice-typing tests and benchmark: an Xvfb server of the test's own, a
Tk Text window that records its changes, an xterm running readline, and the keyboard's state.

Xvfb picks a free display number itself (``-displayfd``): other test runs on the machine may
hold some, and typing into someone else's display would be a bug in the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.speech import require_tool

TK_WINDOW = Path(__file__).with_name("tk_text_window.py")
START_TIMEOUT = 30.0


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """An Xvfb server; yields its display name (":N")."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        # -noreset: an X server resets (keymap included) when its last client leaves, and
        # between setxkbmap and the test's windows there may be none.
        [require_tool("Xvfb"), "-displayfd", str(write_end), "-screen", "0", "1280x800x24",
         "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(write_end)
    try:
        number = b""
        deadline = time.monotonic() + START_TIMEOUT
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(read_end, 16) if ready else b""
            if not chunk:
                raise RuntimeError(f"Xvfb did not start: {process.stderr.read(2000)!r}")  # type: ignore[union-attr]
            number += chunk
        yield f":{int(number)}"
    finally:
        os.close(read_end)
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def x_env(display: str, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (the caller's environment) on ``display``, without anything that would point a
    client at another desktop (a Wayland session, the terminal this runs in)."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "WINDOWID")}  # fmt: skip
    env["DISPLAY"] = display
    env.update(extra)
    return env


def xdotool(display: str, *args: str) -> str:
    result = subprocess.run(
        [require_tool("xdotool"), *args], env=x_env(display), capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"xdotool {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def focus(display: str, window: int) -> None:
    # windowfocus, not windowactivate: activation needs a window manager, and there is none.
    xdotool(display, "windowfocus", "--sync", str(window))
    if int(xdotool(display, "getwindowfocus")) != window:
        raise RuntimeError(f"window {window} did not get the focus")


def wait_for(path: Path, what: str, process: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}) before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready within {timeout:.0f} s")
        time.sleep(0.05)


class TkTextWindow:
    """tests/tk_text_window.py in a process of its own, run with this venv's Python."""

    def __init__(self, display: str, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for old in ("window", "state.json", "changes.jsonl"):
            (directory / old).unlink(missing_ok=True)
        self.directory = directory
        self.display = display
        self._log = (directory / "tk.stderr").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(TK_WINDOW), str(directory)], env=x_env(display),
            stdout=subprocess.DEVNULL, stderr=self._log,
        )  # fmt: skip
        wait_for(directory / "window", "the Tk window", self.process, START_TIMEOUT)
        self.window = int((directory / "window").read_text())

    def focus(self) -> None:
        focus(self.display, self.window)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.state()["focused"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the Tk window never saw the keyboard focus arrive")
            time.sleep(0.05)

    def state(self) -> dict[str, Any]:
        return json.loads((self.directory / "state.json").read_text(encoding="utf-8"))

    @property
    def text(self) -> str:
        return str(self.state()["text"])

    def changes(self) -> list[dict[str, Any]]:
        lines = (self.directory / "changes.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


class XtermLine:
    """An xterm in UTF-8 whose shell reads one line with readline (``read -e``) and writes it,
    byte for byte, to a file once Return ends it."""

    def __init__(self, display: str, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.display = display
        self.out = directory / "line"
        ready = directory / "xterm-window"
        for old in (self.out, ready):
            old.unlink(missing_ok=True)
        script = (
            f'printf %s "$WINDOWID" > {ready}.tmp && mv {ready}.tmp {ready}; '
            f'IFS= read -r -e line; printf %s "$line" > {self.out}.tmp && mv {self.out}.tmp {self.out}'
        )
        env = x_env(display, LANG="C.UTF-8", LC_ALL="C.UTF-8")
        self.process = subprocess.Popen(
            [require_tool("xterm"), "-u8", "-e", "bash", "--norc", "-c", script], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(ready, "xterm", self.process, START_TIMEOUT)
        self.window = int(ready.read_text())

    def focus(self) -> None:
        focus(self.display, self.window)

    def finish(self, timeout: float = 10.0) -> bytes:
        """Ends the line with Return; the bytes the shell read."""
        self.focus()
        xdotool(self.display, "key", "Return")
        deadline = time.monotonic() + timeout
        while not self.out.exists():
            if time.monotonic() > deadline:
                raise AssertionError("the xterm's shell did not write the line it read")
            time.sleep(0.05)
        return self.out.read_bytes()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _keysym_names() -> dict[int, str]:
    from Xlib import XK

    return {value: name[3:] for name, value in vars(XK).items() if name.startswith("XK_")}


_KEYSYM_NAMES: dict[int, str] = {}


def held_keys(display: str) -> list[str]:
    """The modifier keys that are down on ``display``, by keysym name (python-xlib's own
    connection: what any application would see)."""
    from Xlib import display as xdisplay

    _KEYSYM_NAMES.update(_KEYSYM_NAMES or _keysym_names())
    connection = xdisplay.Display(display)
    try:
        keymap = connection.query_keymap()
        held = []
        for row in connection.get_modifier_mapping():
            for code in row:
                if code and keymap[code // 8] >> (code % 8) & 1:
                    keysym = connection.keycode_to_keysym(code, 0)
                    held.append(_KEYSYM_NAMES.get(keysym, f"keycode {code}"))
        return held
    finally:
        connection.close()
