"""Finals in windows sized to the audio against Whisper's 30 s window: WER, language and time
per utterance, each policy on the same utterances in the same run (interleaved, so a machine
that slows down slows every policy alike).

Policies (all with the language detected, beam 5, the existing filters):

- ``faster_whisper``: faster-whisper's own ``transcribe`` as Nova called it before: a 30 s
  window, the encoder run once to detect the language and again to decode;
- ``window_30s``: Nova's decode loop (``nova_stt.decode``), one encoder pass, 30 s window;
- ``sized``: the same loop with the windows of ``nova_stt.windows.final_window_seconds``, and
  an utterance Whisper is unsure of decoded again in 30 s (the default);
- ``sized_only``: the same windows, never decoded again;
- ``step5``: 5 s steps with a 1 s margin (the partials' windows), the smallest tried.

Audio: the five LibriVox recordings (pocketsphinx-testdata), two pairs of them and all five as
one ~25 s utterance; espeak-ng in en, de, es, fr, it, cs, pl: two single sentences, three
sentences together, and as many as fit in ~15–28 s; the two German sentences
tests/test_type_desktop.py typed when sized windows broke it (espeak at 150 words a minute). Figures per policy: WER over all, per
language and per duration band; share of utterances whose language was detected right; mean
model seconds per utterance and its ratio to ``window_30s``.

Run (~10 minutes on 2 loaded cores; ``--quick`` for a smaller set):

    .venv/bin/python bench/final_windows.py [--out bench/results/final_windows.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.speech_corpus import SHORT  # noqa: E402
from nova_common.settings import load_settings  # noqa: E402
from nova_stt.service import load_model  # noqa: E402
from nova_stt.transcriber import SpeechToText  # noqa: E402
from nova_stt.windows import RECHECK_BELOW_LOGPROB, final_window_seconds  # noqa: E402
from tests.speech import librivox, read_wav, resample, silence, speak, wer  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "final_windows.json"
RATE = 16000
PAUSE_S = 0.4
MAX_S = 28.0
BANDS = ((0, 5), (5, 10), (10, 20), (20, 31))
TYPED_GERMAN = ("Die Tür ist offen.", "Ich möchte gern einen Kaffee.")


@dataclass(frozen=True)
class Utterance:
    name: str
    language: str
    audio: np.ndarray  # int16, 16 kHz
    reference: str

    @property
    def seconds(self) -> float:
        return self.audio.size / RATE


def joined(parts: list[np.ndarray]) -> np.ndarray:
    pieces: list[np.ndarray] = [silence(0.2)]
    for part in parts:
        pieces += [part, silence(PAUSE_S)]
    return np.concatenate(pieces)


def corpus(quick: bool) -> list[Utterance]:
    clips = [(resample(*read_wav(path)[:2], RATE), text) for path, text in librivox()]
    out = [Utterance(f"librivox{i}", "en", a, t) for i, (a, t) in enumerate(clips)]
    groups = [(0, 1), (2, 3), (0, 1, 2, 3, 4)]
    for g in groups[1:] if quick else groups:
        out.append(
            Utterance(
                "librivox" + "+".join(map(str, g)),
                "en",
                joined([clips[i][0] for i in g]),
                " ".join(clips[i][1] for i in g),
            )
        )
    languages = ("de", "cs", "fr") if quick else ("en", "de", "es", "fr", "it", "cs", "pl")
    for lang in languages:
        sentences = SHORT[lang]
        spoken = [speak(s, lang) for s in sentences]
        for i in (0, 1):
            out.append(Utterance(f"{lang}-single{i}", lang, joined([spoken[i]]), sentences[i]))
        out.append(Utterance(f"{lang}-three", lang, joined(spoken[2:5]), " ".join(sentences[2:5])))
        # As many of the rest as fit: a long utterance.
        n, total = 5, 0.2
        while n < len(spoken) and total + (spoken[n].size / RATE + PAUSE_S) <= MAX_S:
            total += spoken[n].size / RATE + PAUSE_S
            n += 1
        out.append(Utterance(f"{lang}-long", lang, joined(spoken[5:n]), " ".join(sentences[5:n])))
    for i, sentence in enumerate(TYPED_GERMAN):
        out.append(
            Utterance(f"de-typed{i}", "de", joined([speak(sentence, "de", wpm=150)]), sentence)
        )
    return out


@dataclass(frozen=True)
class Outcome:
    text: str
    language: str
    seconds: float
    rechecked: bool = False


def nova(
    stt: SpeechToText, window: Callable[[float], int], *, recheck: bool = True
) -> Callable[[np.ndarray], Outcome]:
    def run(audio: np.ndarray) -> Outcome:
        stt.final_window = window
        stt.recheck_below = RECHECK_BELOW_LOGPROB if recheck else float("-inf")
        r = stt.transcribe(audio.tobytes(), language=None, task="transcribe")
        return Outcome(r.text, r.language, r.compute_s, r.rechecked)

    return run


def faster_whisper(stt: SpeechToText) -> Callable[[np.ndarray], Outcome]:
    """Nova's finals before the decode loop: faster-whisper's transcribe, padded to 30 s."""

    def run(audio: np.ndarray) -> Outcome:
        started = time.perf_counter()
        segments, info = stt._model.transcribe(
            audio.astype(np.float32) / 32768.0,
            language=None,
            beam_size=stt.beam_size,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        text = " ".join(s.text.strip() for s in segments)
        return Outcome(text, info.language, time.perf_counter() - started)

    return run


def step5(duration: float) -> int:
    return final_window_seconds(duration, sizes=(5, 10, 15, 20, 25, 30), margin=1.0)


def summarise(rows: list[dict[str, Any]], policy: str, base: str) -> dict[str, Any]:
    def wer_of(selected: list[dict[str, Any]]) -> float | None:
        if not selected:
            return None
        refs = [r["reference"] for r in selected]
        return round(wer(refs, [r["policies"][policy]["text"] for r in selected]), 4)

    languages = sorted({r["language"] for r in rows})
    seconds = [r["policies"][policy]["seconds"] for r in rows]
    ratios = [r["policies"][policy]["seconds"] / r["policies"][base]["seconds"] for r in rows]
    return {
        "wer": wer_of(rows),
        "wer_librivox": wer_of([r for r in rows if r["name"].startswith("librivox")]),
        "wer_by_language": {
            lang: wer_of([r for r in rows if r["language"] == lang]) for lang in languages
        },
        "wer_by_duration_s": {
            f"{lo}-{hi}": wer_of([r for r in rows if lo <= r["seconds"] < hi]) for lo, hi in BANDS
        },
        "language_right": round(
            sum(r["policies"][policy]["language"] == r["language"] for r in rows) / len(rows), 3
        ),
        "rechecked": sum(r["policies"][policy]["rechecked"] for r in rows),
        "seconds_per_utterance_mean": round(statistics.mean(seconds), 3),
        f"time_ratio_to_{base}_median": round(statistics.median(ratios), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    stt = load_model(load_settings(environ={}))
    policies: dict[str, Callable[[np.ndarray], Outcome]] = {
        "faster_whisper": faster_whisper(stt),
        "window_30s": nova(stt, lambda d: 30),
        "sized": nova(stt, final_window_seconds),
        "sized_only": nova(stt, final_window_seconds, recheck=False),
        "step5": nova(stt, step5),
    }
    utterances = corpus(args.quick)
    nova(stt, final_window_seconds)(utterances[0].audio)  # warm up
    rows: list[dict[str, Any]] = []
    names = list(policies)
    for i, u in enumerate(utterances):
        results: dict[str, Any] = {}
        # Rotate the order so that no policy always runs first (caches, load).
        for name in names[i % len(names) :] + names[: i % len(names)]:
            o = policies[name](u.audio)
            results[name] = {
                "text": o.text,
                "language": o.language,
                "seconds": round(o.seconds, 3),
                "rechecked": o.rechecked,
            }
        rows.append(
            {
                "name": u.name,
                "language": u.language,
                "seconds": round(u.seconds, 2),
                "reference": u.reference,
                "policies": results,
            }
        )
        print(
            f"{u.name:14} {u.seconds:5.1f}s "
            + " ".join(
                f"{n}={results[n]['seconds']:.2f}s/{results[n]['language']}"
                + ("" if wer([u.reference], [results[n]["text"]]) == 0 else "*")
                for n in names
            ),
            flush=True,
        )
    report = {
        "what": __doc__.split("\n\n")[0],
        "model": stt.reference,
        "beam_size": stt.beam_size,
        "utterances": len(rows),
        "audio_seconds": round(sum(r["seconds"] for r in rows), 1),
        "summary": {name: summarise(rows, name, "window_30s") for name in names},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
