"""A live session for the desktop clients: audio from a source goes to the gateway as it comes,
events come back to a listener, and a lost gateway is reconnected to, saying so.

Audio captured while there is no connection waits in a bounded backlog and is sent to the next
session (the oldest is dropped past the bound, and the listener is told how much). A new
connection is a new session: its ``seq`` numbers start again, which the listener sees from the
``started`` event. Resuming the same session is left to the gateway's resume tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from nova_client.sources import AudioSource
from nova_client.streaming import (
    GatewayError,
    GatewayUnreachable,
    close_reason,
    next_event,
    open_gateway,
    start_session,
)
from nova_common.messages import (
    ErrorEvent,
    NoticeEvent,
    ServerEvent,
    StartMessage,
    StopMessage,
    SummaryEvent,
    json_encoder,
)

# Waits between reconnection attempts: quick at first (a gateway restarting), then patient.
FIRST_RETRY_S = 0.5
LONGEST_RETRY_S = 10.0
# How long, after the audio ends, a session may take to deliver its last finals.
FINISH_TIMEOUT_S = 60.0

ConnectionState = Literal["connecting", "live", "reconnecting", "finishing", "stopped"]


@dataclass(frozen=True)
class ConnectionStatus:
    state: ConnectionState
    detail: str = ""
    session_id: str | None = None
    # For "reconnecting": seconds until the next attempt.
    retry_in: float | None = None


class LiveListener(Protocol):
    def status(self, status: ConnectionStatus) -> None: ...

    def event(self, event: ServerEvent) -> None: ...

    def audio_sent(self, seconds: float) -> None:
        """Seconds of audio the current session has been sent (for showing the lag)."""


class _Backlog:
    """Captured audio not yet sent. Bounded: past ``max_bytes`` the oldest goes."""

    def __init__(self, max_bytes: int) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._max_bytes = max_bytes
        self._ready = asyncio.Event()
        self.ended = False
        self.dropped_bytes = 0

    def put(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        while self._size > self._max_bytes and len(self._chunks) > 1:
            old = self._chunks.popleft()
            self._size -= len(old)
            self.dropped_bytes += len(old)
        self._ready.set()

    def end(self) -> None:
        self.ended = True
        self._ready.set()

    async def get(self) -> bytes | None:
        """The next chunk, or None once the source has ended and everything is taken."""
        while not self._chunks:
            if self.ended:
                return None
            self._ready.clear()
            await self._ready.wait()
        chunk = self._chunks.popleft()
        self._size -= len(chunk)
        return chunk


class SessionEnded(Exception):
    """The gateway ended the session with a fatal error; a new one may fare better."""


def retry_delay(attempt: int) -> float:
    return min(LONGEST_RETRY_S, FIRST_RETRY_S * 2**attempt)


async def run_live(
    url: str,
    start: StartMessage,
    source: AudioSource,
    listener: LiveListener,
    *,
    reconnect: bool = True,
    stop: asyncio.Event | None = None,
    backlog_seconds: float = 60.0,
    api_key: str | None = None,
) -> SummaryEvent | None:
    """Stream ``source`` until it ends or ``stop`` is set, then finish the session (its last
    finals and translations arrive) and return its summary.

    Raises ``SessionRefused`` when the gateway will not start a session (a bad language, say:
    retrying would not help), ``AudioDeviceError`` when the source fails, and, without
    ``reconnect``, ``GatewayUnreachable`` / ``GatewayError`` when the gateway is or goes away."""
    start = msgspec.structs.replace(start, sample_rate=source.sample_rate, channels=source.channels)
    bytes_per_second = source.sample_rate * source.channels * 2
    backlog = _Backlog(int(backlog_seconds * bytes_per_second))
    stop = stop or asyncio.Event()

    async def capture() -> None:
        try:
            async for chunk in source.chunks():
                if stop.is_set():
                    break
                backlog.put(chunk)
        finally:
            backlog.end()

    capturing = asyncio.create_task(capture())
    stopping = asyncio.create_task(stop.wait())
    stopping.add_done_callback(lambda _: backlog.end())
    attempt = 0
    try:
        while True:
            listener.status(ConnectionStatus("connecting", url))
            try:
                ws = await open_gateway(url, api_key=api_key)
            except GatewayUnreachable as exc:
                if not reconnect:
                    raise
                reason = str(exc)
            else:
                attempt = 0
                try:
                    async with ws:
                        return await _converse(ws, start, backlog, listener, bytes_per_second)
                except (ConnectionClosed, OSError, SessionEnded) as exc:
                    reason = _lost(exc)
                    if not reconnect:
                        raise GatewayError(f"lost the gateway: {reason}") from exc
            if backlog.ended and capturing.done():
                _raise_capture_error(capturing)
                listener.status(ConnectionStatus("stopped", f"gateway lost: {reason}"))
                return None
            delay = retry_delay(attempt)
            attempt += 1
            listener.status(ConnectionStatus("reconnecting", reason, retry_in=delay))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stopping), delay)
            if stop.is_set():
                listener.status(ConnectionStatus("stopped", "stopped while disconnected"))
                return None
            if backlog.dropped_bytes:
                dropped = backlog.dropped_bytes / bytes_per_second
                listener.event(
                    NoticeEvent(
                        code="audio_dropped",
                        reason=f"{dropped:.1f} s of audio were dropped while disconnected",
                    )
                )
                backlog.dropped_bytes = 0
    finally:
        stopping.cancel()
        if not capturing.done():
            capturing.cancel()
        await asyncio.gather(capturing, stopping, return_exceptions=True)
        _raise_capture_error(capturing)


def _lost(exc: BaseException) -> str:
    return close_reason(exc) if isinstance(exc, ConnectionClosed) else str(exc) or repr(exc)


def _raise_capture_error(capturing: asyncio.Task[None]) -> None:
    if capturing.done() and not capturing.cancelled() and capturing.exception() is not None:
        raise capturing.exception()  # type: ignore[misc]


async def _converse(
    ws: ClientConnection,
    start: StartMessage,
    backlog: _Backlog,
    listener: LiveListener,
    bytes_per_second: int,
) -> SummaryEvent:
    started = await start_session(ws, start, listener.event)
    listener.event(started)
    listener.status(ConnectionStatus("live", session_id=started.session_id))

    async def send() -> None:
        sent = 0
        while (chunk := await backlog.get()) is not None:
            await ws.send(chunk)
            sent += len(chunk)
            listener.audio_sent(sent / bytes_per_second)
        listener.status(ConnectionStatus("finishing", session_id=started.session_id))
        await ws.send(json_encoder.encode(StopMessage()).decode())

    sender = asyncio.create_task(send())
    loop = asyncio.get_running_loop()
    finish_by: float | None = None
    try:
        while True:
            receiving = asyncio.ensure_future(next_event(ws))
            waiting = {receiving} if sender.done() else {receiving, sender}
            timeout = None if finish_by is None else max(0.0, finish_by - loop.time())
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if receiving not in done:
                receiving.cancel()  # safe: websockets' recv may be cancelled
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await receiving
                if finish_by is not None:
                    raise GatewayError(
                        f"the gateway sent no summary within {FINISH_TIMEOUT_S:.0f} s "
                        "of the audio's end"
                    )
                sender.result()  # a failed send (the connection lost) surfaces here
                finish_by = loop.time() + FINISH_TIMEOUT_S
                continue
            event = receiving.result()
            listener.event(event)
            if isinstance(event, SummaryEvent):
                if not sender.done():
                    # Unasked for: the gateway is shutting down (it closes 1001 next), but the
                    # audio goes on, so it goes to a new session.
                    raise SessionEnded("the gateway ended the session")
                listener.status(ConnectionStatus("stopped", session_id=started.session_id))
                return event
            if isinstance(event, ErrorEvent) and event.fatal:
                raise SessionEnded(f"{event.code}: {event.reason}")
    finally:
        if not sender.done():
            sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
