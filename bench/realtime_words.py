"""The pure part of bench/realtime.py: from one stream's recorded events to per-word lags.

No model, no network: what a stream saw (partials and finals with their arrival times) and the
reference words (offline faster-whisper on the whole recording, with word times) go in; the
per-word stable and final times, and the per-utterance figures, come out. Words are matched by
an alignment on normalised words (difflib), never by index: a stream may drop, add or split a
word, and the rest must still line up.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nova_common.messages import FinalEvent, PartialEvent
from tests.speech import normalise


@dataclass(frozen=True)
class RefWord:
    """A word of the reference transcript, normalised, with its end in the session audio."""

    word: str
    end: float


@dataclass
class StreamRecord:
    """What one stream saw: ``t0`` is session time zero on the monotonic clock (the first
    chunk goes out when its last sample would have been captured), events with arrival times."""

    t0: float | None = None
    partials: list[tuple[float, PartialEvent]] = field(default_factory=list)
    finals: list[tuple[float, FinalEvent]] = field(default_factory=list)


@dataclass(frozen=True)
class WordLag:
    word: str
    ref_end: float  # seconds in the session audio
    stable_s: float  # wall time its text stopped changing - (t0 + ref_end)
    final_s: float  # arrival of the final holding it - (t0 + ref_end)


def tokens(text: str) -> list[str]:
    """Words as the WER counts them (tests/speech.py's normalisation)."""
    return normalise(text).split()


def reference_words(words: Sequence[tuple[str, float]]) -> list[RefWord]:
    """(word, end) pairs as Whisper writes them → normalised tokens; "ill-disposed" becomes
    two tokens sharing the word's end."""
    return [RefWord(token, end) for text, end in words for token in tokens(text)]


def _matched(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs (i in a, j in b) of the words an alignment keeps as equal."""
    matcher = difflib.SequenceMatcher(a=list(a), b=list(b), autojunk=False)
    return [
        (block.a + k, block.b + k)
        for block in matcher.get_matching_blocks()
        for k in range(block.size)
    ]


def _final_words(record: StreamRecord) -> tuple[list[str], list[float]]:
    """Every final's tokens in seq order, each with the arrival time of its final."""
    words: list[str] = []
    arrivals: list[float] = []
    for at, final in sorted(record.finals, key=lambda x: x[1].seq):
        for token in tokens(final.text):
            words.append(token)
            arrivals.append(at)
    return words, arrivals


def _stable_text(record: StreamRecord, now: float) -> list[str]:
    """The text a reader holds as settled at ``now``: every final arrived by then, and for the
    utterances still open the latest partial's ``committed`` prefix, in seq order."""
    finals = {f.seq: f for at, f in record.finals if at <= now}
    committed: dict[int, str] = {}
    for at, partial in record.partials:
        if at <= now and partial.seq not in finals:
            committed[partial.seq] = partial.committed
    texts = {seq: f.text for seq, f in finals.items()} | committed
    return [token for seq in sorted(texts) for token in tokens(texts[seq])]


def stable_times(record: StreamRecord) -> tuple[list[str], list[float], list[float]]:
    """Per final word: when its text stopped changing and when its final arrived.

    The settled text is rebuilt at every event and aligned to the finals; a final word is
    stable from the first moment it is matched and stays matched to the end (a committed word
    the final then changes counts from the final). A final's arrival bounds it."""
    words, arrivals = _final_words(record)
    since: list[float | None] = [None] * len(words)
    moments = sorted({at for at, _ in record.partials} | {at for at, _ in record.finals})
    for now in moments:
        present = {j for _, j in _matched(_stable_text(record, now), words)}
        for j in range(len(words)):
            if j not in present:
                since[j] = None
            elif since[j] is None:
                since[j] = now
    stable = [min(s, a) if s is not None else a for s, a in zip(since, arrivals, strict=True)]
    return words, stable, arrivals


def word_lags(record: StreamRecord, reference: Sequence[RefWord]) -> tuple[list[WordLag], int]:
    """Lags of the reference words the stream's finals hold, and how many reference words it
    missed (no match in the alignment)."""
    assert record.t0 is not None, "the stream never sent audio"
    words, stable, arrivals = stable_times(record)
    lags = []
    for i, j in _matched([w.word for w in reference], words):
        due = record.t0 + reference[i].end
        lags.append(
            WordLag(reference[i].word, reference[i].end, stable[j] - due, arrivals[j] - due)
        )
    return lags, len(reference) - len(lags)


def end_of_speech_lags(record: StreamRecord) -> list[float]:
    """Per final with word times: arrival - (t0 + the end of its last word)."""
    assert record.t0 is not None
    return [at - (record.t0 + final.words[-1].end) for at, final in record.finals if final.words]


def first_partial_lags(record: StreamRecord, onsets: dict[int, float]) -> list[float]:
    """Per utterance with a partial and a known speech onset (session seconds): the first
    partial's arrival - (t0 + onset)."""
    assert record.t0 is not None
    first: dict[int, float] = {}
    for at, partial in record.partials:
        first.setdefault(partial.seq, at)
    return [first[seq] - (record.t0 + onset) for seq, onset in onsets.items() if seq in first]


def finals_text(record: StreamRecord) -> str:
    return " ".join(f.text for _, f in sorted(record.finals, key=lambda x: x[1].seq) if f.text)


def percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """p50 / p95 / max and the count; None where there is nothing to summarise."""
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
        "max": round(float(arr.max()), 3),
        "n": len(values),
    }
