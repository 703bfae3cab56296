"""Streaming a file through the gateway and collecting its finals and their translations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    NoticeEvent,
    PartialEvent,
    ServerEvent,
    SessionStarted,
    StartMessage,
    StopMessage,
    SummaryEvent,
    TranslationEvent,
    json_encoder,
    server_event_decoder,
)


class GatewayError(RuntimeError):
    pass


class GatewayUnreachable(GatewayError):
    """No connection could be made at all: no later session to the same URL will fare better."""


class SessionRefused(GatewayError):
    """The gateway answered ``start`` with an error, or closed before starting the session."""


@dataclass
class SessionResult:
    session_id: str = ""
    # The targets the gateway agreed to (normalised); empty from a gateway that does not translate.
    translate_to: tuple[str, ...] = ()
    finals: list[FinalEvent] = field(default_factory=list)
    partials: list[PartialEvent] = field(default_factory=list)
    # Failed finals and session-wide problems.
    errors: list[ErrorEvent] = field(default_factory=list)
    translations: list[TranslationEvent] = field(default_factory=list)
    # Translations that will not come (errors naming a target ``language``); their finals were
    # delivered.
    translation_errors: list[ErrorEvent] = field(default_factory=list)
    notices: list[NoticeEvent] = field(default_factory=list)
    summary: SummaryEvent | None = None
    # Reading the input failed part-way: what was sent is still transcribed, then this is raised.
    input_error: Exception | None = None


def start_message(language: str, **fields: Any) -> StartMessage:
    """A ``start`` for the ``--language`` a user gave: "auto", "en", or "en,de" (detect per
    utterance, but only between these)."""
    allowed = tuple(code.strip() for code in language.split(",") if code.strip())
    return StartMessage(
        language=allowed[0] if len(allowed) == 1 else "auto",
        languages=allowed if len(allowed) > 1 else (),
        **fields,
    )


class GatewayRefused(SessionRefused):
    """The gateway answered the handshake with a refusal (no or a bad API key or token, an
    origin it does not allow): trying again with the same credential will not help."""


def _refusal(url: str, exc: InvalidStatus) -> str:
    response = exc.response
    try:
        reason = str(msgspec.json.decode(response.body or b"{}").get("error") or "")
    except (msgspec.DecodeError, AttributeError):
        reason = ""
    hint = " (give an API key: --api-key or NOVA_API_KEY)" if response.status_code == 401 else ""
    return (
        f"the Nova gateway at {url} refused the connection: HTTP {response.status_code}"
        f"{': ' + reason if reason else ''}{hint}"
    )


async def open_gateway(
    url: str, timeout: float = 10.0, *, api_key: str | None = None
) -> ClientConnection:
    """A WebSocket to the gateway, with ``api_key`` (an API key or a session token) sent as
    ``Authorization: Bearer``."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    try:
        return await asyncio.wait_for(
            connect(url, max_size=None, additional_headers=headers), timeout
        )
    except InvalidStatus as exc:
        raise GatewayRefused(_refusal(url, exc)) from exc
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        raise GatewayUnreachable(f"cannot reach the Nova gateway at {url}: {exc}") from exc


def close_reason(exc: ConnectionClosed) -> str:
    if exc.rcvd is None:
        return "no close frame"
    return f"code {exc.rcvd.code}" + (f": {exc.rcvd.reason}" if exc.rcvd.reason else "")


async def next_event(ws: ClientConnection) -> ServerEvent:
    """The next event this client understands; event types newer than it are skipped."""
    while True:
        try:
            return server_event_decoder.decode(await ws.recv())
        except msgspec.DecodeError:
            continue


async def start_session(
    ws: ClientConnection, start: StartMessage, on_notice: Callable[[NoticeEvent], None]
) -> SessionStarted:
    """Send ``start`` and wait for ``started``; notices that come first are passed on."""
    try:
        await ws.send(json_encoder.encode(start).decode())
        while True:
            event = await next_event(ws)
            if isinstance(event, NoticeEvent):
                on_notice(event)
            elif isinstance(event, ErrorEvent):
                raise SessionRefused(
                    f"the gateway refused the session: {event.code}: {event.reason}"
                )
            elif isinstance(event, SessionStarted):
                return event
            else:
                raise SessionRefused(
                    f"the gateway sent {type(event).__name__} before starting the session"
                )
    except ConnectionClosed as exc:
        raise SessionRefused(
            f"the gateway closed the connection before starting the session ({close_reason(exc)})"
        ) from exc


async def stream_audio(
    url: str,
    start: StartMessage,
    chunks: Iterable[bytes],
    *,
    realtime: bool = False,
    on_final: Callable[[FinalEvent], None] | None = None,
    on_error: Callable[[ErrorEvent], None] | None = None,
    on_sent: Callable[[float], None] | None = None,
    on_notice: Callable[[NoticeEvent], None] | None = None,
    on_started: Callable[[SessionStarted], None] | None = None,
    on_translation: Callable[[TranslationEvent], None] | None = None,
    on_partial: Callable[[PartialEvent], None] | None = None,
    api_key: str | None = None,
) -> SessionResult:
    """Send ``start``, the PCM chunks (paced like a microphone when ``realtime``), then ``stop``;
    return once the gateway's summary arrives (it comes after every final and translation).

    ``on_error`` gets failed finals, failed translations (``language`` set) and session errors.

    Raises ``GatewayUnreachable`` when no connection can be made, ``SessionRefused`` when the
    gateway will not start the session, and ``GatewayError`` when the session breaks off."""
    result = SessionResult()
    bytes_per_second = start.sample_rate * start.channels * 2
    ws = await open_gateway(url, api_key=api_key)
    async with ws:

        def notice(event: NoticeEvent) -> None:
            result.notices.append(event)
            if on_notice:
                on_notice(event)

        started = await start_session(ws, start, notice)
        result.session_id = started.session_id
        result.translate_to = started.translate_to
        if on_started:
            on_started(started)

        async def send_audio() -> None:
            began = time.monotonic()
            sent = 0
            iterator = iter(chunks)
            while True:
                try:
                    chunk = next(iterator)
                except StopIteration:
                    break
                except Exception as exc:  # unreadable input: finish what was sent, then report
                    result.input_error = exc
                    break
                await ws.send(chunk)
                sent += len(chunk)
                seconds = sent / bytes_per_second
                if on_sent:
                    on_sent(seconds)
                if realtime:
                    ahead = seconds - (time.monotonic() - began)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                else:
                    await asyncio.sleep(0)  # let received events be handled between chunks
            await ws.send(json_encoder.encode(StopMessage()).decode())

        sender = asyncio.create_task(send_audio())
        closing: list[asyncio.Task[None]] = []

        def sender_done(task: asyncio.Task[None]) -> None:
            # Without this a failed sender (a callback raising, say) would leave the receive
            # loop below waiting forever for a summary that the missing `stop` never brings.
            if not task.cancelled() and task.exception() is not None:
                closing.append(asyncio.create_task(ws.close(1011, "client failed")))

        sender.add_done_callback(sender_done)
        try:
            while True:
                try:
                    event = await next_event(ws)
                except ConnectionClosed as exc:
                    if sender.done() and sender.exception():
                        raise GatewayError(f"sending audio failed: {sender.exception()}") from exc
                    raise GatewayError(
                        f"the gateway closed the connection before the summary "
                        f"({close_reason(exc)})"
                    ) from exc
                if isinstance(event, PartialEvent):
                    result.partials.append(event)
                    if on_partial:
                        on_partial(event)
                elif isinstance(event, FinalEvent):
                    result.finals.append(event)
                    if on_final:
                        on_final(event)
                elif isinstance(event, TranslationEvent):
                    result.translations.append(event)
                    if on_translation:
                        on_translation(event)
                elif isinstance(event, ErrorEvent):
                    failed = result.errors if event.language is None else result.translation_errors
                    failed.append(event)
                    if on_error:
                        on_error(event)
                elif isinstance(event, NoticeEvent):
                    result.notices.append(event)
                    if on_notice:
                        on_notice(event)
                elif isinstance(event, SummaryEvent):
                    result.summary = event
                    break
        finally:
            if not sender.done():
                sender.cancel()
            await asyncio.gather(sender, *closing, return_exceptions=True)
    return result
