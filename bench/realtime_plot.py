"""The PNG of bench/realtime.py: each lag's p50 and p95 against the number of streams, with the
issue's targets as dashed lines in the same colour (drawn from the report, so a plot always
shows the targets its figures were judged by)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (figure in each run, its target key, label, colour)
SERIES = (
    ("stable_lag_s", "stable_lag_p95_s", "stable lag", "tab:blue"),
    ("final_lag_s", "final_lag_p95_s", "final lag", "tab:orange"),
    (
        "end_of_speech_to_final_s",
        "end_of_speech_to_final_p95_s",
        "end of speech → final",
        "tab:green",
    ),
    ("first_partial_s", "first_partial_p95_s", "onset → first partial", "tab:purple"),
)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    runs = report["runs"]
    streams = [r["streams"] for r in runs]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for key, target_key, label, colour in SERIES:
        # A figure with no values (no partials came, say) is a gap in the line, not an error.
        p50 = [_value(r[key]["p50"]) for r in runs]
        p95 = [_value(r[key]["p95"]) for r in runs]
        ax.plot(streams, p95, "o-", color=colour, label=f"{label} p95")
        ax.plot(streams, p50, "o:", color=colour, alpha=0.5)
        # A target holds at one stream count: a wide bar at that N, in the figure's colour.
        targets = report["targets"].get(target_key, {})
        xs = [int(n) for n in targets]
        ax.plot(xs, [targets[str(n)] for n in xs], "_", color=colour, markersize=28, mew=2.5)
    ax.plot([], [], "k_", markersize=14, mew=2.5, label="target (p95)")
    ax.plot([], [], "ko:", alpha=0.5, label="p50")
    ax.set_xlabel("concurrent real-time streams, each its own session")
    ax.set_ylabel("seconds after the word's end in the audio")
    ax.set_xticks(streams)
    ax.set_xlim(min(streams) - 0.7, max(streams) + 0.7)
    ax.set_yscale("log")
    summary = report["summary"]
    ax.set_title(
        f"Nova, {report['config']['session_audio_s']:.1f} s of fluent speech per stream; "
        f"streams sustained: {summary['streams_sustained']}",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _value(x: float | None) -> float:
    return float("nan") if x is None else x
