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
        ax.plot(streams, p50, "o:", color=colour, alpha=0.6, label=f"{label} p50")
        targets = report["targets"].get(target_key, {})
        if targets:
            xs = sorted(int(n) for n in targets)
            ax.plot(
                xs,
                [targets[str(n)] for n in xs],
                "--",
                color=colour,
                linewidth=1,
                drawstyle="steps-post" if len(xs) > 1 else "default",
                marker="_",
                markersize=18,
                label=f"{label} p95 target",
            )
    ax.set_xlabel("concurrent real-time streams")
    ax.set_ylabel("seconds after the word's end in the audio")
    ax.set_xticks(streams)
    ax.set_yscale("symlog", linthresh=1.0)
    summary = report["summary"]
    ax.set_title(
        f"Nova real time, {report['config']['session_audio_s']:.1f} s fluent speech; "
        f"streams sustained: {summary['streams_sustained']}",
        fontsize=10,
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _value(x: float | None) -> float:
    return float("nan") if x is None else x
