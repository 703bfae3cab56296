"""Translation throughput: sentences per second batched vs one at a time, per backend.

What it measures (DESIGN §6: ratios taken side by side in one run):

- ``ct2``: a tiny CTranslate2 model with random weights built locally (``tests/tiny_mt_model.py``,
  NLLB-style tokenizer and language tokens, int8), so the figure is about the backend's
  batching and tokenisation code, not translation quality; decoding is capped at
  ``--max-decoding-length`` tokens because random weights rarely stop on their own.
- ``apertium``: Debian's rule-based engine (``apertium-eng-spa``), English → Spanish.

For each backend the same sentences are translated ``--repeat`` times in two ways, alternating
so that machine noise hits both alike: ``batched`` = one ``translate_batch`` call per
``--batch-size`` sentences (what the MT worker does with a fetched batch of one language pair);
``sequential`` = one call per sentence (a worker that translates messages one by one). The
median of the repeats is reported as sentences/s, and ``speedup`` = batched / sequential.

Run (a few seconds; needs apertium-eng-spa, which `make test` installs):

    .venv/bin/python bench/translation.py [--out bench/results/translation.json]
                                          [--sentences 64] [--batch-size 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nova_mt.apertium import ApertiumBackend  # noqa: E402
from nova_mt.backend import TranslationBackend  # noqa: E402
from nova_mt.ct2 import Ct2Backend  # noqa: E402
from tests.tiny_mt_model import build_tiny_model  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "translation.json"

SUBJECTS = ["The meeting", "My sister", "The new report", "Our team", "The train", "This city",
            "The weather", "Your friend"]  # fmt: skip
PREDICATES = ["starts at nine in the morning.", "is much better than last year.",
              "will arrive before noon.", "was very interesting.", "needs more time.",
              "looks beautiful in the spring.", "has changed a lot.",
              "is waiting for us outside."]  # fmt: skip


def sentences(count: int) -> list[str]:
    """Distinct, ordinary sentences (no two alike, so no engine can reuse work)."""
    out = [f"{s} {p}" for p in PREDICATES for s in SUBJECTS]
    while len(out) < count:
        out += [f"{s} Then {s.lower()}" for s in out[: count - len(out)]]
    return out[:count]


def run_batched(backend: TranslationBackend, texts: Sequence[str], batch_size: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        backend.translate_batch(texts[i : i + batch_size], "en", "es")
    return time.perf_counter() - started


def run_sequential(backend: TranslationBackend, texts: Sequence[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        backend.translate_batch([text], "en", "es")
    return time.perf_counter() - started


def measure(
    backend: TranslationBackend, texts: Sequence[str], *, batch_size: int, repeat: int
) -> dict[str, Any]:
    backend.translate_batch(texts[:2], "en", "es")  # warm-up: load, first allocation
    batched: list[float] = []
    sequential: list[float] = []
    for _ in range(repeat):
        batched.append(run_batched(backend, texts, batch_size))
        sequential.append(run_sequential(backend, texts))
    b, s = statistics.median(batched), statistics.median(sequential)
    return {
        "backend": backend.name,
        "sentences": len(texts),
        "batch_size": batch_size,
        "batched_sentences_per_s": round(len(texts) / b, 2),
        "sequential_sentences_per_s": round(len(texts) / s, 2),
        "speedup": round(s / b, 2),
        "batched_runs_s": [round(x, 4) for x in batched],
        "sequential_runs_s": [round(x, 4) for x in sequential],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-decoding-length", type=int, default=32)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    texts = sentences(args.sentences)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "tiny-nllb", sentences=texts)
        ct2 = Ct2Backend(model, max_decoding_length=args.max_decoding_length)
        results.append(measure(ct2, texts, batch_size=args.batch_size, repeat=args.repeat))
    apertium = ApertiumBackend.discover("apertium")
    if apertium is None or not apertium.supports("en", "es"):
        print("apertium-eng-spa is not installed (apt-get install apertium-eng-spa)",
              file=sys.stderr)  # fmt: skip
        return 1
    results.append(measure(apertium, texts, batch_size=args.batch_size, repeat=args.repeat))
    report = {
        "benchmark": "translation",
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        print(f"{r['backend']:<16} batched {r['batched_sentences_per_s']:>8.1f} sentences/s   "
              f"one at a time {r['sequential_sentences_per_s']:>8.1f}   x{r['speedup']}")  # fmt: skip
    print(f"written to {args.out}")
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
