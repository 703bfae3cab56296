"""Where a request carries its API key or token: the header, a WebSocket subprotocol, the query.

Browsers cannot set headers on a WebSocket, so they offer the token as a subprotocol
(``new WebSocket(url, ["nova.v1", "bearer." + token])``, as Kubernetes does with
``base64url.bearer.authorization.k8s.io.``); the server answers with ``nova.v1``, never with
the token. ``?token=`` is for clients that can only be given a URL (the seed's desktop app):
URLs end up in histories and logs, so give them short-lived tokens there, not keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDictProxy

SUBPROTOCOL = "nova.v1"
BEARER_PROTOCOL_PREFIX = "bearer."


class BadCredentials(ValueError):
    """A credential in a shape the gateway does not take; the message says which shape."""


def presented(headers: CIMultiDictProxy[str], query: Mapping[str, str]) -> str | None:
    """The credential the request presents, or None."""
    header = headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise BadCredentials("the Authorization header must be 'Bearer <API key or token>'")
        return value.strip()
    for offered in headers.getall("Sec-WebSocket-Protocol", ()):
        for protocol in offered.split(","):
            protocol = protocol.strip()
            if protocol.startswith(BEARER_PROTOCOL_PREFIX) and len(protocol) > len(
                BEARER_PROTOCOL_PREFIX
            ):
                return protocol[len(BEARER_PROTOCOL_PREFIX) :]
    token = query.get("token", "").strip()
    return token or None
