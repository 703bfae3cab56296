"""The global hotkey that pauses and resumes `nova type`.

X11: a passive grab of the key on the root window (XGrabKey through python-xlib, on a
connection and thread of its own), so the key reaches Nova whichever window has the focus and
no other window sees it. Windows and macOS: pynput's GlobalHotKeys. Wayland gives clients no
global keys: bind `nova type --toggle` to a shortcut in the desktop's settings instead.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_HOTKEY = "ctrl+alt+space"
_MODIFIERS = {
    "ctrl": "ctrl", "control": "ctrl", "shift": "shift", "alt": "alt",
    "super": "super", "win": "super", "cmd": "super", "meta": "super",
}  # fmt: skip
# A held key repeats; one press is one toggle.
_DEBOUNCE_S = 0.3


class HotkeyError(RuntimeError):
    pass


@dataclass(frozen=True)
class Hotkey:
    modifiers: frozenset[str]
    key: str  # an X keysym name: "space", "F9", "d"

    def __str__(self) -> str:
        order = [m for m in ("ctrl", "shift", "alt", "super") if m in self.modifiers]
        return "+".join([*order, self.key])

    def pynput_format(self) -> str:
        """pynput's spelling: "<ctrl>+<alt>+<space>", a character key as itself."""
        names = {"super": "cmd"}
        parts = [f"<{names.get(m, m)}>" for m in sorted(self.modifiers)]
        key = self.key.lower() if len(self.key) == 1 else f"<{self.key.lower()}>"
        return "+".join([*parts, key])


def parse_hotkey(spec: str) -> Hotkey:
    """ "ctrl+alt+space" → Hotkey; raises HotkeyError on a spelling it does not know."""
    parts = [p.strip() for p in spec.split("+") if p.strip()]
    if not parts:
        raise HotkeyError(f"no key in the hotkey {spec!r}")
    *modifiers, key = parts
    unknown = [m for m in modifiers if m.lower() not in _MODIFIERS]
    if unknown:
        raise HotkeyError(
            f"unknown modifier {unknown[0]!r} in the hotkey {spec!r} (ctrl, shift, alt, super)"
        )
    if key.lower() in _MODIFIERS:
        raise HotkeyError(f"the hotkey {spec!r} needs a key after its modifiers")
    return Hotkey(frozenset(_MODIFIERS[m.lower()] for m in modifiers), key)


class X11Hotkey:
    """Calls ``on_press`` (from its own thread) each time the hotkey is pressed."""

    def __init__(self, hotkey: Hotkey, on_press: Callable[[], None], display_name: str | None):
        from Xlib import XK, X, display, error

        self._hotkey = hotkey
        self._on_press = on_press
        self._display: Any = display.Display(display_name)
        keysym = XK.string_to_keysym(hotkey.key)
        if keysym == X.NoSymbol and len(hotkey.key) == 1:
            keysym = XK.string_to_keysym(hotkey.key.lower())
        self._keycode = self._display.keysym_to_keycode(keysym) if keysym != X.NoSymbol else 0
        if not self._keycode:
            self._display.close()
            raise HotkeyError(f"this keyboard has no key {hotkey.key!r} for the hotkey {hotkey}")
        masks = {"ctrl": X.ControlMask, "shift": X.ShiftMask, "alt": X.Mod1Mask,
                 "super": X.Mod4Mask}  # fmt: skip
        mask = 0
        for modifier in hotkey.modifiers:
            mask |= masks[modifier]
        root = self._display.screen().root
        failed = error.CatchError(error.BadAccess)
        # Caps Lock and Num Lock change the modifier state too: grab the key with either on.
        for locks in (0, X.LockMask, X.Mod2Mask, X.LockMask | X.Mod2Mask):
            root.grab_key(self._keycode, mask | locks, True, X.GrabModeAsync, X.GrabModeAsync,
                          onerror=failed)  # fmt: skip
        self._display.sync()
        if failed.get_error() is not None:
            self._display.close()
            raise HotkeyError(
                f"the hotkey {hotkey} is taken by another program: choose another with --hotkey"
            )
        self._key_press = X.KeyPress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="nova-hotkey", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            readable, _, _ = select.select([self._display], [], [], 0.2)
            if not readable and not self._display.pending_events():
                continue
            while self._display.pending_events():
                event = self._display.next_event()
                if event.type == self._key_press and event.detail == self._keycode:
                    now = time.monotonic()
                    if now - last >= _DEBOUNCE_S:
                        self._on_press()
                    last = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self._display.close()


class PynputHotkey:
    def __init__(self, hotkey: Hotkey, on_press: Callable[[], None]) -> None:
        try:
            from pynput import keyboard
        except Exception as exc:
            raise HotkeyError(f"pynput cannot listen for a hotkey here: {exc}") from exc
        try:
            self._listener = keyboard.GlobalHotKeys({hotkey.pynput_format(): on_press})
        except ValueError as exc:
            raise HotkeyError(f"pynput does not know the hotkey {hotkey}: {exc}") from exc
        self._listener.start()

    def stop(self) -> None:
        self._listener.stop()
