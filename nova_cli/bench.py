"""`nova bench`: run the real-time suite (bench/realtime.py; ``--all`` also the other bench/
scripts), then refresh the README's table of its figures from the JSON it wrote.

The benchmarks live in the checkout's bench/ folder, not in the installed package: `nova bench`
runs them as scripts with this interpreter, from a source checkout (an editable install).
The table sits between marker comments in the README, so a refresh rewrites only it, and
rewriting it from the same JSON leaves the README byte for byte as it was.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BEGIN = "<!-- realtime:begin -->"
END = "<!-- realtime:end -->"
# `make bench`'s other benchmarks, as `--all` runs them (the real-time suite comes first).
OTHERS: tuple[tuple[str, ...], ...] = (
    ("bench/latency.py", "--partials", "off"),
    ("bench/translation.py",),
    ("bench/partials.py",),
    ("bench/page_latency.py",),
    ("bench/typing_latency.py",),
)


class ReadmeMarkersMissing(ValueError):
    pass


def _seconds(stats: dict[str, Any]) -> str:
    p50, p95 = stats.get("p50"), stats.get("p95")
    if p50 is None or p95 is None:
        return "–"
    return f"{p50:.1f} s / {p95:.1f} s"


def _target(report: dict[str, Any], key: str, streams: int) -> str:
    value = report["targets"].get(key, {}).get(str(streams))
    return "" if value is None else f" (≤ {value:g})"


def _met(value: float | None, limit: float | None) -> str:
    if value is None or limit is None:
        return ""
    return " ✓" if value <= limit else " ✗"


def _cell(report: dict[str, Any], run: dict[str, Any], figure: str, target_key: str) -> str:
    limit = report["targets"].get(target_key, {}).get(str(run["streams"]))
    stats = run[figure]
    return _seconds(stats) + _target(report, target_key, run["streams"]) + _met(stats["p95"], limit)


def _wer_cell(report: dict[str, Any], run: dict[str, Any]) -> str:
    offline = report["summary"]["wer_offline"]
    mean = run["wer"]["mean"]
    if mean is None:
        return "–"
    points = report["targets"].get("wer_over_offline_points", {}).get(str(run["streams"]))
    met = _met(100 * (mean - offline), points)
    return f"{100 * mean:.1f} %{met}"


def _memory(mb: float | None) -> str:
    # The target: the whole stack under 1.5 GB (at 8 streams).
    return "–" if mb is None else f"{mb / 1024:.2f} GB{_met(mb, 1536.0)}"


def _workers(processes: int) -> str:
    own = "`nova up`'s STT workers (by the cores: 2 of one thread each on 2 cores)"
    return own if processes <= 1 else f"{own} and {processes - 1} more `nova stt`"


def realtime_table(report: dict[str, Any]) -> str:
    """The README's figures from one bench/realtime.py report: a row per stream count, the
    issue's p95 targets in brackets with ✓/✗, the reproducing command and the model alone."""
    summary, config = report["summary"], report["config"]
    machine = report.get("machine", {})
    rows = [
        "| streams | stable lag p50 / p95 | final lag p50 / p95 | end of speech → final p50 / p95 "
        "| onset → first partial p50 / p95 | WER | every final complete | stack memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        rows.append(
            f"| {run['streams']} "
            f"| {_cell(report, run, 'stable_lag_s', 'stable_lag_p95_s')} "
            f"| {_cell(report, run, 'final_lag_s', 'final_lag_p95_s')} "
            f"| {_cell(report, run, 'end_of_speech_to_final_s', 'end_of_speech_to_final_p95_s')} "
            f"| {_cell(report, run, 'first_partial_s', 'first_partial_p95_s')} "
            f"| {_wer_cell(report, run)} "
            f"| {'yes' if run['finals_complete'] else 'no'} "
            f"| {_memory(run.get('stack_rss_peak_mb'))} |"
        )
    sequential = summary["sequential"]
    batched = ", ".join(
        f"{b['s_per_audio_s']:.3f} s at batch {b['batch_size']} (WER {100 * b['wer']:.1f} %)"
        for b in report.get("batched", [])
    )
    lines = [
        f"Reproduce with `{config['command']}` (or `nova bench` with the same flags); "
        f"{config['session_audio_s']:.1f} s of speech, language `{config['language']}`, "
        f"{_workers(config['stt_workers'])}, model {machine.get('model', '?')} "
        f"{machine.get('compute_type', '')}, beam {machine.get('beam_size', '?')}, "
        f"{machine.get('cpus_usable', '?')} cores; {report.get('finished_at', '')}. "
        "Targets (issue 11) in brackets; WER within 1 point of offline.",
        "",
        *rows,
        "",
        f"**Streams sustained** (stable lag p95 ≤ 3 s, every final complete): "
        f"**{summary['streams_sustained']}**. Offline faster-whisper on the whole recording: "
        f"WER {100 * summary['wer_offline']:.1f} %; sequential "
        f"{sequential['s_per_audio_s']:.3f} s of model time per second of audio "
        f"(WER {100 * sequential['wer']:.1f} %)"
        + (f"; `BatchedInferencePipeline` over N copies: {batched}" if batched else "")
        + ", same process, same run.",
    ]
    return "\n".join(lines)


def refresh_readme(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ReadmeMarkersMissing(f"the README has no {BEGIN} … {END} block")
    return readme[: start + len(BEGIN)] + "\n" + table + "\n" + readme[end:]


def _run(script: Sequence[str], repo: Path) -> int:
    print(f"nova bench: {' '.join(script)}", file=sys.stderr, flush=True)
    return subprocess.run([sys.executable, *script], cwd=repo, check=False).returncode


def run_bench(
    realtime_args: Sequence[str], *, run_all: bool, readme: Path | None, repo: Path = REPO
) -> int:
    if not (repo / "bench" / "realtime.py").is_file():
        print(
            "nova bench: run it from a source checkout (bench/ is not installed)", file=sys.stderr
        )
        return 2
    args = list(realtime_args)
    out = repo / "bench" / "results" / "realtime.json"
    if "--out" in args:
        # The script runs in the checkout: hand it the path as the caller meant it.
        at = args.index("--out") + 1
        out = Path(args[at]).resolve()
        args[at] = str(out)
    status = _run(["bench/realtime.py", *args], repo)
    if status == 0 and readme is not None:
        table = realtime_table(json.loads(out.read_text()))
        try:
            readme.write_text(refresh_readme(readme.read_text(), table))
        except ReadmeMarkersMissing as exc:
            print(f"nova bench: {readme}: {exc}; the figures are in {out}", file=sys.stderr)
            return 1
        print(f"nova bench: {readme} refreshed from {out}", file=sys.stderr)
    if run_all:
        for script in OTHERS:
            status = _run(script, repo) or status
    return status


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """`nova bench`'s flags: its own, then bench/realtime.py's, passed through."""
    parser.add_argument("--all", action="store_true", help="also run the other bench/ scripts")
    parser.add_argument("--readme", type=Path, help="README to refresh (default: the checkout's)")
    parser.add_argument("--no-readme", action="store_true", help="leave the README alone")
    parser.add_argument("--streams", help="concurrent stream counts, e.g. 1,4,8 (the default)")
    parser.add_argument("--seconds", help="only the first recordings that fit in this long")
    parser.add_argument("--language", help="session language (default en; auto detects)")
    parser.add_argument(
        "--stt-workers",
        help="STT worker processes: nova up's own, and N-1 more `nova stt` (default 1)",
    )
    parser.add_argument("--stt-threads", help="threads per STT worker")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NOVA_X=Y",
        help="a stack setting (repeatable)",
    )
    parser.add_argument("--out", help="JSON results (default bench/results/realtime.json)")


def run_from_args(args: argparse.Namespace) -> int:
    passed: list[str] = []
    for flag in ("streams", "seconds", "language", "stt_workers", "stt_threads", "out", "data_dir"):
        value = getattr(args, flag)
        if flag == "data_dir" and value is not None:
            value = str(Path(value).resolve())  # the script runs in the checkout, not here
        if value is not None:
            passed += [f"--{flag.replace('_', '-')}", value]
    for setting in args.env:
        passed += ["--env", setting]
    readme = None if args.no_readme else (args.readme or REPO / "README.md").resolve()
    return run_bench(passed, run_all=args.all, readme=readme)
