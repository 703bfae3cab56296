"""Per-key limits trip with their close codes, and what was accepted before is not lost: the
finals of the audio already sent still come. Real speech (espeak-ng), the real Whisper base
model, a real nats-server and gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from nova_common.messages import FinalEvent, StartMessage
from nova_common.settings import Settings
from nova_stt.transcriber import SpeechToText
from tests.auth_helpers import bearer, keyed_stack, ws_session
from tests.client import chunks
from tests.speech import speak, with_pauses

pytestmark = pytest.mark.slow

MEETING = "Good morning everyone and welcome to the meeting."
REPORT = "Please send the report to my office."
RATE = 16000
# 0.5 s of silence, MEETING (3.0 s), a 1.2 s pause, REPORT from 4.7 s (2.3 s), a pause: 8.2 s.
REPORT_STARTS_S = 4.7


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return with_pauses([speak(MEETING), speak(REPORT)])


def texts(finals: list[FinalEvent]) -> str:
    return " ".join(f.text for f in finals).lower()


async def test_audio_faster_than_the_keys_rate_closes_4429_after_its_finals(
    settings: Settings, tmp_path: Path, whisper: SpeechToText, speech: np.ndarray
) -> None:
    async with keyed_stack(settings, tmp_path, model=whisper) as gw:
        # A live microphone's key: real time, with 5 s in hand; the file comes at full speed.
        key = gw.add_key("mic", rate=1.0, burst_s=5.0)
        outcome = await ws_session(
            gw.ws,
            headers=bearer(key),
            start=StartMessage(language="en", sample_rate=RATE),
            audio=chunks(speech, RATE),
        )
    assert outcome.close_code == 4429 and "audio rate" in outcome.close_reason
    assert "rate_limited" in outcome.errors
    assert outcome.summary is not None  # finished like a stop: summary, then the close
    assert 4.9 <= outcome.summary.audio_seconds <= 5.3
    heard = texts(outcome.of(FinalEvent))
    assert "morning" in heard  # accepted before the limit: transcribed
    assert "office" not in heard  # refused: never published


async def test_a_frame_over_the_keys_limit_closes_1009_after_its_finals(
    settings: Settings, tmp_path: Path, whisper: SpeechToText, speech: np.ndarray
) -> None:
    async with keyed_stack(settings, tmp_path, model=whisper) as gw:
        key = gw.add_key("small", max_frame_bytes=8000)
        small = chunks(speech[: int(REPORT_STARTS_S * RATE)], RATE)  # 3200-byte frames
        big = speech[int(REPORT_STARTS_S * RATE) :].astype("<i2").tobytes()
        outcome = await ws_session(
            gw.ws,
            headers=bearer(key),
            start=StartMessage(language="en", sample_rate=RATE),
            audio=[*small, big],
        )
    assert outcome.close_code == 1009 and "8000" in outcome.close_reason
    assert "frame_limit" in outcome.errors
    heard = texts(outcome.of(FinalEvent))
    assert "morning" in heard and "office" not in heard


def seed_frame(pcm: np.ndarray, rate: int) -> bytes:
    metadata = json.dumps({"sampleRate": rate}).encode()
    return struct.pack("<I", len(metadata)) + metadata + pcm.astype("<i2").tobytes()


async def test_the_seeds_protocol_ends_a_session_at_the_keys_length_with_4408(
    settings: Settings, tmp_path: Path, whisper: SpeechToText, speech: np.ndarray
) -> None:
    async with keyed_stack(settings, tmp_path, model=whisper) as gw:
        key = gw.add_key("short", max_session_s=4.5)
        messages: list[dict[str, Any]] = []
        async with connect(f"{gw.ws}/v0?token={key}") as ws:
            step = RATE // 10
            with contextlib.suppress(ConnectionClosed):
                for i in range(0, len(speech), step):
                    await ws.send(seed_frame(speech[i : i + step], RATE))
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(120):
                    async for raw in ws:
                        messages.append(json.loads(raw))
            close = (ws.close_code, ws.close_reason or "")
    assert close[0] == 4408 and "4.5 s" in close[1]
    assert any(m["type"] == "error" and m["code"] == "session_limit" for m in messages)
    finals = " ".join(m["text"] for m in messages if m["type"] == "realtime" and m["is_final"])
    assert "morning" in finals.lower() and "office" not in finals.lower()
