"""Bad client input over a real WebSocket: a clear error event, and the connection stays usable.

Each test proves the "stays usable" part the only convincing way: after the bad input, a proper
session on the same connection still returns a final for real (espeak) speech, then the
gateway's summary and a normal close (1000).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from nova_cli.stack import LocalStack
from nova_common.settings import Settings
from tests.client import chunks
from tests.speech import silence, speak, wer

pytestmark = pytest.mark.slow  # every test ends with a real Whisper transcription

SENTENCE = "Please send the report to my office."
OTHER_SENTENCE = "The children are playing in the garden."
# Generous: two slow cores, shared with other test runs, and Whisper on each final.
EVENT_TIMEOUT_S = 120.0

Event = dict[str, Any]


def utterance(text: str) -> np.ndarray:
    """Speech followed by enough silence for the gateway's VAD to end the utterance."""
    return np.concatenate([silence(0.3), speak(text), silence(1.2)])


@pytest.fixture(scope="module")
def sentence_audio() -> np.ndarray:
    return utterance(SENTENCE)


@dataclass
class Outcome:
    """Everything a session sent after ``stop``, up to and including its summary."""

    finals: list[Event] = field(default_factory=list)
    errors: list[Event] = field(default_factory=list)
    summary: Event | None = None


class Wire:
    """A raw client connection: JSON events as plain dicts, so the wire format itself is tested."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send_json(self, payload: object) -> None:
        await self.ws.send(json.dumps(payload))

    async def event(self) -> Event:
        raw = await asyncio.wait_for(self.ws.recv(), EVENT_TIMEOUT_S)
        assert isinstance(raw, str), f"events are JSON text frames, got {raw!r:.80}"
        event = json.loads(raw)
        assert isinstance(event, dict) and isinstance(event.get("type"), str), event
        return event

    async def expect_error(self, code: str) -> Event:
        event = await self.event()
        assert event["type"] == "error", event
        assert event["code"] == code, event
        assert isinstance(event["reason"], str) and event["reason"], event
        assert event.get("fatal", False) is False, event  # the gateway keeps the connection
        return event

    async def start(self, **fields: object) -> Event:
        await self.send_json({"type": "start", **fields})
        event = await self.event()
        assert event["type"] == "started", event
        return event

    async def send_audio(self, audio: np.ndarray, rate: int = 16000) -> None:
        for chunk in chunks(audio, rate):
            await self.ws.send(chunk)

    async def stop(self) -> Outcome:
        """Send ``stop``; collect events until the summary, then expect a normal close."""
        await self.send_json({"type": "stop"})
        outcome = Outcome()
        while outcome.summary is None:
            event = await self.event()
            if event["type"] == "final":
                outcome.finals.append(event)
            elif event["type"] == "error":
                outcome.errors.append(event)
            elif event["type"] == "summary":
                outcome.summary = event
        await self.expect_close(1000)
        return outcome

    async def expect_close(self, code: int) -> None:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(self.ws.recv(), EVENT_TIMEOUT_S)
        assert closed.value.rcvd is not None, "the server sent no close frame"
        assert closed.value.rcvd.code == code, closed.value.rcvd
        assert closed.value.rcvd.reason, f"close {code} without a reason"


@asynccontextmanager
async def wire(stack: LocalStack) -> AsyncIterator[Wire]:
    # max_size=None: the client must be able to receive whatever the gateway sends.
    async with connect(stack.ws_url, max_size=None) as ws:
        yield Wire(ws)


def assert_heard(final: Event, text: str) -> None:
    assert wer([text], [final["text"]]) <= 0.25, (text, final["text"])


async def assert_session_works(conn: Wire, audio: np.ndarray, *, started: bool = False) -> None:
    """A full, proper session on ``conn``: one final for ``SENTENCE``, a summary, close 1000."""
    if not started:
        await conn.start(sample_rate=16000)
    await conn.send_audio(audio)
    outcome = await conn.stop()
    assert outcome.errors == []
    assert len(outcome.finals) == 1, outcome.finals
    assert_heard(outcome.finals[0], SENTENCE)
    assert outcome.summary is not None
    assert outcome.summary["finals"] == 1 and outcome.summary["failed"] == 0, outcome.summary


# Input that is refused before any session exists; a proper `start` must still work afterwards.
BEFORE_START: list[tuple[str, str | bytes | dict[str, object] | list[object], str]] = [
    ("audio before start", b"\x00\x00" * 1600, "not_started"),
    ("stop before start", {"type": "stop"}, "not_started"),
    ("sample rate far too low", {"type": "start", "sample_rate": 1000}, "unsupported_sample_rate"),
    (
        "sample rate far too high",
        {"type": "start", "sample_rate": 500_000},
        "unsupported_sample_rate",
    ),
    ("no channels", {"type": "start", "channels": 0}, "unsupported_channels"),
    ("unknown language", {"type": "start", "language": "xx"}, "unsupported_language"),
    ("not JSON", "this is not {json", "invalid_json"),
    ("unknown type", {"type": "hello"}, "unknown_message_type"),
    ("no type", {"language": "en"}, "invalid_message"),
    ("not an object", [1, 2, 3], "invalid_message"),
    ("invalid field", {"type": "start", "channels": "two"}, "invalid_message"),
    ("unknown encoding", {"type": "start", "encoding": "opus"}, "invalid_message"),
    # Found by tests/test_fuzz_frames.py: the decoder's RecursionError closed it with 1011.
    (
        "JSON nested too deeply",
        '{"type": "start", "x": ' + "[" * 20_000 + "]" * 20_000 + "}",
        "invalid_json",
    ),
]


@pytest.mark.parametrize(
    ("bad", "code"),
    [(bad, code) for _, bad, code in BEFORE_START],
    ids=[n for n, _, _ in BEFORE_START],
)
async def test_bad_input_before_start_is_refused_and_start_still_works(
    stack: LocalStack,
    sentence_audio: np.ndarray,
    bad: str | bytes | dict[str, object] | list[object],
    code: str,
) -> None:
    async with wire(stack) as conn:
        if isinstance(bad, bytes | str):
            await conn.ws.send(bad)
        else:
            await conn.send_json(bad)
        await conn.expect_error(code)
        await assert_session_works(conn, sentence_audio)


async def test_odd_byte_frame_mid_session_loses_no_audio(stack: LocalStack) -> None:
    async with wire(stack) as conn:
        await conn.start(sample_rate=16000)
        # A whole utterance is in the gateway before the bad frame, another one after it: the
        # bad frame must be refused on its own, without dropping or corrupting either.
        await conn.send_audio(utterance(SENTENCE))
        await conn.ws.send(b"\x01\x02\x03")
        await conn.send_audio(utterance(OTHER_SENTENCE))
        outcome = await conn.stop()

    assert [e["code"] for e in outcome.errors] == ["bad_frame"], outcome.errors
    assert [f["seq"] for f in outcome.finals] == [0, 1], outcome.finals
    assert_heard(outcome.finals[0], SENTENCE)
    assert_heard(outcome.finals[1], OTHER_SENTENCE)
    assert outcome.summary is not None and outcome.summary["finals"] == 2


async def test_odd_frame_between_halves_of_a_sentence(stack: LocalStack) -> None:
    """The bad frame lands mid-utterance: the halves either side still make one sentence."""
    speech = speak(SENTENCE)
    half = len(speech) // 2
    async with wire(stack) as conn:
        await conn.start(sample_rate=16000)
        await conn.send_audio(np.concatenate([silence(0.3), speech[:half]]))
        await conn.ws.send(b"\x01\x02\x03")
        await conn.send_audio(np.concatenate([speech[half:], silence(1.2)]))
        outcome = await conn.stop()

    assert [e["code"] for e in outcome.errors] == ["bad_frame"], outcome.errors
    assert len(outcome.finals) == 1, outcome.finals
    assert_heard(outcome.finals[0], SENTENCE)


async def test_second_start_is_refused_and_first_session_continues(
    stack: LocalStack, sentence_audio: np.ndarray
) -> None:
    async with wire(stack) as conn:
        first = await conn.start(sample_rate=16000)
        # Were this second start applied, 16 kHz audio read as 44.1 kHz stereo would be garbage.
        await conn.send_json({"type": "start", "sample_rate": 44100, "channels": 2})
        error = await conn.expect_error("already_started")
        assert error["session_id"] == first["session_id"]
        await assert_session_works(conn, sentence_audio, started=True)


async def test_frame_over_the_limit_is_refused_and_session_continues(
    stack: LocalStack, settings: Settings, sentence_audio: np.ndarray
) -> None:
    limit = settings.gateway.max_frame_bytes
    async with wire(stack) as conn:
        await conn.start(sample_rate=16000)
        # Binary: an even byte count, so it would be valid audio were it not too large.
        await conn.ws.send(bytes(limit + 2))
        await conn.expect_error("frame_too_large")
        # Text: fewer characters than the limit, but more bytes (two per "é") — the limit is bytes.
        await conn.ws.send(
            json.dumps({"type": "stop", "pad": "é" * (limit // 2 + 1)}, ensure_ascii=False)
        )
        await conn.expect_error("frame_too_large")
        # Exactly 4x the limit is still read and refused (aiohttp's own limit excludes its value).
        bare = len(json.dumps({"type": "stop", "pad": ""}))
        await conn.ws.send(json.dumps({"type": "stop", "pad": "a" * (4 * limit - bare)}))
        await conn.expect_error("frame_too_large")
        await assert_session_works(conn, sentence_audio, started=True)


async def test_frame_far_over_the_limit_closes_with_1009(
    stack: LocalStack, settings: Settings
) -> None:
    async with wire(stack) as conn:
        await conn.start(sample_rate=16000)
        # Past 4x the limit websockets itself refuses to buffer the frame and fails the connection.
        with suppress(ConnectionClosed):  # the server may close while we are still writing
            await conn.ws.send(bytes(4 * settings.gateway.max_frame_bytes + 2))
        await conn.expect_close(1009)


async def test_text_that_is_not_utf8_closes_with_1007_and_a_reason(stack: LocalStack) -> None:
    async with wire(stack) as conn:
        await conn.start(sample_rate=16000)
        await conn.ws.send(b'{"type": "st\xffop"}', text=True)  # websockets does not check it
        await conn.expect_close(1007)


async def test_started_echoes_the_settings_in_effect(stack: LocalStack) -> None:
    """Found by tests/test_fuzz_frames.py: partials, profile and word_timestamps came back as
    their defaults whatever the start asked for."""
    settings = {"partials": False, "profile": "typing", "word_timestamps": True}
    async with wire(stack) as conn:
        started = await conn.start(sample_rate=16000, **settings)
        assert {k: started[k] for k in settings} == settings, started


async def test_stop_sends_summary_then_closes_normally(
    stack: LocalStack, sentence_audio: np.ndarray
) -> None:
    async with wire(stack) as conn:
        started = await conn.start(sample_rate=16000)
        await conn.send_audio(sentence_audio)
        outcome = await conn.stop()  # asserts the close code 1000 after the summary

    assert outcome.summary is not None
    assert outcome.summary["session_id"] == started["session_id"]
    assert outcome.summary["finals"] == 1
    assert outcome.summary["audio_seconds"] == pytest.approx(len(sentence_audio) / 16000, abs=0.05)
    # Nothing may follow the summary: it is the last event, and the close is a clean one.
    assert isinstance(conn.ws.close_code, int) and conn.ws.close_code == 1000
