"""Where to end an utterance that is still being spoken, from what its partials have settled.

Fluent speakers pause between sentences for less than the segmenter's end silence, so without
this an utterance runs on until ``max_unfinal_s`` and every word in it waits for that final. A
partial's text comes with Whisper's own segment ends (its timestamps); once the committed words
(LocalAgreement, ``nova_gateway.partials``) reach past one that closes a sentence, that span will
not change any more: it can go to the model as a final of its own, and the rest carries on.
A sentence end that is not committed yet counts too where the speaker clearly paused there and
Whisper has heard what follows: waiting for a second hypothesis to agree cost a partial window
(~0.7 s of one core here) on every sentence, and the final decodes its span afresh anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nova_common.messages import SegmentEnd
from nova_gateway.partials import same_words

# A word that ends one of these closes a sentence (closing quotes and brackets aside).
_SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")
_CLOSERS = "\"'”’)]»"


@dataclass(frozen=True)
class CutPolicy:
    # A final shorter than this costs a whole model pass for a word or two, and Whisper is
    # less sure of short audio (its language above all).
    min_head_s: float = 1.0
    # An utterance this old may be cut at any committed segment end (a clause), not only at
    # the end of a sentence: better than the forced cut at max_unfinal_s, which has no text.
    any_end_after_s: float = 3.0
    # A sentence end not yet committed is cut at when the VAD hears an unvoiced run this long
    # there (LibriVox's sentences are ~0.5 s apart, words within one rarely over 0.15 s) ...
    pause_s: float = 0.24
    # ... and the hypothesis had this much audio after it (so its "." is no guess at an end).
    heard_after_s: float = 0.5


def ends_sentence(word: str) -> bool:
    return word.rstrip(_CLOSERS).endswith(_SENTENCE_END)


def cut_point(
    *,
    committed: list[str],
    hypothesis: str,
    ends: tuple[SegmentEnd, ...],
    start: float,
    end: float,
    policy: CutPolicy,
    pause_near: Callable[[float], float] | None = None,
) -> float | None:
    """The session time to cut the utterance spoken from ``start`` to ``end`` at, or None.

    ``hypothesis`` is the partial whose Whisper segment ends ``ends`` are (in words of it);
    ``committed`` the utterance's committed words after it. An end counts only where the
    hypothesis's words up to it are exactly the committed ones, so the text before the cut is
    text the client has already been promised — or, with ``pause_near`` (seconds of the longest
    unvoiced run around a time), a sentence end the speaker paused at."""
    words = hypothesis.split()
    settled = [
        e
        for e in ends
        if 0 < e.words <= len(committed)
        and e.end - start >= policy.min_head_s
        and e.end < end
        and same_words(words[: e.words], committed[: e.words])
    ]
    sentences = [e for e in settled if ends_sentence(words[e.words - 1])]
    if sentences:
        return sentences[-1].end
    if settled and end - start >= policy.any_end_after_s:
        return settled[-1].end
    if pause_near is not None:
        paused = [
            e
            for e in ends
            if 0 < e.words <= len(words)
            and e.end - start >= policy.min_head_s
            and e.end <= end - policy.heard_after_s
            and ends_sentence(words[e.words - 1])
            and pause_near(e.end) >= policy.pause_s
        ]
        if paused:
            return paused[-1].end
    return None
