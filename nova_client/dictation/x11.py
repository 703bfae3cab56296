"""What the X server can tell `nova type` (python-xlib, no subprocess): which window has the
keyboard focus, and whether the user is holding a modifier key."""

from __future__ import annotations

from typing import Any

# Modifier rows of the X modifier map, by name; Lock (Caps Lock) and Mod2 (Num Lock) are
# latched states rather than keys held down, so they are left out.
_HELD_ROWS = {0: "Shift", 2: "Control", 3: "Mod1", 5: "Mod3", 6: "Mod4", 7: "Mod5"}


class X11Unavailable(RuntimeError):
    pass


class X11Keyboard:
    """A connection to the X server for questions only; keystrokes go through xdotool."""

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

    def close(self) -> None:
        self._display.close()

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
