"""Partial results of the utterance in progress: when to ask for one, and what the client may
rely on.

The stability contract is LocalAgreement-2 (as in whisper_streaming): a word is committed once
two consecutive hypotheses agree on it, and committed words never change in later partials of
the utterance; only the tail after them may. The final of the utterance replaces its partials.

Partials are best effort and budgeted against load, not a clock: a session has at most one
partial window in flight, a new one is due only after ``interval_s`` more of speech, and one
whose answer comes too late (its utterance already final, a newer revision shown) is dropped.

A partial of the utterance in progress may be answered while finals of earlier ones are still
owed (each takes the model seconds). Ahead of finals, it is shown at once: the finals still go
out in seq order, and the client shows them by seq and the newest partial as the live line.
Otherwise (dictation, which types utterances one after another) the newest is held and shown
the moment the finals before it are out.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from nova_common.messages import Transcript

_NOT_WORD = re.compile(r"[^\w']+")
# After a window with no text (too little speech yet for Whisper to be confident: its first
# half-second is often dropped as low confidence), the next is due after this much more audio,
# not a whole interval: the first words should not wait a second longer for it.
RETRY_AFTER_EMPTY_S = 0.3


def _norm(word: str) -> str:
    """Comparison form: "Dashwood," and "dashwood" are the same word to agree on."""
    return _NOT_WORD.sub("", word.lower())


def same_words(a: list[str], b: list[str]) -> bool:
    """Equal word for word in comparison form (case and punctuation aside)."""
    return len(a) == len(b) and _common_prefix(a, b) == len(a)


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if _norm(x) != _norm(y):
            break
        n += 1
    return n


@dataclass
class LocalAgreement:
    """One utterance's committed words and the tail of its latest hypothesis."""

    committed: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)

    def update(self, hypothesis: str) -> None:
        words = hypothesis.split()
        tail = words[self._continuation(words) :]
        agreed = _common_prefix(self.tail, tail)
        self.committed += tail[:agreed]
        self.tail = tail[agreed:]

    @property
    def text(self) -> str:
        return " ".join(self.committed + self.tail)

    @property
    def committed_text(self) -> str:
        return " ".join(self.committed)

    def _continuation(self, words: list[str]) -> int:
        """Where ``words`` go on after the committed words: a later hypothesis may drop, add or
        respell a committed word, so align rather than count."""
        if not self.committed:
            return 0
        if _common_prefix(self.committed, words) == len(self.committed):
            return len(self.committed)
        matcher = difflib.SequenceMatcher(
            None, [_norm(w) for w in self.committed], [_norm(w) for w in words], autojunk=False
        )
        blocks = [b for b in matcher.get_matching_blocks() if b.size]
        if not blocks:
            return min(len(self.committed), len(words))
        last = blocks[-1]
        # Committed words after the last match are taken to be there, unmatched, in `words` too.
        unmatched = len(self.committed) - (last.a + last.size)
        return min(last.b + last.size + unmatched, len(words))


@dataclass
class _InFlight:
    seq: int
    revision: int
    sent_at: float


class PartialWindows:
    """Per session: decides when the utterance in progress gets a partial window, and turns
    the answers into (committed, text) revisions."""

    def __init__(
        self,
        *,
        first_after_s: float,
        interval_s: float,
        answer_within_s: float,
        ahead_of_finals: bool = False,
    ) -> None:
        """``ahead_of_finals``: show a partial though finals of earlier utterances are owed
        (else it is held until they are out)."""
        self.ahead_of_finals = ahead_of_finals
        self._first_after = first_after_s
        self._interval = interval_s
        self._answer_within = answer_within_s
        self._in_flight: _InFlight | None = None
        self._revision: dict[int, int] = {}  # seq → last revision published
        self._covered: dict[int, float] = {}  # seq → audio seconds the last window covered
        self._shown: dict[int, int] = {}  # seq → last revision shown to the client
        self._agreement: dict[int, LocalAgreement] = {}
        self._done_below = 0  # utterances below this seq are final: their partials are stale
        # The newest partial answered while earlier finals were owed, not ahead of them.
        self._held: tuple[Transcript, LocalAgreement] | None = None

    def due(self, seq: int, duration: float, now: float) -> int | None:
        """The revision to publish for utterance ``seq`` with ``duration`` seconds so far, or
        None when it is not time yet or the last window is still being answered."""
        if seq < self._done_below:
            return None
        if self._in_flight is not None and now - self._in_flight.sent_at < self._answer_within:
            return None
        covered = self._covered.get(seq)
        if duration < (self._first_after if covered is None else covered + self._interval):
            return None
        revision = self._revision.get(seq, 0) + 1
        self._revision[seq] = revision
        self._covered[seq] = duration
        self._in_flight = _InFlight(seq, revision, now)
        return revision

    def not_sent(self) -> None:
        """The window could not be queued: the budget is free again."""
        self._in_flight = None

    def answer(self, seq: int, revision: int, text: str) -> LocalAgreement | None:
        """A partial's text; the utterance's agreement state when it is to be shown."""
        if self._in_flight is not None and (seq, revision) == (
            self._in_flight.seq,
            self._in_flight.revision,
        ):
            self._in_flight = None
        if seq < self._done_below or revision <= self._shown.get(seq, 0):
            return None  # late: its utterance is final, or a newer revision is already shown
        if not text.strip():
            # Nothing to show (too little speech yet, or the window was dropped unrun): the
            # next window comes sooner, and the words shown so far stay as they are.
            if revision == self._revision.get(seq) and seq in self._covered:
                self._covered[seq] -= max(self._interval - RETRY_AFTER_EMPTY_S, 0.0)
            return None
        self._shown[seq] = revision
        agreement = self._agreement.setdefault(seq, LocalAgreement())
        agreement.update(text)
        return agreement

    def show_now(self, result: Transcript, agreement: LocalAgreement, *, first_owed: int) -> bool:
        """Whether an answered partial goes to the client now; ``first_owed`` is the earliest
        seq whose final is not out yet. Behind earlier finals and not ahead of them, it is held
        (the newest only) until ``unheld`` gives it back."""
        if self.ahead_of_finals or result.seq == first_owed:
            return True
        self._held = (result, agreement)
        return False

    def unheld(self, first_owed: int) -> tuple[Transcript, LocalAgreement] | None:
        """The held partial, once the finals before it are out (it is of ``first_owed``)."""
        if self._held is None or self._held[0].seq != first_owed:
            return None
        held, self._held = self._held, None
        return held

    def _held_seq(self) -> int | None:
        return None if self._held is None else self._held[0].seq

    def revision(self, seq: int) -> int:
        """The last revision published for ``seq``."""
        return self._revision.get(seq, 0)

    def abandon(self, seq: int) -> bool:
        """The utterance in progress as ``seq`` was not speech after all (the segmenter dropped
        it): the next utterance starts afresh under the same seq, and no answer for the dropped
        one's windows counts. True when partials of it were shown (the client must be told)."""
        if seq not in self._revision:
            return False
        shown = seq in self._agreement and self._held_seq() != seq
        if self._held_seq() == seq:
            self._held = None  # never shown: nothing to take back
        self._shown[seq] = self._revision[seq]  # revisions go on counting from here
        for state in (self._covered, self._agreement):
            state.pop(seq, None)
        if self._in_flight is not None and self._in_flight.seq == seq:
            self._in_flight = None
        return shown

    def final(self, seq: int) -> None:
        """The utterance ``seq`` ended (its final is queued): forget its partials."""
        self._done_below = max(self._done_below, seq + 1)
        if self._in_flight is not None and self._in_flight.seq <= seq:
            self._in_flight = None
        if (held := self._held_seq()) is not None and held <= seq:
            self._held = None  # its own final is queued: the partial is stale
        for state in (self._revision, self._covered, self._shown, self._agreement):
            for old in [s for s in state if s <= seq]:
                del state[old]
