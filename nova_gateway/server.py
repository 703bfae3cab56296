"""The gateway: one aiohttp application on one port.

``/ws`` (Nova's protocol) and ``/ws/v0`` (the seed's), the HTTP endpoints of ``http_routes``,
the OpenAI-compatible API under ``/v1`` and the browser page's static files. One port means one
place for auth (nova_gateway/auth/: one middleware decides for every route), a same-origin
WebSocket for the page, and one Kubernetes Service port.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import web
from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from nova_common import provision
from nova_common.metrics import GatewayMetrics
from nova_common.settings import GatewaySettings, VadSettings
from nova_common.subjects import Subjects
from nova_gateway.auth.access import Access
from nova_gateway.auth.credentials import SUBPROTOCOL
from nova_gateway.auth.limits import LimitExceeded
from nova_gateway.auth.middleware import access_middleware, principal_of
from nova_gateway.auth.routes import AuthRoutes
from nova_gateway.auth.tls import server_context
from nova_gateway.connection import ClientConnection
from nova_gateway.http_routes import HttpRoutes, json_response, not_found_as_json
from nova_gateway.hub import SessionHub
from nova_gateway.openai.api import OpenAIApi
from nova_gateway.publisher import AudioPublisher
from nova_gateway.seed.connection import SeedConnection
from nova_gateway.translations import EnglishVia
from nova_gateway.transport import AiohttpTransport, WebSocketResponse
from nova_gateway.workers import WorkerRegistry

log = structlog.get_logger(__name__)

# Past this multiple of the frame limit the frame is not even buffered: aiohttp closes the
# connection with 1009. Below it an oversized frame is refused with an error event and the
# connection stays usable.
HARD_LIMIT_FACTOR = 4
# After the grace period, time for the closing handshakes before connections are cut.
CLOSE_SLACK_S = 5.0


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
        access: Access | None = None,
    ) -> None:
        self._nc = nc
        self._settings = settings
        # None: no keys and no TLS, so open on loopback and refusing to listen elsewhere.
        self.access = access or Access.unconfigured(settings.max_frame_bytes)
        self._subjects = subjects
        metrics = GatewayMetrics.create(registry)
        self.workers = WorkerRegistry(settings.worker_stale_s)
        self.hub = SessionHub(
            nc,
            subjects=subjects,
            settings=settings,
            vad=vad,
            publisher=AudioPublisher(nc.jetstream(), subjects, metrics),
            metrics=metrics,
            workers=self.workers,
            english_via=english_via,
        )
        self._http = HttpRoutes(nc, subjects, topology, registry, self.workers)
        self._runner: web.AppRunner | None = None
        self._shutting_down = asyncio.Event()
        # Every WebSocket connection's own task: shutdown waits for them.
        self._connections: set[asyncio.Task[None]] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[access_middleware(self.access), not_found_as_json])
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/ws/v0", self._websocket)
        self._http.add_to(app.router)
        AuthRoutes(self.access).add_to(app.router)
        if self._settings.openai_api:
            app.add_subapp("/v1", OpenAIApi(self.hub, self.workers, self._settings).app())
        return app

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        host = host or self._settings.host
        # Both raise with a message for the operator before anything listens.
        self.access.check_bind(host)
        ssl_context = server_context(self.access.settings)
        await self.workers.start(self._nc, self._subjects)
        self._runner = web.AppRunner(
            self.app(),
            # A client that hangs up cancels its HTTP request (an OpenAI upload: its session
            # stops being fed). WebSocket connections run in tasks of their own, see below.
            handler_cancellation=True,
            # Sessions get shutdown_grace_s to flush and receive their finals, then close.
            shutdown_timeout=self._settings.shutdown_grace_s + CLOSE_SLACK_S,
            access_log=None,
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            host,
            self._settings.port if port is None else port,
            ssl_context=ssl_context,
        )
        await site.start()

    @property
    def port(self) -> int:
        assert self._runner is not None
        return int(self._runner.addresses[0][1])

    @property
    def tls(self) -> bool:
        return self.access.settings.tls_cert is not None

    async def close(self) -> None:
        """Stop accepting connections; let open sessions flush and receive their finals (up to
        ``shutdown_grace_s``, so workers must still be running), then close them with 1001.
        OpenAI API requests in flight get the same grace, at the same time."""
        deadline = asyncio.get_running_loop().time() + self._settings.shutdown_grace_s
        self._shutting_down.set()
        if self._runner is not None:
            # Waits for the handlers of connections still open (and cancels them after the
            # grace period); a client that already left has no handler left to wait for.
            await self._runner.cleanup()
            self._runner = None
        if self._connections:
            # Connections whose client left may still be flushing (a seed client's session).
            remaining = deadline + CLOSE_SLACK_S - asyncio.get_running_loop().time()
            await asyncio.wait(self._connections, timeout=max(remaining, 0.0))
        for task in list(self._connections):  # past the grace period: cut off
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self.workers.stop()

    # ------------------------------------------------------------------ WebSocket

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = WebSocketResponse(
            largest_frame=self._settings.max_frame_bytes * HARD_LIMIT_FACTOR,
            heartbeat=self._settings.ping_interval_s or None,
            # No permessage-deflate: PCM audio hardly compresses and the events are small, but
            # a negotiated deflate costs each session ~300 KB of zlib state (2/3 of an idle
            # session's memory, bench/overhead.py) and the gateway ~8 % of its CPU inflating
            # audio frames.
            compress=False,
            # A browser that offers its token as a subprotocol gets "nova.v1" back, never the
            # token (it fails a handshake that picks none of its protocols).
            protocols=(SUBPROTOCOL,),
        )
        if not ws.can_prepare(request).ok:
            return json_response(
                426,
                {"error": f"{request.path} is a WebSocket endpoint: connect with a WebSocket "
                          "client (ws://…)"},
            )  # fmt: skip
        if self._shutting_down.is_set():
            return json_response(503, {"error": "the gateway is shutting down"})
        principal = principal_of(request)
        try:
            release = self.access.slots.acquire(principal.name, principal.limits)
        except LimitExceeded as refused:
            # Upgraded first: a browser sees a close code and its reason, never an HTTP status.
            await ws.prepare(request)
            await ws.close(code=refused.close_code, message=refused.close_reason.encode())
            return ws
        try:
            await ws.prepare(request)
        except BaseException:
            release()
            raise
        transport = AiohttpTransport(ws)
        limits = self.access.session_limits(principal)
        connection: ClientConnection | SeedConnection
        if request.path == "/ws/v0":  # the seed's protocol, for the original desktop client
            connection = SeedConnection(
                transport, hub=self.hub, shutting_down=self._shutting_down, limits=limits
            )
        else:
            connection = ClientConnection(
                transport, hub=self.hub, shutting_down=self._shutting_down, limits=limits
            )
        task = asyncio.create_task(self._serve(connection, transport))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        task.add_done_callback(lambda _: release())
        # A client that drops the TCP connection cancels this handler, not the connection's
        # task: it ends the session as for a client that left (a seed client's is flushed).
        await asyncio.wait({task})
        return ws

    @staticmethod
    async def _serve(
        connection: ClientConnection | SeedConnection, transport: AiohttpTransport
    ) -> None:
        try:
            await connection.run()
        except Exception:
            log.exception("websocket connection failed")
            with contextlib.suppress(Exception):  # not a clean 1000: say so
                await transport.close(1011, "internal error")
        finally:
            await transport.stop()
