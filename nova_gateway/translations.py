"""Translations per session: where each target goes, and which ones each final still owes.

A translation can overtake its final (the MT worker was quicker than a slow STT worker on an
earlier seq); the client always sees the final first, then its translations. Nothing here
touches NATS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from nova_common.messages import ErrorEvent, TranslationEvent, WorkerHeartbeat

EnglishVia = Literal["auto", "whisper", "text"]
TranslationOutcome = TranslationEvent | ErrorEvent


@dataclass(frozen=True)
class Routing:
    """Where a session's targets go: text MT targets (TEXT stream) and Whisper's English."""

    text_targets: tuple[str, ...]
    whisper_english: bool

    @property
    def targets(self) -> tuple[str, ...]:
        return (*self.text_targets, "en") if self.whisper_english else self.text_targets


def route(
    targets: Sequence[str], english_via: EnglishVia, mt_workers: Iterable[WorkerHeartbeat]
) -> Routing:
    """English comes from Whisper's translate task unless told otherwise, or ("auto") unless a
    running MT worker has a many-language neural model (NLLB, M2M-100), which translates better
    than Whisper base; a single-pair model (OPUS-MT en→es) does not count."""
    if "en" not in targets:
        return Routing(tuple(targets), False)
    if english_via == "auto":
        multilingual = any(beat.multilingual_mt for beat in mt_workers)
        english_via = "text" if multilingual else "whisper"
    if english_via == "text":
        return Routing(tuple(targets), False)
    return Routing(tuple(t for t in targets if t != "en"), True)


@dataclass
class _Owed:
    languages: set[str]
    start: float
    end: float
    held: list[TranslationOutcome] = field(default_factory=list)
    final_out: bool = False


class TranslationTracker:
    """Which (seq, language) translations are still to come, holding early arrivals."""

    def __init__(self) -> None:
        self._owed: dict[int, _Owed] = {}
        self.delivered = 0
        self.failed = 0

    def expect(self, seq: int, languages: Iterable[str], start: float, end: float) -> None:
        wanted = set(languages)
        if wanted:
            self._owed[seq] = _Owed(wanted, start, end)

    def times(self, seq: int) -> tuple[float, float] | None:
        owed = self._owed.get(seq)
        return (owed.start, owed.end) if owed else None

    @property
    def outstanding(self) -> int:
        """Translations still to come (or held back behind their final)."""
        return sum(len(o.languages) + len(o.held) for o in self._owed.values())

    def final_released(self, seq: int, *, has_text: bool) -> list[TranslationOutcome]:
        """The final for ``seq`` went to the client: what was held for it can follow. A final
        with no text (or a failed one) is not translated, so nothing more is owed for it."""
        owed = self._owed.get(seq)
        if owed is None:
            return []
        if not has_text:
            del self._owed[seq]
            return []
        owed.final_out = True
        ready, owed.held = owed.held, []
        self._forget_if_done(seq)
        for outcome in ready:
            self._count(outcome)
        return ready

    def accept(self, seq: int, outcome: TranslationOutcome) -> list[TranslationOutcome]:
        """Record a translation (or its failure); returns what can be sent now. Repeats and
        translations nobody asked for are dropped."""
        owed = self._owed.get(seq)
        language = outcome.language
        if owed is None or language is None or language not in owed.languages:
            return []
        owed.languages.discard(language)
        if not owed.final_out:
            owed.held.append(outcome)
            return []
        self._forget_if_done(seq)
        self._count(outcome)
        return [outcome]

    def give_up(self) -> int:
        """Stop waiting (session timeout): how many were owed and never sent, held ones
        included."""
        missing = sum(len(o.languages) + len(o.held) for o in self._owed.values())
        self._owed.clear()
        return missing

    def _count(self, outcome: TranslationOutcome) -> None:
        """Counted when sent to the client, not when received: a held one may never go."""
        if isinstance(outcome, TranslationEvent):
            self.delivered += 1
        else:
            self.failed += 1

    def _forget_if_done(self, seq: int) -> None:
        owed = self._owed[seq]
        if owed.final_out and not owed.languages and not owed.held:
            del self._owed[seq]
