"""One port: the WebSocket ``/ws`` and the HTTP endpoints ``/health``, ``/health/full``,
``/metrics`` and ``/sessions/<sid>/subtitles.{srt,vtt}``."""

from __future__ import annotations

import asyncio
import http
import re
import urllib.parse

import structlog
from nats.aio.client import Client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from nova_common import provision
from nova_common.languages import UnsupportedLanguage, check_target_language
from nova_common.messages import HealthReport, json_encoder
from nova_common.metrics import GatewayMetrics
from nova_common.settings import GatewaySettings, VadSettings
from nova_common.subjects import Subjects, is_valid_token
from nova_gateway.connection import ClientConnection
from nova_gateway.hub import SessionHub
from nova_gateway.openai_api import OpenAIServer
from nova_gateway.publisher import AudioPublisher
from nova_gateway.replay import read_results, results_stored
from nova_gateway.seed import SeedConnection
from nova_gateway.subtitles import subtitles
from nova_gateway.translations import EnglishVia
from nova_gateway.workers import WorkerRegistry

log = structlog.get_logger(__name__)

# websockets closes the connection itself (1009) past this multiple of the frame limit; below it
# an oversized frame is refused with an error event and the connection stays usable.
HARD_LIMIT_FACTOR = 4

SUBTITLES_PATH = re.compile(r"^/sessions/([^/]+)/subtitles\.(srt|vtt)$")
SUBTITLE_TYPES = {"srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}


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
        english_via: EnglishVia = "auto",
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._settings = settings
        self._subjects = subjects
        self._topology = topology
        self._registry = registry
        self._metrics = GatewayMetrics.create(registry)
        self.workers = WorkerRegistry(settings.worker_stale_s)
        self.hub = SessionHub(
            nc,
            subjects=subjects,
            settings=settings,
            vad=vad,
            publisher=AudioPublisher(self._js, subjects, self._metrics),
            metrics=self._metrics,
            workers=self.workers,
            english_via=english_via,
        )
        self._server: Server | None = None
        self._shutting_down = asyncio.Event()

    async def start(
        self, host: str | None = None, port: int | None = None, openai_port: int | None = None
    ) -> Server:
        await self.workers.start(self._nc, self._subjects)
        ws_port = self._settings.port if port is None else port
        self._server = await serve(
            self._handle,
            host or self._settings.host,
            ws_port,
            process_request=self._http,
            max_size=self._settings.max_frame_bytes * HARD_LIMIT_FACTOR,
        )
        if self._settings.openai_api:
            if openai_port is None:
                # A gateway on any free port (tests, several on one machine) takes any free
                # port for the OpenAI API too, rather than contend for the fixed default.
                openai_port = 0 if ws_port == 0 else self._settings.openai_port
            self._openai = OpenAIServer(self.hub, self.workers, self._settings)
            await self._openai.start(host or self._settings.host, openai_port)
        return self._server

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    # The OpenAI-compatible API (nova_gateway/openai_api.py); None when `openai_api` is off.
    _openai: OpenAIServer | None = None

    @property
    def openai_port(self) -> int | None:
        """The OpenAI-compatible API's bound port; None when it is not served."""
        return self._openai.port if self._openai is not None else None

    async def close(self) -> None:
        """Stop accepting connections; let open sessions flush and receive their finals (up to
        ``shutdown_grace_s``, so workers must still be running), then close them with 1001.
        OpenAI API requests in flight get the same grace, at the same time."""
        openai_closed = asyncio.ensure_future(self._openai.close()) if self._openai else None
        if self._server is not None:
            self._server.close(close_connections=False)
            self._shutting_down.set()
            try:
                await asyncio.wait_for(
                    self._server.wait_closed(), self._settings.shutdown_grace_s + 5
                )
            except TimeoutError:
                self._server.close(close_connections=True)
                await self._server.wait_closed()
        if openai_closed is not None:
            await openai_closed
        await self.workers.stop()

    # ------------------------------------------------------------------ HTTP

    async def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path in ("/ws", "/ws/v0"):
            return None  # carry on with the WebSocket handshake
        if path == "/health":
            return _json(http.HTTPStatus.OK, {"status": "ok"})
        if path == "/health/full":
            report = await self.health_report()
            status = http.HTTPStatus.OK if report.ready else http.HTTPStatus.SERVICE_UNAVAILABLE
            return _json(status, report)
        if path == "/metrics":
            return _response(
                http.HTTPStatus.OK, generate_latest(self._registry), CONTENT_TYPE_LATEST
            )
        if match := SUBTITLES_PATH.match(path):
            return await self._subtitles(match.group(1), match.group(2), query)
        return _json(
            http.HTTPStatus.NOT_FOUND,
            {"error": f"no such path {path}; try /ws, /health or /sessions/<id>/subtitles.vtt"},
        )

    async def _subtitles(self, session_id: str, fmt: str, query: str) -> Response:
        language = urllib.parse.parse_qs(query).get("language", [None])[0]
        try:
            if language is not None:
                language = check_target_language(language)
        except UnsupportedLanguage as exc:
            return _json(http.HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        if not is_valid_token(session_id):
            return _json(http.HTTPStatus.NOT_FOUND, {"error": "no such session"})
        try:
            # Asked of the stream's state first: an unknown id costs no consumer.
            stored = await results_stored(self._js, self._subjects, session_id)
            results = (
                await read_results(self._js, self._subjects, session_id, complete=True)
                if stored
                else []
            )
        except Exception as exc:  # NATS unreachable or slow: not the client's fault
            log.warning("subtitles: cannot read results", error=repr(exc))
            return _json(http.HTTPStatus.SERVICE_UNAVAILABLE, {"error": "results unavailable"})
        if not results:
            return _json(
                http.HTTPStatus.NOT_FOUND,
                {"error": "no results for this session: unknown, expired, or nothing "
                          "transcribed yet"},
            )  # fmt: skip
        body = subtitles(results, "srt" if fmt == "srt" else "vtt", language=language)
        return _response(http.HTTPStatus.OK, body.encode(), SUBTITLE_TYPES[fmt])

    async def health_report(self) -> HealthReport:
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
        # Translation workers are listed but not required: transcription works without them.
        return HealthReport(
            ready=not missing,
            missing=missing,
            nats=connected,
            stt_workers=[w.worker_id for w in workers],
            mt_workers=[w.worker_id for w in self.workers.alive("mt")],
        )

    # ------------------------------------------------------------------ WebSocket

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path.partition("?")[0] if ws.request is not None else "/ws"
        if path == "/ws/v0":  # the seed's protocol, for the original desktop client
            seed = SeedConnection(ws, hub=self.hub, shutting_down=self._shutting_down)
            await seed.run()
            return
        connection = ClientConnection(ws, hub=self.hub, shutting_down=self._shutting_down)
        await connection.run()
