"""faster-whisper behind a small, NATS-free interface: PCM in, text and language out."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nova_common.audio import SAMPLE_RATE
from nova_common.fate import PermanentError
from nova_common.languages import UnsupportedLanguage, check_language
from nova_common.messages import LanguageWeight, Task
from nova_stt.decode import (
    Decoded,
    DecodeSettings,
    TimedWord,
    decode,
    encode_window,
    first_size,
)
from nova_stt.filters import (
    FilterSettings,
    SegmentEvidence,
    break_repetitions,
    segment_verdict,
    speech_seconds,
)
from nova_stt.language_decision import decide, reported, restricted
from nova_stt.models import ModelNotAvailable, hub_hint, resolve_model
from nova_stt.windows import (
    FINAL_WINDOWS_S,
    FRAMES_PER_SECOND,
    MAX_WINDOW_S,
    RECHECK_BELOW_LOGPROB,
    SIZED_WINS_BY_LOGPROB,
    final_window_seconds,
    window_seconds,
)

if TYPE_CHECKING:
    import ctranslate2
    from faster_whisper.tokenizer import Tokenizer

__all__ = ["SpeechResult", "SpeechToText", "TimedWord", "choose_language", "window_seconds"]

# Greedy decoding of a partial may write at most this many tokens per second of audio (plus a
# few): a loop on a hard window ends early instead of holding the worker.
MAX_TOKENS_PER_S = 10
MAX_DECODE_TOKENS = 448  # Whisper's text context
SECONDS_PER_TIMESTAMP = 0.02  # Whisper's timestamp tokens count in 20 ms steps


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
    # With the language detected: what this utterance alone sounded like (among the allowed
    # languages, before any session prior), most probable first — the session's evidence.
    language_scores: tuple[LanguageWeight, ...] = ()
    # Finals: decoded again in Whisper's 30 s window, the sized one's text being improbable.
    rechecked: bool = False


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


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    if len(pcm) % 2:
        raise PermanentError(f"PCM16 payload has an odd byte count ({len(pcm)})")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def choose_language(
    probabilities: list[tuple[str, float]], allowed: tuple[str, ...]
) -> tuple[str, float]:
    """The most probable of the ``allowed`` languages, with its share of their probability:
    a session that knows it hears English or German is never told it heard Thai."""
    decision = decide(probabilities, allowed=allowed, duration_s=0.0)
    return decision.language, decision.probability


# Below this top probability a detection on a sized window is checked on a 30 s one.
UNSURE_DETECTION = 0.7
MAX_WINDOW_FRAMES = 30 * FRAMES_PER_SECOND


def _top_probability(detected: Sequence[tuple[str, float]]) -> float:
    return detected[0][1] if detected else 0.0


def _unsure(detected: Sequence[tuple[str, float]]) -> bool:
    return _top_probability(detected) < UNSURE_DETECTION


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
        final_windows_s: tuple[int, ...] = FINAL_WINDOWS_S,
    ) -> None:
        """``final_windows_s``: the encoder window sizes finals may use (nova_stt.windows)."""
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
        # Seconds of audio -> encoder window (seconds) for finals; benchmarks swap it.
        self.final_window: Callable[[float], int] = functools.partial(
            final_window_seconds, sizes=tuple(sorted(final_windows_s))
        )
        # Below this a final's sized window is decoded again in 30 s; benchmarks swap it.
        self.recheck_below = RECHECK_BELOW_LOGPROB

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
        prior: Sequence[LanguageWeight] = (),
    ) -> SpeechResult:
        """A final: beam search with Whisper's temperature fallback, in windows sized to the
        audio (``nova_stt.decode``), one encoder pass when the language is detected too.

        ``allowed``: with no ``language``, detect only among these codes. ``prior``: with no
        ``language``, the session's belief (``nova_stt.language_decision``)."""
        from faster_whisper.tokenizer import Tokenizer

        audio, language = self._checked(pcm, language)
        started = time.perf_counter()
        if self._gate_fails(audio):
            return self._not_speech(audio, language, started)
        for code in allowed:
            check_language(code)  # a bad code fails once, before model time
        features = self._model.feature_extractor(audio)
        window_for = self.final_window
        size = first_size(features)
        window = window_for(size / FRAMES_PER_SECOND) * FRAMES_PER_SECOND
        encoded = encode_window(self._model, features, 0, size, window)
        probability = 1.0
        scores: tuple[LanguageWeight, ...] = ()
        full: ctranslate2.StorageView | None = None  # the 30 s window's, once needed
        if not self.multilingual:
            language = "en"
        elif language is None:
            # Detection on the encoding the decoder uses: no second encoder pass...
            detected = restricted(self._detect(encoded), allowed)
            if not prior and window < MAX_WINDOW_FRAMES and _unsure(detected):
                # ... unless it is unsure and the session knows nothing yet: then the 30 s
                # window Whisper was trained on decides too (espeak's "The children are playing
                # in the garden." is Thai 0.60 in a 10 s window, English 0.68 in 30 s).
                full = encode_window(self._model, features, 0, size, MAX_WINDOW_FRAMES)
                detected = max(
                    detected, restricted(self._detect(full), allowed), key=_top_probability
                )
            scores = reported(detected)
            decision = decide(
                detected, allowed=allowed, prior=prior, duration_s=audio.size / SAMPLE_RATE
            )
            language, probability = decision.language, decision.probability
        try:
            tokenizer = Tokenizer(
                self._model.hf_tokenizer, self.multilingual, task=task, language=language
            )
        except ValueError as exc:
            # faster-whisper's own check (its tokenizer), should its list ever differ from ours.
            raise UnsupportedLanguage(str(exc)) from exc
        settings = DecodeSettings(
            beam_size=self.beam_size,
            filters=self.filters,
            word_timestamps=word_timestamps,
            prompt=prompt,
        )
        decoded = decode(
            self._model, features, tokenizer, settings, window_for=window_for, first=encoded
        )
        rechecked = self._recheck(decoded, features, tokenizer, settings, full)
        if rechecked is not None:
            decoded = rechecked
        # A translate task writes English whatever was spoken: English sign-offs apply.
        written = "en" if task == "translate" else language
        kept, suppressed, words = self._filtered(decoded, written)
        return SpeechResult(
            text=" ".join(kept).strip(),
            language=language,
            language_probability=float(probability),
            compute_s=time.perf_counter() - started,
            suppressed=tuple(suppressed),
            words=tuple(words),
            language_scores=scores,
            rechecked=rechecked is not None,
        )

    def _recheck(
        self,
        decoded: Decoded,
        features: np.ndarray,
        tokenizer: Tokenizer,
        settings: DecodeSettings,
        full: ctranslate2.StorageView | None,
    ) -> Decoded | None:
        """The 30 s window's decoding, where it should replace a sized window's, else None.

        Whisper's beam text is improbable: there a shorter window than the 30 s it was trained
        on can change words (nova_stt.windows), and the 30 s window's beam is kept unless the
        sized one is clearly more probable, or it fails Whisper's own thresholds (a loop
        compresses too well). Audio that needed the temperature fallback is hard in any window
        (espeak's Italian came out as loops in both) and is left as it is; the second pass is
        one beam, not six temperatures, so a recheck costs at most one 30 s decode."""
        if not decoded.sized or decoded.fell_back or decoded.least_logprob >= self.recheck_below:
            return None
        whole = decode(
            self._model,
            features,
            tokenizer,
            dataclasses.replace(settings, temperatures=settings.temperatures[:1]),
            window_for=lambda _: MAX_WINDOW_S,
            first=full,
        )
        f = self.filters
        holds = all(
            s.evidence.compression_ratio <= f.compression_ratio_threshold
            and s.evidence.avg_logprob >= f.log_prob_threshold
            for s in whole.segments
        )
        if holds and decoded.mean_logprob <= whole.mean_logprob + SIZED_WINS_BY_LOGPROB:
            return whole
        return None

    def _detect(self, encoded: ctranslate2.StorageView) -> list[tuple[str, float]]:
        detected = self._model.model.detect_language(encoded)[0]
        return [(token[2:-2], float(p)) for token, p in detected]

    def _filtered(
        self, decoded: Decoded, written: str
    ) -> tuple[list[str], list[str], list[TimedWord]]:
        """The segments' text that passes the filters, the reasons for what did not, and the
        word times of the text kept as Whisper wrote it."""
        kept: list[str] = []
        suppressed = ["no_speech"] * decoded.silent_windows
        words: list[TimedWord] = []
        for seg in decoded.segments:
            reason = segment_verdict(seg.evidence, written, self.filters)
            if reason is not None:
                suppressed.append(reason)
                continue
            text = break_repetitions(seg.text, self.filters.max_repeats)
            if text != seg.text:
                suppressed.append("repetition")
            else:
                # Word times only where the text is Whisper's own: after a cut loop they would
                # name words that are no longer there.
                words += seg.words
            kept.append(text)
        return kept, suppressed, words

    def partial(
        self,
        pcm: bytes,
        *,
        language: str | None,
        task: Task,
        allowed: tuple[str, ...] = (),
        prompt: str = "",
        prior: Sequence[LanguageWeight] = (),
    ) -> SpeechResult:
        """A quick look at an utterance still in progress: one greedy pass in a window sized
        to the audio (not Whisper's 30 s), for live partial results. Finals use ``transcribe``.
        ``prior``: the session's language belief, as for ``transcribe``.
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
            decision = decide(
                self._detect(encoded), allowed=allowed, prior=prior, duration_s=duration
            )
            language, probability = decision.language, decision.probability
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
