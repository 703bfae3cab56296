"""Printing finals as they arrive: plain text, JSON lines, SRT or WebVTT cues, each with the
final's translations when the session asked for any."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TextIO

from nova_common.messages import FinalEvent, FinalRecord, TranslationEvent, json_encoder
from nova_common.subtitles import VTT_HEADER, Cue, cue_text

Format = Literal["text", "jsonl", "srt", "vtt"]
FORMATS: tuple[Format, ...] = ("text", "jsonl", "srt", "vtt")


@dataclass
class PairedFinal:
    final: FinalEvent
    # Target → text, in the order the targets were asked for; a failed target is absent.
    translations: dict[str, str] = field(default_factory=dict)


@dataclass
class _Pending:
    final: FinalEvent
    waiting: set[str]
    arrived: dict[str, str] = field(default_factory=dict)


class TranslationPairing:
    """Holds each final until every translation it is owed has arrived or failed, and releases
    finals in the order they came (the gateway sends them in seq order).

    A final with no text is owed nothing. The gateway sends a final before its translations; one
    that comes early anyway is kept for its final; repeats and targets not asked for are
    dropped."""

    def __init__(self, targets: Sequence[str]) -> None:
        self.targets = tuple(targets)
        self._queue: deque[_Pending] = deque()
        self._by_seq: dict[int, _Pending] = {}
        self._early: dict[int, dict[str, str | None]] = {}

    def final(self, event: FinalEvent) -> list[PairedFinal]:
        pending = _Pending(event, set(self.targets) if event.text else set())
        self._queue.append(pending)
        self._by_seq[event.seq] = pending
        for language, text in self._early.pop(event.seq, {}).items():
            self._settle(pending, language, text)
        return self._release()

    def translation(self, event: TranslationEvent) -> list[PairedFinal]:
        return self._arrived(event.seq, event.language, event.text)

    def failed(self, seq: int, language: str) -> list[PairedFinal]:
        """A translation that will not come."""
        return self._arrived(seq, language, None)

    def flush(self) -> list[PairedFinal]:
        """The session is over: every final still held, with what it has, in order."""
        left = [self._paired(pending) for pending in self._queue]
        self._queue.clear()
        self._by_seq.clear()
        self._early.clear()
        return left

    def _arrived(self, seq: int, language: str, text: str | None) -> list[PairedFinal]:
        pending = self._by_seq.get(seq)
        if pending is not None:
            self._settle(pending, language, text)
            return self._release()
        if language in self.targets:
            self._early.setdefault(seq, {})[language] = text
        return []

    def _settle(self, pending: _Pending, language: str, text: str | None) -> None:
        if language not in pending.waiting:
            return  # not asked for, or a repeat
        pending.waiting.discard(language)
        if text is not None:
            pending.arrived[language] = text

    def _release(self) -> list[PairedFinal]:
        ready = []
        while self._queue and not self._queue[0].waiting:
            pending = self._queue.popleft()
            del self._by_seq[pending.final.seq]
            ready.append(self._paired(pending))
        return ready

    def _paired(self, pending: _Pending) -> PairedFinal:
        # Translations arrive in any order; the output follows the order they were asked for.
        got = pending.arrived
        return PairedFinal(pending.final, {t: got[t] for t in self.targets if t in got})


class FinalWriter:
    """Writes each final once its translations are in: text puts one indented ``  [es] …`` line
    per target under the final, jsonl adds ``"translations": {"es": …}``, srt and vtt add a
    ``[es] …`` line to the final's cue. Call ``finish`` at the end of the session."""

    def __init__(
        self, out: TextIO, fmt: Format, *, source: str, targets: Sequence[str] = ()
    ) -> None:
        self._out = out
        self._fmt = fmt
        self._source = source
        self._pairing = TranslationPairing(targets)
        self._cue = 0
        if fmt == "vtt":
            out.write(VTT_HEADER)

    def write(self, final: FinalEvent) -> None:
        self._emit(self._pairing.final(final))

    def translation(self, event: TranslationEvent) -> None:
        self._emit(self._pairing.translation(event))

    def translation_failed(self, seq: int, language: str) -> None:
        self._emit(self._pairing.failed(seq, language))

    def finish(self) -> None:
        """Writes what is still waiting for translations that will not come now."""
        self._emit(self._pairing.flush())

    def _emit(self, ready: list[PairedFinal]) -> None:
        for paired in ready:
            self._write(paired.final, paired.translations)
        if ready:
            self._out.flush()

    def _write(self, final: FinalEvent, translations: dict[str, str]) -> None:
        if not final.text and self._fmt in ("text", "srt", "vtt"):
            return
        if self._fmt == "text":
            lines = [final.text, *(f"  [{lang}] {text}" for lang, text in translations.items())]
            self._out.write("\n".join(lines) + "\n")
        elif self._fmt == "jsonl":
            record = FinalRecord(
                file=self._source,
                seq=final.seq,
                start=final.start,
                end=final.end,
                text=final.text,
                language=final.language,
                translations=translations,
                words=final.words,
            )
            # msgspec: compact, fields in FinalRecord's order, non-ASCII as UTF-8 (no \u escapes);
            # an empty `translations` is left out.
            self._out.write(json_encoder.encode(record).decode() + "\n")
        else:
            self._cue += 1
            lines = [final.text, *(f"[{lang}] {text}" for lang, text in translations.items())]
            self._out.write(cue_text(self._cue, Cue(final.start, final.end, lines), self._fmt))
