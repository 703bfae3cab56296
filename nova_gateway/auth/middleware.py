"""The one place that decides, for every route, whether a request is let in.

Open without a credential: ``/health`` and ``/health/full`` (probes: liveness and readiness
carry no secrets, and Kubernetes' probes send none), ``/`` and ``/static/…`` (the page holds
no data; it needs a token to do anything). Everything else — ``/ws``, ``/ws/v0``, ``/v1/…``,
``/sessions/…``, ``/metrics``, ``/auth/…`` — needs an API key or a session token while the
gateway requires them. A browser's ``Origin`` is checked on every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from nova_common.messages import json_encoder
from nova_gateway.auth.access import Access, Principal, Unauthorized
from nova_gateway.auth.credentials import BadCredentials, presented
from nova_gateway.auth.keys import KeyStoreError
from nova_gateway.auth.limits import LimitExceeded

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

OPEN_PATHS = frozenset({"/health", "/health/full", "/"})
OPEN_PREFIXES = ("/static/",)
PRINCIPAL = web.RequestKey("nova.principal", Principal)


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]  # a KeyError here: a route outside the access middleware


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _openai(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def refusal(request: web.Request, status: int, code: str, message: str) -> web.Response:
    """An error in the route's own shape: OpenAI's under /v1, ``{"error": …}`` elsewhere."""
    if _openai(request.path):
        kind = "rate_limit_error" if status == 429 else "invalid_request_error"
        payload: object = {"error": {"message": message, "type": kind, "code": code}}
    else:
        payload = {"error": message, "code": code}
    response = web.Response(
        status=status, body=json_encoder.encode(payload), content_type="application/json"
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="nova"'
    return response


def _cors(response: web.StreamResponse, origin: str | None) -> None:
    # Only reached for an allowed origin (or none): let its scripts read the answer.
    if origin is not None and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"


def access_middleware(access: Access) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not access.origins.allows(origin, request.host):
            return refusal(
                request,
                403,
                "origin_not_allowed",
                f"pages from {origin} may not use this gateway (access.allowed_origins)",
            )
        if request.method == "OPTIONS" and origin is not None:  # a CORS preflight: no credential
            response = web.Response(status=204)
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Max-Age"] = "600"
            _cors(response, origin)
            return response
        if is_open(request.path):
            return await handler(request)
        try:
            principal = access.authenticate(presented(request.headers, request.query))
        except (Unauthorized, BadCredentials) as exc:
            response = refusal(request, 401, "unauthorized", str(exc))
            _cors(response, origin)
            return response
        except KeyStoreError as exc:
            # Someone broke the keys file while the gateway runs: nobody is let in unchecked,
            # and the operator reads why (the file holds hashes only: nothing secret in it).
            log.warning("cannot read the API keys", error=str(exc))
            return refusal(request, 503, "keys_unavailable", "the gateway cannot read its API keys")
        request[PRINCIPAL] = principal
        release = None
        if request.method == "POST" and request.path.startswith("/v1/audio/"):
            # An upload is a session like a WebSocket's: it counts against the same limits.
            try:
                release = access.slots.acquire(principal.name, principal.limits)
            except LimitExceeded as exc:
                return refusal(request, 429, exc.code, str(exc))
        try:
            answer = await handler(request)
        finally:
            if release is not None:
                release()
        _cors(answer, origin)
        return answer

    return check
