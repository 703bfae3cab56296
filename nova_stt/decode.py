"""The decode loop for finals: faster-whisper's ``generate_segments`` with windows sized to the
audio instead of 30 s, and the first window's encoding shared with language detection.

faster-whisper pads every window to 30 s and, with no language given, encodes the audio once
to detect it and again to decode it. Here the caller encodes the first window once (sized by
``nova_stt.windows``) and passes it in; the loop reuses faster-whisper's own pieces for the rest
(``generate_with_fallback``: beam search, then sampling at rising temperatures while the text
is too repetitive or too improbable; ``_split_segments_by_timestamps``; ``add_word_timestamps``),
so its behaviour stays Whisper's where the window length does not matter.

Text Whisper writes past the audio's end (into the window's padding: the last sentence again,
or a loop) is dropped by its own timestamps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nova_stt.filters import FilterSettings, SegmentEvidence
from nova_stt.windows import FRAMES_PER_SECOND, MAX_WINDOW_S

if TYPE_CHECKING:
    import ctranslate2
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import TranscriptionOptions

# faster-whisper's defaults for transcribe(): the temperature schedule and punctuation that
# word timestamps attach to the word before or after.
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
# A window may write at most this many tokens per second of audio (plus a few), timestamps
# included: far above speech (English ~4, Polish ~8 text tokens a second), and a loop ends there
# instead of at Whisper's 448 tokens, at each of six temperatures.
MAX_TOKENS_PER_S = 25
EXTRA_TOKENS = 32
# Text that starts this close to the audio's end, or later, is in the padding.
END_MARGIN_S = 0.1


@dataclass(frozen=True)
class TimedWord:
    word: str
    start: float  # seconds from the start of the audio given
    end: float
    probability: float


@dataclass(frozen=True)
class DecodedSegment:
    text: str
    start: float
    end: float
    evidence: SegmentEvidence
    words: tuple[TimedWord, ...] = ()


@dataclass(frozen=True)
class DecodeSettings:
    beam_size: int
    filters: FilterSettings
    word_timestamps: bool = False
    prompt: str = ""
    temperatures: tuple[float, ...] = TEMPERATURES


@dataclass(frozen=True)
class Decoded:
    segments: tuple[DecodedSegment, ...]
    # Windows Whisper judged silent (no-speech probability high and text improbable): skipped
    # as faster-whisper does.
    silent_windows: int = 0
    windows: int = 0
    # Whisper's average token log-probability of each window that was not silent.
    window_logprobs: tuple[float, ...] = ()
    # Whether any window was shorter than Whisper's 30 s.
    sized: bool = False
    # Whether any window's beam failed the thresholds, and sampling at a higher temperature
    # settled it (or gave up at the last).
    fell_back: bool = False

    @property
    def least_logprob(self) -> float:
        return min(self.window_logprobs, default=0.0)

    @property
    def mean_logprob(self) -> float:
        if not self.window_logprobs:
            return float("-inf")
        return sum(self.window_logprobs) / len(self.window_logprobs)


def encode_window(
    model: WhisperModel, features: np.ndarray, seek: int, size: int, window_frames: int
) -> ctranslate2.StorageView:
    """The encoder output for ``size`` frames from ``seek``, zero-padded (as faster-whisper's
    ``pad_or_trim`` pads) to ``window_frames``."""
    chunk = features[:, seek : seek + size]
    chunk = np.pad(chunk, ((0, 0), (0, window_frames - chunk.shape[1])))
    return model.encode(chunk)


def first_size(features: np.ndarray) -> int:
    """Frames of audio in the first window (the loop's own reckoning, for the caller that
    encodes it beforehand)."""
    return min(MAX_WINDOW_S * FRAMES_PER_SECOND, features.shape[-1] - 1)


def transcription_options(
    settings: DecodeSettings, tokenizer: Tokenizer, max_new_tokens: int
) -> TranscriptionOptions:
    """faster-whisper's options as its ``transcribe`` builds them by default, with Nova's
    thresholds, beam and prompt handling."""
    from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

    f = settings.filters
    return TranscriptionOptions(
        beam_size=settings.beam_size,
        best_of=5,
        patience=1,
        length_penalty=1,
        repetition_penalty=1,
        no_repeat_ngram_size=0,
        log_prob_threshold=f.log_prob_threshold,
        no_speech_threshold=f.no_speech_threshold,
        compression_ratio_threshold=f.compression_ratio_threshold,
        # Each utterance stands alone; conditioning on earlier text invites repetition loops.
        condition_on_previous_text=False,
        prompt_reset_on_temperature=0.5,
        temperatures=list(settings.temperatures),
        initial_prompt=None,  # the loop builds the prompt itself
        prefix=None,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        without_timestamps=False,
        max_initial_timestamp=1.0,
        word_timestamps=settings.word_timestamps,
        prepend_punctuations=PREPEND_PUNCTUATIONS,
        append_punctuations=APPEND_PUNCTUATIONS,
        multilingual=False,  # the language is decided once, per utterance
        max_new_tokens=max_new_tokens,
        clip_timestamps="0",
        hallucination_silence_threshold=None,
        hotwords=None,
    )


def max_new_tokens(model: WhisperModel, prompt: list[int], seconds: float) -> int:
    return min(int(seconds * MAX_TOKENS_PER_S) + EXTRA_TOKENS, model.max_length - len(prompt))


def is_silent(no_speech_prob: float, avg_logprob: float, filters: FilterSettings) -> bool:
    """faster-whisper's no-speech check: likely silence, and nothing confidently written."""
    return (
        no_speech_prob > filters.no_speech_threshold and avg_logprob <= filters.log_prob_threshold
    )


def inside_audio(segments: list[dict[str, Any]], duration: float) -> list[dict[str, Any]]:
    """The segments that start inside the audio, their ends clipped to it."""
    kept = []
    for segment in segments:
        if segment["start"] >= duration - END_MARGIN_S:
            continue
        segment["end"] = min(segment["end"], duration)
        kept.append(segment)
    return kept


def timed_words(segment: dict[str, Any], duration: float) -> tuple[TimedWord, ...]:
    out: list[TimedWord] = []
    for w in segment.get("words") or ():
        start = min(max(float(w["start"]), 0.0), duration)
        end = min(max(float(w["end"]), start), duration)
        out.append(TimedWord(w["word"].strip(), start, end, float(w["probability"])))
    return tuple(out)


def decode(
    model: WhisperModel,
    features: np.ndarray,
    tokenizer: Tokenizer,
    settings: DecodeSettings,
    *,
    window_for: Callable[[float], int],
    first: ctranslate2.StorageView | None = None,
) -> Decoded:
    """Decode ``features`` (the whole utterance's log-mel, as faster-whisper's feature extractor
    returns it) window by window. ``window_for(seconds)``: the window, seconds, for that much
    audio. ``first``: the first window's encoder output, when the caller already has it."""
    content_frames = features.shape[-1] - 1  # the extractor's padding adds one frame
    duration = content_frames / FRAMES_PER_SECOND
    prompt_text = settings.prompt.strip()
    previous = tokenizer.encode(" " + prompt_text) if prompt_text else []
    segments: list[DecodedSegment] = []
    silent = windows = 0
    logprobs: list[float] = []
    sized = fell_back = False
    seek = 0
    last_speech = 0.0
    while seek < content_frames:
        size = first_size(features[:, seek:])
        window_frames = window_for(size / FRAMES_PER_SECOND) * FRAMES_PER_SECOND
        if seek == 0 and first is not None:
            encoded = first
        else:
            encoded = encode_window(model, features, seek, size, window_frames)
        windows += 1
        sized = sized or window_frames < MAX_WINDOW_S * FRAMES_PER_SECOND
        time_offset = seek / FRAMES_PER_SECOND
        # The initial prompt conditions the first window only, as in faster-whisper without
        # condition_on_previous_text.
        prompt = model.get_prompt(tokenizer, previous if seek == 0 else [])
        # The budget follows the audio in the window, not its padding: text written past the
        # audio is dropped anyway, and a loop at six temperatures in a 30 s window of 2 s of
        # speech would otherwise run to Whisper's 448 tokens each time.
        options = transcription_options(
            settings, tokenizer, max_new_tokens(model, prompt, size / FRAMES_PER_SECOND)
        )
        result, avg_logprob, temperature, compression_ratio = model.generate_with_fallback(
            encoded, prompt, tokenizer, options
        )
        if is_silent(result.no_speech_prob, avg_logprob, settings.filters):
            silent += 1
            seek += size
            continue
        logprobs.append(avg_logprob)
        fell_back = fell_back or temperature > 0
        previous_seek = seek
        current, seek, single_ending = model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=result.sequences_ids[0],
            time_offset=time_offset,
            segment_size=size,
            segment_duration=size / FRAMES_PER_SECOND,
            seek=seek,
        )
        current = inside_audio(current, duration)
        if settings.word_timestamps and current:
            model.add_word_timestamps(
                [current],
                tokenizer,
                encoded,
                size,
                PREPEND_PUNCTUATIONS,
                APPEND_PUNCTUATIONS,
                last_speech_timestamp=last_speech,
            )
            ends = [w["end"] for s in current for w in s["words"]]
            if ends:
                if not single_ending and ends[-1] > time_offset:
                    seek = round(ends[-1] * FRAMES_PER_SECOND)
                last_speech = ends[-1]
        if seek <= previous_seek:  # never stand still (a timestamp at the window's start)
            seek = previous_seek + size
        evidence = SegmentEvidence(
            text="",
            no_speech_prob=result.no_speech_prob,
            avg_logprob=avg_logprob,
            compression_ratio=compression_ratio,
            temperature=temperature,
        )
        for segment in current:
            text = tokenizer.decode(segment["tokens"]).strip()
            if segment["start"] == segment["end"] or not text:
                continue
            segments.append(
                DecodedSegment(
                    text=text,
                    start=float(segment["start"]),
                    end=float(segment["end"]),
                    evidence=dataclasses.replace(evidence, text=text),
                    words=timed_words(segment, duration),
                )
            )
    return Decoded(
        tuple(segments),
        silent_windows=silent,
        windows=windows,
        window_logprobs=tuple(logprobs),
        sized=sized,
        fell_back=fell_back,
    )
