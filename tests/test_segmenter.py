"""Cutting a 16 kHz stream into utterances with the VAD, on real (espeak-ng) speech."""

from __future__ import annotations

import functools
from itertools import pairwise

import numpy as np
import pytest

from nova_common.settings import VadSettings
from nova_gateway.segmenter import (
    FRAME,
    FRAME_MS,
    RATE,
    START_WINDOW,
    Utterance,
    UtteranceSegmenter,
)
from tests.speech import silence, speak

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese.",
    "She can scoop these things into three red bags.",
)
# Anything louder than this is speech in espeak-ng's output (its silence is digital zero).
LOUD = 200


@functools.cache
def sentence(index: int) -> np.ndarray:
    """espeak-ng's rendering of one sentence, with its leading and trailing silence."""
    audio = speak(SENTENCES[index])
    audio.flags.writeable = False
    return audio


def trimmed(index: int) -> np.ndarray:
    """The sentence without espeak-ng's own leading and trailing silence."""
    audio = sentence(index)
    loud = np.nonzero(np.abs(audio) > LOUD)[0]
    return audio[loud[0] : loud[-1] + 1]


def segment(audio: np.ndarray, settings: VadSettings, chunk: int = 4000) -> list[Utterance]:
    """Everything the segmenter emits for ``audio`` fed in ``chunk``-sample pieces, then flushed."""
    segmenter = UtteranceSegmenter(settings)
    out: list[Utterance] = []
    for pos in range(0, len(audio), chunk):
        out += segmenter.push(audio[pos : pos + chunk])
    return out + segmenter.flush()


def speech_span(audio: np.ndarray, offset: int) -> tuple[float, float]:
    """(onset, offset) in seconds of the loud part of ``audio`` placed at sample ``offset``."""
    loud = np.nonzero(np.abs(audio) > LOUD)[0]
    return (offset + loud[0]) / RATE, (offset + loud[-1] + 1) / RATE


def assert_is_slice_of(utterance: Utterance, audio: np.ndarray) -> None:
    """An utterance is the input audio at its position, sample for sample."""
    start = utterance.start_sample
    assert utterance.pcm.dtype == np.int16
    assert np.array_equal(utterance.pcm, audio[start : start + len(utterance.pcm)])


def test_sentences_separated_by_silence_become_one_utterance_each() -> None:
    settings = VadSettings()
    gap = silence(1.0)
    pieces: list[np.ndarray] = [gap]
    spans: list[tuple[float, float]] = []
    for i in range(3):
        spans.append(speech_span(sentence(i), sum(len(p) for p in pieces)))
        pieces += [sentence(i), gap]
    audio = np.concatenate(pieces)

    utterances = segment(audio, settings)

    assert len(utterances) == 3
    assert [u.start for u in utterances] == sorted(u.start for u in utterances)
    for utterance, (onset, offset) in zip(utterances, spans, strict=True):
        assert_is_slice_of(utterance, audio)
        # Pre-roll: the utterance begins before the first word, so its onset is not clipped...
        assert utterance.start <= onset
        # ...but not earlier than the pre-roll plus the start window could reach.
        reach = settings.preroll_ms + START_WINDOW * FRAME_MS
        assert utterance.start >= onset - reach / 1000 - 0.1
        # The silence that ended it is kept, so the last word is not cut off.
        assert utterance.end >= offset + settings.end_silence_ms / 1000 - 0.1
        assert utterance.voiced_ms >= settings.min_speech_ms
    for previous, following in pairwise(utterances):
        assert previous.end <= following.start


@pytest.mark.parametrize(
    "noise",
    [
        pytest.param(silence(10.0), id="digital-silence"),
        pytest.param(
            np.clip(np.random.default_rng(0).normal(0, 30, 10 * RATE), -32768, 32767).astype(
                np.int16
            ),
            id="white-noise-30",
        ),
        pytest.param(
            np.random.default_rng(1).integers(-30, 31, 10 * RATE, dtype=np.int16),
            id="uniform-noise-30",
        ),
    ],
)
def test_silence_and_low_noise_produce_no_utterances(noise: np.ndarray) -> None:
    assert segment(noise, VadSettings()) == []


def test_speech_longer_than_the_maximum_is_split_into_contiguous_pieces() -> None:
    settings = VadSettings(max_unfinal_s=4.0)
    # About 10.8 s of speech with only 0.1 s pauses: the VAD never sees end_silence_ms of silence.
    gap = silence(0.1)
    audio = np.concatenate([trimmed(0), gap, trimmed(1), gap, trimmed(2)])
    assert len(audio) / RATE > 10

    utterances = segment(audio, settings)

    assert len(utterances) >= 3
    for utterance in utterances:
        assert len(utterance.pcm) <= settings.max_unfinal_s * RATE + FRAME
        assert_is_slice_of(utterance, audio)
    # No loss and no overlap: each piece starts where the previous one ended...
    for previous, following in pairwise(utterances):
        assert following.start_sample == previous.start_sample + len(previous.pcm)
    # ...the first at the very beginning, the last (flushed) at the very end.
    assert utterances[0].start_sample == 0
    assert utterances[-1].start_sample + len(utterances[-1].pcm) == len(audio)
    assert np.array_equal(np.concatenate([u.pcm for u in utterances]), audio)


def test_split_pieces_stay_within_the_maximum_for_several_limits() -> None:
    """Whatever the limit, no piece exceeds it by more than one VAD frame."""
    audio = np.concatenate([trimmed(0), silence(0.1), trimmed(1), silence(0.1), trimmed(2)])
    for limit in (1.0, 2.5, 6.0):
        settings = VadSettings(max_unfinal_s=limit)
        utterances = segment(audio, settings)
        assert len(utterances) >= int(len(audio) / RATE / limit)
        assert all(len(u.pcm) <= limit * RATE + FRAME for u in utterances)
        for previous, following in pairwise(utterances):
            assert following.start_sample >= previous.start_sample + len(previous.pcm)


@pytest.mark.parametrize("limit", [2.0, 2.5, 3.0, 3.5, 4.0])
def test_no_piece_of_a_split_utterance_is_pure_silence(limit: float) -> None:
    """The VAD's hangover marks a few frames after speech as voiced; a piece split off in the
    silence after the last word holds nothing but those, and is dropped (min_speech_ms) rather
    than sent to Whisper, which tends to invent words for silence."""
    audio = np.concatenate([silence(0.5), sentence(2), silence(0.1), sentence(3), silence(1.5)])
    utterances = segment(audio, VadSettings(max_unfinal_s=limit))
    assert utterances
    for utterance in utterances:
        assert np.abs(utterance.pcm).max() > LOUD


@pytest.mark.parametrize("chunk", [1, 160, 479, 481, 4000, 48000])
def test_chunk_size_does_not_change_the_utterances(chunk: int) -> None:
    settings = VadSettings(max_unfinal_s=3.0)
    gap = silence(1.0)
    audio = np.concatenate([gap, sentence(0), gap, trimmed(1), silence(0.1), trimmed(2), gap])
    reference = segment(audio, settings, chunk=len(audio))
    assert len(reference) >= 3

    utterances = segment(audio, settings, chunk=chunk)

    assert [(u.start_sample, u.voiced_ms) for u in utterances] == [
        (u.start_sample, u.voiced_ms) for u in reference
    ]
    for got, expected in zip(utterances, reference, strict=True):
        assert np.array_equal(got.pcm, expected.pcm)


def test_flush_emits_the_utterance_still_in_progress() -> None:
    settings = VadSettings()
    # Speech followed by less silence than end_silence_ms, and a length that is not a whole
    # number of VAD frames, so some samples are still pending when the stream ends.
    audio = np.concatenate([silence(0.5), sentence(0), silence(0.2), np.full(7, 3, np.int16)])
    assert len(audio) % FRAME
    segmenter = UtteranceSegmenter(settings)

    assert segmenter.push(audio) == []
    flushed = segmenter.flush()

    assert len(flushed) == 1
    utterance = flushed[0]
    assert_is_slice_of(utterance, audio)
    onset, _ = speech_span(sentence(0), len(silence(0.5)))
    assert utterance.start <= onset
    # Every sample up to the end of the stream is in it, the pending partial frame included.
    assert utterance.start_sample + len(utterance.pcm) == len(audio)
    # The stream is over: nothing more to flush.
    assert segmenter.flush() == []


def test_flush_with_nothing_in_progress_emits_nothing() -> None:
    segmenter = UtteranceSegmenter(VadSettings())
    assert segmenter.flush() == []
    assert segmenter.push(silence(2.0)) == []
    assert segmenter.flush() == []


def test_utterances_with_too_little_speech_are_dropped() -> None:
    """min_speech_ms filters out utterances whose voiced frames add up to less than it."""
    audio = np.concatenate([silence(0.5), sentence(0), silence(1.0)])
    assert len(segment(audio, VadSettings())) == 1
    assert segment(audio, VadSettings(min_speech_ms=10_000)) == []


def test_segmenter_keeps_absolute_sample_positions_across_utterances() -> None:
    """start_sample counts from the start of the stream, not from the previous utterance."""
    gap = silence(3.0)  # a whole number of VAD frames
    # Padded to whole frames too, so both copies line up with the VAD's frame grid the same way.
    speech = np.concatenate([sentence(0), np.zeros(-len(sentence(0)) % FRAME, np.int16)])
    assert len(gap) % FRAME == 0 and len(speech) % FRAME == 0
    audio = np.concatenate([gap, speech, gap, speech, gap])
    first, second = segment(audio, VadSettings())
    # The same sentence at two places: the second starts exactly its offset later.
    shift = len(gap) + len(speech)
    assert second.start_sample - first.start_sample == shift
    assert np.array_equal(first.pcm, second.pcm)
