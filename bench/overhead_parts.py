"""The pure parts of bench/overhead.py: statistics, the per-final overhead, py-spy's collapsed
stacks summarised per function, the speech-like session audio, and process readings (RSS, CPU
time, the open-file limit). bench/overhead.py says what is measured and how.
"""

from __future__ import annotations

import bisect
import os
import re
import resource
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nova_common.audio import SAMPLE_RATE as RATE

# --------------------------------------------------------------------------- statistics


def stats(values: Sequence[float], digits: int = 4) -> dict[str, float | int | None]:
    """p50 / p90 / p99 / max of ``values`` (None for an empty list)."""
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(arr, 50)), digits),
        "p90": round(float(np.percentile(arr, 90)), digits),
        "p99": round(float(np.percentile(arr, 99)), digits),
        "max": round(float(arr.max()), digits),
    }


# --------------------------------------------------------------------------- per-final timing


@dataclass
class StreamClock:
    """One real-time stream's send times: ``sent[i]`` (monotonic) is when audio up to
    ``seconds[i]`` had gone out. Session time ``t`` is wall-clock ``t0 + t``."""

    t0: float | None = None
    seconds: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)

    def on_sent(self, seconds: float, now: float) -> None:
        if self.t0 is None:
            self.t0 = now - seconds
        self.seconds.append(seconds)
        self.sent.append(now)

    def sent_at(self, session_s: float) -> float:
        """When the chunk holding session second ``session_s`` went out: the gateway cannot
        see an utterance end before that chunk arrives (capture granularity, not overhead)."""
        i = bisect.bisect_left(self.seconds, session_s - 1e-6)
        return self.sent[min(i, len(self.sent) - 1)]


@dataclass(frozen=True)
class FinalTiming:
    """What was seen of one final (monotonic seconds in the bench process)."""

    arrived: float  # at the client
    end: float  # the utterance's end, session seconds
    compute_s: float  # the worker's own model time for it
    segment_at: float | None = None  # the segment seen on NATS
    result_at: float | None = None  # its transcript seen on NATS
    worker_id: str = ""


def model_waits(timings: Sequence[FinalTiming]) -> list[float]:
    """For each final, how long its segment waited for its worker to finish *other* utterances'
    model work: the worker's previous transcript came out after this segment was queued. That
    wait is model time too (a capacity matter), not message-path overhead."""
    order = sorted(
        (i for i, t in enumerate(timings) if t.result_at is not None),
        key=lambda i: timings[i].result_at or 0.0,
    )
    last_done: dict[str, float] = {}
    waits = [0.0] * len(timings)
    for i in order:
        t = timings[i]
        assert t.result_at is not None
        previous = last_done.get(t.worker_id)
        if previous is not None and t.segment_at is not None:
            waits[i] = max(0.0, previous - t.segment_at)
        last_done[t.worker_id] = t.result_at
    return waits


def overhead_report(timings: Sequence[FinalTiming], clocks: Sequence[StreamClock]) -> dict:
    """``timings[i]`` belongs to the stream ``clocks[i]``. Figures in milliseconds."""
    waits = model_waits(timings)
    from_end, from_chunk, beyond_model, compute = [], [], [], []
    cut, worker, delivery = [], [], []  # where beyond_model goes, for finals seen on NATS
    for t, clock, wait in zip(timings, clocks, waits, strict=True):
        assert clock.t0 is not None
        sent = clock.sent_at(t.end)
        from_end.append((t.arrived - clock.t0 - t.end - t.compute_s) * 1000)
        chunk = (t.arrived - sent - t.compute_s) * 1000
        from_chunk.append(chunk)
        beyond_model.append(chunk - wait * 1000)
        compute.append(t.compute_s * 1000)
        if t.segment_at is not None and t.result_at is not None:
            cut.append((t.segment_at - sent) * 1000)
            worker.append((t.result_at - t.segment_at - t.compute_s - wait) * 1000)
            delivery.append((t.arrived - t.result_at) * 1000)
    return {
        "finals": len(timings),
        "overhead_from_utterance_end_ms": stats(from_end, 2),
        "overhead_from_chunk_sent_ms": stats(from_chunk, 2),
        "overhead_without_model_queue_ms": stats(beyond_model, 2),
        "model_queue_wait_ms": stats([w * 1000 for w in waits], 2),
        "worker_compute_ms": stats(compute, 1),
        "breakdown_ms": {
            "chunk_sent_to_segment_on_nats": stats(cut, 2),
            "segment_on_nats_to_transcript_on_nats_less_model": stats(worker, 2),
            "transcript_on_nats_to_client": stats(delivery, 2),
        },
    }


# --------------------------------------------------------------------------- py-spy profiles


def _function(frame: str) -> str:
    """``name (path:line)`` → ``name (file)``: one row per function, whatever line ran."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    # Keep enough of the path to tell nova_gateway/session.py from asyncio/events.py.
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{name} ({short})" if where else name


def profile_summary(collapsed: Iterable[str], top: int = 30) -> dict:
    """py-spy's raw (collapsed) output, ``frame;frame;… count`` lines with the outermost frame
    first, as own (self) and total (inclusive) shares of all samples per function."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for function in set(frames):  # once per sample, however deep the recursion
            total[function] += count

    def rows(counter: Counter[str]) -> list[dict]:
        return [
            {"function": f, "own_pct": round(100 * own[f] / samples, 1),
             "total_pct": round(100 * total[f] / samples, 1)}
            for f, _ in counter.most_common(top)
        ]  # fmt: skip

    if not samples:
        return {"samples": 0, "by_own": [], "by_total": []}
    return {"samples": samples, "by_own": rows(own), "by_total": rows(total)}


def profile_text(title: str, summary: dict, note: str = "") -> str:
    lines = [f"== {title}", f"samples: {summary['samples']}  {note}".rstrip(), ""]
    for key, heading in (("by_own", "by own time"), ("by_total", "by total time")):
        lines.append(f"-- {heading}: own % / total %  function")
        lines += [
            f"{r['own_pct']:6.1f} {r['total_pct']:6.1f}  {r['function']}" for r in summary[key]
        ]
        lines.append("")
    return "\n".join(lines) + "\n"


def merge_profiles(old: str, sections: list[str]) -> str:
    """``old`` profile text with its sections (``== title`` lines onwards) replaced by those of
    the same title in ``sections``, new titles appended: a run of some parts keeps the rest."""

    def title(section: str) -> str:
        return section.split("\n", 1)[0]

    kept = [part for part in re.split(r"(?m)^(?=== )", old) if part.startswith("== ")]
    fresh = {title(s): s for s in sections}
    out = [fresh.pop(title(s), s) for s in kept]
    out += [s for s in sections if title(s) in fresh]
    return "".join(s if s.endswith("\n") else s + "\n" for s in out)


# --------------------------------------------------------------------------- audio


def utterances_session(
    parts: Sequence[np.ndarray], pause_s: float, *, lead_s: float = 0.3, repeat: int = 1
) -> np.ndarray:
    """``parts`` spoken ``repeat`` times over with ``pause_s`` of silence after each (long
    enough for the VAD's end silence), after ``lead_s`` of silence."""
    pause = np.zeros(int(pause_s * RATE), dtype=np.int16)
    pieces = [np.zeros(int(lead_s * RATE), dtype=np.int16)]
    for _ in range(repeat):
        for part in parts:
            pieces += [part.astype(np.int16), pause]
    return np.concatenate(pieces)


def pcm_chunks(audio: np.ndarray, chunk_ms: int) -> list[bytes]:
    step = RATE * chunk_ms // 1000
    return [audio[i : i + step].astype("<i2").tobytes() for i in range(0, len(audio), step)]


# --------------------------------------------------------------------------- processes


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all threads) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_open_files(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (never past the hard limit); children
    started afterwards inherit it. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)
