"""Voice typing: how long from the event that commits a word arriving at the client to that
word's keystrokes landing in an X window. Target (the issue): ≤ 150 ms.

`nova type`'s own typing path — its Typist, Editor and the xdotool typer with python-xlib's
focus and modifier checks — runs in this process under an Xvfb server of its own, typing into
the Tk Text window of the desktop tests (tests/tk_text_window.py), which stamps every change
with ``time.monotonic()`` (CLOCK_MONOTONIC: one clock for every process on the machine).
Events are handed to the typist exactly as `nova type`'s session listener hands them over on
arrival; the time is taken there. The gateway and the model are not part of this figure
(bench/partials.py and bench/latency.py measure them).

The events: the LibriVox reference sentences, each an utterance whose partials commit one more
word at a time (one uncommitted word after them), then its final, one event every
``--interval`` seconds (the typing profile sends a partial per 0.5 s of speech).

- ``finals_only``: only committed words are typed, so each partial types exactly the word it
  commits: latency = the change in the window that shows it − the event's arrival.
- ``default``: the uncommitted word is typed too (and corrected when the next partial differs);
  latency of every event that changes the window, for comparison.

Run (about 90 s):

    .venv/bin/python bench/typing_latency.py [--out bench/results/typing_latency.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nova_client.dictation.editor import Editor  # noqa: E402
from nova_client.dictation.typers import KEY_DELAY_MS, XdotoolTyper  # noqa: E402
from nova_client.dictation.typist import Typist  # noqa: E402
from nova_client.dictation.x11 import X11Keyboard  # noqa: E402
from nova_common.logging import configure_logging  # noqa: E402
from nova_common.messages import FinalEvent, PartialEvent  # noqa: E402
from tests.desktop import TkTextWindow, x_env, xvfb  # noqa: E402
from tests.speech import librivox  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "typing_latency.json"
TARGET_MS = 150.0
WHAT = (
    "event that commits a word arriving at the client -> its keystrokes landing in an X window "
    "(Tk Text under Xvfb, typed with xdotool)"
)


def utterances(words_wanted: int) -> list[list[str]]:
    """LibriVox sentences, as Whisper would write them (a capital, a full stop), repeated until
    there are enough words."""
    sentences = []
    for _, reference in librivox():
        words = reference.lower().split()
        words[0] = words[0].capitalize()
        words[-1] += "."
        sentences.append(words)
    out: list[list[str]] = []
    while sum(map(len, out)) < words_wanted:
        out.append(sentences[len(out) % len(sentences)])
    return out


def events(sentences: list[list[str]]) -> list[PartialEvent | FinalEvent]:
    """Partial k commits word k; its uncommitted word is the next one, misheard (an "s" too
    many) in every other partial so that the next one corrects it in place."""
    out: list[PartialEvent | FinalEvent] = []
    for seq, words in enumerate(sentences):
        for k in range(1, len(words)):
            tail = words[k] if k % 2 else words[k].rstrip(".") + "s"
            out.append(
                PartialEvent(
                    session_id="bench",
                    seq=seq,
                    revision=k,
                    language="en",
                    start=0.0,
                    end=float(k),
                    text=" ".join([*words[:k], tail]),
                    committed=" ".join(words[:k]),
                )
            )
        out.append(
            FinalEvent(
                session_id="bench",
                seq=seq,
                text=" ".join(words),
                language="en",
                start=0.0,
                end=float(len(words)),
            )
        )
    return out


async def run(
    window: TkTextWindow,
    display: str,
    stream: list[PartialEvent | FinalEvent],
    *,
    finals_only: bool,
    interval: float,
) -> dict[str, Any]:
    keyboard = X11Keyboard(display)
    xdotool = shutil.which("xdotool")
    if xdotool is None:
        raise SystemExit("xdotool is not installed: apt-get install xdotool")
    typer = XdotoolTyper(keyboard, xdotool, environ=x_env(display))
    typist = Typist(Editor(finals_only=finals_only), typer)
    # The same events through a second editor tell what the window must show after each.
    shadow = Editor(finals_only=finals_only)
    focus = keyboard.focused_window()
    typing = asyncio.create_task(typist.run())
    arrivals: list[tuple[float, str, int]] = []
    for event in stream:
        before = shadow.typed
        if isinstance(event, PartialEvent):
            shadow.partial(event, focus)
        else:
            shadow.final(event, focus)
        arrived = time.monotonic()
        typist.put(event)
        if shadow.typed != before:
            arrivals.append((arrived, shadow.typed, len(shadow.typed) - len(before)))
        await asyncio.sleep(interval)
    typist.close()
    await typing
    await asyncio.sleep(0.5)
    if typist.error is not None:
        raise typist.error
    changes = window.changes()
    latencies, missing, cursor = [], 0, 0
    for arrived, expected, _ in arrivals:
        while cursor < len(changes) and changes[cursor]["t"] < arrived:
            cursor += 1
        landed = next((c["t"] for c in changes[cursor:] if c["text"] == expected), None)
        if landed is None:
            missing += 1
        else:
            latencies.append((landed - arrived) * 1000)
    keyboard.close()
    assert window.text == shadow.typed, "the window does not show what was typed"
    return summary(latencies, missing, arrivals, typist.editor.stats.line())


def summary(
    latencies: list[float], missing: int, arrivals: list[tuple[float, str, int]], stats: str
) -> dict[str, Any]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)

    return {
        "events_that_changed_the_window": len(arrivals),
        "not_found_in_the_window": missing,
        "latency_ms": {
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
            "max": round(ordered[-1], 1),
            "mean": round(statistics.fmean(ordered), 1),
        },
        "within_target": round(sum(v <= TARGET_MS for v in ordered) / len(ordered), 3),
        "mean_chars_added_per_event": round(statistics.fmean(a[2] for a in arrivals), 1),
        "editor": stats,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    sentences = utterances(args.words)
    stream = events(sentences)
    results: dict[str, Any] = {}
    configure_logging("warning")
    with xvfb() as display:
        for mode, finals_only in (("finals_only", True), ("default", False)):
            window = TkTextWindow(display, Path(args.tmp) / mode)
            try:
                window.focus()
                results[mode] = await run(
                    window, display, stream, finals_only=finals_only, interval=args.interval
                )
            finally:
                window.close()
            print(mode, json.dumps(results[mode]), file=sys.stderr)
    return {
        "benchmark": "typing_latency",
        "what": WHAT,
        "target_ms": TARGET_MS,
        "config": {
            "words": sum(map(len, sentences)),
            "utterances": len(sentences),
            "interval_s": args.interval,
            "key_delay_ms": KEY_DELAY_MS,
            "text": "LibriVox reference sentences (pocketsphinx-testdata)",
        },
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_avg_at_end": list(os.getloadavg()),
        },
        **results,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--words", type=int, default=150)
    parser.add_argument("--interval", type=float, default=0.25)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nova-typing-bench-") as tmp:
        arguments.tmp = tmp
        report = asyncio.run(main(arguments))
    arguments.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("finals_only", "default")}, indent=2))
