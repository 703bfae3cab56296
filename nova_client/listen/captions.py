"""What `nova listen` shows, as plain state built from the session's events: the finals (each
with its translations as they come) and the utterance in progress. The terminal view and the
overlay draw from it; nothing here does any I/O or reads the clock.

A reconnect is a new session whose ``seq`` numbers start again: its ``started`` resets the seq
bookkeeping, while what is on screen stays: finals still owed translations by the lost session
stop waiting for them, and its utterance in progress, whose audio went with it, is kept as an
unfinished line rather than dropped.

Partials may come for the next utterance while earlier finals are still owed. The live line
shows the newest; the words it showed of an earlier utterance stay in ``pending`` (above it,
in seq order) until that utterance's final, or the error in its place, comes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    PartialEvent,
    ServerEvent,
    SessionStarted,
    TranslationEvent,
)

# How long a final may wait on screen for its translations before it moves on without them
# (Apertium answers in well under a second; a busy MT worker may take longer).
TRANSLATION_WAIT_S = 6.0
# Finals remembered per session for translations that arrive after the final moved on.
RECENT_FINALS = 32


# Identity, not equality: two finals with the same words are still two captions.
@dataclass(eq=False)
class ShownFinal:
    # Counts every final shown, across sessions (``seq`` starts again after a reconnect).
    number: int
    seq: int
    text: str
    language: str
    # The targets its translations are owed in, in the order they were asked for.
    targets: tuple[str, ...]
    arrived_at: float
    translations: dict[str, str] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    # Its session is gone: the translations still owed will never come.
    orphaned: bool = False
    # Not a final: the words of a partial whose session was lost before its final came.
    unfinished: bool = False

    def owes(self, language: str) -> bool:
        return (
            language in self.targets
            and language not in self.translations
            and language not in self.failed
        )

    @property
    def settled(self) -> bool:
        return self.orphaned or not any(self.owes(t) for t in self.targets)

    def ordered_translations(self) -> list[tuple[str, str]]:
        """Arrived translations in the order the targets were asked for."""
        return [(t, self.translations[t]) for t in self.targets if t in self.translations]


@dataclass(frozen=True)
class ShownPartial:
    seq: int
    revision: int
    # Words that later partials of the utterance will not change.
    committed: str
    # The rest, which may still change.
    tail: str

    @property
    def text(self) -> str:
        return f"{self.committed} {self.tail}".strip()


@dataclass(frozen=True)
class LateTranslation:
    """A translation that came after its final had moved on without it."""

    final: ShownFinal
    language: str
    text: str


class Captions:
    def __init__(self, *, wait_s: float = TRANSLATION_WAIT_S) -> None:
        self.wait_s = wait_s
        self.targets: tuple[str, ...] = ()
        # Finals on screen in the live area, oldest first, until their translations are in.
        self.waiting: list[ShownFinal] = []
        self.partial: ShownPartial | None = None
        # Earlier utterances' last partials, oldest first, while their finals are owed.
        self.pending: list[ShownPartial] = []
        # The newest final with text: the overlay shows it (and its translations) above the
        # utterance in progress.
        self.latest: ShownFinal | None = None
        # The newest final with a translation in: the overlay shows it under the captions.
        self.latest_translated: ShownFinal | None = None
        self._recent: OrderedDict[int, ShownFinal] = OrderedDict()
        # The highest seq this session has finished (a final, or an error in its place).
        self._done_seq = -1
        self._late: list[LateTranslation] = []
        self._count = 0

    def apply(self, event: ServerEvent, now: float) -> None:
        if isinstance(event, SessionStarted):
            self._new_session(event, now)
        elif isinstance(event, PartialEvent):
            self._partial(event)
        elif isinstance(event, FinalEvent):
            self._final(event, now)
        elif isinstance(event, TranslationEvent):
            self._translation(event.seq, event.language, event.text)
        elif isinstance(event, ErrorEvent) and event.seq is not None:
            if event.language is not None:
                self._translation(event.seq, event.language, None)
            else:
                self._finished(event.seq)  # the final that will not come for this utterance

    def release(self, now: float) -> list[ShownFinal]:
        """Finals that are done waiting (their translations are in or failed, or they waited
        ``wait_s``), oldest first; a final never overtakes an earlier one."""
        released = []
        while self.waiting and (
            self.waiting[0].settled or now - self.waiting[0].arrived_at >= self.wait_s
        ):
            released.append(self.waiting.pop(0))
        return released

    def flush(self) -> list[ShownFinal]:
        """Every final still waiting: the session is over, nothing more will come."""
        released, self.waiting = self.waiting, []
        return released

    def take_late(self) -> list[LateTranslation]:
        late, self._late = self._late, []
        return late

    def _new_session(self, started: SessionStarted, now: float) -> None:
        self.targets = started.translate_to
        for final in self._recent.values():
            final.orphaned = True
        self._recent.clear()
        self._done_seq = -1
        for words in [*self.pending, self.partial]:
            if words is not None and words.text:
                self._show(words.seq, words.text, "", now, unfinished=True)
        self.pending = []
        self.partial = None

    def _partial(self, event: PartialEvent) -> None:
        if event.seq <= self._done_seq:
            return  # its final (or its failure) already came
        shown = self.partial
        if shown is not None and event.seq < shown.seq:
            return  # the live line has moved on to a later utterance
        if shown is not None and shown.seq == event.seq:
            if event.revision <= shown.revision:
                return  # overtaken by a newer revision
        elif shown is not None and shown.text:
            self.pending.append(shown)  # the next utterance's partial: this one's final is owed
        # The gateway's contract: `committed` is a prefix of `text`. Should it not be, all of it
        # is shown as still changing rather than garbled.
        committed = event.committed if event.text.startswith(event.committed) else ""
        tail = event.text[len(committed) :]
        self.partial = ShownPartial(event.seq, event.revision, committed.strip(), tail.strip())

    def _final(self, event: FinalEvent, now: float) -> None:
        self._finished(event.seq)
        text = event.text.strip()
        if text:  # else nothing was said after all (or it was suppressed): nothing to show
            final = self._show(event.seq, text, event.language, now)
            self._recent[event.seq] = final
            while len(self._recent) > RECENT_FINALS:
                self._recent.popitem(last=False)

    def _show(
        self, seq: int, text: str, language: str, now: float, *, unfinished: bool = False
    ) -> ShownFinal:
        self._count += 1
        final = ShownFinal(
            number=self._count,
            seq=seq,
            text=text,
            language=language,
            targets=() if unfinished else self.targets,
            arrived_at=now,
            orphaned=unfinished,
            unfinished=unfinished,
        )
        self.waiting.append(final)
        self.latest = final
        return final

    def _finished(self, seq: int) -> None:
        self._done_seq = max(self._done_seq, seq)
        self.pending = [words for words in self.pending if words.seq > seq]
        shown = self.partial
        if shown is not None and shown.seq <= seq:
            self.partial = None

    def _translation(self, seq: int, language: str, text: str | None) -> None:
        final = self._recent.get(seq)
        if final is None or not final.owes(language):
            return  # not asked for, a repeat, or for a final long gone
        if text is None:
            final.failed.add(language)
            return
        final.translations[language] = text
        if self.latest_translated is None or final.number > self.latest_translated.number:
            self.latest_translated = final
        if not any(shown is final for shown in self.waiting):
            self._late.append(LateTranslation(final, language, text))
