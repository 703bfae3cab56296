"""The browser page: speech onset → first text on the page.

`nova up` (its own embedded nats-server, a temporary data dir) and Debian's chromium headless,
whose fake microphone plays a WAV of espeak-ng sentences with pauses. The page runs unmodified
at `/?autostart=1&lang=L`; the benchmark watches it from outside with the scripts of
tests/page_harness.py, installed before the page's own:

- every binary frame the page sends is logged with its ``performance.now()`` send time and the
  index of its first loud sample (above −30 dBFS), so a speech onset's capture time is the send
  time of the frame that carries it minus the audio that frame holds after the onset (a frame
  goes out when its last sample is captured; the worklet's 128-sample quantum and the hop to
  the main thread, a few ms, are not counted);
- a MutationObserver notes when each utterance's first text appeared (in #partial, or its final
  in #transcript) and when its final did, on the same clock.

The onset searched for is the first loud sample inside the final's [start, end] in session
audio. The WAV's known onsets (where each sentence begins in the file) cross-check it: file
onset − session onset must be one constant per run (the audio the page did not capture before
its worklet ran).

Reported per language setting (``auto`` detects per utterance: one more encoder pass):
``first_text_s`` (onset → first partial or final on the page), split into ``first_event_s``
(onset → that event's arrival on the page's WebSocket) and ``page_render_s`` (arrival → on
screen: the page's own part, partials being drawn at most every 100 ms), ``final_s`` (onset →
final), ``final_after_speech_s`` (last loud sample → final: includes the 600 ms end-of-speech
silence), and the WER of the finals. The machine's load average is recorded: on a shared
2-core machine the figures move with it.

Run (about 90 s): ``.venv/bin/python bench/page_latency.py [--languages auto,en]
[--nova-env NOVA_STT_BEAM_SIZE=1] [--out FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nova_common.nats_server import free_port  # noqa: E402
from tests.page_harness import OBSERVER_JS, WIRE_JS, launch_options, page_state  # noqa: E402
from tests.processes import nova_env, nova_process, wait_healthy  # noqa: E402
from tests.speech import silence, speak, wer, write_wav  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "page_latency.json"
RATE = 16000
SENTENCES = [
    "Good morning, everyone, and welcome to the meeting.",
    "Please send the report to my office.",
    "The train is late again.",
    "We will meet at noon.",
    "My brother plays the piano.",
]
LEAD_S = 2.0  # the session is running steadily before the first word
PAUSE_S = 2.5
THRESHOLD = 0.03  # as WIRE_JS: −30 dBFS


def build_wav(path: Path) -> tuple[Path, list[float], float]:
    """The WAV, each sentence's onset in it (first loud sample), and where the speech ends."""
    pieces, onsets, at = [silence(LEAD_S)], [], LEAD_S
    for sentence in SENTENCES:
        audio = speak(sentence)
        loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > THRESHOLD * 32768)
        onsets.append(at + loud[0] / RATE)
        pieces += [audio, silence(PAUSE_S)]
        at += (len(audio) + PAUSE_S * RATE) / RATE
    speech_end = at - PAUSE_S
    # Chromium loops the file: enough silence that the speech does not come round again.
    pieces.append(silence(60.0))
    return write_wav(path, np.concatenate(pieces), RATE), onsets, speech_end


def analyse(
    state: dict[str, Any], wire: dict[str, Any], file_onsets: list[float]
) -> dict[str, Any]:
    start = wire["starts"][-1]
    rate = start["message"]["sample_rate"]
    frames = wire["frames"][start["frame"] :]
    # Per frame: session sample where it begins, its send time, its first loud sample.
    offsets = np.cumsum([0] + [f[1] for f in frames])
    first_frame_t = frames[0][0] if frames else 0.0

    def capture_time(sample: int) -> float:
        j = int(np.searchsorted(offsets, sample, side="right") - 1)
        t, n, _ = frames[j]
        return float(t - (offsets[j] + n - sample) / rate * 1000.0)

    def loud_samples(lo: int, hi: int) -> tuple[int | None, int | None]:
        first = last = None
        for j, (_, n, loud) in enumerate(frames):
            begin = int(offsets[j])
            if begin + n <= lo or begin >= hi or loud < 0:
                continue
            if first is None and begin + loud >= lo:
                first = begin + loud
            last = begin + n  # a loud frame: speech lasts at most to its end
        return first, last

    utterances = []
    for line in state["lines"]:
        if not line["text"].strip() or line["start"] is None:
            continue
        key = f"{line['session']}:{line['seq']}"
        lo, hi = round(line["start"] * rate), round(line["end"] * rate)
        onset, end = loud_samples(lo, hi)
        if onset is None or end is None:
            continue
        onset_t = capture_time(onset)
        # Frames captured before the session started went out in one burst: no capture times.
        if onset_t - first_frame_t < 1000.0:
            continue
        first = state["dom"]["firstText"].get(key)
        final = state["dom"]["finalAt"].get(key)
        arrived = [
            t
            for t, socket, kind, seq, text in wire["events"]
            if socket == start["socket"]
            and seq == line["seq"]
            and text
            and kind in ("partial", "final")
        ]
        event_t = min(arrived) if arrived else None
        utterances.append(
            {
                "seq": line["seq"],
                "text": line["text"],
                "onset_session_s": round(onset / rate, 3),
                "first_text_s": round((first - onset_t) / 1000.0, 3) if first else None,
                "first_text_was_partial": bool(first and final and first < final - 1.0),
                # Split of first_text_s: until its event reached the page, then the page's part.
                "first_event_s": round((event_t - onset_t) / 1000.0, 3) if event_t else None,
                "page_render_s": (
                    round((first - event_t) / 1000.0, 3) if first and event_t else None
                ),
                "final_s": round((final - onset_t) / 1000.0, 3) if final else None,
                "final_after_speech_s": (
                    round((final - capture_time(end)) / 1000.0, 3) if final else None
                ),
            }
        )
    # The file's known onsets against the ones found in the sent audio: one constant offset.
    # Sentences are seconds apart and the shift is under one: the nearest is the right one.
    shifts = [
        min(file_onsets, key=lambda f: abs(f - u["onset_session_s"])) - u["onset_session_s"]
        for u in utterances
    ]
    said = " ".join(line["text"] for line in state["lines"])
    return {
        "sample_rate": rate,
        "utterances": utterances,
        "file_minus_session_onset_s": {
            "median": round(statistics.median(shifts), 3) if shifts else None,
            "spread": round(max(shifts) - min(shifts), 3) if shifts else None,
        },
        "first_text_s": _stats([u["first_text_s"] for u in utterances]),
        "first_event_s": _stats([u["first_event_s"] for u in utterances]),
        "page_render_s": _stats([u["page_render_s"] for u in utterances]),
        "final_s": _stats([u["final_s"] for u in utterances]),
        "final_after_speech_s": _stats([u["final_after_speech_s"] for u in utterances]),
        "wer": round(wer([" ".join(SENTENCES)], [said]), 4),
        "status": state["status"],
    }


def _stats(values: list[float | None]) -> dict[str, float | int | None]:
    xs = [v for v in values if v is not None]
    if not xs:
        return {"median": None, "p90": None, "max": None, "n": 0}
    return {
        "median": round(float(np.median(xs)), 3),
        "p90": round(float(np.percentile(xs, 90)), 3),
        "max": round(max(xs), 3),
        "n": len(xs),
    }


def run_page(url: str, wav: Path, speech_end: float, language: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options(wav))
        try:
            context = browser.new_context()
            context.add_init_script(WIRE_JS)
            context.add_init_script(OBSERVER_JS)
            page = context.new_page()
            page.goto(f"{url}/?autostart=1&lang={language}")
            page.wait_for_function(
                f"() => window.__novaWire.sentSeconds() >= {speech_end + 1.0}", timeout=90_000
            )
            page.click("#stop")
            page.wait_for_function(
                "() => document.getElementById('status').dataset.state === 'stopped'",
                timeout=90_000,
            )
            state = page_state(page)
            wire = page.evaluate(
                "({starts: window.__novaWire.starts, frames: window.__novaWire.frames,"
                " events: window.__novaWire.events})"
            )
        finally:
            browser.close()
    return {"state": state, "wire": wire}


def main(args: argparse.Namespace) -> dict[str, Any]:
    languages = [x.strip() for x in args.languages.split(",") if x.strip()]
    settings = dict(item.split("=", 1) for item in args.nova_env)
    load_at_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="nova-page-bench-") as tmp:
        wav, file_onsets, speech_end = build_wav(Path(tmp) / "speech.wav")
        port = free_port()
        env = nova_env(Path(tmp) / "data", NOVA_LOG_LEVEL="warning", **settings)
        with nova_process(
            ["up", "--port", str(port)], env=env, log_dir=Path(tmp) / "logs", name="up"
        ) as process:
            url = f"http://127.0.0.1:{port}"
            process.wait_for_stdout(r"Nova Voice is up")
            wait_healthy(process, url)
            runs = {}
            for language in languages:
                began = time.monotonic()
                raw = run_page(url, wav, speech_end, language)
                runs[language] = analyse(raw["state"], raw["wire"], file_onsets)
                runs[language]["wall_s"] = round(time.monotonic() - began, 1)
    return {
        "benchmark": "page_latency",
        "config": {
            "page": "/?autostart=1&lang=<language>",
            "sentences": SENTENCES,
            "lead_s": LEAD_S,
            "pause_s": PAUSE_S,
            "speech_end_s": round(speech_end, 3),
            "onset_threshold_dbfs": -30,
            "translation": "none",
            "nova": "nova up defaults (Whisper base int8 on CPU, beam 5, partials on, profile "
            "subtitles), changed by nova_env",
            "nova_env": settings,
        },
        "machine": {
            "platform": platform.platform(),
            "processor": _cpu_model(),
            "cpu_count": os.cpu_count(),
            # Other work on the machine shows here: the figures move with it.
            "load_avg_at_start": load_at_start,
            "load_avg_at_end": list(os.getloadavg()),
        },
        "summary": {
            language: {
                "first_text_median_s": run["first_text_s"]["median"],
                "first_text_max_s": run["first_text_s"]["max"],
                "page_render_median_s": run["page_render_s"]["median"],
                "final_median_s": run["final_s"]["median"],
                "final_after_speech_median_s": run["final_after_speech_s"]["median"],
                "utterances": run["first_text_s"]["n"],
                "wer": run["wer"],
            }
            for language, run in runs.items()
        },
        "runs": runs,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument(
        "--languages", default="auto,en", help="the page's ?lang= for each run, comma-separated"
    )
    parser.add_argument(
        "--nova-env",
        action="append",
        default=[],
        metavar="NOVA_X=V",
        help="a setting for `nova up`, e.g. NOVA_STT_BEAM_SIZE=1 (repeatable)",
    )
    args = parser.parse_args(argv)
    for item in args.nova_env:
        if not item.startswith("NOVA_") or "=" not in item:
            parser.error(f"--nova-env wants NOVA_NAME=VALUE, not {item!r}")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    report = main(arguments)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report["summary"], indent=2))
