"""A session that remembers its language: 20 short espeak-ng sentences per session, each its own
utterance with ``language: auto``, decided alone and with the session's memory, against offline
faster-whisper on the whole session's audio as one file.

For each language, the same utterances run through ``SpeechToText.transcribe``:

- ``alone``: no prior, each utterance's own detection decides (Nova before);
- ``session``: the prior from ``nova_gateway.language_memory.SessionLanguage``, fed each final
  in order as the gateway does (``observe(transcript)`` after it, ``prior()`` before the next);
- ``context``: the session's memory and, as Whisper's prompt, the text of the session's last
  two finals (what a gateway could send as ``AudioSegment.prompt``): does context close the gap
  to offline decoding, which conditions each window on the text before it?
- ``offline``: faster-whisper's ``transcribe`` on the concatenated audio (one language detected
  from its first 30 s, beam 5, its defaults).

Figures per session and over all: the share of the reference's words in utterances labelled
with the right language, and WER (tests/speech.py normalisation) of the session's text.

Run (~30 minutes on 2 loaded cores):

    .venv/bin/python bench/session_language.py [--languages cs de es pl]
                                               [--out bench/results/session_language.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.speech_corpus import SHORT  # noqa: E402
from nova_common.messages import Transcript  # noqa: E402
from nova_common.settings import load_settings  # noqa: E402
from nova_gateway.language_memory import SessionLanguage  # noqa: E402
from nova_stt.service import load_model  # noqa: E402
from nova_stt.transcriber import SpeechToText  # noqa: E402
from tests.speech import silence, speak, wer  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "session_language.json"
RATE = 16000
# As the gateway cuts an utterance: a little lead-in, the end silence that closed it.
LEAD_S, END_S = 0.3, 0.6
CONTEXT_FINALS = 2
MODES = ("alone", "session", "context")


@dataclass(frozen=True)
class Heard:
    text: str
    language: str
    scores: tuple[tuple[str, float], ...]


def utterances(language: str, count: int) -> list[tuple[str, np.ndarray]]:
    return [
        (s, np.concatenate([silence(LEAD_S), speak(s, language), silence(END_S)]))
        for s in SHORT[language][:count]
    ]


def run_session(
    stt: SpeechToText,
    session: Sequence[tuple[str, np.ndarray]],
    *,
    remember: bool,
    context: bool = False,
) -> list[Heard]:
    memory = SessionLanguage()
    heard: list[Heard] = []
    start = 0.0
    for _, audio in session:
        end = start + audio.size / RATE
        result = stt.transcribe(
            audio.tobytes(),
            language=None,
            task="transcribe",
            prior=memory.prior() if remember else (),
            prompt=" ".join(h.text for h in heard[-CONTEXT_FINALS:]) if context else "",
        )
        # The worker's transcript as the gateway receives it (only the fields memory reads
        # matter here).
        memory.observe(
            Transcript(
                session_id="bench",
                seq=len(heard),
                text=result.text,
                language=result.language,
                language_probability=result.language_probability,
                start=start,
                end=end,
                worker_id="bench",
                compute_s=result.compute_s,
                language_scores=result.language_scores,
            )
        )
        heard.append(
            Heard(
                result.text,
                result.language,
                tuple((s.language, s.weight) for s in result.language_scores),
            )
        )
        start = end
    return heard


def offline(stt: SpeechToText, session: Sequence[tuple[str, np.ndarray]]) -> tuple[str, str]:
    audio = np.concatenate([a for _, a in session]).astype(np.float32) / 32768.0
    segments, info = stt._model.transcribe(audio, beam_size=stt.beam_size)
    return " ".join(s.text.strip() for s in segments), info.language


def labelled_right(
    session: Sequence[tuple[str, np.ndarray]], heard: list[Heard], lang: str
) -> float:
    words = [len(ref.split()) for ref, _ in session]
    right = sum(n for n, h in zip(words, heard, strict=True) if h.language == lang)
    return right / sum(words)


def measure(stt: SpeechToText, lang: str, count: int) -> dict[str, Any]:
    session = utterances(lang, count)
    reference = " ".join(ref for ref, _ in session)
    out: dict[str, Any] = {"language": lang, "utterances": len(session)}
    for mode in MODES:
        heard = run_session(stt, session, remember=mode != "alone", context=mode == "context")
        out[mode] = {
            "words_labelled_right": round(labelled_right(session, heard, lang), 3),
            "wer": round(wer([reference], [" ".join(h.text for h in heard)]), 4),
            "languages": [h.language for h in heard],
            "texts": [h.text for h in heard],
            "scores": [h.scores for h in heard],
        }
    text, detected = offline(stt, session)
    out["offline"] = {
        "words_labelled_right": 1.0 if detected == lang else 0.0,
        "language": detected,
        "wer": round(wer([reference], [text]), 4),
        "text": text,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--languages", nargs="+", default=["cs", "de", "es", "pl"])
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    stt = load_model(load_settings(environ={}))
    sessions = []
    for lang in args.languages:
        result = measure(stt, lang, args.sentences)
        sessions.append(result)
        print(
            lang,
            {m: (result[m]["words_labelled_right"], result[m]["wer"]) for m in (*MODES, "offline")},
            flush=True,
        )
    summary = {
        mode: {
            "words_labelled_right_mean": round(
                sum(s[mode]["words_labelled_right"] for s in sessions) / len(sessions), 3
            ),
            "wer_mean": round(sum(s[mode]["wer"] for s in sessions) / len(sessions), 4),
        }
        for mode in (*MODES, "offline")
    }
    report = {
        "what": __doc__.split("\n\n")[0],
        "model": stt.reference,
        "summary": summary,
        "sessions": sessions,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
