"""HTTPS and WSS on the gateway's port: an SSL context from ``access.tls_cert`` / ``tls_key``."""

from __future__ import annotations

import ssl

from nova_common.settings import AccessSettings


class TlsError(ValueError):
    """The certificate or key cannot be used; the message names the file and the reason."""


def server_context(settings: AccessSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except FileNotFoundError as exc:
        raise TlsError(f"TLS: no such file {exc.filename}") from exc
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(
            f"TLS: cannot use certificate {settings.tls_cert} with key {settings.tls_key}: {exc}"
        ) from exc
    return context
