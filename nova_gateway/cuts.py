"""Where to end an utterance that is still being spoken, from what its partials have settled.

Fluent speakers pause between sentences for less than the segmenter's end silence, so without
this an utterance runs on until ``max_unfinal_s`` and every word in it waits for that final. A
partial's text comes with Whisper's own segment ends (its timestamps); once the committed words
(LocalAgreement, ``nova_gateway.partials``) reach past one that closes a sentence, that span will
not change any more: it can go to the model as a final of its own, and the rest carries on.
"""

from __future__ import annotations

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
) -> float | None:
    """The session time to cut the utterance spoken from ``start`` to ``end`` at, or None.

    ``hypothesis`` is the partial whose Whisper segment ends ``ends`` are (in words of it);
    ``committed`` the utterance's committed words after it. An end counts only where the
    hypothesis's words up to it are exactly the committed ones, so the text before the cut is
    text the client has already been promised."""
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
    return None
