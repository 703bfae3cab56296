"""Subtitles of a session over HTTP, while it runs: rendering (pure) and the endpoint on a real
stack (gateway, nats-server, Whisper base, Apertium)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import websockets

from nova_cli.stack import LocalStack
from nova_common.messages import Transcript, Translation
from nova_common.settings import Settings
from nova_common.subjects import new_session_id
from nova_gateway.subtitles import subtitles
from nova_mt.apertium import ApertiumBackend
from nova_stt.transcriber import SpeechToText
from tests.speech import silence, speak


def transcript(seq: int, text: str, start: float, end: float) -> Transcript:
    return Transcript(session_id="s", seq=seq, text=text, language="en", language_probability=1.0,
                      start=start, end=end, worker_id="w", compute_s=0.1)  # fmt: skip


def translation(seq: int, text: str, language: str = "es") -> Translation:
    return Translation(session_id="s", seq=seq, language=language, source_language="en",
                       text=text, backend="apertium", worker_id="w")  # fmt: skip


RESULTS = [
    transcript(1, "Second.", 3.0, 4.25),
    translation(0, "Primero."),
    transcript(0, "First.", 0.5, 1.5),
    transcript(1, "Second, repeated.", 3.0, 4.25),  # a redelivery: the first one wins
    transcript(2, "", 5.0, 6.0),  # no text: no cue
]


def test_vtt_cues_in_seq_order() -> None:
    assert subtitles(RESULTS, "vtt") == (
        "WEBVTT\n\n"
        "1\n00:00:00.500 --> 00:00:01.500\nFirst.\n\n"
        "2\n00:00:03.000 --> 00:00:04.250\nSecond.\n\n"
    )


def test_vtt_escapes_markup_and_srt_does_not() -> None:
    spoken = [transcript(0, "Tom & Jerry <3", 0.0, 1.0)]
    assert "Tom &amp; Jerry &lt;3" in subtitles(spoken, "vtt")
    assert "Tom & Jerry <3" in subtitles(spoken, "srt")


def test_srt_in_a_target_language_has_only_translated_cues() -> None:
    assert subtitles(RESULTS, "srt", language="es") == (
        "1\n00:00:00,500 --> 00:00:01,500\nPrimero.\n\n"
    )
    assert subtitles(RESULTS, "srt", language="de") == ""


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.mark.slow
async def test_subtitles_of_a_running_session(settings: Settings, whisper: SpeechToText) -> None:
    apertium = ApertiumBackend.discover("apertium")
    assert apertium is not None, "make test installs apertium-eng-spa"
    sentences = ["I would like a cup of coffee.", "The children are playing in the garden."]
    async with LocalStack(settings, model=whisper, mt_workers=1, backends=[apertium]) as stack:
        async with websockets.connect(stack.ws_url) as ws:
            await ws.send(json.dumps({"type": "start", "language": "en", "translate_to": ["es"]}))
            sid = json.loads(await ws.recv())["session_id"]
            audio = np.concatenate([silence(0.3), *(np.concatenate([speak(s), silence(1.2)])
                                                    for s in sentences)])  # fmt: skip
            await ws.send(audio.astype("<i2").tobytes())
            seen: set[tuple[str, int]] = set()
            async with asyncio.timeout(180):
                while len(seen) < 4:  # two finals and their translations; the session stays open
                    event = json.loads(await ws.recv())
                    assert event["type"] != "error", event
                    if event["type"] in ("final", "translation"):
                        seen.add((event["type"], event["seq"]))
            base = f"{stack.http_url}/sessions/{sid}/subtitles"
            status, kind, vtt = await asyncio.to_thread(get, f"{base}.vtt")
            _, srt_kind, srt = await asyncio.to_thread(get, f"{base}.srt?language=es")
            bad = await asyncio.to_thread(get, f"{base}.vtt?language=klingon")
            unknown = await asyncio.to_thread(
                get, f"{stack.http_url}/sessions/{new_session_id()}/subtitles.vtt"
            )
            await ws.send(json.dumps({"type": "stop"}))

    assert (status, kind) == (200, "text/vtt; charset=utf-8")
    assert vtt.startswith("WEBVTT\n\n1\n00:00:") and "coffee" in vtt and "garden" in vtt, vtt
    assert srt_kind == "application/x-subrip; charset=utf-8"
    assert srt.startswith("1\n00:00:") and "café" in srt and "jardín" in srt, srt
    assert bad[0] == 400 and "klingon" in bad[2]
    assert unknown[0] == 404
