"""One WebSocket client: frames in, protocol checks, the session, events out.

Ends in one of three ways: the client's ``stop`` (flush, every final, summary, close 1000); the
client leaving (what was published is still transcribed and kept in RESULTS); or the gateway
shutting down (flush and finish like ``stop`` within a grace period, then close 1001).
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import structlog

from nova_common.audio import AudioFormatError, check_format
from nova_common.languages import UnsupportedLanguage, check_language, check_target_language
from nova_common.messages import (
    ErrorEvent,
    ServerEvent,
    SessionStarted,
    SessionUpdated,
    StartMessage,
    UpdateMessage,
    json_encoder,
)
from nova_common.subjects import new_session_id
from nova_gateway.auth.limits import LimitExceeded, SessionLimits
from nova_gateway.frames import FrameReader
from nova_gateway.hub import SessionHub
from nova_gateway.protocol import ProtocolError, parse_client_message
from nova_gateway.session import Session
from nova_gateway.transport import Transport, TransportClosed

log = structlog.get_logger(__name__)

MAX_TARGETS = 8


def check_allowed_languages(codes: tuple[str, ...], *, fixed: str | None) -> tuple[str, ...]:
    """The languages detection may choose from; only with ``language: "auto"``."""
    if codes and fixed is not None:
        raise UnsupportedLanguage(
            f"'languages' restricts detection, but 'language' is fixed to {fixed!r}: "
            "send one or the other"
        )
    return tuple(dict.fromkeys(check_target_language(code) for code in codes))


def check_targets(targets: tuple[str, ...]) -> tuple[str, ...]:
    """Normalised, de-duplicated targets in the client's order; ``UnsupportedLanguage`` else."""
    if len(targets) > MAX_TARGETS:
        raise UnsupportedLanguage(f"at most {MAX_TARGETS} translation targets per session")
    return tuple(dict.fromkeys(check_target_language(t) for t in targets))


def checked_start(message: StartMessage) -> StartMessage:
    """``message`` normalised (language codes, de-duplicated targets), or ``AudioFormatError`` /
    ``UnsupportedLanguage`` saying what is wrong with it. Every front end starts sessions so."""
    check_format(message.sample_rate, message.channels)
    language = check_language(message.language)
    return msgspec.structs.replace(
        message,
        language=language or "auto",
        translate_to=check_targets(message.translate_to),
        languages=check_allowed_languages(message.languages, fixed=language),
    )


class ClientConnection:
    def __init__(
        self,
        transport: Transport,
        *,
        hub: SessionHub,
        shutting_down: asyncio.Event,
        limits: SessionLimits | None = None,
    ) -> None:
        self._transport = transport
        self._hub = hub
        self._limits = limits or SessionLimits.none()
        self._settings = hub.settings
        self._metrics = hub.metrics
        self.session_id = new_session_id()
        self._session: Session | None = None
        # Holds the open session (its results subscription and watchdog) until the connection ends.
        self._open = contextlib.AsyncExitStack()
        self._frames = FrameReader(transport, shutting_down)
        self._log = log.bind(session_id=self.session_id)

    async def run(self) -> None:
        self._metrics.sessions_active.inc()
        try:
            while (frame := await self._frames.next()) is not None:
                if await self._on_frame(frame):
                    return
            await self._end(1001, "server shutting down", self._settings.shutdown_grace_s)
        except TransportClosed:
            if self._session is not None:
                self._log.info("client left", close_code=self._transport.close_code)
        finally:
            self._metrics.sessions_active.dec()
            self._frames.close()
            await self._open.aclose()

    # ------------------------------------------------------------------ sending

    async def _send(self, event: ServerEvent) -> None:
        try:
            await self._transport.send_text(json_encoder.encode(event).decode())
        except TransportClosed:
            pass  # the client left; its results stay in the RESULTS stream for replay

    async def _error(self, code: str, reason: str) -> None:
        self._metrics.client_errors.labels(code).inc()
        await self._send(ErrorEvent(code=code, reason=reason, session_id=self.session_id))

    async def _notice_if_no_worker(self) -> None:
        if self._session is not None:
            for notice in self._hub.notices(self.session_id, self._session.translate_to):
                await self._send(notice)

    # ------------------------------------------------------------------ receiving

    async def _on_frame(self, frame: str | bytes) -> bool:
        """Handle one frame; True when the session is complete and the connection closed."""
        try:
            self._limits.check_frame(frame)
            if isinstance(frame, bytes):
                await self._on_audio(frame)
                return False
        except LimitExceeded as exc:  # refused; what came before it is finished like a stop
            await self._error(exc.code, str(exc))
            await self._end(exc.close_code, exc.close_reason, self._settings.final_timeout_s)
            return True
        # The limit is in bytes: a text frame of multi-byte characters is larger than its len();
        # UTF-8 has at most 4 bytes a character, so short frames skip the encoding.
        limit = self._settings.max_frame_bytes
        if len(frame) * 4 > limit and (size := len(frame.encode())) > limit:
            await self._error("frame_too_large", self._too_large(size))
            return False
        try:
            message = parse_client_message(frame)
        except ProtocolError as exc:
            await self._error(exc.code, str(exc))
            return False
        if isinstance(message, StartMessage):
            await self._start(message)
            return False
        if self._session is None:
            what = "update" if isinstance(message, UpdateMessage) else "stop"
            await self._error("not_started", f"nothing to {what}: no 'start' message yet")
            return False
        if isinstance(message, UpdateMessage):
            await self._update(message)
            return False
        await self._notice_if_no_worker()
        await self._end(1000, "session complete", self._settings.final_timeout_s)
        return True

    async def _on_audio(self, frame: bytes) -> None:
        session = self._session
        if session is None:
            await self._error("not_started", "send a 'start' message before audio")
            return
        try:
            if len(frame) > self._settings.max_frame_bytes:
                raise AudioFormatError("frame_too_large", self._too_large(len(frame)))
            start = session.start
            self._limits.take_audio(len(frame), start.sample_rate * start.channels * 2)
            await session.feed(frame)
        except AudioFormatError as exc:
            # The refused audio still took time in the client's recording: keep the session's
            # clock in step so later start/end seconds match the client's audio.
            await session.skip(len(frame))
            await self._error(exc.code, f"{exc} (refused; its duration counts as silence)")

    async def _start(self, message: StartMessage) -> None:
        if self._session is not None:
            await self._error("already_started", "this connection already has a session")
            return
        try:
            message = checked_start(message)
        except (AudioFormatError, UnsupportedLanguage) as exc:
            await self._error(exc.code, str(exc))
            return
        self._session = await self._open.enter_async_context(
            self._hub.open(self.session_id, message, self._send)
        )
        self._log.info("session started", sample_rate=message.sample_rate,
                       channels=message.channels, language=message.language)  # fmt: skip
        await self._send(
            SessionStarted(
                session_id=self.session_id,
                sample_rate=message.sample_rate,
                channels=message.channels,
                language=message.language,
                task=message.task,
                translate_to=message.translate_to,
                languages=message.languages,
                partials=message.partials,
                profile=message.profile,
                word_timestamps=message.word_timestamps,
            )
        )
        await self._notice_if_no_worker()

    async def _update(self, message: UpdateMessage) -> None:
        assert self._session is not None
        if message.translate_to is not None:
            try:
                self._session.translate_to = check_targets(message.translate_to)
            except UnsupportedLanguage as exc:
                await self._error(exc.code, f"{exc} (the session is unchanged)")
                return
        self._log.info("session updated", translate_to=self._session.translate_to)
        await self._send(
            SessionUpdated(session_id=self.session_id, translate_to=self._session.translate_to)
        )
        await self._notice_if_no_worker()

    async def _end(self, code: int, reason: str, timeout: float) -> None:
        """Flush the session, wait for its finals, send the summary, close."""
        if self._session is not None:
            summary = await self._session.finish(timeout)
            await self._send(summary)
            self._log.info("session finished", finals=summary.finals, failed=summary.failed,
                           reason=reason)  # fmt: skip
        await self._transport.close(code, reason)

    def _too_large(self, size: int) -> str:
        return (
            f"frame of {size} bytes exceeds the limit of {self._settings.max_frame_bytes} bytes; "
            "send audio in smaller chunks"
        )
