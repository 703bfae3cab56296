"""faster-whisper behind a small, NATS-free interface: PCM in, text and language out."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nova_common.audio import SAMPLE_RATE
from nova_common.fate import PermanentError
from nova_common.languages import UnsupportedLanguage, check_language
from nova_common.messages import Task
from nova_stt.filters import (
    FilterSettings,
    SegmentEvidence,
    break_repetitions,
    segment_verdict,
    speech_seconds,
)
from nova_stt.models import ModelNotAvailable, hub_hint, resolve_model

if TYPE_CHECKING:
    from faster_whisper.tokenizer import Tokenizer

FRAMES_PER_SECOND = 100  # Whisper's mel hop is 10 ms
# Partial windows are encoded in a window this much longer than their audio, rounded up to a
# multiple of WINDOW_STEP_S, not Whisper's 30 s: the encoder's cost follows the window. Over the
# five LibriVox clips (greedy, base int8): 30 s windows WER 1.4 % in 2.8 s; 10 s steps 1.4 % in
# 1.2 s; 5 s steps 2.8 % in 1.1 s, and a 1 s partial costs 0.08 s instead of ~0.5 s.
WINDOW_MARGIN_S = 1.0
WINDOW_STEP_S = 5
MAX_WINDOW_S = 30
# Greedy decoding of a partial may write at most this many tokens per second of audio (plus a
# few): a loop on a hard window ends early instead of holding the worker.
MAX_TOKENS_PER_S = 10
MAX_DECODE_TOKENS = 448  # Whisper's text context
SECONDS_PER_TIMESTAMP = 0.02  # Whisper's timestamp tokens count in 20 ms steps


@dataclass(frozen=True)
class TimedWord:
    word: str
    start: float  # seconds from the start of the audio given
    end: float
    probability: float


@dataclass(frozen=True)
class SpeechResult:
    text: str
    language: str
    language_probability: float
    compute_s: float
    # Why text was dropped or trimmed (nova_stt.filters), one reason per segment affected.
    suppressed: tuple[str, ...] = ()
    words: tuple[TimedWord, ...] = ()
    # Partials: (words of ``text`` before it, seconds from the audio's start) per segment end.
    segment_ends: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class SpokenText:
    tokens: list[int]
    # (text tokens before it, seconds) for each segment end Whisper marked inside the audio.
    ends: list[tuple[int, float]]


def _spoken_tokens(tokens: list[int], tokenizer: Tokenizer, duration: float) -> SpokenText:
    """The text tokens of segments that start inside the audio. In a window longer than its
    audio Whisper sometimes goes on writing into the silent padding — the last sentence again,
    or a loop; its own timestamps say where that text would be, and it is dropped."""
    kept: list[int] = []
    ends: list[tuple[int, float]] = []
    for token in tokens:
        if token >= tokenizer.timestamp_begin:
            at = (token - tokenizer.timestamp_begin) * SECONDS_PER_TIMESTAMP
            if at >= duration - 0.1:
                break
            # A segment closes with a timestamp after text; the next opens with the same one.
            if kept and (not ends or ends[-1][0] != len(kept)):
                ends.append((len(kept), at))
        elif token < tokenizer.eot:
            kept.append(token)
    return SpokenText(kept, ends)


def segment_ends(
    spoken: SpokenText, tokenizer: Tokenizer, text: str
) -> tuple[tuple[int, float], ...]:
    """Segment ends as (words of ``text`` before it, seconds): a cut may go there once those
    words are committed. An end inside a word (a token boundary that is no word boundary) is
    left out."""
    words_in_text = len(text.split())
    out: list[tuple[int, float]] = []
    for n_tokens, at in spoken.ends:
        head = tokenizer.decode(spoken.tokens[:n_tokens])
        rest = tokenizer.decode(spoken.tokens[n_tokens:])
        if rest and not rest[0].isspace():
            continue
        words = len(head.split())
        if 0 < words <= words_in_text:
            out.append((words, at))
    return tuple(out)


def window_seconds(duration: float) -> int:
    """The encoder window for a partial of ``duration`` seconds."""
    wanted = math.ceil((duration + WINDOW_MARGIN_S) / WINDOW_STEP_S) * WINDOW_STEP_S
    return min(max(wanted, WINDOW_STEP_S), MAX_WINDOW_S)


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    if len(pcm) % 2:
        raise PermanentError(f"PCM16 payload has an odd byte count ({len(pcm)})")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def choose_language(
    probabilities: list[tuple[str, float]], allowed: tuple[str, ...]
) -> tuple[str, float]:
    """The most probable of the ``allowed`` languages, with its share of their probability:
    a session that knows it hears English or German is never told it heard Thai."""
    scores = {code: p for code, p in probabilities if code in allowed}
    if not scores:
        return allowed[0], 0.0
    best = max(scores, key=lambda code: scores[code])
    total = sum(scores.values())
    return best, scores[best] / total if total > 0 else 0.0


class SpeechToText:
    """Loads one Whisper model and transcribes utterances; call from a worker thread."""

    def __init__(
        self,
        model: str,
        *,
        cache_dir: Path,
        device: str = "cpu",
        compute_type: str = "default",
        cpu_threads: int = 0,
        beam_size: int = 5,
        filters: FilterSettings | None = None,
    ) -> None:
        from faster_whisper import WhisperModel

        self.reference = model
        self.device = device
        self.beam_size = beam_size
        self.filters = filters or FilterSettings()
        location = resolve_model(model, cache_dir)
        if compute_type == "default":
            compute_type = "int8" if device == "cpu" else "float16"
        try:
            self._model = WhisperModel(
                location, device=device, compute_type=compute_type, cpu_threads=cpu_threads
            )
        except Exception as exc:
            if Path(location).is_dir():
                raise ModelNotAvailable(f"cannot load model from {location}: {exc}") from exc
            raise ModelNotAvailable(hub_hint(model)) from exc
        self.multilingual = bool(self._model.model.is_multilingual)

    def _checked(self, pcm: bytes, language: str | None) -> tuple[np.ndarray, str | None]:
        audio = pcm16_to_float(pcm)
        if audio.size == 0:
            raise PermanentError("empty audio segment")
        # An unknown code fails the same way on every retry: a permanent error, checked before
        # any model time is spent ("auto" and "" mean detect, upper case is accepted).
        checked = check_language(language or "")
        if not self.multilingual and checked not in (None, "en"):
            raise UnsupportedLanguage(
                f"model {self.reference!r} is English-only; asked for {checked!r}"
            )
        return audio, checked

    def _not_speech(self, audio: np.ndarray, language: str | None, started: float) -> SpeechResult:
        return SpeechResult(
            text="",
            language=language or "und",
            language_probability=0.0,
            compute_s=time.perf_counter() - started,
            suppressed=("no_speech_vad",),
        )

    def _gate_fails(self, audio: np.ndarray) -> bool:
        """Noise or music that fooled the gateway's VAD: no model time, no invented words.

        (Trimming the audio to Silero's speech spans was tried and left out: it fixed one word
        of the LibriVox session and broke language detection and Whisper's translation on three
        espeak utterances.)"""
        return self.filters.speech_gate and speech_seconds(audio) < self.filters.min_speech_s

    def transcribe(
        self,
        pcm: bytes,
        *,
        language: str | None,
        task: Task,
        allowed: tuple[str, ...] = (),
        word_timestamps: bool = False,
        prompt: str = "",
    ) -> SpeechResult:
        """``allowed``: with no ``language``, detect only among these codes."""
        audio, language = self._checked(pcm, language)
        started = time.perf_counter()
        if self._gate_fails(audio):
            return self._not_speech(audio, language, started)
        chosen_probability: float | None = None
        if language is None and allowed and self.multilingual:
            for code in allowed:
                check_language(code)  # a bad code fails once, before model time
            _, _, probabilities = self._model.detect_language(audio)
            language, chosen_probability = choose_language(probabilities, allowed)
        try:
            segments, info = self._model.transcribe(
                audio,
                language=language if self.multilingual else "en",
                task=task,
                beam_size=self.beam_size,
                # Each utterance stands alone; conditioning on earlier text invites repetition
                # loops.
                condition_on_previous_text=False,
                vad_filter=False,  # the gateway already cut the utterance on speech boundaries
                word_timestamps=word_timestamps,
                initial_prompt=prompt or None,
            )
        except ValueError as exc:
            # faster-whisper's own check (its tokenizer), should its list ever differ from ours.
            if "language" in str(exc):
                raise UnsupportedLanguage(str(exc)) from exc
            raise
        # The segments are a lazy generator: decoding happens while we iterate.
        kept: list[str] = []
        suppressed: list[str] = []
        words: list[TimedWord] = []
        for seg in segments:
            evidence = SegmentEvidence(
                text=seg.text.strip(),
                no_speech_prob=seg.no_speech_prob,
                avg_logprob=seg.avg_logprob,
                compression_ratio=seg.compression_ratio,
                temperature=seg.temperature or 0.0,
            )
            # A translate task writes English whatever was spoken: English sign-offs apply.
            written = "en" if task == "translate" else info.language
            reason = segment_verdict(evidence, written, self.filters)
            if reason is not None:
                suppressed.append(reason)
                continue
            text = break_repetitions(evidence.text, self.filters.max_repeats)
            if text != evidence.text:
                suppressed.append("repetition")
            elif seg.words:
                # Word times only where the text is Whisper's own: after a cut loop they would
                # name words that are no longer there.
                words += [
                    TimedWord(
                        w.word.strip(),
                        float(w.start),
                        float(w.end),
                        float(w.probability),
                    )
                    for w in seg.words
                ]
            kept.append(text)
        return SpeechResult(
            text=" ".join(kept).strip(),
            language=info.language,
            language_probability=(
                float(info.language_probability)
                if chosen_probability is None
                else chosen_probability
            ),
            compute_s=time.perf_counter() - started,
            suppressed=tuple(suppressed),
            words=tuple(words),
        )

    def partial(
        self,
        pcm: bytes,
        *,
        language: str | None,
        task: Task,
        allowed: tuple[str, ...] = (),
        prompt: str = "",
    ) -> SpeechResult:
        """A quick look at an utterance still in progress: one greedy pass in a window sized
        to the audio (not Whisper's 30 s), for live partial results. Finals use ``transcribe``.
        """
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_compression_ratio

        if not self.multilingual:
            language = None  # a hint from the session; this model only knows English
        audio, language = self._checked(pcm, language)
        started = time.perf_counter()
        if self._gate_fails(audio):
            return self._not_speech(audio, language, started)
        duration = audio.size / SAMPLE_RATE
        frames = window_seconds(duration) * FRAMES_PER_SECOND
        features = self._model.feature_extractor(audio)[:, :frames]
        features = np.pad(features, ((0, 0), (0, frames - features.shape[1])))
        encoded = self._model.encode(features)
        probability = 1.0
        if not self.multilingual:
            language = "en"
        elif language is None:
            detected = self._model.model.detect_language(encoded)[0]
            probabilities = [(token[2:-2], p) for token, p in detected]
            if allowed:
                language, probability = choose_language(probabilities, allowed)
            else:
                language, probability = probabilities[0]
        tokenizer = Tokenizer(
            self._model.hf_tokenizer, self.multilingual, task=task, language=language
        )
        previous = tokenizer.encode(" " + prompt.strip()) if prompt.strip() else []
        prompt_tokens = self._model.get_prompt(tokenizer, previous, without_timestamps=False)
        result = self._model.model.generate(
            encoded,
            [prompt_tokens],
            beam_size=1,
            # The prompt counts towards max_length: the budget is for the tokens after it.
            max_length=min(
                len(prompt_tokens) + int(duration * MAX_TOKENS_PER_S) + 16, MAX_DECODE_TOKENS
            ),
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        spoken = _spoken_tokens(result.sequences_ids[0], tokenizer, duration)
        text = tokenizer.decode(spoken.tokens).strip()
        evidence = SegmentEvidence(
            text=text,
            no_speech_prob=result.no_speech_prob,
            avg_logprob=result.scores[0],
            compression_ratio=get_compression_ratio(text),
            temperature=0.0,
        )
        written = "en" if task == "translate" else language
        reason = segment_verdict(evidence, written, self.filters)
        ends: tuple[tuple[int, float], ...] = ()
        if reason is None:
            looped = break_repetitions(text, self.filters.max_repeats)
            # Ends counted in a loop's words would point past what is left of it.
            ends = segment_ends(spoken, tokenizer, text) if looped == text else ()
            text = looped
        return SpeechResult(
            text="" if reason else text,
            language=language,
            language_probability=float(probability),
            compute_s=time.perf_counter() - started,
            suppressed=(reason,) if reason else (),
            segment_ends=ends,
        )
