"""faster-whisper behind a small, NATS-free interface: PCM in, text and language out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class SpeechResult:
    text: str
    language: str
    language_probability: float
    compute_s: float
    # Why text was dropped or trimmed (nova_stt.filters), one reason per segment affected.
    suppressed: tuple[str, ...] = ()


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

    def transcribe(
        self, pcm: bytes, *, language: str | None, task: Task, allowed: tuple[str, ...] = ()
    ) -> SpeechResult:
        """``allowed``: with no ``language``, detect only among these codes."""
        audio = pcm16_to_float(pcm)
        if audio.size == 0:
            raise PermanentError("empty audio segment")
        # An unknown code fails the same way on every retry: a permanent error, checked before
        # any model time is spent ("auto" and "" mean detect, upper case is accepted).
        language = check_language(language or "")
        if not self.multilingual and language not in (None, "en"):
            raise UnsupportedLanguage(
                f"model {self.reference!r} is English-only; asked for {language!r}"
            )
        started = time.perf_counter()
        if self.filters.speech_gate and speech_seconds(audio) < self.filters.min_speech_s:
            # Noise or music that fooled the gateway's VAD: no model time, no invented words.
            return SpeechResult(
                text="",
                language=language or "und",
                language_probability=0.0,
                compute_s=time.perf_counter() - started,
                suppressed=("no_speech_vad",),
            )
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
            )
        except ValueError as exc:
            # faster-whisper's own check (its tokenizer), should its list ever differ from ours.
            if "language" in str(exc):
                raise UnsupportedLanguage(str(exc)) from exc
            raise
        # The segments are a lazy generator: decoding happens while we iterate.
        kept: list[str] = []
        suppressed: list[str] = []
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
        )
