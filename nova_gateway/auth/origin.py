"""Which browser pages may use the gateway: its own, and the ``access.allowed_origins``.

Browsers send ``Origin`` on WebSocket handshakes and on scripts' requests, and a WebSocket is
not protected by CORS: without this check any web page a user opens could talk to a gateway
on their machine (one that is open on loopback) in their name.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def _normal(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class OriginPolicy:
    def __init__(self, allowed: tuple[str, ...]) -> None:
        self._any = "*" in allowed
        self._allowed = frozenset(_normal(o) for o in allowed if o != "*")

    def allows(self, origin: str | None, host: str | None) -> bool:
        """``origin``: the request's Origin header (None: not a browser's request); ``host``:
        its Host header, which the page's own origin names."""
        if origin is None or self._any:
            return True
        normal = _normal(origin)
        if normal in self._allowed:
            return True
        if normal == "null" or host is None:
            return False
        # Same origin: the page came from this very host and port. The scheme is not compared:
        # behind a TLS-terminating proxy the gateway sees http for an https page.
        return urlsplit(normal).netloc == host.strip().lower()
