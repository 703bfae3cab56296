"""Live subtitles on a terminal.

Finished finals go to the scrollback, each with its translations under it (``  [es] …``).
Below them a small live area is redrawn in place with ANSI cursor movement: finals still
waiting for their translations, the last words shown of utterances whose finals are still owed,
the utterance in progress (words that will not change in normal text, the tail that may still
change dim) and a status line. Every line is wrapped here at word boundaries to less than the
terminal's width, so the terminal never wraps one and the count of rows to go back up over is
always right; the live area is also kept shorter than the screen, since the cursor cannot go
back up into the scrollback."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from typing import TextIO

from nova_client.listen.captions import Captions, LateTranslation, ShownFinal, ShownPartial
from nova_client.listen.layout import Line, Span, Style, columns, words_of, wrap

# At most this many rows of the utterance in progress: its latest words are the ones that count.
PARTIAL_ROWS = 3
# Narrower than this and nothing useful fits; lines are laid out as if it were this wide.
MIN_WIDTH = 20

_SGR: dict[Style, str] = {
    "final": "",
    "committed": "",
    "tail": "\x1b[2m",  # dim
    "translation": "",
    "pending": "\x1b[2m",
    "status": "\x1b[2m",
}
RESET = "\x1b[0m"
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
ERASE_DOWN = "\x1b[J"


def ansi(line: Line) -> str:
    out = []
    current = ""
    for span in line:
        sgr = _SGR[span.style]
        if sgr != current:
            out.append(RESET if not sgr else (RESET + sgr if current else sgr))
            current = sgr
        out.append(span.text)
    if current:
        out.append(RESET)
    return "".join(out)


def translation_prefix(language: str) -> str:
    return f"  [{language}] "


def final_lines(final: ShownFinal, width: int, *, waiting: bool = True) -> list[Line]:
    """A final: its text, then its translations under it; in the live area (``waiting``) a
    dim placeholder stands for each one still on its way. Words of a lost session's unfinished
    utterance stay dim, ending in an ellipsis."""
    if final.unfinished:
        return wrap(words_of(final.text + " …", "tail"), width)
    lines = wrap(words_of(final.text, "final"), width)
    arrived = dict(final.translations)
    for target in final.targets:
        prefix = translation_prefix(target)
        indent = " " * columns(prefix)
        if target in arrived:
            lines += wrap(
                words_of(arrived[target], "translation"),
                width,
                first=Span(prefix, "translation"),
                indent=indent,
            )
        elif waiting and final.owes(target) and not final.orphaned:
            lines += wrap([("…", "pending")], width, first=Span(prefix, "pending"))
    return lines


def partial_lines(partial: ShownPartial, width: int) -> list[Line]:
    words = words_of(partial.committed, "committed") + words_of(partial.tail, "tail")
    return wrap(words, width)[-PARTIAL_ROWS:]


def truncate(text: str, width: int) -> str:
    if columns(text) <= width:
        return text
    out = ""
    for char in text:
        if columns(out + char) > width - 1:
            break
        out += char
    return out + "…"


def usable_width(width: int) -> int:
    return max(width, MIN_WIDTH + 1) - 1  # never the last column: some terminals wrap there


def live_area(captions: Captions, status: str, width: int, height: int) -> list[Line]:
    """The rows under the scrollback, for a terminal ``width`` columns by ``height`` rows."""
    usable = usable_width(width)
    lines: list[Line] = []
    for final in captions.waiting:
        lines += final_lines(final, usable)
    for partial in [*captions.pending, captions.partial]:
        if partial is not None:
            lines += partial_lines(partial, usable)
    if status:
        lines.append((Span(truncate(status, usable), "status"),))
    # The newest rows matter most; the oldest waiting finals scroll out of the live area first
    # (they are printed in full once released).
    return lines[-max(height - 1, 1) :]


def scrollback_text(final: ShownFinal, width: int) -> str:
    """A final as it stays in the scrollback, wrapped as it was in the live area."""
    lines = final_lines(final, usable_width(width), waiting=False)
    return "".join(ansi(line) + "\n" for line in lines)


def late_text(late: LateTranslation, width: int) -> str:
    words = late.final.text.split()
    quote = " ".join(words[:6]) + ("…" if len(words) > 6 else "")
    prefix = translation_prefix(late.language)
    lines = wrap(
        words_of(f"{late.text} (for “{quote}”)", "translation"),
        usable_width(width),
        first=Span(prefix, "translation"),
        indent=" " * columns(prefix),
    )
    return "".join(ansi(line) + "\n" for line in lines)


def terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size()
    return size.columns, size.lines


class TerminalView:
    """Draws on ``out`` (a terminal); notes and errors go to ``err`` between redraws."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        size: Callable[[], tuple[int, int]] = terminal_size,
    ) -> None:
        self._out = out
        self._err = err
        self._size = size
        self._rows = 0  # rows the live area took when last drawn
        self._live: Sequence[Line] = ()
        self._closed = False
        self._out.write(HIDE_CURSOR)
        self._out.flush()

    def show(self, captions: Captions, status: str, now: float) -> None:
        """Moves what is done to the scrollback and redraws the live area."""
        if self._closed:
            return
        width, height = self._size()
        done = "".join(scrollback_text(final, width) for final in captions.release(now))
        done += "".join(late_text(late, width) for late in captions.take_late())
        self._live = live_area(captions, status, width, height)
        self._out.write(self._erase() + done + self._draw())
        self._out.flush()

    def message(self, text: str) -> None:
        """A line for the user (a notice, an error, a reconnection) above the live area."""
        self._out.write(self._erase())
        self._out.flush()
        self._err.write(text + "\n")
        self._err.flush()
        self._out.write(self._draw())
        self._out.flush()

    def close(self, captions: Captions) -> None:
        """The session is over: every final to the scrollback, the live area gone."""
        if self._closed:
            return
        self._closed = True
        width, _ = self._size()
        done = "".join(scrollback_text(final, width) for final in captions.flush())
        done += "".join(late_text(late, width) for late in captions.take_late())
        self._live = ()
        self._out.write(self._erase() + done + SHOW_CURSOR)
        self._out.flush()

    def _erase(self) -> str:
        if not self._rows:
            return ""
        up = f"\x1b[{self._rows - 1}A" if self._rows > 1 else ""
        self._rows = 0
        return "\r" + up + ERASE_DOWN

    def _draw(self) -> str:
        # No newline after the last row: the cursor waits at its end, so the area takes exactly
        # as many rows as it has lines.
        self._rows = len(self._live)
        return "\n".join(ansi(line) for line in self._live)
