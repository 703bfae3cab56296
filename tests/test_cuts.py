"""Cutting an utterance in progress where its committed partial text closes a sentence."""

from __future__ import annotations

import numpy as np

from nova_common.audio import SAMPLE_RATE as RATE
from nova_common.messages import SegmentEnd
from nova_common.settings import VadSettings
from nova_gateway.cuts import CutPolicy, cut_point, ends_sentence
from nova_gateway.segmenter import FRAME, UtteranceSegmenter
from tests.speech import silence, speak

POLICY = CutPolicy(min_head_s=1.0, any_end_after_s=3.0)
HYPOTHESIS = "The train was late. We waited on the platform for an hour"
ENDS = (SegmentEnd(words=4, end=2.1),)


def test_a_sentence_end_inside_the_committed_words_is_a_cut() -> None:
    committed = "The train was late. We".split()
    at = cut_point(
        committed=committed, hypothesis=HYPOTHESIS, ends=ENDS, start=0.5, end=4.0, policy=POLICY
    )
    assert at == 2.1


def test_no_cut_before_the_words_up_to_the_end_are_committed() -> None:
    committed = "The train was".split()
    at = cut_point(
        committed=committed, hypothesis=HYPOTHESIS, ends=ENDS, start=0.5, end=4.0, policy=POLICY
    )
    assert at is None


def test_no_cut_where_the_hypothesis_differs_from_the_committed_words() -> None:
    committed = "The rain was late. We".split()
    at = cut_point(
        committed=committed, hypothesis=HYPOTHESIS, ends=ENDS, start=0.5, end=4.0, policy=POLICY
    )
    assert at is None


def test_a_head_shorter_than_the_minimum_is_not_cut_off() -> None:
    committed = "The train was late. We".split()
    at = cut_point(
        committed=committed, hypothesis=HYPOTHESIS, ends=ENDS, start=1.5, end=4.0, policy=POLICY
    )
    assert at is None


def test_a_clause_end_is_a_cut_only_in_a_long_utterance() -> None:
    hypothesis = "When the train came, we all got on and found our seats"
    ends = (SegmentEnd(words=4, end=1.9),)
    committed = "When the train came, we all".split()
    kwargs = {"committed": committed, "hypothesis": hypothesis, "ends": ends, "policy": POLICY}
    assert cut_point(start=0.0, end=2.5, **kwargs) is None  # type: ignore[arg-type]
    assert cut_point(start=0.0, end=3.5, **kwargs) == 1.9  # type: ignore[arg-type]


def test_the_last_sentence_end_wins() -> None:
    hypothesis = "It rained. The train was late. We waited"
    ends = (SegmentEnd(words=2, end=1.2), SegmentEnd(words=6, end=3.0))
    at = cut_point(
        committed=hypothesis.split(), hypothesis=hypothesis, ends=ends, start=0.0, end=4.0,
        policy=POLICY,
    )  # fmt: skip
    assert at == 3.0


def test_an_end_at_or_past_the_audio_so_far_is_no_cut() -> None:
    hypothesis = "The train was late."
    at = cut_point(
        committed=hypothesis.split(),
        hypothesis=hypothesis,
        ends=(SegmentEnd(words=4, end=3.0),),
        start=0.0,
        end=3.0,
        policy=POLICY,
    )
    assert at is None


def test_a_sentence_end_not_yet_committed_is_a_cut_where_the_speaker_paused() -> None:
    committed = "The train".split()  # a second hypothesis has not agreed on "was late." yet
    pauses = {2.1: 0.3}  # seconds of the longest unvoiced run near each end
    kwargs = {"committed": committed, "hypothesis": HYPOTHESIS, "ends": ENDS, "policy": POLICY}

    def pause_near(at: float) -> float:
        return pauses.get(at, 0.0)

    assert cut_point(start=0.5, end=4.0, pause_near=pause_near, **kwargs) == 2.1  # type: ignore[arg-type]
    # Without the pause (words run on), or with the end too close to the audio heard so far
    # (Whisper may close what it heard with a period), it waits for the words to be committed.
    pauses[2.1] = 0.12
    assert cut_point(start=0.5, end=4.0, pause_near=pause_near, **kwargs) is None  # type: ignore[arg-type]
    pauses[2.1] = 0.3
    assert cut_point(start=0.5, end=2.4, pause_near=pause_near, **kwargs) is None  # type: ignore[arg-type]
    # A clause end is never cut at on one hypothesis.
    clause = "When the train came, we all got on"
    ends = (SegmentEnd(words=4, end=2.1),)
    kwargs = {"committed": [], "hypothesis": clause, "ends": ends, "policy": POLICY}
    assert cut_point(start=0.0, end=5.0, pause_near=pause_near, **kwargs) is None  # type: ignore[arg-type]


def test_sentence_punctuation() -> None:
    assert ends_sentence("late.")
    assert ends_sentence('late?"')
    assert ends_sentence("¿tarde?")
    assert not ends_sentence("late,")
    assert not ends_sentence("Mr")


def _trimmed(text: str) -> np.ndarray:
    """espeak-ng's audio without the silence it puts around the words."""
    audio = speak(text)
    loud = np.flatnonzero(np.abs(audio) > 300)
    return audio[loud[0] : loud[-1] + 1]


def _in_progress(audio: np.ndarray) -> UtteranceSegmenter:
    segmenter = UtteranceSegmenter(VadSettings(max_unfinal_s=30.0))
    assert segmenter.push(audio) == []
    assert segmenter.in_progress_span() is not None
    return segmenter


def test_cut_near_a_time_lands_in_the_pause_and_loses_no_sample() -> None:
    first, second = _trimmed("The train was late."), _trimmed("We waited on the platform.")
    pause = silence(0.35)  # shorter than the end silence: the segmenter alone would not cut
    audio = np.concatenate([silence(0.5), first, pause, second])
    segmenter = _in_progress(audio)
    span = segmenter.in_progress_span()
    assert span is not None

    # Whisper's end timestamp can fall anywhere around the pause; aim late, inside the word.
    pause_start = (len(silence(0.5)) + len(first)) / RATE
    head = segmenter.cut_near(pause_start + 0.45)

    assert head is not None
    assert pause_start - 0.05 <= head.end <= pause_start + len(pause) / RATE + 0.05
    rest = segmenter.flush()
    assert len(rest) == 1
    # Contiguous and complete: every sample of the speech is in exactly one of the two.
    assert rest[0].start_sample == head.start_sample + len(head.pcm)
    joined = np.concatenate([head.pcm, rest[0].pcm])
    assert np.array_equal(joined, audio[head.start_sample : head.start_sample + len(joined)])
    assert head.start_sample == 0 or span[0] == head.start


def test_pause_near_measures_the_gap_between_sentences() -> None:
    first, second = _trimmed("The train was late."), _trimmed("We waited on the platform.")
    audio = np.concatenate([silence(0.5), first, silence(0.35), second])
    segmenter = _in_progress(audio)
    pause_start = (len(silence(0.5)) + len(first)) / RATE
    assert 0.24 <= segmenter.pause_near(pause_start + 0.1) <= 0.45
    # Inside the first sentence's words, the VAD hears no such gap.
    assert segmenter.pause_near(pause_start - 0.9) < 0.24


def test_cut_near_refuses_a_time_outside_the_utterance() -> None:
    audio = np.concatenate([silence(0.5), speak("The train was late.")])
    segmenter = _in_progress(audio)
    span = segmenter.in_progress_span()
    assert span is not None
    assert segmenter.cut_near(span[1] + 5.0) is None
    assert segmenter.cut_near(span[0] - 5.0) is None
    # Nothing was lost by asking.
    [whole] = segmenter.flush()
    assert whole.start == span[0]


def test_span_matches_the_utterance_in_progress() -> None:
    audio = np.concatenate([silence(0.5), speak("The train was late.")])
    segmenter = _in_progress(audio)
    current = segmenter.in_progress()
    assert current is not None
    assert segmenter.in_progress_span() == (current.start, current.end)
    assert len(current.pcm) % FRAME == 0
