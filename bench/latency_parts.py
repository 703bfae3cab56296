"""The reusable parts of bench/latency.py: the session audio, the streamed run with its NATS side
subscription (timing capture), the direct model timing, and the per-utterance report, its summary
statistics and the machine description. bench/latency.py documents what is measured and how.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import numpy as np
from nats.aio.msg import Msg

from nova_cli.stack import LocalStack
from nova_client.streaming import stream_audio
from nova_common.audio import SAMPLE_RATE as RATE
from nova_common.messages import (
    FinalEvent,
    StartMessage,
    Transcript,
    result_decoder,
    segment_decoder,
)
from nova_common.settings import Settings
from nova_common.subjects import Subjects
from nova_stt.transcriber import SpeechToText
from tests.speech import read_wav, resample, silence

# --------------------------------------------------------------------------- session audio


@dataclass(frozen=True)
class FileSpan:
    """Where one recording lies in the session audio (seconds)."""

    name: str
    start: float
    end: float
    reference: str


def load_16k(path: Path) -> np.ndarray:
    audio, rate, channels = read_wav(path)
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return resample(audio, rate, RATE)


def build_session(
    files: list[tuple[Path, str]], gap_s: float, tail_s: float
) -> tuple[np.ndarray, list[FileSpan]]:
    """The recordings back to back with ``gap_s`` of silence between them and ``tail_s`` after."""
    pieces: list[np.ndarray] = []
    spans: list[FileSpan] = []
    cursor = 0
    for i, (path, reference) in enumerate(files):
        if i:
            pieces.append(silence(gap_s, RATE))
            cursor += len(pieces[-1])
        audio = load_16k(path)
        spans.append(FileSpan(path.name, cursor / RATE, (cursor + len(audio)) / RATE, reference))
        pieces.append(audio)
        cursor += len(audio)
    pieces.append(silence(tail_s, RATE))
    return np.concatenate(pieces), spans


def chunks(audio: np.ndarray, chunk_ms: int) -> Iterator[bytes]:
    step = RATE * chunk_ms // 1000
    for i in range(0, len(audio), step):
        yield audio[i : i + step].astype("<i2").tobytes()


def slice_pcm(audio: np.ndarray, start: float, end: float) -> bytes:
    return audio[round(start * RATE) : round(end * RATE)].astype("<i2").tobytes()


# --------------------------------------------------------------------------- streamed run


@dataclass
class Timeline:
    """Monotonic timestamps, all in this process; ``t0`` is session time zero in wall-clock."""

    t0: float | None = None
    max_send_lag_s: float = 0.0  # how far the sender fell behind real time (pacing check)
    final_at: dict[int, float] = field(default_factory=dict)
    segment_at: dict[int, float] = field(default_factory=dict)
    result_at: dict[int, float] = field(default_factory=dict)
    worker_compute_s: dict[int, float] = field(default_factory=dict)

    def on_sent(self, seconds: float) -> None:
        now = time.monotonic()
        if self.t0 is None:
            # The first chunk goes out when its last sample would have been captured.
            self.t0 = now - seconds
        self.max_send_lag_s = max(self.max_send_lag_s, now - self.t0 - seconds)

    def on_final(self, final: FinalEvent) -> None:
        self.final_at[final.seq] = time.monotonic()

    async def on_segment(self, msg: Msg) -> None:
        segment = segment_decoder.decode(msg.data)
        if segment.kind == "final":
            self.segment_at.setdefault(segment.seq, time.monotonic())

    async def on_result(self, msg: Msg) -> None:
        result = result_decoder.decode(msg.data)
        if isinstance(result, Transcript) and result.kind == "final":
            self.result_at.setdefault(result.seq, time.monotonic())
            self.worker_compute_s[result.seq] = result.compute_s


async def stream_session(
    settings: Settings,
    model: SpeechToText,
    audio: np.ndarray,
    *,
    chunk_ms: int,
    language: str,
    partials: bool = True,
) -> tuple[list[FinalEvent], Timeline]:
    timeline = Timeline()
    subjects = Subjects(settings.nats.subject_prefix)
    async with LocalStack(settings, stt_workers=1, model=model) as stack:
        tap = await nats.connect(stack.nats_url, name="bench-tap")
        try:
            await tap.subscribe(subjects.audio_all, cb=timeline.on_segment)
            await tap.subscribe(subjects.results_all, cb=timeline.on_result)
            await tap.flush()
            result = await stream_audio(
                stack.ws_url,
                StartMessage(language=language, sample_rate=RATE, channels=1, partials=partials),
                chunks(audio, chunk_ms),
                realtime=True,
                on_final=timeline.on_final,
                on_sent=timeline.on_sent,
            )
        finally:
            await tap.drain()
    if result.errors:
        raise RuntimeError(f"the session reported errors: {result.errors}")
    return result.finals, timeline


# --------------------------------------------------------------------------- direct model timing


def warm_up(model: SpeechToText, audio: np.ndarray, language: str | None) -> None:
    model.transcribe(slice_pcm(audio, 0.0, 3.0), language=language, task="transcribe")


def model_compute(
    model: SpeechToText, pcm: bytes, language: str | None, repeat: int
) -> tuple[float, list[float], str]:
    """Median of ``repeat`` direct transcriptions, all timings, and the text of the first."""
    times: list[float] = []
    text = ""
    for i in range(repeat):
        started = time.perf_counter()
        out = model.transcribe(pcm, language=language, task="transcribe")
        times.append(time.perf_counter() - started)
        if i == 0:
            text = out.text
    return statistics.median(times), times, text


# --------------------------------------------------------------------------- report


def overlapping_files(start: float, end: float, spans: list[FileSpan]) -> list[str]:
    return [s.name for s in spans if s.start < end and s.end > start]


def per_utterance(
    finals: list[FinalEvent],
    timeline: Timeline,
    audio: np.ndarray,
    spans: list[FileSpan],
    model: SpeechToText,
    *,
    end_silence_s: float,
    language: str | None,
    repeat: int,
) -> list[dict[str, Any]]:
    assert timeline.t0 is not None
    t0 = timeline.t0
    rows: list[dict[str, Any]] = []
    for final in sorted(finals, key=lambda f: f.seq):
        arrived = timeline.final_at[final.seq] - t0  # session seconds
        latency = arrived - final.end
        pcm = slice_pcm(audio, final.start, final.end)
        compute, runs, direct_text = model_compute(model, pcm, language, repeat)
        # With language auto-detection faster-whisper encodes the 30 s window twice (once to
        # detect, once to decode): time the detected language given up front for comparison.
        fixed = model_compute(model, pcm, final.language, repeat)[0] if language is None else None
        seg_at = timeline.segment_at.get(final.seq)
        res_at = timeline.result_at.get(final.seq)
        worker_s = timeline.worker_compute_s.get(final.seq)
        rows.append(
            {
                "seq": final.seq,
                "start": final.start,
                "end": final.end,
                "duration_s": round(final.end - final.start, 3),
                "files": overlapping_files(final.start, final.end, spans),
                "latency_from_utterance_end_s": round(latency, 4),
                "latency_from_speech_end_s": round(latency + end_silence_s, 4),
                "model_compute_s": round(compute, 4),
                "model_compute_runs_s": [round(t, 4) for t in runs],
                "overhead_s": round(latency - compute, 4),
                "latency_over_compute": round(latency / compute, 3),
                "overhead_vs_worker_compute_s": _round(worker_s and latency - worker_s),
                "model_compute_language_given_s": _round(fixed),
                "breakdown": {
                    "cut_and_publish_s": _round(seg_at and seg_at - t0 - final.end),
                    "queue_compute_publish_s": _round(seg_at and res_at and res_at - seg_at),
                    "worker_compute_s": _round(worker_s),
                    "result_to_client_s": _round(res_at and timeline.final_at[final.seq] - res_at),
                },
                "text": final.text,
                "direct_text_matches": direct_text == final.text,
            }
        )
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "median": round(float(np.median(arr)), 4),
        "p90": round(float(np.percentile(arr, 90)), 4),
        "max": round(float(arr.max()), 4),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def col(key: str) -> list[float]:
        return [r[key] for r in rows]

    def present(values: list[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return round(statistics.median(kept), 4) if kept else None

    return {
        "utterances": len(rows),
        "latency_from_utterance_end_s": _stats(col("latency_from_utterance_end_s")),
        "latency_from_speech_end_s": _stats(col("latency_from_speech_end_s")),
        "model_compute_s_median": round(statistics.median(col("model_compute_s")), 4),
        "worker_compute_in_pipeline_s_median": present(
            [r["breakdown"]["worker_compute_s"] for r in rows]
        ),
        "model_compute_language_given_s_median": present(
            [r["model_compute_language_given_s"] for r in rows]
        ),
        "overhead_s_median": round(statistics.median(col("overhead_s")), 4),
        "overhead_vs_worker_compute_s_median": present(
            [r["overhead_vs_worker_compute_s"] for r in rows]
        ),
        "latency_over_compute_median": round(statistics.median(col("latency_over_compute")), 3),
    }


def machine_info(settings: Settings, model: SpeechToText) -> dict[str, Any]:
    import ctranslate2

    # SpeechToText does not expose the resolved compute type; read it off the CTranslate2 model.
    inner = getattr(getattr(model, "_model", None), "model", None)
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_avg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "ctranslate2": ctranslate2.__version__,
        "model": settings.stt.model,
        "device": model.device,
        "compute_type": getattr(inner, "compute_type", settings.stt.compute_type),
        "cpu_threads_setting": settings.stt.cpu_threads,
        "beam_size": model.beam_size,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
