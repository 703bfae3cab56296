"""End-of-speech -> final latency through the whole pipeline, against the model's own compute time.

What it measures (DESIGN §6: figures are ratios taken side by side in one run):

1. A local stack (``LocalStack``: gateway + one STT worker + an embedded nats-server with its own
   JetStream store in a temporary directory) receives one session: the LibriVox recordings
   concatenated with silence between them, resampled to 16 kHz and streamed through the WebSocket
   gateway at real-time pace (``stream_audio(realtime=True)``), as a microphone would deliver it.
   Each chunk is sent when its last sample would have been captured, so session time ``t`` is
   wall-clock ``t0 + t``. For every final the client records when it arrived.
2. Latencies per utterance, in seconds:
   - ``latency_from_utterance_end_s``: arrival - (t0 + final.end). ``final.end`` is where the
     gateway's VAD closed the utterance, i.e. *after* its trailing end-silence
     (``vad.end_silence_ms``). This is the part the pipeline controls (cutting, queueing, model,
     delivery).
   - ``latency_from_speech_end_s``: arrival - (t0 + final.end - end_silence). What the speaker
     feels: it adds the end-silence the VAD waits for before deciding the utterance is over. (The
     segmenter ends an utterance exactly end_silence after its last voiced 30 ms frame, so this is
     webrtcvad's notion of "end of speech".)
3. The model's own compute time for the same utterances: after the streamed session (stack stopped,
   so nothing else competes), the 16 kHz session audio is cut at each final's start/end and passed
   straight to ``SpeechToText.transcribe`` on the same model instance (same threads, same beam,
   same language setting), ``--repeat`` times; the median is ``model_compute_s`` and
   ``overhead_s = latency_from_utterance_end_s - model_compute_s``. With ``--language auto`` the
   utterance is also timed with its detected language given, since auto-detection costs
   faster-whisper a second encoder pass.
4. Where the time goes, from a side subscription on the stack's NATS server: when the gateway
   published each segment, when the worker's transcript was published, and the worker's own
   ``compute_s`` (measured inside the pipeline, under the streaming load).

The model is warmed up with one transcription before streaming so the first utterance does not pay
for a cold start. Results are noisy on a shared machine: compare the ratios, not absolute seconds.

Run (about a minute of real-time audio plus model time; needs pocketsphinx-testdata installed and
the offline base model package, see the README):

    .venv/bin/python bench/latency.py [--out bench/results/latency.json] [--files A.wav ...]
                                      [--repeat 3] [--model base] [--chunk-ms 100]
                                      [--partials on|off]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# For bench.latency_parts and tests.speech (the LibriVox loader) when run as a script.
sys.path.insert(0, str(REPO))

from bench.latency_parts import (  # noqa: E402
    RATE,
    build_session,
    machine_info,
    per_utterance,
    stream_session,
    summarise,
    warm_up,
)
from nova_common.logging import configure_logging  # noqa: E402
from nova_common.settings import load_settings  # noqa: E402
from nova_stt.service import load_model  # noqa: E402
from tests.speech import librivox, wer  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "latency.json"


# --------------------------------------------------------------------------- report fields


DEFINITIONS = {
    "clock": "session seconds: t0 is the moment the first sample would have been captured by a "
    "microphone; every chunk is sent when its last sample would have been captured",
    "start/end": "the utterance as the gateway's VAD cut it (session seconds); end includes the "
    "trailing end-silence the VAD waits for",
    "latency_from_utterance_end_s": "final arrival at the client - (t0 + end): what the pipeline "
    "controls (includes up to one chunk of capture granularity)",
    "latency_from_speech_end_s": "final arrival - (t0 + end - end_silence): what the speaker "
    "feels, from the end of the last voiced VAD frame",
    "model_compute_s": "median wall time of SpeechToText.transcribe on the same utterance audio, "
    "same model instance, run directly after the session with the stack stopped",
    "overhead_s": "latency_from_utterance_end_s - model_compute_s (the direct timing is a "
    "separate run, so machine noise can make this negative)",
    "overhead_vs_worker_compute_s": "latency_from_utterance_end_s - the worker's own compute_s "
    "for that utterance in the pipeline: the pipeline's overhead without run-to-run model noise",
    "model_compute_language_given_s": "only with language auto: direct timing with the detected "
    "language passed in (faster-whisper then skips its separate language-detection encoder pass)",
    "latency_over_compute": "latency_from_utterance_end_s / model_compute_s",
    "breakdown.cut_and_publish_s": "segment seen on NATS - (t0 + end): chunk granularity, VAD, "
    "JetStream publish",
    "breakdown.queue_compute_publish_s": "transcript seen on NATS - segment seen on NATS: fetch "
    "wait, model, result publish",
    "breakdown.worker_compute_s": "compute_s the worker itself reported, inside the pipeline",
    "breakdown.result_to_client_s": "final at the client - transcript seen on NATS",
}


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument(
        "--files", type=Path, nargs="+", help="WAV files to stream (default: the 5 LibriVox ones)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="direct model runs per utterance (median is used)"
    )
    parser.add_argument("--model", default="base", help="STT model reference (default: base)")
    parser.add_argument("--chunk-ms", type=int, default=100, help="audio chunk size sent")
    parser.add_argument("--gap-s", type=float, default=1.5, help="silence between files")
    parser.add_argument("--tail-s", type=float, default=1.0, help="silence after the last file")
    parser.add_argument("--language", default="auto", help="session language ('auto' detects)")
    parser.add_argument(
        "--partials",
        choices=["on", "off"],
        default="on",
        help="partial results, as clients get them by default (on); off: finals only",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def select_files(paths: list[Path] | None) -> list[tuple[Path, str]]:
    if not paths:
        return librivox()
    refs = {p.name: r for p, r in _librivox_or_empty()}
    return [(p, refs.get(p.name, "")) for p in paths]


def _librivox_or_empty() -> list[tuple[Path, str]]:
    try:
        return librivox()
    except (OSError, RuntimeError):
        return []


async def run(args: argparse.Namespace) -> dict[str, Any]:
    files = select_files(args.files)
    audio, spans = build_session(files, args.gap_s, args.tail_s)
    language = None if args.language in ("", "auto") else args.language
    with tempfile.TemporaryDirectory(prefix="nova-bench-") as tmp:
        settings = load_settings(
            environ={},
            overrides={
                "data_dir": tmp,
                "log_level": "warning",
                "gateway": {"port": 0},
                "stt": {"model": args.model},
            },
        )
        configure_logging(settings.log_level, settings.log_format)
        model = await asyncio.to_thread(load_model, settings)
        await asyncio.to_thread(warm_up, model, audio, language)
        finals, timeline = await stream_session(
            settings,
            model,
            audio,
            chunk_ms=args.chunk_ms,
            language=args.language,
            partials=args.partials == "on",
        )
    end_silence_s = settings.vad.end_silence_ms / 1000
    rows = await asyncio.to_thread(
        per_utterance,
        finals,
        timeline,
        audio,
        spans,
        model,
        end_silence_s=end_silence_s,
        language=language,
        repeat=args.repeat,
    )
    references = [s.reference for s in spans if s.reference]
    return {
        "benchmark": "latency",
        "definitions": DEFINITIONS,
        "config": {
            "files": [asdict(s) for s in spans],
            "session_audio_s": round(len(audio) / RATE, 3),
            "gap_s": args.gap_s,
            "tail_s": args.tail_s,
            "chunk_ms": args.chunk_ms,
            "language": args.language,
            "partials": args.partials,
            "repeat": args.repeat,
            "vad": {
                "end_silence_ms": settings.vad.end_silence_ms,
                "aggressiveness": settings.vad.aggressiveness,
                "preroll_ms": settings.vad.preroll_ms,
            },
            "stt_batch_size": settings.stt.batch_size,
        },
        "machine": machine_info(settings, model),
        "pacing_max_send_lag_s": round(timeline.max_send_lag_s, 4),
        "session_wer": (
            round(wer([" ".join(references)], [" ".join(r["text"] for r in rows)]), 4)
            if len(references) == len(spans)
            else None
        ),
        "summary": summarise(rows),
        "utterances": rows,
    }


def print_summary(report: dict[str, Any], out: Path) -> None:
    s = report["summary"]
    m = report["machine"]
    print(
        f"{s['utterances']} utterances from {len(report['config']['files'])} files, "
        f"{report['config']['session_audio_s']:.1f} s streamed in real time "
        f"({m['model']} {m['compute_type']} on {m['cpus_usable']} CPUs, {m['processor']})"
    )
    print(f"{'seq':>3} {'start':>6} {'end':>6} {'lat_utt':>7} {'lat_sp':>7} "
          f"{'model':>6} {'over':>6}  text")  # fmt: skip
    for r in report["utterances"]:
        print(
            f"{r['seq']:>3} {r['start']:>6.2f} {r['end']:>6.2f} "
            f"{r['latency_from_utterance_end_s']:>7.3f} {r['latency_from_speech_end_s']:>7.3f} "
            f"{r['model_compute_s']:>6.3f} {r['overhead_s']:>6.3f}  {r['text'][:50]}"
        )
    lu, ls = s["latency_from_utterance_end_s"], s["latency_from_speech_end_s"]
    print(
        f"latency from utterance end: median {lu['median']:.3f} s, p90 {lu['p90']:.3f}, "
        f"max {lu['max']:.3f}\n"
        f"latency from end of speech: median {ls['median']:.3f} s, p90 {ls['p90']:.3f}, "
        f"max {ls['max']:.3f} (includes {report['config']['vad']['end_silence_ms']} ms "
        "end-silence)\n"
        f"model compute median {s['model_compute_s_median']:.3f} s (in pipeline "
        f"{s['worker_compute_in_pipeline_s_median']}, language given "
        f"{s['model_compute_language_given_s_median']}), overhead median "
        f"{s['overhead_s_median']:.3f} s (vs in-pipeline compute "
        f"{s['overhead_vs_worker_compute_s_median']}), latency/compute median "
        f"{s['latency_over_compute_median']:.2f}x; session WER {report['session_wer']}; "
        f"max send lag {report['pacing_max_send_lag_s']:.3f} s"
    )
    print(f"written to {out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_summary(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
