"""What `nova type` asks of the X server itself (python-xlib, no subprocess): which window has
the keyboard focus, whether the user is holding a modifier key, and spare keycodes for the
characters the keyboard layout lacks (nova_client.dictation.keymap)."""

from __future__ import annotations

from typing import Any

from nova_client.dictation.keymap import SpareKeycodes

# Modifier rows of the X modifier map, by name; Lock (Caps Lock) and Mod2 (Num Lock) are
# latched states rather than keys held down, so they are left out.
_HELD_ROWS = {0: "Shift", 2: "Control", 3: "Mod1", 5: "Mod3", 6: "Mod4", 7: "Mod5"}


class X11Unavailable(RuntimeError):
    pass


class X11Keyboard:
    """A connection to the X server; the keystrokes themselves go through xdotool."""

    def __init__(self, display_name: str | None = None) -> None:
        try:
            from Xlib import display, error
        except ImportError as exc:  # python-xlib is a Linux dependency of Nova
            raise X11Unavailable(f"python-xlib is not installed: {exc}") from exc
        try:
            self._display: Any = display.Display(display_name)
        except (error.DisplayError, error.ConnectionClosedError, OSError) as exc:
            raise X11Unavailable(f"cannot open the X display {display_name or ''}: {exc}") from exc
        self.name = self._display.get_display_name()
        self._spare = SpareKeycodes()

    def focused_window(self) -> int | None:
        """The id of the window with the keyboard focus; None when no window has it."""
        focus = self._display.get_input_focus().focus
        if isinstance(focus, int):
            # X.NONE (0): keystrokes would go nowhere. X.PointerRoot (1): to the window under
            # the pointer, which is as good a target as any for the user.
            return None if focus == 0 else focus
        return int(focus.id)

    def modifier_keycodes(self) -> set[int]:
        rows = self._display.get_modifier_mapping()
        return {code for row, name in _HELD_ROWS.items() for code in rows[row] if code}

    def held_modifiers(self) -> list[int]:
        """Keycodes of modifier keys that are down right now."""
        keymap = self._display.query_keymap()
        return [code for code in self.modifier_keycodes() if keymap[code // 8] >> (code % 8) & 1]

    def _keymap(self) -> tuple[list[list[int]], int]:
        first = self._display.display.info.min_keycode
        count = self._display.display.info.max_keycode - first + 1
        return [list(row) for row in self._display.get_keyboard_mapping(first, count)], first

    def prepare(self, text: str) -> None:
        """Puts every character of ``text`` that the layout lacks on a spare keycode."""
        rows, first = self._keymap()
        changes = self._spare.assign(text, rows, first)
        width = len(rows[0]) if rows else 2
        for code, (lower, upper) in changes.items():
            self._display.change_keyboard_mapping(code, [(lower, upper) + (0,) * (width - 2)])
        if changes:
            self._display.sync()

    def close(self) -> None:
        from Xlib import error

        try:
            rows, first = self._keymap()
            width = len(rows[0]) if rows else 2
            for code in self._spare.release(rows, first):
                self._display.change_keyboard_mapping(code, [(0,) * width])
            self._display.sync()
            self._display.close()
        except (error.ConnectionClosedError, OSError):
            pass  # the X server went first: nothing of ours is left on it

    def window_and_ancestors(self, window_id: int) -> set[int]:
        """``window_id`` and the windows it sits in, up to the root (not included): the focus
        may be on any of them when a window manager puts frames around clients."""
        from Xlib import error

        found: set[int] = set()
        root = self._display.screen().root.id
        window = self._display.create_resource_object("window", window_id)
        try:
            while window.id != root and window.id not in found:
                found.add(window.id)
                window = window.query_tree().parent
        except (error.BadWindow, error.BadValue):
            pass
        return found
