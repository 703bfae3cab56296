"""What Nova itself costs, apart from the model: the message path's throughput, the overhead a
final carries at 16 real-time streams, and the idle sessions one gateway holds.

The services run as separate processes, as deployed: an embedded nats-server, `nova gateway`,
and an STT worker — either the real ``SttWorker`` around a stand-in model that answers at once
(``bench/null_worker.py``), or `nova stt` with the real model. This process is the clients.

Parts (``--parts``, all by default):

- ``idle``: ``--idle-sessions`` WebSocket sessions opened on /ws, ``start`` sent and answered,
  no audio; the gateway's RSS before and after, per session = delta / n (checkpoints on the
  way show it is linear).
- ``null``: the null-model path gateway → JetStream → worker → results → client. ``--sessions``
  clients each send ``--utterances`` short espeak-ng utterances (VAD-cut: each is followed by
  silence longer than the gateway's end silence) as fast as the gateway takes them; finals per
  second at the clients, from the first chunk sent to the last final, and each process's CPU
  time per final. The gateway is profiled with py-spy meanwhile.
- ``profile16``: 16 real-time streams with partials on, null model: the gateway's hot path per
  audio frame, profiled with py-spy (``bench/results/gateway_profile.txt``).
- ``null16``: the same 16 streams with partials off: the message path's overhead per final
  (as below) with no model competing for the cores.
- ``realtime16``: 16 real-time streams, the real model (`nova stt`), partials off; per final:
  overhead = arrival − when the gateway could first know the utterance had ended (the chunk
  holding its end was sent) − the worker's own model time (``compute_s``). The wait behind
  *other* utterances' model time on a busy worker is reported apart (``model_queue_wait_ms``):
  it is capacity, not message-path overhead. (``overhead_from_utterance_end_ms`` keeps the
  chunk's capture granularity in, as bench/latency.py's "pipeline overhead" does.)

    .venv/bin/python bench/overhead.py [--parts idle,null,profile16,null16,realtime16]
        [--idle-sessions 5000] [--sessions 32] [--utterances 40] [--model base]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import nats  # noqa: E402
import numpy as np  # noqa: E402
from nats.aio.msg import Msg  # noqa: E402

from bench.overhead_parts import (  # noqa: E402
    RATE,
    FinalTiming,
    StreamClock,
    cpu_seconds,
    merge_profiles,
    overhead_report,
    pcm_chunks,
    profile_summary,
    profile_text,
    raise_open_files,
    rss_bytes,
    utterances_session,
)
from nova_client.streaming import open_gateway, start_session, stream_audio  # noqa: E402
from nova_common.messages import (  # noqa: E402
    FinalEvent,
    SessionStarted,
    StartMessage,
    Transcript,
    result_decoder,
    segment_decoder,
)
from nova_common.nats_server import EmbeddedNatsServer  # noqa: E402
from nova_common.subjects import Subjects  # noqa: E402
from tests.speech import speak  # noqa: E402

RESULTS = REPO / "bench" / "results"
PARTS = ("idle", "null", "profile16", "null16", "realtime16")
BIN = Path(sys.executable).parent
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back when you have a moment.",
    "We will meet at the station at nine tomorrow.",
    "The weather is going to be cold and windy.",
    "She bought three apples and a loaf of bread.",
    "Turn left at the second traffic light.",
)


# --------------------------------------------------------------------------- services


class Services:
    """nats-server and service processes for one part; all stopped on exit."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.nats = EmbeddedNatsServer(tmp / "nats").start()
        self.env = {**os.environ, "NOVA_NATS_URL": self.nats.url, "NOVA_DATA_DIR": str(tmp),
                    "NOVA_LOG_LEVEL": "warning", **env}  # fmt: skip
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], ready: str, timeout: float = 120.0) -> str:
        """Start ``argv`` and wait until its output matches ``ready``; returns the match."""
        log_path = self.tmp / f"{name}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(argv, cwd=REPO, env=self.env, stdout=log, stderr=log)
        self.procs[name] = proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (m := re.search(ready, log_path.read_text(errors="replace"))) is not None:
                return m.group(1) if m.groups() else m.group(0)
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready within {timeout}s: {log_path.read_text()[-2000:]}")

    def gateway(self) -> str:
        return self.start("gateway", [str(BIN / "nova"), "gateway", "--port", "0"],
                          r"listening on (ws://\S+)")  # fmt: skip

    def null_worker(self, n: int = 1) -> None:
        for i in range(n):
            self.start(f"null-worker-{i}", [sys.executable, "-m", "bench.null_worker"], "ready")

    def stt_worker(self, model: str) -> None:
        self.start("stt", [str(BIN / "nova"), "stt", "--model", model], "ready", timeout=300)

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.nats.stop()


@contextmanager
def services(env: dict[str, str] | None = None) -> Iterator[Services]:
    with tempfile.TemporaryDirectory(prefix="nova-overhead-") as tmp:
        svc = Services(Path(tmp), env or {})
        try:
            yield svc
        finally:
            svc.stop()


@contextmanager
def profiled(pid: int, out: Path, rate: int = 200) -> Iterator[None]:
    """py-spy sampling ``pid`` while the block runs (Ctrl-C makes it write what it has)."""
    spy = subprocess.Popen(
        [str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking",
         "--format", "raw", "--duration", "600", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)


def start_message(partials: bool) -> StartMessage:
    return StartMessage(language="en", sample_rate=RATE, channels=1, partials=partials)


# --------------------------------------------------------------------------- idle sessions


async def idle_part(args: argparse.Namespace) -> dict[str, Any]:
    limit = raise_open_files(args.idle_sessions * 2 + 1000)
    n = min(args.idle_sessions, limit // 2 - 500)
    with services() as svc:
        url = svc.gateway()
        pid = svc.pid("gateway")
        conns: list[Any] = []

        async def open_one() -> None:
            ws = await open_gateway(url, timeout=60)
            await start_session(ws, start_message(False), lambda _: None)
            conns.append(ws)

        for _ in range(20):  # lazy imports and first-use caches are no session's memory
            await open_one()
        await asyncio.gather(*(ws.close() for ws in conns))
        conns.clear()
        await asyncio.sleep(1.0)
        base = rss_bytes(pid)
        checkpoints = []
        started = time.monotonic()
        while len(conns) < n:
            await asyncio.gather(*(open_one() for _ in range(min(200, n - len(conns)))))
            if len(conns) % 1000 == 0 or len(conns) == n:
                rss = rss_bytes(pid)
                checkpoints.append(
                    {
                        "sessions": len(conns),
                        "rss_mb": round(rss / 2**20, 1),
                        "kb_per_session": round((rss - base) / len(conns) / 1024, 1),
                    }
                )
                print(f"idle: {checkpoints[-1]}", flush=True)  # fmt: skip
        opened_s = time.monotonic() - started
        await asyncio.sleep(2.0)
        after = rss_bytes(pid)
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    return {
        "open_files_soft_limit": limit,
        "sessions": n,
        "open_s": round(opened_s, 1),
        "gateway_rss_before_mb": round(base / 2**20, 1),
        "gateway_rss_after_mb": round(after / 2**20, 1),
        "kb_per_session": round((after - base) / n / 1024, 1),
        "checkpoints": checkpoints,
    }


# --------------------------------------------------------------------------- null-model path


def null_audio(utterances: int) -> np.ndarray:
    words = [speak(w) for w in ("yes", "no", "okay", "thanks")]
    # Well past the end silence (bench default 300 ms) so every word is an utterance of its own.
    return utterances_session(words, 0.45, repeat=max(1, utterances // len(words)))


async def null_part(
    args: argparse.Namespace, profile_out: Path, worker_profile_out: Path
) -> dict[str, Any]:
    env = {"NOVA_VAD_END_SILENCE_MS": str(args.end_silence_ms),
           "NOVA_STT_BATCH_SIZE": str(args.batch_size)}  # fmt: skip
    audio = null_audio(args.utterances)
    chunks = pcm_chunks(audio, args.chunk_ms)
    with services(env) as svc:
        url = svc.gateway()
        svc.null_worker(args.null_workers)
        await asyncio.sleep(2.5)  # heartbeats reach the gateway
        expected = len((await stream_audio(url, start_message(False), chunks)).finals)
        pids = {name: proc.pid for name, proc in svc.procs.items()}
        arrivals: list[float] = []
        with (
            profiled(pids["gateway"], profile_out),
            profiled(pids["null-worker-0"], worker_profile_out),
        ):
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
            nats0, client0 = cpu_seconds(svc.nats._proc.pid), time.process_time()  # type: ignore[union-attr]
            started = time.monotonic()
            results = await asyncio.gather(
                *(
                    stream_audio(url, start_message(False), chunks,
                                 on_final=lambda _: arrivals.append(time.monotonic()))
                    for _ in range(args.sessions)
                )
            )  # fmt: skip
            elapsed = max(arrivals) - started
            cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
            cpu["nats-server"] = cpu_seconds(svc.nats._proc.pid) - nats0  # type: ignore[union-attr]
            cpu["clients"] = time.process_time() - client0
    finals = len(arrivals)
    return {
        "config": {"sessions": args.sessions, "utterance_audio_s": round(len(audio) / RATE, 2),
                   "finals_per_session": expected, "chunk_ms": args.chunk_ms,
                   "end_silence_ms": args.end_silence_ms, "stt_batch_size": args.batch_size,
                   "null_workers": args.null_workers},
        "finals": finals,
        "finals_expected": expected * args.sessions,
        "errors": sum(len(r.errors) for r in results),
        "elapsed_s": round(elapsed, 3),
        "segments_per_s": round(finals / elapsed, 1),
        "audio_s_per_s": round(len(audio) / RATE * args.sessions / elapsed, 1),
        "cpu_ms_per_final": {k: round(v * 1000 / finals, 3) for k, v in cpu.items()},
        "cpu_share_of_wall": {k: round(v / elapsed, 2) for k, v in cpu.items()},
    }  # fmt: skip


# --------------------------------------------------------------------------- real-time streams


def stream_sessions(streams: int, per_stream: int, period_s: float) -> list[np.ndarray]:
    """Stream i: ``per_stream`` sentences, one every ``period_s``, starting i/streams of a
    period in, so that utterance ends are spread out rather than all at once."""
    spoken = [speak(s) for s in SENTENCES]
    out = []
    for i in range(streams):
        parts = [spoken[(i + k) % len(spoken)] for k in range(per_stream)]
        pieces = [np.zeros(int(period_s * i / streams * RATE), dtype=np.int16)]
        for part in parts:
            pieces += [part, np.zeros(max(int(period_s * RATE) - len(part), RATE), np.int16)]
        out.append(np.concatenate(pieces))
    return out


class Tap:
    """A side subscription on NATS: when each final segment and transcript went by."""

    def __init__(self) -> None:
        self.segment_at: dict[tuple[str, int], float] = {}
        self.result: dict[tuple[str, int], tuple[float, float, str]] = {}

    async def on_segment(self, msg: Msg) -> None:
        seg = segment_decoder.decode(msg.data)
        if seg.kind == "final":
            self.segment_at.setdefault((seg.session_id, seg.seq), time.monotonic())

    async def on_result(self, msg: Msg) -> None:
        res = result_decoder.decode(msg.data)
        if isinstance(res, Transcript) and res.kind == "final":
            key = (res.session_id, res.seq)
            self.result.setdefault(key, (time.monotonic(), res.compute_s, res.worker_id))


async def realtime_streams(
    url: str, nats_url: str, audios: list[np.ndarray], chunk_ms: int, partials: bool
) -> tuple[list[FinalTiming], list[StreamClock], int]:
    tap = Tap()
    subjects = Subjects("nova")
    nc = await nats.connect(nats_url, name="bench-tap")
    await nc.subscribe(subjects.audio_all, cb=tap.on_segment)
    await nc.subscribe(subjects.results_all, cb=tap.on_result)
    await nc.flush()
    arrivals: list[tuple[int, FinalEvent, float]] = []
    clocks = [StreamClock() for _ in audios]
    sids = [""] * len(audios)

    def on_final(i: int) -> Callable[[FinalEvent], None]:
        return lambda f: arrivals.append((i, f, time.monotonic()))

    def on_started(i: int) -> Callable[[SessionStarted], None]:
        return lambda s: sids.__setitem__(i, s.session_id)

    def on_sent(i: int) -> Callable[[float], None]:
        return lambda seconds: clocks[i].on_sent(seconds, time.monotonic())

    results = await asyncio.gather(
        *(
            stream_audio(url, start_message(partials), pcm_chunks(a, chunk_ms), realtime=True,
                         on_final=on_final(i), on_started=on_started(i), on_sent=on_sent(i))
            for i, a in enumerate(audios)
        )
    )  # fmt: skip
    await nc.drain()
    timings, owners = [], []
    for i, final, arrived in arrivals:
        if not final.text:
            continue
        key = (sids[i], final.seq)
        result_at, compute_s, worker = tap.result.get(key, (None, 0.0, ""))
        timings.append(FinalTiming(arrived, final.end, compute_s, tap.segment_at.get(key),
                                   result_at, worker))  # fmt: skip
        owners.append(clocks[i])
    return timings, owners, sum(len(r.errors) for r in results)


async def null16_part(
    args: argparse.Namespace, profile_out: Path | None, *, partials: bool
) -> dict[str, Any]:
    """16 real-time streams through the null model: the message path's overhead per final with
    no model competing for the cores (compute_s is 0), profiled when ``profile_out`` is given.
    With partials on, a final that the session cut where committed text ended a sentence is
    published once the partial that committed it is back, after its end's chunk was sent."""
    audios = stream_sessions(16, args.per_stream, args.period_s)
    with services() as svc:
        url = svc.gateway()
        svc.null_worker()
        await asyncio.sleep(2.5)
        pid = svc.pid("gateway")
        with profiled(pid, profile_out) if profile_out else contextlib.nullcontext():
            cpu0, started = cpu_seconds(pid), time.monotonic()
            timings, clocks, errors = await realtime_streams(
                url, svc.nats.url, audios, args.chunk_ms, partials=partials
            )
            cpu, wall = cpu_seconds(pid) - cpu0, time.monotonic() - started
    return {"streams": 16, "partials": partials, "errors": errors,
            "gateway_cpu_share": round(cpu / wall, 3), "wall_s": round(wall, 1),
            **overhead_report(timings, clocks)}  # fmt: skip


async def realtime16_part(args: argparse.Namespace) -> dict[str, Any]:
    audios = stream_sessions(16, args.per_stream, args.period_s)
    with services() as svc:
        url = svc.gateway()
        svc.stt_worker(args.model)
        await asyncio.sleep(2.5)
        # One session first: the model's first call is slower (allocation, caches).
        await stream_audio(url, start_message(False), pcm_chunks(audios[0][: 3 * RATE], 100))
        timings, clocks, errors = await realtime_streams(
            url, svc.nats.url, audios, args.chunk_ms, partials=False
        )
    return {
        "config": {"streams": 16, "model": args.model, "language": "en", "partials": False,
                   "utterances_per_stream": args.per_stream, "period_s": args.period_s,
                   "chunk_ms": args.chunk_ms},
        "errors": errors,
        **overhead_report(timings, clocks),
    }  # fmt: skip


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=RESULTS / "overhead.json")
    p.add_argument("--profile-out", type=Path, default=RESULTS / "gateway_profile.txt")
    p.add_argument("--parts", default=",".join(PARTS))
    p.add_argument("--idle-sessions", type=int, default=5000)
    p.add_argument("--sessions", type=int, default=32, help="null path: concurrent clients")
    p.add_argument("--utterances", type=int, default=40, help="null path: per client")
    p.add_argument("--null-workers", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=4, help="null path: stt.batch_size")
    p.add_argument("--end-silence-ms", type=int, default=300, help="null path: vad setting")
    p.add_argument("--chunk-ms", type=int, default=100)
    p.add_argument("--model", default="base")
    p.add_argument("--per-stream", type=int, default=3, help="16 streams: utterances each")
    p.add_argument("--period-s", type=float, default=16.0, help="16 streams: one per period")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    parts = set(args.parts.split(","))
    report: dict[str, Any] = {"benchmark": "overhead", "cpus": os.cpu_count(),
                              "load_avg_at_start": list(os.getloadavg())}  # fmt: skip
    profiles: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if "idle" in parts:
            report["idle_sessions"] = await idle_part(args)
        if "null" in parts:
            raw, raw_worker = Path(tmp) / "null.txt", Path(tmp) / "null-worker.txt"
            report["null_path"] = await null_part(args, raw, raw_worker)
            for what, path in (("gateway", raw), ("null STT worker", raw_worker)):
                summary = profile_summary(path.read_text().splitlines())
                profiles.append(profile_text(f"{what}, null-model path at full speed "
                                             f"({args.sessions} sessions)", summary))  # fmt: skip
        if "profile16" in parts:
            raw = Path(tmp) / "rt16.txt"
            report["profile16"] = await null16_part(args, raw, partials=True)
            summary = profile_summary(raw.read_text().splitlines())
            note = f"(gateway CPU {report['profile16']['gateway_cpu_share']:.0%} of one core)"
            profiles.append(profile_text("gateway, 16 real-time streams, partials on, null model",
                                         summary, note))  # fmt: skip
        if "null16" in parts:
            report["null16"] = await null16_part(args, None, partials=False)
        if "realtime16" in parts:
            report["realtime16"] = await realtime16_part(args)
    if profiles:
        args.profile_out.parent.mkdir(parents=True, exist_ok=True)
        header = (
            "# py-spy record --rate 200 --nonblocking --format raw on the process, summarised per\n"
            "# function: own = samples in it, total = samples with it on the stack (idle excluded).\n"
            "# Reproduce: .venv/bin/python bench/overhead.py --parts null,profile16\n\n"
        )
        old = args.profile_out.read_text() if args.profile_out.exists() else ""
        args.profile_out.write_text(header + merge_profiles(old, profiles))
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists() and set(args.parts.split(",")) != set(PARTS):
        # A partial run keeps the other parts' last figures.
        report = {**json.loads(args.out.read_text()), **report}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
