"""Finals for a pipe or a file: what `nova transcribe` writes (text with ``  [es] …`` lines
under each final, or its JSON lines), through the same FinalWriter. A reconnect starts a new
session whose seq numbers start again, so each session gets a writer of its own; finals the
lost session still owed translations for are written with what they have."""

from __future__ import annotations

from typing import TextIO

from nova_client.formats import FinalWriter, Format
from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    ServerEvent,
    SessionStarted,
    TranslationEvent,
)


class SessionWriter:
    def __init__(self, out: TextIO, fmt: Format, *, source: str) -> None:
        self._out = out
        self._fmt = fmt
        self._source = source
        self._writer: FinalWriter | None = None

    def event(self, event: ServerEvent) -> None:
        if isinstance(event, SessionStarted):
            self.finish()
            self._writer = FinalWriter(
                self._out, self._fmt, source=self._source, targets=event.translate_to
            )
        elif self._writer is None:
            return  # nothing comes before `started`; should it, there is no session to name
        elif isinstance(event, FinalEvent):
            self._writer.write(event)
        elif isinstance(event, TranslationEvent):
            self._writer.translation(event)
        elif isinstance(event, ErrorEvent) and event.seq is not None and event.language:
            self._writer.translation_failed(event.seq, event.language)

    def finish(self) -> None:
        if self._writer is not None:
            self._writer.finish()
            self._writer = None
