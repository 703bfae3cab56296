"""Pipeline overhead of this checkout against another one, measured in one run.

``bench/latency.py`` is run from the two checkouts in turn (baseline, this one, baseline, …), each
with its own virtual environment, so both see the same machine at nearly the same time; a
machine that slows down during the run slows both. For each run the figures of interest are
read from the JSON it writes:

- ``overhead_vs_worker_compute_s_median``: final at the client minus the worker's own compute
  for that utterance (what the gateway, JetStream and delivery add);
- the medians of ``cut_and_publish_s`` (chunk → VAD → JetStream) and ``result_to_client_s``
  (transcript on NATS → final at the client), the two legs the gateway owns.

The report gives each checkout's median over its runs, the ratio this/baseline of those medians,
and the ratio run pair by run pair. Sessions run with partials off by default: a partial window
in flight when an utterance ends makes its final wait, by up to 0.6 s from one run to the next
(per-run medians of 0.10–0.71 s were seen with partials on), which would hide what a change to
the gateway or the bus costs. ``--partials on`` measures what a default client sees.

Run (a few minutes: each run streams 31.7 s in real time):

    .venv/bin/python bench/paired.py --baseline ../nova-before [--runs 4] [--partials on|off]
                                     [--out bench/results/latency_paired.json]

The baseline directory needs its own ``.venv`` (``make install-test`` there).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results" / "latency_paired.json"
FIGURES = ("overhead_vs_worker_compute_s", "cut_and_publish_s", "result_to_client_s")


def figures(report: dict[str, Any]) -> dict[str, float]:
    rows = report["utterances"]
    return {
        "overhead_vs_worker_compute_s": report["summary"]["overhead_vs_worker_compute_s_median"],
        "cut_and_publish_s": statistics.median(r["breakdown"]["cut_and_publish_s"] for r in rows),
        "result_to_client_s": statistics.median(r["breakdown"]["result_to_client_s"] for r in rows),
        "session_wer": report["session_wer"],
    }


def run_latency(checkout: Path, out: Path, partials: str) -> dict[str, float]:
    python = checkout / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{checkout} has no .venv: run `make install-test` there first")
    subprocess.run(
        [
            str(python),
            str(checkout / "bench" / "latency.py"),
            *("--out", str(out), "--repeat", "1", "--partials", partials),
        ],
        cwd=checkout,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return figures(json.loads(out.read_text()))


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    parser.add_argument("--runs", type=int, default=4, help="runs of each checkout")
    parser.add_argument("--partials", choices=["on", "off"], default="off")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    checkouts = {"baseline": args.baseline.resolve(), "this": REPO}
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "this": []}
    with tempfile.TemporaryDirectory(prefix="nova-paired-") as tmp:
        for i in range(args.runs):
            for name, checkout in checkouts.items():
                result = run_latency(checkout, Path(tmp) / f"{name}-{i}.json", args.partials)
                runs[name].append(result)
                print(f"run {i + 1}/{args.runs} {name}: {result}", flush=True)
    medians = {
        name: {f: round(statistics.median(r[f] for r in results), 4) for f in FIGURES}
        for name, results in runs.items()
    }
    report = {
        "benchmark": "latency_paired",
        "partials": args.partials,
        "checkouts": {
            name: {"path": str(path), "commit": _commit(path)} for name, path in checkouts.items()
        },
        "runs": runs,
        "median": medians,
        "this_over_baseline": {
            f: ratio(medians["this"][f], medians["baseline"][f]) for f in FIGURES
        },
        "pairwise_overhead_ratio": [
            ratio(t["overhead_vs_worker_compute_s"], b["overhead_vs_worker_compute_s"])
            for t, b in zip(runs["this"], runs["baseline"], strict=True)
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("median", "this_over_baseline")}, indent=2))
    print(f"written to {args.out}")
    return 0


def _commit(path: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(path), "status", "--porcelain"], capture_output=True, text=True
    )
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


if __name__ == "__main__":
    sys.exit(main())
