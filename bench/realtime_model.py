"""faster-whisper on its own, in the bench process, on the same audio the streams carry:

- the **reference**: the whole recording offline with word times (each word's end is what the
  streams' lags count from), and its WER, next to the streams';
- **sequential**: the same call without word times, timed: model seconds per second of audio;
- **batched**: faster-whisper's ``BatchedInferencePipeline`` on N copies of the recording back to
  back with ``batch_size`` N: N streams' worth of audio through one batched model, the nearest
  offline counterpart of N live streams (DESIGN §6: measure against these in the same run).

The same model files, compute type, threads and beam size as the stack's STT worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.realtime_words import RefWord, reference_words
from nova_common.audio import SAMPLE_RATE
from nova_common.settings import Settings
from nova_stt.models import resolve_model
from tests.speech import wer


@dataclass(frozen=True)
class Reference:
    words: list[RefWord]
    text: str
    compute_s: float


def load_whisper(settings: Settings) -> Any:
    from faster_whisper import WhisperModel

    stt = settings.stt
    compute_type = stt.compute_type
    if compute_type == "default":
        compute_type = "int8" if stt.device == "cpu" else "float16"
    location = resolve_model(stt.model, settings.models_dir)
    return WhisperModel(
        location, device=stt.device, compute_type=compute_type, cpu_threads=stt.cpu_threads
    )


def _float(audio: np.ndarray) -> np.ndarray:
    return audio.astype(np.float32) / 32768.0


def _run(model: Any, audio: np.ndarray, **options: Any) -> tuple[list[Any], float]:
    started = time.perf_counter()
    segments, _ = model.transcribe(_float(audio), **options)
    kept = list(segments)  # a lazy generator: decoding happens here
    return kept, time.perf_counter() - started


def reference(model: Any, audio: np.ndarray, *, language: str | None, beam_size: int) -> Reference:
    segments, compute = _run(
        model, audio, language=language, beam_size=beam_size, word_timestamps=True
    )
    words = [(w.word, w.end) for seg in segments for w in seg.words or ()]
    text = " ".join(seg.text.strip() for seg in segments)
    return Reference(reference_words(words), text, compute)


def sequential(
    model: Any, audio: np.ndarray, *, language: str | None, beam_size: int, truth: str
) -> dict[str, Any]:
    segments, compute = _run(model, audio, language=language, beam_size=beam_size)
    text = " ".join(seg.text.strip() for seg in segments)
    seconds = len(audio) / SAMPLE_RATE
    return {
        "compute_s": round(compute, 3),
        "s_per_audio_s": round(compute / seconds, 4),
        "wer": round(wer([truth], [text]), 4),
    }


def batched(
    model: Any,
    audio: np.ndarray,
    copies: int,
    *,
    language: str | None,
    beam_size: int,
    truth: str,
) -> dict[str, Any]:
    from faster_whisper import BatchedInferencePipeline

    pipeline = BatchedInferencePipeline(model)
    tiled = np.concatenate([audio] * copies)
    started = time.perf_counter()
    segments, _ = pipeline.transcribe(
        _float(tiled), language=language, beam_size=beam_size, batch_size=copies
    )
    text = " ".join(seg.text.strip() for seg in segments)
    compute = time.perf_counter() - started
    return {
        "copies": copies,
        "batch_size": copies,
        "compute_s": round(compute, 3),
        "s_per_audio_s": round(compute / (len(tiled) / SAMPLE_RATE), 4),
        "wer": round(wer([" ".join([truth] * copies)], [text]), 4),
    }
