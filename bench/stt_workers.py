"""One STT worker with all the threads, or more workers with fewer threads each, on the cores
this machine has: finals latency and throughput for 4 concurrent streams, side by side in one run.

Each configuration ``WxT`` (W workers, each with its own model loaded with ``cpu_threads`` T;
T 0 is CTranslate2's default) runs in a ``LocalStack``, as `nova up` runs its workers: gateway
and workers in one process, an embedded nats-server. Per configuration and round:

- real time: ``--streams`` sessions of the five LibriVox recordings (silence between them),
  each starting ``--stagger-s`` after the one before, paced like a microphone, partials off;
  latency = final arrival − the utterance's end (p50 / p95 over every final);
- full speed: the same sessions sent as fast as the gateway takes them; throughput = seconds
  of audio transcribed per second of wall time, until the last final.

Configurations alternate (A B, then B A) so that drift on a shared machine hits both.

    .venv/bin/python bench/stt_workers.py [--configs 1x2,2x1] [--rounds 2] [--streams 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import msgspec  # noqa: E402
import numpy as np  # noqa: E402

from bench.latency_parts import build_session, chunks  # noqa: E402
from bench.overhead_parts import StreamClock, stats  # noqa: E402
from nova_cli.stack import LocalStack  # noqa: E402
from nova_client.streaming import stream_audio  # noqa: E402
from nova_common.audio import SAMPLE_RATE as RATE  # noqa: E402
from nova_common.logging import configure_logging  # noqa: E402
from nova_common.messages import StartMessage  # noqa: E402
from nova_common.settings import Settings, load_settings  # noqa: E402
from nova_stt.service import load_model  # noqa: E402
from nova_stt.transcriber import SpeechToText  # noqa: E402
from tests.speech import librivox  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "stt_workers.json"


def parse_config(text: str) -> tuple[int, int]:
    """``"2x1"`` → (2 workers, 1 thread each)."""
    workers, _, threads = text.partition("x")
    w, t = int(workers), int(threads)
    if w < 1 or t < 0:
        raise ValueError(f"bad configuration {text!r}: WORKERSxTHREADS, e.g. 2x1")
    return w, t


def round_orders(configs: list[str], rounds: int) -> list[list[str]]:
    """A B, B A, A B …: each configuration runs early and late alike."""
    return [configs if r % 2 == 0 else configs[::-1] for r in range(rounds)]


async def run_streams(
    stack: LocalStack, audios: list[np.ndarray], *, realtime: bool, language: str
) -> dict[str, Any]:
    clocks = [StreamClock() for _ in audios]
    latencies: list[float] = []
    arrivals: list[float] = []
    started = time.monotonic()

    async def one(i: int, audio: np.ndarray) -> int:
        clock = clocks[i]

        def on_final(final: Any) -> None:
            now = time.monotonic()
            arrivals.append(now)
            if realtime and clock.t0 is not None:
                latencies.append(now - clock.t0 - final.end)

        result = await stream_audio(
            stack.ws_url,
            StartMessage(language=language, sample_rate=RATE, channels=1, partials=False),
            chunks(audio, 100),
            realtime=realtime,
            on_final=on_final,
            on_sent=lambda s: clock.on_sent(s, time.monotonic()),
        )
        return len(result.errors)

    errors = sum(await asyncio.gather(*(one(i, a) for i, a in enumerate(audios))))
    wall = max(arrivals) - started if arrivals else float("nan")
    audio_s = sum(len(a) for a in audios) / RATE
    out: dict[str, Any] = {"finals": len(arrivals), "errors": errors, "wall_s": round(wall, 2)}
    if realtime:
        out["latency_from_utterance_end_s"] = stats(latencies, 3)
    else:
        out["audio_s_per_wall_s"] = round(audio_s / wall, 3)
    return out


async def run_config(
    settings: Settings, models: list[SpeechToText], audios: list[np.ndarray], language: str
) -> dict[str, Any]:
    stack = LocalStack(settings, stt_workers=0)
    await stack.start()
    try:
        for model in models:
            await stack.add_worker(model)
        await stack.wait_ready()
        return {
            "realtime": await run_streams(stack, audios, realtime=True, language=language),
            "full_speed": await run_streams(stack, audios, realtime=False, language=language),
        }
    finally:
        await stack.stop()


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per configuration: every round's p50 / p95 latency and throughput, and their medians."""
    out: dict[str, Any] = {}
    for config in rounds[0]:
        rows = [r[config] for r in rounds]
        p50 = [r["realtime"]["latency_from_utterance_end_s"]["p50"] for r in rows]
        p90 = [r["realtime"]["latency_from_utterance_end_s"]["p90"] for r in rows]
        thr = [r["full_speed"]["audio_s_per_wall_s"] for r in rows]
        out[config] = {
            "latency_p50_s": p50,
            "latency_p90_s": p90,
            "audio_s_per_wall_s": thr,
            "median_latency_p50_s": round(float(np.median(p50)), 3),
            "median_audio_s_per_wall_s": round(float(np.median(thr)), 3),
        }
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configs = args.configs.split(",")
    session, _ = build_session(librivox(), 1.5, 1.0)
    audios = [
        np.concatenate([np.zeros(int(i * args.stagger_s * RATE), np.int16), session])
        for i in range(args.streams)
    ]
    rounds: list[dict[str, Any]] = [{} for _ in range(args.rounds)]
    with tempfile.TemporaryDirectory(prefix="nova-workers-") as tmp:
        base = load_settings(
            environ={},
            overrides={"data_dir": tmp, "log_level": "warning", "gateway": {"port": 0},
                       "stt": {"model": args.model}},
        )  # fmt: skip
        configure_logging(base.log_level, base.log_format)
        models: dict[str, list[SpeechToText]] = {}
        for config in configs:
            workers, threads = parse_config(config)
            tuned = msgspec.structs.replace(
                base, stt=msgspec.structs.replace(base.stt, cpu_threads=threads)
            )
            models[config] = [await asyncio.to_thread(load_model, tuned) for _ in range(workers)]
            for model in models[config]:  # the first call of a model is slower
                await asyncio.to_thread(
                    model.transcribe, session[: 3 * RATE].tobytes(), language=None,
                    task="transcribe",
                )  # fmt: skip
        for r, order in enumerate(round_orders(configs, args.rounds)):
            for config in order:
                print(f"round {r + 1}: {config}", flush=True)
                rounds[r][config] = await run_config(base, models[config], audios, args.language)
                print(json.dumps(rounds[r][config]), flush=True)
    return {
        "benchmark": "stt_workers",
        "cpus": os.cpu_count(),
        "config": {"streams": args.streams, "stagger_s": args.stagger_s, "model": args.model,
                   "language": args.language, "partials": False,
                   "session_audio_s": round(len(session) / RATE, 2), "rounds": args.rounds},
        "summary": summarise(rounds),
        "rounds": rounds,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--configs", default="1x2,2x1", help="WORKERSxTHREADS, comma-separated")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--stagger-s", type=float, default=1.3)
    p.add_argument("--model", default="base")
    p.add_argument("--language", default="auto")
    args = p.parse_args(argv)
    report = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
