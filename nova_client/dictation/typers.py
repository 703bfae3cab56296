"""Keystroke backends: how an `Edit` reaches the focused window on each desktop.

* X11: `xdotool`, any Unicode character whatever the keyboard layout (those the layout lacks
  are put on spare keycodes first: keymap.py); focus and held modifiers from python-xlib.
* Wayland: `wtype` (Unicode, through the virtual-keyboard protocol) or else `ydotool` (≥ 1.0,
  through uinput: needs its daemon, and types what the keyboard layout has). Wayland lets no
  client see the focused window or the keyboard state, so neither is checked there.
* Windows and macOS: pynput (installed only there), imported when used.

None of them is told to clear modifiers (xdotool's --clearmodifiers restores the state it found
afterwards, which leaves a modifier stuck when the user let go meanwhile): `nova type` waits
until no modifier key is held before it types instead.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol

from nova_client.dictation.editor import Edit

# Milliseconds between keystrokes: about 7 ms a character. With the characters the layout lacks
# put on spare keys beforehand (keymap.py), even 0 kept every character in Tk and xterm under
# Xvfb; without that, 12 (xdotool's default) still lost some in xterm. A little slack is left
# for applications slower to take keys than those two.
KEY_DELAY_MS = 6

# Wayland and (in part) macOS cannot say which window has the focus: one constant window.
UNKNOWN_WINDOW = "unknown"

Which = Callable[[str], str | None]


class TyperUnavailable(RuntimeError):
    """This desktop cannot be typed into as asked; the message says what to install or set."""


class TypingFailed(RuntimeError):
    pass


class Typer(Protocol):
    name: str

    def focused_window(self) -> Hashable | None:
        """The window keystrokes go to now (None: none has the focus)."""

    def modifiers_held(self) -> bool: ...

    async def apply(self, edit: Edit) -> None: ...

    def close(self) -> None: ...


def is_wayland(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("WAYLAND_DISPLAY")) or environ.get("XDG_SESSION_TYPE") == "wayland"


def choose_typer(
    name: str, environ: Mapping[str, str], platform: str = sys.platform, which: Which = shutil.which
) -> str:
    """The backend ``--typer NAME`` means on this desktop; raises TyperUnavailable saying why
    there is none."""
    if name == "auto":
        if platform in ("win32", "darwin"):
            name = "pynput"
        elif is_wayland(environ):
            found = [tool for tool in ("wtype", "ydotool") if which(tool)]
            if not found:
                raise TyperUnavailable(
                    "this is a Wayland session and neither wtype nor ydotool is installed: "
                    "apt-get install wtype"
                )
            name = found[0]
        elif environ.get("DISPLAY"):
            name = "xdotool"
        else:
            raise TyperUnavailable(
                "no display to type into: neither DISPLAY (X11) nor WAYLAND_DISPLAY (Wayland) "
                "is set"
            )
    if name == "xdotool":
        if not environ.get("DISPLAY"):
            raise TyperUnavailable("xdotool types on X11, and DISPLAY is not set")
        if not which("xdotool"):
            raise TyperUnavailable("xdotool is not installed: apt-get install xdotool")
    elif name in ("wtype", "ydotool"):
        if not which(name):
            raise TyperUnavailable(f"{name} is not installed: apt-get install {name}")
    elif name == "pynput":
        if platform not in ("win32", "darwin"):
            raise TyperUnavailable("pynput is Nova's typer on Windows and macOS only")
    else:
        raise TyperUnavailable(f"unknown typer {name!r}")
    return name


def open_typer(name: str, environ: Mapping[str, str], which: Which = shutil.which) -> Typer:
    """A typer for a name `choose_typer` returned."""
    if name == "xdotool":
        from nova_client.dictation.x11 import X11Keyboard, X11Unavailable

        try:
            keyboard = X11Keyboard(environ.get("DISPLAY"))
        except X11Unavailable as exc:
            raise TyperUnavailable(str(exc)) from exc
        return XdotoolTyper(keyboard, which("xdotool") or "xdotool", environ=environ)
    if name == "wtype":
        return WtypeTyper(which("wtype") or "wtype")
    if name == "ydotool":
        return YdotoolTyper(which("ydotool") or "ydotool")
    return PynputTyper()


async def _run(argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env=None if env is None else dict(env),
        # Out of the terminal's process group: a Ctrl-C meant for `nova type` must not kill
        # xdotool between a key's press and its release (the key would stay down, repeating).
        start_new_session=True,
    )  # fmt: skip
    _, stderr = await process.communicate()
    if process.returncode != 0:
        message = stderr.decode(errors="replace").strip().splitlines()
        raise TypingFailed(
            f"{argv[0]} failed (exit {process.returncode})"
            + (f": {message[-1]}" if message else "")
        )


class XdotoolTyper:
    name = "xdotool"

    def __init__(
        self,
        keyboard: Any,
        xdotool: str,
        *,
        environ: Mapping[str, str] | None = None,
        delay_ms: int = KEY_DELAY_MS,
    ) -> None:
        self.keyboard = keyboard
        self._xdotool = xdotool
        self._delay = str(delay_ms)
        # xdotool must type on the display whose focus and keyboard are checked.
        self._env = None if environ is None else {**environ, "DISPLAY": keyboard.name}

    def focused_window(self) -> Hashable | None:
        return self.keyboard.focused_window()

    def modifiers_held(self) -> bool:
        return bool(self.keyboard.held_modifiers())

    def argv(self, edit: Edit) -> list[str]:
        """One xdotool run per edit: its commands chain (`type` last, as it takes every
        argument after it as text), and `type` turns "\n" into Return."""
        argv = [self._xdotool]
        if edit.erase:
            argv += ["key", "--delay", self._delay, *["BackSpace"] * edit.erase]
        if edit.text:
            argv += ["type", "--delay", self._delay, "--", edit.text]
        return argv

    async def apply(self, edit: Edit) -> None:
        if edit.text:
            # Characters the layout lacks go on spare keycodes first (see keymap.py).
            self.keyboard.prepare(edit.text)
        await _run(self.argv(edit), self._env)

    def close(self) -> None:
        self.keyboard.close()


class WtypeTyper:
    name = "wtype"

    def __init__(self, wtype: str) -> None:
        self._wtype = wtype

    def focused_window(self) -> Hashable | None:
        return UNKNOWN_WINDOW

    def modifiers_held(self) -> bool:
        return False  # Wayland does not tell

    def runs(self, edit: Edit) -> list[list[str]]:
        runs = [[self._wtype, *["-k", "BackSpace"] * edit.erase]] if edit.erase else []
        # Text after `--` is all text, so each line of it is a run of its own, Return between.
        for i, line in enumerate(edit.text.split("\n")):
            if i:
                runs.append([self._wtype, "-k", "Return"])
            if line:
                runs.append([self._wtype, "--", line])
        return runs

    async def apply(self, edit: Edit) -> None:
        for argv in self.runs(edit):
            await _run(argv)

    def close(self) -> None:
        pass


class YdotoolTyper:
    """ydotool ≥ 1.0 (Linux input event codes: 14 BackSpace, 28 Enter)."""

    name = "ydotool"

    def __init__(self, ydotool: str) -> None:
        self._ydotool = ydotool

    def focused_window(self) -> Hashable | None:
        return UNKNOWN_WINDOW

    def modifiers_held(self) -> bool:
        return False

    def runs(self, edit: Edit) -> list[list[str]]:
        runs = [[self._ydotool, "key", *["14:1", "14:0"] * edit.erase]] if edit.erase else []
        for i, line in enumerate(edit.text.split("\n")):
            if i:
                runs.append([self._ydotool, "key", "28:1", "28:0"])
            if line:
                runs.append([self._ydotool, "type", "--", line])
        return runs

    async def apply(self, edit: Edit) -> None:
        for argv in self.runs(edit):
            await _run(argv)

    def close(self) -> None:
        pass


class PynputTyper:
    """Windows and macOS. The foreground window and held modifiers come from the system's own
    calls (user32 on Windows, Quartz on macOS, which pynput depends on there)."""

    name = "pynput"

    def __init__(self) -> None:
        try:
            from pynput import keyboard
        except Exception as exc:  # not installed, or no access to the input system
            raise TyperUnavailable(f"pynput cannot type here: {exc}") from exc
        self._keys = keyboard
        self._controller = keyboard.Controller()

    def focused_window(self) -> Hashable | None:
        if sys.platform == "win32":
            import ctypes

            return int(ctypes.windll.user32.GetForegroundWindow()) or None  # type: ignore[attr-defined]
        try:
            from AppKit import NSWorkspace

            app = NSWorkspace.sharedWorkspace().frontmostApplication()
            return int(app.processIdentifier()) if app is not None else None
        except Exception:
            return UNKNOWN_WINDOW

    def modifiers_held(self) -> bool:
        try:
            if sys.platform == "win32":
                import ctypes

                state = ctypes.windll.user32.GetAsyncKeyState  # type: ignore[attr-defined]
                # Shift, Control, Alt, the two Windows keys.
                return any(state(vk) & 0x8000 for vk in (0x10, 0x11, 0x12, 0x5B, 0x5C))
            import Quartz

            flags = Quartz.CGEventSourceFlagsState(Quartz.kCGEventSourceStateHIDSystemState)
            mask = (
                Quartz.kCGEventFlagMaskShift
                | Quartz.kCGEventFlagMaskControl
                | Quartz.kCGEventFlagMaskAlternate
                | Quartz.kCGEventFlagMaskCommand
            )
            return bool(flags & mask)
        except Exception:
            return False

    def _apply(self, edit: Edit) -> None:
        key = self._keys.Key
        for _ in range(edit.erase):
            self._controller.tap(key.backspace)
        for i, line in enumerate(edit.text.split("\n")):
            if i:
                self._controller.tap(key.enter)
            if line:
                self._controller.type(line)

    async def apply(self, edit: Edit) -> None:
        await asyncio.to_thread(self._apply, edit)

    def close(self) -> None:
        pass
