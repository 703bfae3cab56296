"""The fuzzing client's side of one connection, the checks on every answer, and what the
gateway logged meanwhile.

``Wire.check`` holds the oracle for one frame: the answer the model says it is owed arrives
within ``REPLY_TIMEOUT_S`` (never a silent hang), every event validates against its schema in
``schemas/``, an error has a documented code and a reason, and a close has a documented code and
a reason. Events that belong to no frame (notices, per-utterance errors) may come in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.fuzz_model import Answer, Closed, Error, Event, Silent, Summary, Unread
from tests.fuzz_strategies import BadUtf8, Frame, Text
from tests.json_schema import Schema

# Generous: two cores shared with other test runs. An answer normally takes milliseconds.
REPLY_TIMEOUT_S = 15.0

# Documented in the README (the /ws section's error codes, and the seed's two more).
FRAME_ERRORS = frozenset({
    "not_started", "bad_frame", "unsupported_sample_rate", "unsupported_channels",
    "invalid_json", "unsupported_language", "invalid_message", "unknown_message_type",
    "already_started", "frame_too_large", "bad_header", "unsupported_encoding",
})  # fmt: skip
# Per utterance: they come when the utterance's fate is known, not as a frame's answer.
UTTERANCE_ERRORS = frozenset({
    "backpressure", "overloaded", "queue_unavailable", "bad_segment", "stt_failed",
    "finals_timeout", "translation_unavailable", "translation_failed",
})  # fmt: skip
NOTICES = frozenset({"no_stt_worker", "no_mt_worker", "falling_behind"})
CLOSE_CODES = frozenset({1000, 1001, 1007, 1009, 1013, 4408, 4409, 4429})


@dataclass
class Tally:
    """What a run sent and got, for its assertions and its report."""

    frames: int = 0
    connections: int = 0
    answers: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        top = ", ".join(f"{k} {n}" for k, n in self.answers.most_common())
        return f"{self.frames} frames over {self.connections} connections; answers: {top}"


@dataclass(frozen=True)
class Protocol:
    name: str
    schema: Schema
    reason_field: str  # an error's text: "reason" on /ws, the seed's "message"
    asynchronous: frozenset[str]  # event types that answer no frame
    asynchronous_errors: frozenset[str]

    def answers_no_frame(self, event: dict[str, Any]) -> bool:
        if event["type"] == "notice":
            assert event["code"] in NOTICES, f"undocumented notice: {event}"
            return True
        if event["type"] == "error":
            return event["code"] in self.asynchronous_errors
        return event["type"] in self.asynchronous


WS = Protocol(
    "/ws",
    Schema("server-events.json"),
    "reason",
    frozenset({"partial", "final", "translation"}),
    UTTERANCE_ERRORS,
)
SEED = Protocol(
    "/ws/v0",
    Schema("seed-events.json"),
    "message",
    frozenset({"realtime", "utterance_end"}),
    UTTERANCE_ERRORS | NOTICES,  # the seed's client gets notices as errors
)


def _fragments(data: str | bytes, pieces: int) -> list[Any]:
    step = max(-(-len(data) // pieces), 1)
    return [data[i : i + step] for i in range(0, len(data), step)] or [data]


def describe(frame: Frame) -> str:
    if isinstance(frame, Text):
        return f"text {frame.text[:120]!r} ({len(frame.text.encode())} bytes)"
    if isinstance(frame, BadUtf8):
        return f"text of bytes {frame.data!r} (not UTF-8)"
    return f"binary {frame.data[:48]!r} ({len(frame.data)} bytes)"


class Wire:
    def __init__(self, ws: ClientConnection, protocol: Protocol, tally: Tally) -> None:
        self.ws = ws
        self.protocol = protocol
        self.tally = tally
        self.closed = False
        self.sent = 0  # frames on this connection

    async def send(self, frame: Frame) -> None:
        """Counted once it is handed to the socket; the gateway may close while we write."""
        try:
            if isinstance(frame, BadUtf8):
                await self.ws.send(frame.data, text=True)  # websockets does not check it
            else:
                data = frame.text if isinstance(frame, Text) else frame.data
                await self.ws.send(_fragments(data, frame.pieces) if frame.pieces > 1 else data)
        except ConnectionClosed:
            return
        self.sent += 1
        self.tally.frames += 1

    async def ping(self, payload: bytes) -> None:
        """A ping must get its pong, whatever the connection is doing."""
        try:
            pong = await self.ws.ping(payload)
        except ConnectionClosed:
            return
        self.sent += 1
        self.tally.frames += 1
        try:
            await asyncio.wait_for(pong, REPLY_TIMEOUT_S)
        except TimeoutError:
            raise AssertionError(
                f"{self.protocol.name}: no pong within {REPLY_TIMEOUT_S:.0f}s"
            ) from None
        self.tally.answers["pong"] += 1

    async def check(self, frame: Frame, answer: Answer) -> dict[str, Any] | None:
        """Read ``frame``'s answer and hold it to ``answer``; the event, if one is owed."""
        what = f"{self.protocol.name}: answer to {describe(frame)}, expected {answer}"
        if isinstance(answer, Silent | Unread):
            return None
        if isinstance(answer, Closed):
            await self.expect_close(answer.code, what)
            return None
        event = await self.next_event(what)
        if isinstance(answer, Error):
            assert event["type"] == "error", f"{what}: got {event}"
            assert event["code"] in answer.codes, f"{what}: got {event}"
            self.tally.answers[f"error {event['code']}"] += 1
            return event
        if isinstance(answer, Summary):
            assert event["type"] == "summary", f"{what}: got {event}"
            assert abs(event["audio_seconds"] - answer.audio_seconds) <= 0.01, f"{what}: {event}"
            self.tally.answers["summary"] += 1
            await self.expect_close(1000, what)
            return event
        assert isinstance(answer, Event)
        assert event["type"] == answer.type, f"{what}: got {event}"
        wrong = {k: event.get(k) for k, v in answer.fields.items() if event.get(k) != v}
        assert not wrong, f"{what}: got {event}, which differs in {wrong}"
        self.tally.answers[answer.type] += 1
        return event

    async def next_event(self, what: str) -> dict[str, Any]:
        """The next event that answers a frame (validated, as are those skipped on the way)."""
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), REPLY_TIMEOUT_S)
            except TimeoutError:
                raise AssertionError(f"{what}: nothing within {REPLY_TIMEOUT_S:.0f}s") from None
            except ConnectionClosed as closed:
                self.closed = True
                raise AssertionError(f"{what}: the connection closed ({closed.rcvd})") from None
            event = self._validated(raw, what)
            if not self.protocol.answers_no_frame(event):
                return event
            self.tally.answers[f"async {event['type']} {event.get('code', '')}".rstrip()] += 1

    async def expect_close(self, code: int, what: str) -> None:
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), REPLY_TIMEOUT_S)
            except TimeoutError:
                raise AssertionError(f"{what}: no close within {REPLY_TIMEOUT_S:.0f}s") from None
            except ConnectionClosed as closed:
                self.closed = True
                received = closed.rcvd
                assert received is not None, f"{what}: closed without a close frame"
                assert received.code in CLOSE_CODES, f"{what}: closed with {received}"
                assert received.code == code, f"{what}: closed with {received}"
                assert received.reason, f"{what}: close {received.code} without a reason"
                self.tally.answers[f"close {received.code}"] += 1
                return
            event = self._validated(raw, what)
            assert self.protocol.answers_no_frame(event), f"{what}: got {event} before the close"

    def _validated(self, raw: str | bytes, what: str) -> dict[str, Any]:
        assert isinstance(raw, str), f"{what}: events are text frames, got {raw!r:.80}"
        event = json.loads(raw)
        problems = self.protocol.schema.errors(event)
        assert not problems, (
            f"{what}: {event} does not match {self.protocol.schema.name}: {problems}"
        )
        if event["type"] == "error":
            assert event["code"] in FRAME_ERRORS | UTTERANCE_ERRORS | NOTICES, f"{what}: {event}"
            assert event[self.protocol.reason_field], f"{what}: an error without a reason: {event}"
            assert not event.get("fatal", False), f"{what}: {event}"
        return event

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


# --------------------------------------------------------------------------- the gateway's log


class GatewayLog:
    """Everything logged in this process while it is open: structlog's events, the standard
    library's records (aiohttp and asyncio log there) and the event loop's exception handler
    (a task that died unobserved). ``problems`` are those that mean a crash or a traceback."""

    def __init__(self) -> None:
        self.events: list[MutableMapping[str, Any]] = []
        self.records: list[logging.LogRecord] = []
        self.loop_errors: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def capturing(self, loop: asyncio.AbstractEventLoop) -> Iterator[GatewayLog]:
        import structlog.testing

        handler = _ListHandler(self.records)
        root = logging.getLogger()
        root.addHandler(handler)
        previous = loop.get_exception_handler()
        loop.set_exception_handler(lambda _loop, context: self.loop_errors.append(context))
        try:
            with structlog.testing.capture_logs() as events:
                self.events = events
                yield self
        finally:
            loop.set_exception_handler(previous)
            root.removeHandler(handler)

    def problems(self) -> list[str]:
        found = [
            f"structlog {e}"
            for e in self.events
            if e.get("log_level") in ("error", "critical", "exception") or e.get("exc_info")
        ]
        found += [
            f"logging {r.name} {r.levelname}: {r.getMessage()} {r.exc_info!r}"
            for r in self.records
            if r.levelno >= logging.ERROR or r.exc_info
        ]
        found += [f"event loop: {c}" for c in self.loop_errors]
        return found


class _ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self._records = records

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)
