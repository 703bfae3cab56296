"""``POST /auth/token`` (a short-lived session token for an API key, so a browser need not hold
the key) and ``GET /auth/whoami`` (who a credential is, and its limits: a page checks its token
with it before connecting, since a browser does not show why a WebSocket was refused)."""

from __future__ import annotations

import time

import msgspec
from aiohttp import web

from nova_common.messages import json_encoder
from nova_gateway.auth.access import Access
from nova_gateway.auth.middleware import principal_of, refusal


class TokenRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Shorter than access.token_ttl_s if the client likes; never longer.
    ttl_s: float | None = None


class TokenResponse(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    token_type: str
    expires_at: float
    expires_in: float


def _json(status: int, payload: object) -> web.Response:
    response = web.Response(
        status=status, body=json_encoder.encode(payload), content_type="application/json"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


class AuthRoutes:
    def __init__(self, access: Access) -> None:
        self._access = access

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_post("/auth/token", self._token)
        router.add_get("/auth/whoami", self._whoami)

    async def _token(self, request: web.Request) -> web.Response:
        principal = principal_of(request)
        if principal.via == "open":
            return refusal(
                request,
                400,
                "auth_off",
                "this gateway needs no credential (it has no API keys): connect without a token",
            )
        if principal.via == "token":
            return refusal(
                request, 403, "key_needed", "a token cannot mint tokens: use the API key"
            )
        body = await request.read()
        try:
            asked = msgspec.json.decode(body, type=TokenRequest) if body.strip() else TokenRequest()
            if asked.ttl_s is not None and asked.ttl_s <= 0:
                raise msgspec.ValidationError("ttl_s must be positive")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return refusal(request, 400, "invalid_request", f"invalid token request: {exc}")
        token, expires_at = self._access.mint(principal, asked.ttl_s)
        return _json(
            200,
            TokenResponse(
                token=token,
                token_type="Bearer",
                expires_at=expires_at,
                expires_in=round(expires_at - time.time(), 3),
            ),
        )

    async def _whoami(self, request: web.Request) -> web.Response:
        principal = principal_of(request)
        return _json(
            200,
            {
                "key": principal.name or None,
                "via": principal.via,
                "expires_at": principal.expires_at,
                "limits": principal.limits.describe(),
            },
        )
