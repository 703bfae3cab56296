"""Gateway behaviour around a session's edges: shutdown mid-session, no worker running, and
refused audio keeping the session clock in step with the client's recording."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from nova_cli.stack import LocalStack
from nova_common.settings import Settings
from nova_stt.transcriber import SpeechToText
from tests.client import chunks
from tests.speech import silence, speak

pytestmark = pytest.mark.slow

TIMEOUT_S = 120.0
FIRST = "I would like a cup of coffee."
SECOND = "The children are playing in the garden."


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
    return event


async def open_session(url: str) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(url)
    await ws.send(json.dumps({"type": "start"}))
    started = await next_event(ws)
    assert started["type"] == "started"
    return ws, started


async def test_shutdown_mid_session_delivers_finals_and_summary(
    settings: Settings, whisper: SpeechToText
) -> None:
    stack = await LocalStack(settings, stt_workers=1, model=whisper).start()
    stopped = False
    try:
        # The worker's heartbeat heard first, or a loaded machine gives a no_stt_worker notice.
        await stack.wait_ready()
        ws, _ = await open_session(stack.ws_url)
        audio = np.concatenate([silence(0.3), speak(FIRST), silence(1.2), speak(SECOND)])
        for chunk in chunks(audio, 16000):
            await ws.send(chunk)
        # The second sentence is still open (no silence after it, no stop): only the gateway's
        # shutdown flush can turn it into a final.
        assert (await next_event(ws))["type"] == "final"
        stopping = asyncio.create_task(stack.stop())
        stopped = True
        events = []
        while True:
            try:
                events.append(await next_event(ws))
            except ConnectionClosed:
                break
        await stopping
        assert [e["type"] for e in events] == ["final", "summary"], events
        assert events[0]["seq"] == 1 and "garden" in events[0]["text"].lower()
        assert events[1]["finals"] == 2
        assert ws.close_code == 1001
    finally:
        if not stopped:
            await stack.stop()


async def test_no_worker_is_announced_and_audio_waits_for_one(
    settings: Settings, whisper: SpeechToText
) -> None:
    async with LocalStack(settings, stt_workers=0) as stack:
        ws, _ = await open_session(stack.ws_url)
        notice = await next_event(ws)
        assert notice["type"] == "notice" and notice["code"] == "no_stt_worker"
        for chunk in chunks(np.concatenate([speak(FIRST), silence(1.2)]), 16000):
            await ws.send(chunk)
        await ws.send(json.dumps({"type": "stop"}))
        # The utterance waits in JetStream; a worker that starts later transcribes it.
        await stack.add_worker(whisper)
        events = [await next_event(ws) for _ in range(2)]
        types = [e["type"] for e in events]
        if types[0] == "notice":  # the stop may still have found no worker
            events = [events[1], await next_event(ws)]
        assert [e["type"] for e in events] == ["final", "summary"], events
        assert "coffee" in events[0]["text"].lower()


async def test_refused_audio_keeps_the_session_clock(stack: LocalStack) -> None:
    refused_seconds = 0.5

    async def second_start(refuse: bool) -> float:
        ws, _ = await open_session(stack.ws_url)
        for chunk in chunks(np.concatenate([speak(FIRST), silence(1.2)]), 16000):
            await ws.send(chunk)
        if refuse:
            # Half a second of samples plus one stray byte: refused as a bad frame.
            await ws.send(bytes(int(16000 * refused_seconds) * 2 + 1))
            error = await next_event(ws)
            assert error["type"] == "error" and error["code"] == "bad_frame"
        for chunk in chunks(np.concatenate([speak(SECOND), silence(1.2)]), 16000):
            await ws.send(chunk)
        await ws.send(json.dumps({"type": "stop"}))
        finals = []
        while (event := await next_event(ws))["type"] != "summary":
            if event["type"] == "final":
                finals.append(event)
        await ws.close()
        assert len(finals) == 2, finals
        return float(finals[1]["start"])

    plain, with_refused = await second_start(False), await second_start(True)
    assert with_refused == pytest.approx(plain + refused_seconds, abs=0.04)
