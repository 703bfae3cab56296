"""`nova type --toggle`: find the running `nova type` of this desktop and tell it to pause or
resume — for a desktop shortcut, where a global hotkey is not to be had (Wayland) or not wanted.

The running one keeps a pidfile in the user's runtime directory ($XDG_RUNTIME_DIR, else a
private directory under the temporary one), named after the display it types on, so one per
desktop; --toggle sends it SIGUSR1. POSIX only: on Windows the hotkey is the way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path


class ControlError(RuntimeError):
    pass


def runtime_dir(environ: Mapping[str, str]) -> Path:
    configured = environ.get("XDG_RUNTIME_DIR")
    if configured:
        return Path(configured)
    # Not /tmp itself: another user could plant a pidfile there. A directory of our own, 0700.
    path = Path(tempfile.gettempdir()) / f"nova-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ControlError(f"{path} is not a directory of this user's; set XDG_RUNTIME_DIR")
    return path


def pidfile(environ: Mapping[str, str]) -> Path:
    display = environ.get("WAYLAND_DISPLAY") or environ.get("DISPLAY") or "default"
    name = "".join(c if c.isalnum() else "_" for c in display)
    return runtime_dir(environ) / f"nova-type-{name}.pid"


def _running_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return None  # someone else's process reusing the number
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # Linux: make sure the number was not reused by another program
        with contextlib.suppress(OSError):
            args = cmdline.read_bytes().split(b"\0")
            if args != [b""] and b"type" not in args:  # empty: a process mid-exec, unknown
                return None
    return pid


@contextlib.contextmanager
def instance(environ: Mapping[str, str]) -> Iterator[Path]:
    """Marks this process as the running `nova type` of its desktop for as long as it lasts."""
    if not hasattr(signal, "SIGUSR1"):
        yield Path()
        return
    path = pidfile(environ)
    other = _running_pid(path)
    if other is not None and other != os.getpid():
        raise ControlError(
            f"nova type is already running on this display (pid {other}): "
            "`nova type --toggle` pauses it, Ctrl-C stops it"
        )
    path.write_text(f"{os.getpid()}\n")
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == str(os.getpid()):
                path.unlink()


def toggle_running(environ: Mapping[str, str]) -> int:
    """Signals the running `nova type` to pause or resume; its pid."""
    if not hasattr(signal, "SIGUSR1"):
        raise ControlError("--toggle needs POSIX signals: on Windows use the hotkey")
    path = pidfile(environ)
    pid = _running_pid(path)
    if pid is None:
        raise ControlError(f"no nova type is running on this display (no live pid in {path})")
    os.kill(pid, signal.SIGUSR1)
    return pid
