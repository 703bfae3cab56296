"""Translation end to end: real speech through the gateway, Whisper base, the MT worker with
Debian's Apertium (installed by `make test`), a real nats-server. The client side here is a
plain WebSocket, written from the protocol, so the events and their order are what is tested."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import nats
import numpy as np
import pytest
import sacrebleu
import websockets

from nova_cli.stack import LocalStack
from nova_common.settings import Settings
from nova_common.subjects import Subjects
from nova_mt.apertium import ApertiumBackend
from nova_mt.backend import TranslationBackend
from nova_stt.transcriber import SpeechToText
from tests.speech import silence, speak
from tests.worker_helpers import eventually

pytestmark = pytest.mark.slow

ENGLISH = [
    "Good morning, everyone, and welcome to the meeting.",
    "I would like a cup of coffee, please.",
    "The children are playing in the garden.",
    "Thank you for your help with the project.",
]
# Written by hand (not by any engine), as a translator would.
SPANISH_REFERENCES = [
    "Buenos días a todos y bienvenidos a la reunión.",
    "Me gustaría una taza de café, por favor.",
    "Los niños están jugando en el jardín.",
    "Gracias por su ayuda con el proyecto.",
]
SPANISH = [
    "Buenos días a todos y bienvenidos a la reunión.",
    "Me gustaría una taza de café, por favor.",
    "Los niños están jugando en el jardín.",
]
ENGLISH_REFERENCES = [
    "Good morning everyone and welcome to the meeting.",
    "I would like a cup of coffee, please.",
    "The children are playing in the garden.",
]


def chunks(audio: np.ndarray, seconds: float = 0.1) -> list[bytes]:
    step = int(16000 * seconds)
    raw = audio.astype("<i2")
    return [raw[i : i + step].tobytes() for i in range(0, len(raw), step)]


async def session(
    url: str,
    start: dict[str, Any],
    parts: Sequence[np.ndarray],
    *,
    between: Sequence[dict[str, Any] | None] = (),
) -> list[dict[str, Any]]:
    """Every event of one session, in the order the gateway sent them. ``between[i]`` is a
    control message sent after part ``i``'s audio (and its pause)."""
    events: list[dict[str, Any]] = []
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "start", **start}))
        events.append(json.loads(await ws.recv()))
        assert events[0]["type"] == "started", events[0]

        async def receive() -> None:
            async for frame in ws:
                events.append(json.loads(frame))

        reader = asyncio.create_task(receive())
        await ws.send(silence(0.5).astype("<i2").tobytes())
        for i, part in enumerate(parts):
            for chunk in chunks(np.concatenate([part, silence(1.2)])):
                await ws.send(chunk)
            control = between[i] if i < len(between) else None
            if control is not None:
                await ws.send(json.dumps(control))
        await ws.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(reader, 300)
    return events


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def chrf(hypotheses: list[str], references: list[str]) -> float:
    return float(sacrebleu.corpus_chrf(hypotheses, [references]).score)


@pytest.fixture(scope="module")
def apertium() -> list[TranslationBackend]:
    backend = ApertiumBackend.discover("apertium")
    assert backend is not None, "apertium is not installed: `make test` installs apertium-eng-spa"
    assert ("en", "es") in backend.pairs, "apertium-eng-spa is missing (make test installs it)"
    return [backend]


async def test_english_speech_comes_back_with_spanish_translations(
    settings: Settings, whisper: SpeechToText, apertium: list[TranslationBackend]
) -> None:
    async with LocalStack(settings, model=whisper, mt_workers=1, backends=apertium) as stack:
        events = await session(
            stack.ws_url, {"language": "en", "translate_to": ["es"]}, [speak(s) for s in ENGLISH]
        )
    assert of_type(events, "error") == []
    finals = of_type(events, "final")
    translations = of_type(events, "translation")
    assert [f["seq"] for f in finals] == list(range(len(ENGLISH))), finals
    assert sorted(t["seq"] for t in translations) == [f["seq"] for f in finals]
    order = [(e["type"], e["seq"]) for e in events if e["type"] in ("final", "translation")]
    for t in translations:  # each translation comes after its own final
        assert order.index(("final", t["seq"])) < order.index(("translation", t["seq"]))
        assert (t["language"], t["source_language"], t["backend"]) == ("es", "en", "apertium")
        final = next(f for f in finals if f["seq"] == t["seq"])
        assert (t["start"], t["end"]) == (final["start"], final["end"])
    spanish = [t["text"] for t in sorted(translations, key=lambda t: t["seq"])]
    score = chrf(spanish, SPANISH_REFERENCES)
    assert score >= 40, (score, spanish)
    summary = events[-1]
    assert summary["type"] == "summary"
    assert (summary["finals"], summary["translations"], summary["translations_failed"]) == (
        len(ENGLISH), len(ENGLISH), 0,
    )  # fmt: skip


async def test_spanish_speech_comes_back_in_english_from_whisper(
    settings: Settings, whisper: SpeechToText
) -> None:
    # No MT worker: English is Whisper's own translate task, in the STT worker.
    async with LocalStack(settings, model=whisper) as stack:
        events = await session(
            stack.ws_url,
            {"language": "es", "translate_to": ["en"]},
            [speak(s, voice="es") for s in SPANISH],
        )
    assert of_type(events, "error") == []
    assert of_type(events, "notice") == []  # nothing waits for an MT worker
    finals = of_type(events, "final")
    translations = sorted(of_type(events, "translation"), key=lambda t: t["seq"])
    assert [t["seq"] for t in translations] == [f["seq"] for f in finals]
    assert all(f["language"] == "es" for f in finals)
    assert all((t["language"], t["backend"]) == ("en", "whisper") for t in translations)
    english = [t["text"] for t in translations]
    score = chrf(english, ENGLISH_REFERENCES)
    assert score >= 40, (score, english)


async def test_update_changes_the_targets_of_later_utterances(
    settings: Settings, whisper: SpeechToText, apertium: list[TranslationBackend]
) -> None:
    async with LocalStack(settings, model=whisper, mt_workers=1, backends=apertium) as stack:
        events = await session(
            stack.ws_url,
            {"language": "en"},
            [speak(s) for s in ENGLISH[:2]],
            between=[{"type": "update", "translate_to": ["es"]}],
        )
    updated = of_type(events, "updated")
    assert len(updated) == 1 and updated[0]["translate_to"] == ["es"]
    translations = of_type(events, "translation")
    # The first utterance ended before the update: only the second is translated.
    assert [t["seq"] for t in translations] == [1]
    assert of_type(events, "summary")[0]["finals"] == 2


async def test_an_unsupported_pair_is_an_error_and_the_transcript_still_arrives(
    settings: Settings, whisper: SpeechToText, apertium: list[TranslationBackend]
) -> None:
    async with LocalStack(settings, model=whisper, mt_workers=1, backends=apertium) as stack:
        events = await session(
            stack.ws_url, {"language": "en", "translate_to": ["ja", "es"]}, [speak(ENGLISH[1])]
        )
    finals = of_type(events, "final")
    assert len(finals) == 1 and "coffee" in finals[0]["text"].lower()
    errors = of_type(events, "error")
    assert [(e["code"], e["seq"], e["language"]) for e in errors] == [
        ("translation_unavailable", 0, "ja")
    ]
    assert "apertium" in errors[0]["reason"]
    assert [t["language"] for t in of_type(events, "translation")] == ["es"]
    summary = events[-1]
    assert (summary["translations"], summary["translations_failed"]) == (1, 1)


async def test_an_unknown_target_refuses_the_session(stack: LocalStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        await ws.send(json.dumps({"type": "start", "translate_to": ["klingon"]}))
        error = json.loads(await ws.recv())
    assert error["type"] == "error" and error["code"] == "unsupported_language"
    assert "klingon" in error["reason"]


async def test_translations_wait_for_an_mt_worker_and_arrive_when_one_starts(
    settings: Settings, whisper: SpeechToText, apertium: list[TranslationBackend]
) -> None:
    subjects = Subjects(settings.nats.subject_prefix)
    async with LocalStack(settings, model=whisper) as stack:
        nc = await nats.connect(stack.nats_url)
        try:
            task = asyncio.create_task(
                session(
                    stack.ws_url, {"language": "en", "translate_to": ["es"]}, [speak(ENGLISH[1])]
                )
            )

            # The transcript is out and its translation request waits in JetStream.
            async def queued() -> bool:
                info = await nc.jetstream().stream_info(subjects.text_stream)
                return info.state.messages == 1

            await eventually(queued, "a translation request in the TEXT stream", timeout=120)
            assert not task.done()
            await stack.add_mt_worker(apertium)
            events = await asyncio.wait_for(task, 120)
        finally:
            await nc.drain()
    notices = of_type(events, "notice")
    assert any(n["code"] == "no_mt_worker" for n in notices), notices
    finals, translations = of_type(events, "final"), of_type(events, "translation")
    assert len(finals) == 1 and [t["seq"] for t in translations] == [0]
    assert events.index(finals[0]) < events.index(translations[0])
    assert "café" in translations[0]["text"].lower(), translations
