"""Characters the keyboard layout lacks, put on spare keycodes before xdotool types them.

xdotool types such a character by mapping it to a spare keycode for one keystroke and mapping
it away again straight after. An application that reads the keymap a moment late (xterm, often)
then finds nothing there and drops the character — under a German layout "Ñandú" came out
"Ñand" in 7 of 20 tries — and Debian's xdotool types a capital mapped that way in lower case.
So Nova maps each such character itself, its capital on the Shift level, before typing, and
leaves it mapped for the session (xdotool then finds it on the keymap and presses that key);
the spare keycodes are handed back at the end. Pure: it works on the keymap's rows.
"""

from __future__ import annotations

from collections.abc import Sequence

NO_SYMBOL = 0
_UNICODE_KEYSYM = 0x01000000


def keysym_for(char: str) -> int:
    """X's keysym for a character: Latin-1 ones are their code point, the rest Unicode keysyms."""
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return _UNICODE_KEYSYM + code


def key_pair(char: str) -> tuple[int, int]:
    """The keysyms for one key: the letter unshifted, its capital with Shift."""
    lower, upper = char.lower(), char.upper()
    if len(lower) == 1 and len(upper) == 1 and lower != upper:
        return keysym_for(lower), keysym_for(upper)
    return keysym_for(char), keysym_for(char)


class SpareKeycodes:
    """Which spare keycodes carry which of Nova's characters, least recently used first."""

    def __init__(self) -> None:
        self._ours: dict[int, tuple[int, int]] = {}

    def assign(
        self, text: str, rows: Sequence[Sequence[int]], first: int
    ) -> dict[int, tuple[int, int]]:
        """The keycodes to (re)map so that every character of ``text`` is on the keymap
        (``rows``: the keysyms of each keycode from ``first`` on). Changes nothing itself."""
        # A new layout (setxkbmap) replaces the whole keymap: what it dropped is no longer ours.
        for code, pair in list(self._ours.items()):
            if tuple(rows[code - first][:2]) != pair:
                del self._ours[code]
        present = {keysym for row in rows for keysym in row if keysym != NO_SYMBOL}
        spare = [first + i for i, row in enumerate(rows)
                 if first + i not in self._ours and not any(row)]  # fmt: skip
        changes: dict[int, tuple[int, int]] = {}
        needed = dict.fromkeys(c for c in text if c.isprintable() and keysym_for(c) not in present)
        keep = {key_pair(c) for c in text}  # not to be reused for another character now
        for char in needed:
            pair = key_pair(char)
            if keysym_for(char) in {*present, *(k for p in changes.values() for k in p)}:
                continue  # its pair is already being mapped, under the other case
            if spare:
                code = spare.pop(0)
            else:
                # Reuse the least recently mapped keycode this text does not need.
                reusable = [c for c, p in self._ours.items() if p not in keep and c not in changes]
                if not reusable:
                    break  # more new characters than spare keys: xdotool maps the rest itself
                code = reusable[0]
                del self._ours[code]
            changes[code] = pair
        for code, pair in changes.items():
            self._ours[code] = pair
        # Most recently used last, for the next reuse.
        used = {key_pair(c) for c in text}
        for code in [c for c, p in self._ours.items() if p in used]:
            self._ours[code] = self._ours.pop(code)
        return changes

    def release(self, rows: Sequence[Sequence[int]], first: int) -> list[int]:
        """The keycodes to clear at the end: those that still carry what Nova put there."""
        codes = [code for code, pair in self._ours.items() if tuple(rows[code - first][:2]) == pair]
        self._ours.clear()
        return codes
