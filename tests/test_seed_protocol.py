"""The seed's protocol on ``/ws/v0``, so the original Nova Voice desktop client works unchanged.

Written from the seed's API reference (github.com/buiilding/Nova-Voice,
backend/docs/API_REFERENCE.md) and what its Electron client does with each message
(frontend/electron/main.js), not from the adapter: binary frames are ``[u32 LE length][JSON
{"sampleRate": N}][PCM16 mono]``; JSON ``set_langs``, ``get_status``, ``start_over``; replies
``status``, ``realtime`` and ``utterance_end``; the client reads ``{"type": "error",
"message"}``. Real speech (espeak-ng), the real Whisper base model, Apertium for translation, a
real nats-server.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import nats
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from nova_cli.stack import LocalStack
from nova_common.messages import Transcript
from nova_common.settings import Settings
from nova_common.subjects import Subjects
from nova_gateway.replay import read_results
from nova_mt.apertium import ApertiumBackend
from nova_stt.transcriber import SpeechToText
from tests.speech import silence, speak, wer

TIMEOUT_S = 180.0
SEED_LANGUAGES = ("en", "es", "fr", "de", "vi", "zh", "ja", "hi")  # the reference's list

COFFEE = "I would like a cup of coffee with milk and sugar please."
GARDEN = "The children are playing in the garden behind the old house."
MEETING = "Good morning everyone and welcome to our weekly meeting."
REPORT = "Please send the quarterly report to my office before Friday."
DROPPED = "Nobody should ever read these seven zebras aloud"
STATION = "The next train to the city leaves from platform number four."


def frame(pcm: np.ndarray, rate: int) -> bytes:
    """One binary message exactly as the reference builds it."""
    metadata = json.dumps({"sampleRate": rate}).encode()
    return struct.pack("<I", len(metadata)) + metadata + pcm.astype("<i2").tobytes()


def frames(audio: np.ndarray, rate: int, seconds: float = 0.1) -> list[bytes]:
    step = int(rate * seconds)
    return [frame(audio[i : i + step], rate) for i in range(0, len(audio), step)]


def seed_url(stack: LocalStack) -> str:
    return stack.http_url.replace("http://", "ws://") + "/ws/v0"


def at(text: str, rate: int) -> np.ndarray:
    return speak(text, rate=rate)


class Inbox:
    """Every message the gateway sends, in order, with the wall time it arrived."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.arrived_at: list[float] = []
        self.closed = False
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                assert isinstance(raw, str), "the gateway sends JSON text frames only"
                async with self._changed:
                    self.messages.append(json.loads(raw))
                    self.arrived_at.append(time.time())
                    self._changed.notify_all()
        finally:
            async with self._changed:
                self.closed = True
                self._changed.notify_all()

    async def wait(
        self, what: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = TIMEOUT_S
    ) -> None:
        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: done(self.messages) or self.closed)

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {self.messages}") from None
        assert done(self.messages), f"connection closed before {what}: {self.messages}"

    async def reply(self, message: str, kind: str) -> dict[str, Any]:
        """Send ``message``; the first message of ``kind`` that arrives after it."""
        seen = len(self.messages)
        await self.ws.send(message)

        def found(messages: list[dict[str, Any]]) -> bool:
            return any(m["type"] == kind for m in messages[seen:])

        await self.wait(kind, found)
        return next(m for m in self.messages[seen:] if m["type"] == kind)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def finals(self) -> list[dict[str, Any]]:
        return [m for m in self.of_type("realtime") if m["is_final"]]


def count(kind: str, n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda messages: sum(m["type"] == kind for m in messages) >= n


def assert_status(status: dict[str, Any]) -> None:
    assert status["type"] == "status", status
    assert isinstance(status["client_id"], str) and status["client_id"], status
    assert isinstance(status["source_language"], str), status
    assert isinstance(status["target_language"], str), status
    assert isinstance(status["translation_enabled"], bool), status


async def send_in_real_time(ws: ClientConnection, messages: list[bytes]) -> None:
    """As a microphone delivers it: one 100 ms frame every 100 ms."""
    start = time.monotonic()
    for i, message in enumerate(messages):
        await asyncio.sleep(max(0.0, start + i * 0.1 - time.monotonic()))
        await ws.send(message)


@pytest.mark.slow
async def test_a_seed_client_streaming_48khz_gets_partials_finals_translations_and_ends(
    settings: Settings, whisper: SpeechToText
) -> None:
    apertium = ApertiumBackend.discover("apertium")
    assert apertium is not None and ("en", "es") in apertium.pairs, (
        "apertium-eng-spa is missing (make test installs it)"
    )
    rate = 48000
    async with (
        LocalStack(settings, model=whisper, mt_workers=1, backends=[apertium]) as stack,
        connect(seed_url(stack)) as ws,
    ):
        inbox = Inbox(ws)
        # The gateway greets a new client with its status, and answers get_status with it.
        await inbox.wait("the initial status", count("status", 1))
        initial = inbox.messages[0]
        assert_status(initial)
        await ws.send(json.dumps({"type": "get_status"}))
        await inbox.wait("a reply to get_status", count("status", 2))
        asked = inbox.of_type("status")[1]
        assert_status(asked)
        assert asked["client_id"] == initial["client_id"]

        await ws.send(
            json.dumps({"type": "set_langs", "source_language": "en", "target_language": "es"})
        )
        await inbox.wait("the status after set_langs", count("status", 3))
        updated = inbox.of_type("status")[2]
        assert_status(updated)
        assert (
            updated["source_language"],
            updated["target_language"],
            updated["translation_enabled"],
        ) == ("en", "es", True)
        client_id = updated["client_id"]

        malformed = [
            struct.pack("<I", 500) + b'{"sampleRate": 48000}',  # length beyond the frame
            struct.pack("<I", 9) + b"not json!" + bytes(960),  # header is not JSON
            frame(silence(0.1, rate), rate) + b"\x00",  # half a sample at the end
            frame(silence(0.1, 1000), 1000),  # no microphone records at 1 kHz
        ]
        first = at(COFFEE, rate)
        second = at(GARDEN, rate)
        await send_in_real_time(ws, frames(np.concatenate([silence(0.5, rate), first]), rate))
        await send_in_real_time(ws, frames(silence(1.5, rate), rate)[:8])
        for message in malformed:
            await ws.send(message)
        await send_in_real_time(
            ws, frames(np.concatenate([silence(0.7, rate), second, silence(1.5, rate)]), rate)
        )
        await inbox.wait("two utterance ends", count("utterance_end", 2))

    messages = inbox.messages
    errors = inbox.of_type("error")
    # Each malformed frame is reported in the form the client reads, and nothing else went wrong.
    assert len(errors) == len(malformed), errors
    assert all(isinstance(e["message"], str) and e["message"] for e in errors), errors

    finals = inbox.finals()
    assert len(finals) == 2, messages
    assert wer([COFFEE, GARDEN], [f["text"] for f in finals]) <= 0.2, finals
    # Translation on: each final carries its Spanish translation.
    assert "café" in finals[0]["translation"].lower(), finals[0]
    assert "jardín" in finals[1]["translation"].lower(), finals[1]

    # Per utterance: partial text first, then the final, then utterance_end. Partials are best
    # effort: on a loaded 2-core machine a short utterance's windows can all go stale behind
    # the previous final (scheduling them by what they buy is issue 11's), so one of the two
    # may have none, as in test_partials_live.
    flow = [m for m in messages if m["type"] in ("realtime", "utterance_end")]
    previous_end = -1
    with_partials = 0
    for final in finals:
        at_final = flow.index(final)
        partials = [m for m in flow[previous_end + 1 : at_final] if m["type"] == "realtime"]
        assert all(not p["is_final"] and p["text"] for p in partials), (final["text"], flow)
        with_partials += bool(partials)
        assert flow[at_final + 1]["type"] == "utterance_end", flow
        previous_end = at_final + 1
    assert with_partials >= 1, flow

    for message in flow:
        assert message["client_id"] == client_id, message
        arrived = inbox.arrived_at[messages.index(message)]
        assert isinstance(message["timestamp"], float), message
        assert abs(message["timestamp"] - arrived) < 5, (message, arrived)
    for message in inbox.of_type("realtime"):
        assert isinstance(message["text"], str) and isinstance(message["translation"], str)


@pytest.mark.slow
async def test_sample_rate_change_language_switch_start_over_and_shutdown(
    settings: Settings, whisper: SpeechToText
) -> None:
    stack = await LocalStack(settings, model=whisper).start()
    stopped = False
    try:
        await stack.wait_ready()
        ws = await connect(seed_url(stack))
        inbox = Inbox(ws)
        await inbox.wait("the initial status", count("status", 1))
        status = await inbox.reply(
            json.dumps({"type": "set_langs", "source_language": "en", "target_language": "en"}),
            "status",
        )
        assert (status["source_language"], status["target_language"]) == ("en", "en")
        assert status["translation_enabled"] is False

        # The device changes mid-session: 48 kHz, then 44.1 kHz. The second sentence is still
        # open (no silence after it) when the client switches languages.
        for message in frames(np.concatenate([at(MEETING, 48000), silence(1.5, 48000)]), 48000):
            await ws.send(message)
        for message in frames(np.concatenate([silence(0.3, 44100), at(REPORT, 44100)]), 44100):
            await ws.send(message)
        await inbox.wait("the first final", count("utterance_end", 1))
        status = await inbox.reply(
            json.dumps({"type": "set_langs", "source_language": "auto", "target_language": "auto"}),
            "status",
        )
        assert (status["source_language"], status["translation_enabled"]) == ("auto", False)
        # What was said before the switch was transcribed and delivered before its answer.
        assert len(inbox.finals()) == 2 and count("utterance_end", 2)(inbox.messages)

        for message in frames(np.concatenate([at(STATION, 16000), silence(1.5)]), 16000):
            await ws.send(message)
        await inbox.wait("the third final", count("utterance_end", 3))

        # start_over while a sentence is being spoken: that sentence is dropped.
        for message in frames(np.concatenate([silence(0.3), at(DROPPED, 16000)]), 16000):
            await ws.send(message)
        await ws.send(json.dumps({"type": "start_over"}))
        await inbox.reply(json.dumps({"type": "get_status"}), "status")
        for message in frames(np.concatenate([silence(0.3), at(COFFEE, 16000)]), 16000):
            await ws.send(message)
        # The gateway shuts down mid-sentence: the sentence is still transcribed and delivered,
        # then the connection closes with 1001 ("going away").
        await asyncio.sleep(1.0)
        stopped = True
        await stack.stop()
        await inbox.wait("the connection to close", lambda _: inbox.closed)
        assert ws.close_code == 1001
    finally:
        if not stopped:
            await stack.stop()

    assert inbox.of_type("error") == [], inbox.messages
    texts = [f["text"] for f in inbox.finals()]
    assert wer([MEETING, REPORT, STATION, COFFEE], texts) <= 0.2, texts
    assert all(f["translation"] == "" for f in inbox.finals())
    assert "zebras" not in " ".join(texts).lower()
    ends = [
        "utterance_end" if m["type"] == "utterance_end" else "final"
        for m in inbox.messages
        if m["type"] == "utterance_end" or (m["type"] == "realtime" and m["is_final"])
    ]
    assert ends == ["final", "utterance_end"] * 4, inbox.messages


async def test_bad_messages_and_frames_get_errors_and_the_connection_stays_usable(
    settings: Settings,
) -> None:
    async with LocalStack(settings, stt_workers=0) as stack, connect(seed_url(stack)) as ws:
        inbox = Inbox(ws)
        await inbox.wait("the initial status", count("status", 1))
        client_id = inbox.messages[0]["client_id"]

        async def answer_to(message: str | bytes) -> dict[str, Any]:
            seen = len(inbox.messages)
            await ws.send(message)
            await inbox.wait("an answer", lambda m: len(m) > seen)
            return inbox.messages[seen]

        for source, target in zip(SEED_LANGUAGES, reversed(SEED_LANGUAGES), strict=True):
            status = await answer_to(
                json.dumps(
                    {"type": "set_langs", "source_language": source, "target_language": target}
                )
            )
            assert_status(status)
            assert (status["source_language"], status["target_language"]) == (source, target)
            assert status["translation_enabled"] is (source != target)
            assert status["client_id"] == client_id

        deep = b"[" * 20_000 + b"]" * 20_000  # JSON nested deeper than any decoder goes
        deep_header = b'{"sampleRate": 16000, "x": ' + deep + b"}"
        bad: list[str | bytes] = [
            json.dumps(
                {"type": "set_langs", "source_language": "klingon", "target_language": "en"}
            ),
            json.dumps({"type": "set_langs", "source_language": "en", "target_language": "xx"}),
            "this is not json",
            json.dumps({"type": "dance"}),
            json.dumps(["get_status"]),
            b"\x01\x00",  # shorter than the length prefix
            struct.pack("<I", 1000) + b'{"sampleRate": 16000}',
            struct.pack("<I", 5) + b"{oops" + bytes(320),
            frame(silence(0.1, 16000), 0),
            frame(silence(0.1, 16000), 10_000_000),
            # Found by tests/test_fuzz_frames.py: the decoder's RecursionError closed with 1011.
            '{"type": "get_status", "x": ' + deep.decode() + "}",
            struct.pack("<I", len(deep_header)) + deep_header + bytes(320),
        ]
        for message in bad:
            error = await answer_to(message)
            assert error["type"] == "error", (message, error)
            assert isinstance(error["message"], str) and error["message"], error

        # The refused set_langs changed nothing; the connection still answers.
        status = await answer_to(json.dumps({"type": "get_status"}))
        assert_status(status)
        assert (status["source_language"], status["target_language"]) == ("hi", "en")


@pytest.mark.slow
async def test_a_client_that_leaves_mid_sentence_still_has_it_transcribed(
    stack: LocalStack,
) -> None:
    # The seed has no "stop": its client ends by disconnecting.
    async with connect(seed_url(stack)) as ws:
        inbox = Inbox(ws)
        await inbox.wait("the initial status", count("status", 1))
        client_id = inbox.messages[0]["client_id"]
        for message in frames(np.concatenate([silence(0.3, 48000), at(GARDEN, 48000)]), 48000):
            await ws.send(message)

    def subtitles() -> str:
        status, body = http_text(f"{stack.http_url}/sessions/{client_id}/subtitles.vtt")
        return body if status == 200 else ""

    deadline = time.monotonic() + TIMEOUT_S
    while "garden" not in (text := await asyncio.to_thread(subtitles)).lower():
        assert time.monotonic() < deadline, f"never transcribed: {text!r}"
        await asyncio.sleep(0.5)
    cues = [line for line in text.splitlines()[1:] if line and "-->" not in line]
    assert wer([GARDEN], [" ".join(cues)]) <= 0.2, text


@pytest.mark.slow
async def test_a_client_that_left_just_before_shutdown_still_has_it_transcribed(
    settings: Settings, whisper: SpeechToText
) -> None:
    """The gateway stops a moment after the client left: the left session's flush and its
    final still get the grace period (the workers stop only after the gateway)."""
    stack = await LocalStack(settings, stt_workers=1, model=whisper).start()
    try:
        await stack.wait_ready()
        async with connect(seed_url(stack)) as ws:
            inbox = Inbox(ws)
            await inbox.wait("the initial status", count("status", 1))
            client_id = inbox.messages[0]["client_id"]
            for message in frames(np.concatenate([silence(0.3, 48000), at(GARDEN, 48000)]), 48000):
                await ws.send(message)
    finally:
        await stack.stop()
    # The stack is gone; the test session's nats-server keeps RESULTS.
    assert settings.nats.url is not None
    nc = await nats.connect(settings.nats.url)
    try:
        results = await read_results(
            nc.jetstream(), Subjects(settings.nats.subject_prefix), client_id, complete=True
        )
    finally:
        await nc.drain()
    texts = [r.text for r in results if isinstance(r, Transcript) and r.kind == "final"]
    assert wer([GARDEN], [" ".join(texts)]) <= 0.2, results


def http_text(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
