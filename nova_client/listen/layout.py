"""Styled words wrapped into lines that fit a width in terminal columns: a CJK character takes
two, a combining mark none, and a word longer than a line is broken (Chinese and Japanese have
no spaces to break at). The terminal view counts rows from this, so it must never be wrong
about a line fitting."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

# `final`: a finished line; `committed`: words of the utterance in progress that will not change;
# `tail`: its words that may still change; `translation`, `pending` (a translation on its way),
# `status`.
Style = Literal["final", "committed", "tail", "translation", "pending", "status"]


@dataclass(frozen=True)
class Span:
    text: str
    style: Style


Line = tuple[Span, ...]


def char_columns(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def columns(text: str) -> int:
    return sum(char_columns(c) for c in text)


def words_of(text: str, style: Style) -> list[tuple[str, Style]]:
    return [(word, style) for word in text.split()]


def wrap(
    words: Sequence[tuple[str, Style]],
    width: int,
    *,
    first: Span | None = None,
    indent: str = "",
) -> list[Line]:
    """``words`` in lines of at most ``width`` columns with a space between words. The first
    line starts with ``first`` (e.g. ``  [es] ``), the others with ``indent`` (spaces)."""
    # A piece of a long word must fit on any line, whichever prefix starts it.
    room = max(width - max(columns(indent), columns(first.text) if first else 0), 1)
    lines: list[Line] = []
    line: list[Span] = [first] if first is not None else []
    used = columns(first.text) if first is not None else 0
    fresh = True  # no word on this line yet
    for word, style in words:
        for piece in _pieces(word, room):
            size = columns(piece)
            if not fresh and used + 1 + size > width:
                lines.append(tuple(line))
                line = [Span(indent, style)] if indent else []
                used, fresh = columns(indent), True
            if not fresh:
                line.append(Span(" ", style))
                used += 1
            line.append(Span(piece, style))
            used += size
            fresh = False
    if not fresh:
        lines.append(tuple(line))
    return lines


def _pieces(word: str, room: int) -> Iterable[str]:
    """The word, or if it is longer than a line, pieces of it that each fill one."""
    piece = ""
    used = 0
    for char in word:
        size = char_columns(char)
        if piece and used + size > room:
            yield piece
            piece, used = "", 0
        piece += char
        used += size
    if piece:
        yield piece


def plain(line: Line) -> str:
    return "".join(span.text for span in line)
