"""One WebSocket client: frames in, protocol checks, the session, events out.

Ends in one of three ways: the client's ``stop`` (flush, every final, summary, close 1000); the
client leaving (what was published is still transcribed and kept in RESULTS); or the gateway
shutting down (flush and finish like ``stop`` within a grace period, then close 1001).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from nova_common.languages import UnsupportedLanguage, check_language, check_target_language
from nova_common.messages import (
    ErrorEvent,
    NoticeEvent,
    ResultMessage,
    ServerEvent,
    SessionStarted,
    SessionUpdated,
    StartMessage,
    UpdateMessage,
    json_encoder,
    result_decoder,
)
from nova_common.metrics import GatewayMetrics
from nova_common.settings import GatewaySettings, VadSettings
from nova_common.subjects import Subjects, new_session_id
from nova_gateway.audio import AudioFormatError, check_format
from nova_gateway.protocol import ProtocolError, parse_client_message
from nova_gateway.publisher import AudioPublisher
from nova_gateway.replay import replay_results
from nova_gateway.session import Session
from nova_gateway.translations import EnglishVia, Routing, route
from nova_gateway.workers import WorkerRegistry

log = structlog.get_logger(__name__)

NO_WORKER = (
    "no speech-to-text worker is running: audio is queued and will be transcribed "
    "when one starts (`nova stt`)"
)
NO_MT_WORKER = (
    "no translation worker is running: transcripts are queued for translation and the "
    "translations will follow when one starts (`nova mt`)"
)
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


class ClientConnection:
    def __init__(
        self,
        ws: ServerConnection,
        *,
        nc: Client,
        subjects: Subjects,
        settings: GatewaySettings,
        vad: VadSettings,
        publisher: AudioPublisher,
        metrics: GatewayMetrics,
        workers: WorkerRegistry,
        shutting_down: asyncio.Event,
        english_via: EnglishVia = "auto",
    ) -> None:
        self._ws = ws
        self._nc = nc
        self._subjects = subjects
        self._settings = settings
        self._vad = vad
        self._publisher = publisher
        self._metrics = metrics
        self._workers = workers
        self._shutting_down = shutting_down
        self._english_via: EnglishVia = english_via
        self.session_id = new_session_id()
        self._session: Session | None = None
        self._subscription: Subscription | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._shutdown_waiter: asyncio.Task[Literal[True]] | None = None
        self._log = log.bind(session_id=self.session_id)

    async def run(self) -> None:
        self._metrics.sessions_active.inc()
        try:
            while (frame := await self._next_frame()) is not None:
                if await self._on_frame(frame):
                    return
            await self._end(1001, "server shutting down", self._settings.shutdown_grace_s)
        except ConnectionClosed:
            if self._session is not None:
                self._log.info("client left", close_code=self._ws.close_code)
        finally:
            self._metrics.sessions_active.dec()
            for task in (self._watchdog, self._shutdown_waiter):
                if task is not None:
                    task.cancel()
            if self._subscription is not None:
                with contextlib.suppress(Exception):  # NATS connection already gone
                    await self._subscription.unsubscribe()

    async def _next_frame(self) -> str | bytes | None:
        """The next frame, or None when the gateway is shutting down."""
        if self._shutting_down.is_set():
            return None
        if self._shutdown_waiter is None:  # one per connection, not one per audio frame
            self._shutdown_waiter = asyncio.ensure_future(self._shutting_down.wait())
        receive = asyncio.ensure_future(self._ws.recv())
        await asyncio.wait({receive, self._shutdown_waiter}, return_when=asyncio.FIRST_COMPLETED)
        if receive.done():
            return receive.result()
        receive.cancel()  # websockets: cancelling recv() loses no message
        return None

    # ------------------------------------------------------------------ sending

    async def _send(self, event: ServerEvent) -> None:
        try:
            await self._ws.send(json_encoder.encode(event).decode())
        except ConnectionClosed:
            pass  # the client left; its results stay in the RESULTS stream for replay

    async def _error(self, code: str, reason: str) -> None:
        self._metrics.client_errors.labels(code).inc()
        await self._send(ErrorEvent(code=code, reason=reason, session_id=self.session_id))

    async def _notice_if_no_worker(self) -> None:
        if not self._workers.alive("stt"):
            await self._send(
                NoticeEvent(code="no_stt_worker", reason=NO_WORKER, session_id=self.session_id)
            )
        session = self._session
        if session is not None and self._route(session.translate_to).text_targets:
            if not self._workers.alive("mt"):
                await self._send(
                    NoticeEvent(
                        code="no_mt_worker", reason=NO_MT_WORKER, session_id=self.session_id
                    )
                )

    def _route(self, targets: tuple[str, ...]) -> Routing:
        return route(targets, self._english_via, self._workers.alive("mt"))

    # ------------------------------------------------------------------ receiving

    async def _on_frame(self, frame: str | bytes) -> bool:
        """Handle one frame; True when the session is complete and the connection closed."""
        if isinstance(frame, bytes):
            await self._on_audio(frame)
            return False
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
            check_format(message.sample_rate, message.channels)
            language = check_language(message.language)
            targets = check_targets(message.translate_to)
            allowed = check_allowed_languages(message.languages, fixed=language)
        except AudioFormatError as exc:
            await self._error(exc.code, str(exc))
            return
        except UnsupportedLanguage as exc:
            await self._error(exc.code, str(exc))
            return
        message = msgspec.structs.replace(
            message, language=language or "auto", translate_to=targets, languages=allowed
        )
        # Subscribe before any audio is published, so no result can slip past.
        self._subscription = await self._nc.subscribe(
            self._subjects.results(self.session_id), cb=self._on_result
        )
        self._session = Session(
            self.session_id,
            message,
            vad=self._vad,
            publisher=self._publisher,
            send=self._send,
            metrics=self._metrics,
            recover=self._replay,
            recover_after_s=self._settings.recover_after_s,
            route=self._route,
        )
        self._watchdog = asyncio.create_task(self._watch(self._session))
        self._metrics.sessions_total.inc()
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

    async def _replay(self, translations_only: bool) -> list[ResultMessage]:
        return await replay_results(
            self._nc.jetstream(),
            self._subjects,
            self.session_id,
            translations_only=translations_only,
        )

    async def _on_result(self, msg: Msg) -> None:
        if self._session is None:
            return
        try:
            result = result_decoder.decode(msg.data)
        except msgspec.DecodeError:
            self._log.warning("undecodable result", subject=msg.subject)
            return
        await self._session.on_result(result)

    async def _end(self, code: int, reason: str, timeout: float) -> None:
        """Flush the session, wait for its finals, send the summary, close."""
        if self._session is not None:
            summary = await self._session.finish(timeout)
            await self._send(summary)
            self._log.info("session finished", finals=summary.finals, failed=summary.failed,
                           reason=reason)  # fmt: skip
        await self._ws.close(code, reason)

    async def _watch(self, session: Session) -> None:
        """Notice a session whose results stopped flowing and replay them from the stream."""
        while True:
            await asyncio.sleep(self._settings.recover_after_s)
            try:
                await session.check_stall()
            except Exception as exc:  # NATS still down: try again next round
                self._log.warning("result replay failed", error=repr(exc))

    def _too_large(self, size: int) -> str:
        return (
            f"frame of {size} bytes exceeds the limit of {self._settings.max_frame_bytes} bytes; "
            "send audio in smaller chunks"
        )
