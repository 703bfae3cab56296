"""Partial results: how soon the first words appear, how much they flicker, and what partial
work costs the finals.

One session through a local stack (gateway + one STT worker on the same model + an embedded
nats-server): the LibriVox recordings back to back with silence between them, streamed at
real-time pace as a microphone would (session time ``t`` is wall-clock ``t0 + t``). It runs twice
in the same process, side by side: partials on, then partials off (DESIGN §6: compare within one
run). The raw model transcribes each recording on its own as the offline reference.

Reported, per run and summarised:
- ``first_partial_from_onset_s``: first partial of an utterance shown at the client - (t0 + the
  utterance's speech onset), the onset found by Silero VAD in the session audio within the
  utterance the gateway cut. Goal (issue 4): ≤ 1.0 s for one stream of the base model.
- ``flicker``: words of a shown partial that the next partial of the same utterance changed,
  summed over the session, divided by the words of the finals (``revised words per final
  word``); ``with_final`` also counts the change from the last partial to the final.
- ``committed_violations``: partials whose ``committed`` prefix did not start with the previous
  partial's committed text, or whose text did not start with its own committed text (must be 0).
- ``final_latency_s``: final arrival - (t0 + utterance end), partials on vs off.
- ``wer``: finals of each run, and the raw model on each whole recording (offline).

Run (about 75 s of real-time audio plus model time):

    .venv/bin/python bench/partials.py [--out bench/results/partials.json] [--language en]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.latency_parts import RATE, build_session, chunks, load_16k, machine_info  # noqa: E402
from nova_cli.stack import LocalStack  # noqa: E402
from nova_client.streaming import stream_audio  # noqa: E402
from nova_common.logging import configure_logging  # noqa: E402
from nova_common.messages import FinalEvent, PartialEvent, StartMessage  # noqa: E402
from nova_common.settings import Settings, load_settings  # noqa: E402
from nova_stt.service import load_model  # noqa: E402
from nova_stt.transcriber import SpeechToText  # noqa: E402
from tests.speech import librivox, normalise, wer  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "partials.json"


@dataclass
class Run:
    t0: float | None = None
    partials: list[tuple[float, PartialEvent]] = field(default_factory=list)
    finals: list[tuple[float, FinalEvent]] = field(default_factory=list)

    def on_sent(self, seconds: float) -> None:
        if self.t0 is None:
            self.t0 = time.monotonic() - seconds

    def session_time(self, at: float) -> float:
        assert self.t0 is not None
        return at - self.t0


async def stream(
    settings: Settings, model: SpeechToText, audio: np.ndarray, start: StartMessage
) -> Run:
    run = Run()
    async with LocalStack(settings, stt_workers=1, model=model) as stack:
        result = await stream_audio(
            stack.ws_url,
            start,
            chunks(audio, 100),
            realtime=True,
            on_sent=run.on_sent,
            on_partial=lambda p: run.partials.append((time.monotonic(), p)),
            on_final=lambda f: run.finals.append((time.monotonic(), f)),
        )
    if result.errors:
        raise RuntimeError(f"the session reported errors: {result.errors}")
    return run


def speech_onset(audio: np.ndarray, start: float, end: float) -> float | None:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    piece = audio[round(start * RATE) : round(end * RATE)].astype(np.float32) / 32768.0
    spans = get_speech_timestamps(piece, VadOptions(min_speech_duration_ms=100, speech_pad_ms=0))
    return start + spans[0]["start"] / RATE if spans else None


def changed_words(before: str, after: str) -> int:
    """Words of ``before`` that ``after`` does not keep as they were, in place."""
    a, b = normalise(before).split(), normalise(after).split()
    kept = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        kept += 1
    return len(a) - kept


def analyse(run: Run, audio: np.ndarray) -> dict[str, Any]:
    by_seq: dict[int, list[tuple[float, PartialEvent]]] = {}
    for at, p in run.partials:
        by_seq.setdefault(p.seq, []).append((at, p))
    finals = {f.seq: (at, f) for at, f in run.finals}
    onsets, latencies, violations, flicker, flicker_final, final_words = [], [], 0, 0, 0, 0
    for seq, (at, final) in sorted(finals.items()):
        latencies.append(run.session_time(at) - final.end)
        final_words += len(final.text.split())
        shown = by_seq.get(seq, [])
        onset = speech_onset(audio, final.start, final.end)
        if shown and onset is not None:
            onsets.append(run.session_time(shown[0][0]) - onset)
        previous: PartialEvent | None = None
        for _, p in shown:
            if not p.text.startswith(p.committed):
                violations += 1
            if previous is not None:
                if not p.committed.startswith(previous.committed):
                    violations += 1
                flicker += changed_words(previous.text, p.text)
            previous = p
        if previous is not None:
            flicker_final += changed_words(previous.text, final.text)
    late = sum(1 for _, p in run.partials if p.seq in finals and _ > finals[p.seq][0])
    return {
        "utterances": len(finals),
        "partials_shown": len(run.partials),
        "utterances_with_partials": len(by_seq),
        "partials_after_their_final": late,
        "first_partial_from_onset_s": _stats(onsets),
        "flicker": {
            "revised_words": flicker,
            "final_words": final_words,
            "per_final_word": round(flicker / final_words, 4) if final_words else None,
            "with_final_per_final_word": (
                round((flicker + flicker_final) / final_words, 4) if final_words else None
            ),
        },
        "committed_violations": violations,
        "final_latency_s": _stats(latencies),
        "text": " ".join(f.text for _, f in sorted(run.finals, key=lambda x: x[1].seq)),
    }


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None, "max": None, "n": 0}
    arr = np.asarray(values)
    return {
        "median": round(float(np.median(arr)), 4),
        "p90": round(float(np.percentile(arr, 90)), 4),
        "max": round(float(arr.max()), 4),
        "n": len(values),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    files = librivox()
    audio, spans = build_session(files, args.gap_s, 1.0)
    language = None if args.language == "auto" else args.language
    with tempfile.TemporaryDirectory(prefix="nova-bench-") as tmp:
        settings = load_settings(
            environ={},
            overrides={"data_dir": tmp, "log_level": "warning", "gateway": {"port": 0}},
        )
        configure_logging(settings.log_level, settings.log_format)
        model = await asyncio.to_thread(load_model, settings)
        await asyncio.to_thread(
            model.transcribe, load_16k(files[0][0]).tobytes(), language=language, task="transcribe"
        )
        runs: dict[str, Any] = {}
        for name, partials in (("partials_on", True), ("partials_off", False)):
            start = StartMessage(language=args.language, partials=partials)
            runs[name] = analyse(await stream(settings, model, audio, start), audio)
        offline = [
            model.transcribe(load_16k(path).tobytes(), language=language, task="transcribe").text
            for path, _ in files
        ]
    reference = " ".join(ref for _, ref in files)
    for run in runs.values():
        run["wer"] = round(wer([reference], [run.pop("text")]), 4)
    on, off = runs["partials_on"], runs["partials_off"]
    return {
        "benchmark": "partials",
        "config": {
            "files": [s.name for s in spans],
            "session_audio_s": round(len(audio) / RATE, 3),
            "gap_s": args.gap_s,
            "language": args.language,
            "first_partial_s": settings.gateway.first_partial_s,
            "partial_interval_s": settings.gateway.partial_interval_s,
            "end_silence_ms": settings.vad.end_silence_ms,
        },
        "machine": machine_info(settings, model),
        "summary": {
            "first_partial_from_onset_median_s": on["first_partial_from_onset_s"]["median"],
            "flicker_per_final_word": on["flicker"]["per_final_word"],
            "committed_violations": on["committed_violations"],
            "final_latency_median_on_s": on["final_latency_s"]["median"],
            "final_latency_median_off_s": off["final_latency_s"]["median"],
            "final_latency_on_over_off": _ratio(
                on["final_latency_s"]["median"], off["final_latency_s"]["median"]
            ),
            "wer_on": on["wer"],
            "wer_off": off["wer"],
            "wer_offline": round(wer([reference], [" ".join(offline)]), 4),
        },
        "runs": runs,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--language", default="auto", help="session language ('auto' detects)")
    parser.add_argument("--gap-s", type=float, default=1.5, help="silence between recordings")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    report = asyncio.run(main(arguments))
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
