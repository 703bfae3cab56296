"""SubRip and WebVTT cues: the one renderer the client's files and the gateway's
``/sessions/<sid>/subtitles.{srt,vtt}`` share."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

SubtitleFormat = Literal["srt", "vtt"]
VTT_HEADER = "WEBVTT\n\n"


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: Sequence[str]


def timestamp(seconds: float, sep: str) -> str:
    ms = round(max(seconds, 0.0) * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def cue_text(number: int, cue: Cue, fmt: SubtitleFormat) -> str:
    """One numbered cue with its blank-line terminator (SRT needs the number; VTT allows it)."""
    sep = "," if fmt == "srt" else "."
    span = f"{timestamp(cue.start, sep)} --> {timestamp(cue.end, sep)}"
    # WebVTT cue text is markup: a spoken "<" or "&" must be escaped to show as itself.
    lines = [_vtt_escape(line) for line in cue.lines] if fmt == "vtt" else list(cue.lines)
    return f"{number}\n{span}\n" + "\n".join(lines) + "\n\n"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(cues: Iterable[Cue], fmt: SubtitleFormat) -> str:
    body = "".join(cue_text(i, cue, fmt) for i, cue in enumerate(cues, start=1))
    return (VTT_HEADER if fmt == "vtt" else "") + body


def caption_lines(text: str, width: int = 42, max_lines: int = 2) -> tuple[str, ...]:
    """``text`` as a live caption shows it: wrapped at ``width`` characters (the broadcast
    convention of two lines of at most 42), keeping the latest ``max_lines`` lines, since the
    newest words are the ones being spoken."""
    lines = textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)
    return tuple(lines[-max_lines:])
