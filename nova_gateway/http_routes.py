"""The gateway's plain HTTP endpoints: health, metrics, a session's subtitles, the page.

``/health`` (the process is alive), ``/health/full`` (ready: NATS, streams, a speech worker),
``/metrics`` (Prometheus), ``/sessions/<sid>/subtitles.srt|.vtt`` (read from RESULTS, so any
gateway answers for any session), and ``/`` with ``/static/…`` from the package.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web
from nats.aio.client import Client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from nova_common import provision
from nova_common.languages import UnsupportedLanguage, check_target_language
from nova_common.messages import HealthReport, json_encoder
from nova_common.subjects import Subjects, is_valid_token
from nova_gateway.replay import read_results, results_stored
from nova_gateway.subtitles import subtitles
from nova_gateway.workers import WorkerRegistry

log = structlog.get_logger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SUBTITLE_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(status: int, payload: object) -> web.Response:
    return web.Response(
        status=status, body=json_encoder.encode(payload), content_type="application/json"
    )


@web.middleware
async def not_found_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An unknown path says where to go instead (the OpenAI API answers its own in its shape)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return json_response(
            404,
            {"error": f"no such path {request.path}; try /, /ws, /health, /v1/models or "
                      "/sessions/<id>/subtitles.vtt"},
        )  # fmt: skip


class HttpRoutes:
    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        topology: provision.Topology,
        registry: CollectorRegistry,
        workers: WorkerRegistry,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._subjects = subjects
        self._topology = topology
        self._registry = registry
        self._workers = workers

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/health", self._health)
        router.add_get("/health/full", self._health_full)
        router.add_get("/metrics", self._metrics)
        router.add_get("/sessions/{session_id}/subtitles.{fmt:srt|vtt}", self._subtitles)
        router.add_get("/", self._page)
        router.add_static("/static/", STATIC_DIR)

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def _health(self, request: web.Request) -> web.Response:
        return json_response(200, {"status": "ok"})

    async def _health_full(self, request: web.Request) -> web.Response:
        report = await self.health_report()
        return json_response(200 if report.ready else 503, report)

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self._registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _subtitles(self, request: web.Request) -> web.Response:
        session_id, fmt = request.match_info["session_id"], request.match_info["fmt"]
        language = request.query.get("language")
        try:
            if language is not None:
                language = check_target_language(language)
        except UnsupportedLanguage as exc:
            return json_response(400, {"error": str(exc)})
        if not is_valid_token(session_id):
            return json_response(404, {"error": "no such session"})
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
            return json_response(503, {"error": "results unavailable"})
        if not results:
            return json_response(
                404,
                {"error": "no results for this session: unknown, expired, or nothing "
                          "transcribed yet"},
            )  # fmt: skip
        body = subtitles(results, "srt" if fmt == "srt" else "vtt", language=language)
        return web.Response(text=body, content_type=SUBTITLE_TYPES[fmt], charset="utf-8")

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
        workers = self._workers.ready("stt")
        if not workers:
            missing.append("stt worker")
        # Translation workers are listed but not required: transcription works without them.
        return HealthReport(
            ready=not missing,
            missing=missing,
            nats=connected,
            stt_workers=[w.worker_id for w in workers],
            mt_workers=[w.worker_id for w in self._workers.ready("mt")],
            breaker_open=[
                w.worker_id
                for role in ("stt", "mt")
                for w in self._workers.alive(role)
                if w.breaker == "open"
            ],
        )
