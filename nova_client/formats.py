"""Printing finals as they arrive: plain text, JSON lines, SRT or WebVTT cues."""

from __future__ import annotations

from typing import Literal, TextIO

from nova_common.messages import FinalEvent, FinalRecord, json_encoder

Format = Literal["text", "jsonl", "srt", "vtt"]
FORMATS: tuple[Format, ...] = ("text", "jsonl", "srt", "vtt")


def timestamp(seconds: float, sep: str) -> str:
    ms = round(max(seconds, 0.0) * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


class FinalWriter:
    def __init__(self, out: TextIO, fmt: Format, *, source: str) -> None:
        self._out = out
        self._fmt = fmt
        self._source = source
        self._cue = 0
        if fmt == "vtt":
            out.write("WEBVTT\n\n")

    def write(self, final: FinalEvent) -> None:
        if not final.text and self._fmt in ("text", "srt", "vtt"):
            return
        if self._fmt == "text":
            self._out.write(final.text + "\n")
        elif self._fmt == "jsonl":
            record = FinalRecord(
                file=self._source,
                seq=final.seq,
                start=final.start,
                end=final.end,
                text=final.text,
                language=final.language,
            )
            # msgspec: compact, fields in FinalRecord's order, non-ASCII as UTF-8 (no \u escapes).
            self._out.write(json_encoder.encode(record).decode() + "\n")
        else:
            self._cue += 1
            sep = "," if self._fmt == "srt" else "."
            span = f"{timestamp(final.start, sep)} --> {timestamp(final.end, sep)}"
            self._out.write(f"{self._cue}\n{span}\n{final.text}\n\n")
        self._out.flush()
