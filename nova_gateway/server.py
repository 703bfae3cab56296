"""One port: the WebSocket ``/ws`` and the HTTP endpoints ``/health``, ``/health/full``, ``/metrics``."""

from __future__ import annotations

import asyncio
import functools
import http

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from nova_common import provision
from nova_common.messages import (
    ErrorEvent,
    ServerEvent,
    SessionStarted,
    StartMessage,
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
from nova_gateway.workers import WorkerRegistry

log = structlog.get_logger(__name__)

# websockets closes the connection itself (1009) past this multiple of the frame limit; below it
# an oversized frame is refused with an error event and the connection stays usable.
HARD_LIMIT_FACTOR = 4


def _response(status: http.HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)


def _json(status: http.HTTPStatus, payload: object) -> Response:
    return _response(status, json_encoder.encode(payload), "application/json")


class Gateway:
    def __init__(
        self,
        nc: Client,
        *,
        settings: GatewaySettings,
        vad: VadSettings,
        subjects: Subjects,
        topology: provision.Topology,
        registry: CollectorRegistry,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._settings = settings
        self._vad = vad
        self._subjects = subjects
        self._topology = topology
        self._registry = registry
        self._metrics = GatewayMetrics.create(registry)
        self._publisher = AudioPublisher(self._js, subjects, self._metrics)
        self.workers = WorkerRegistry(settings.worker_stale_s)
        self._server: Server | None = None

    async def start(self, host: str | None = None, port: int | None = None) -> Server:
        await self.workers.start(self._nc, self._subjects)
        self._server = await serve(
            self._handle,
            host or self._settings.host,
            self._settings.port if port is None else port,
            process_request=self._http,
            max_size=self._settings.max_frame_bytes * HARD_LIMIT_FACTOR,
        )
        return self._server

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self.workers.stop()

    # ------------------------------------------------------------------ HTTP

    async def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            return None  # carry on with the WebSocket handshake
        if path == "/health":
            return _json(http.HTTPStatus.OK, {"status": "ok"})
        if path == "/health/full":
            report = await self.health_report()
            status = http.HTTPStatus.OK if report["ready"] else http.HTTPStatus.SERVICE_UNAVAILABLE
            return _json(status, report)
        if path == "/metrics":
            return _response(
                http.HTTPStatus.OK, generate_latest(self._registry), CONTENT_TYPE_LATEST
            )
        return _json(
            http.HTTPStatus.NOT_FOUND, {"error": f"no such path {path}; try /ws or /health"}
        )

    async def health_report(self) -> dict[str, object]:
        missing: list[str] = []
        connected = self._nc.is_connected
        if not connected:
            missing.append("nats connection")
        else:
            try:
                missing.extend(await provision.missing(self._js, self._topology))
            except Exception as exc:
                missing.append(f"jetstream ({exc!r})")
        workers = self.workers.alive("stt")
        if not workers:
            missing.append("stt worker")
        return {
            "ready": not missing,
            "missing": missing,
            "nats": connected,
            "stt_workers": [w.worker_id for w in workers],
        }

    # ------------------------------------------------------------------ WebSocket

    async def _handle(self, ws: ServerConnection) -> None:
        session_id = new_session_id()
        session: Session | None = None
        subscription: Subscription | None = None
        watchdog: asyncio.Task[None] | None = None
        bound = log.bind(session_id=session_id)

        async def send(event: ServerEvent) -> None:
            try:
                await ws.send(json_encoder.encode(event).decode())
            except ConnectionClosed:
                pass  # the client left; its results stay in the RESULTS stream for replay

        async def error(code: str, reason: str, *, fatal: bool = False) -> None:
            self._metrics.client_errors.labels(code).inc()
            await send(ErrorEvent(code=code, reason=reason, session_id=session_id, fatal=fatal))

        async def on_result(msg: Msg) -> None:
            if session is None:
                return
            try:
                result = result_decoder.decode(msg.data)
            except msgspec.DecodeError:
                bound.warning("undecodable result", subject=msg.subject)
                return
            await session.on_result(result)

        self._metrics.sessions_active.inc()
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    if session is None:
                        await error("not_started", "send a 'start' message before audio")
                    elif len(frame) > self._settings.max_frame_bytes:
                        await error("frame_too_large", self._too_large(len(frame)))
                    else:
                        try:
                            await session.feed(frame)
                        except AudioFormatError as exc:
                            await error(exc.code, str(exc))
                    continue
                # The limit is in bytes: a text frame of multi-byte characters is larger than
                # its len(); UTF-8 has at most 4 bytes a character, so short frames skip encoding.
                limit = self._settings.max_frame_bytes
                if len(frame) * 4 > limit and (size := len(frame.encode())) > limit:
                    await error("frame_too_large", self._too_large(size))
                    continue
                try:
                    message = parse_client_message(frame)
                except ProtocolError as exc:
                    await error(exc.code, str(exc))
                    continue
                if isinstance(message, StartMessage):
                    if session is not None:
                        await error("already_started", "this connection already has a session")
                        continue
                    try:
                        check_format(message.sample_rate, message.channels)
                    except AudioFormatError as exc:
                        await error(exc.code, str(exc))
                        continue
                    # Subscribe before any audio is published, so no result can slip past.
                    subscription = await self._nc.subscribe(
                        self._subjects.results(session_id), cb=on_result
                    )
                    session = Session(
                        session_id,
                        message,
                        vad=self._vad,
                        publisher=self._publisher,
                        send=send,
                        metrics=self._metrics,
                        recover=functools.partial(
                            replay_results,
                            self._js,
                            self._subjects.results_stream,
                            self._subjects.results(session_id),
                        ),
                        recover_after_s=self._settings.recover_after_s,
                    )
                    watchdog = asyncio.create_task(self._watch(session))
                    self._metrics.sessions_total.inc()
                    bound.info("session started", sample_rate=message.sample_rate,
                               channels=message.channels, language=message.language)  # fmt: skip
                    await send(
                        SessionStarted(
                            session_id=session_id,
                            sample_rate=message.sample_rate,
                            channels=message.channels,
                            language=message.language,
                            task=message.task,
                        )
                    )
                else:  # StopMessage
                    if session is None:
                        await error("not_started", "nothing to stop: no 'start' message yet")
                        continue
                    summary = await session.finish(self._settings.final_timeout_s)
                    await send(summary)
                    bound.info("session finished", finals=summary.finals, failed=summary.failed)
                    await ws.close(1000, "session complete")
                    return
        except ConnectionClosed:
            pass
        finally:
            self._metrics.sessions_active.dec()
            if watchdog is not None:
                watchdog.cancel()
            if subscription is not None:
                try:
                    await subscription.unsubscribe()
                except Exception:  # connection to NATS already gone
                    pass
            if ws.close_code != 1000:
                bound.info("client left", close_code=ws.close_code)

    async def _watch(self, session: Session) -> None:
        """Notice a session whose results stopped flowing and replay them from the stream."""
        while True:
            await asyncio.sleep(self._settings.recover_after_s)
            try:
                await session.check_stall()
            except Exception as exc:  # NATS still down: try again next round
                log.warning("result replay failed", session_id=session.session_id, error=repr(exc))

    def _too_large(self, size: int) -> str:
        return (
            f"frame of {size} bytes exceeds the limit of {self._settings.max_frame_bytes} bytes; "
            "send audio in smaller chunks"
        )
