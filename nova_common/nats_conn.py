"""Connecting to NATS the way every Nova process should: reconnect forever, say who we are."""

from __future__ import annotations

import asyncio
import contextlib
import os

import nats
import structlog
from nats.aio.client import Client

from nova_common.settings import NatsSettings, redact_url

DEFAULT_URL = "nats://127.0.0.1:4222"
log = structlog.get_logger(__name__)


class NatsUnavailable(ConnectionError):
    pass


def _check_credential_files(settings: NatsSettings) -> None:
    for setting, path in (("nats.creds", settings.creds), ("nats.nkey_seed", settings.nkey_seed)):
        if path is not None and not os.access(path, os.R_OK):
            reason = "does not exist" if not os.path.exists(path) else "is not readable"
            raise NatsUnavailable(f"{setting} {path} {reason}")


def server_urls(url: str) -> list[str]:
    """``nats.url`` may name several servers, comma-separated: the nodes of a cluster. Any one
    of them is enough to connect; the client learns the others and fails over among them."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise NatsUnavailable(f"nats.url {url!r} names no server")
    return servers


async def connect(settings: NatsSettings, *, name: str, url: str | None = None) -> Client:
    target = url or settings.url or DEFAULT_URL
    servers = server_urls(target)
    shown = redact_url(target)  # what logs and errors say: a URL may carry a password
    _check_credential_files(settings)
    holder: list[Client] = []
    # The server turned our credentials away: no point in waiting for it to change its mind.
    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_disconnect() -> None:
        # A drain on shutdown disconnects too; only an unexpected loss deserves a warning.
        if holder and (holder[0].is_draining or holder[0].is_closed):
            return
        log.warning("nats disconnected", url=shown)

    async def on_reconnect() -> None:
        log.info("nats reconnected", url=shown)

    async def on_error(exc: Exception) -> None:
        message = str(exc)
        lowered = message.lower()
        if not holder:
            if "authorization violation" in lowered and not refused.done():
                refused.set_result(message)
            if refused.done():
                return  # said once, in the error that ends the wait below
        if "permissions violation" in lowered and "_inbox" in lowered:
            # The commonest misconfiguration of a role's user: replies come to an inbox its
            # permissions do not cover, and every request times out.
            message += f" (this connection's inbox prefix is {settings.inbox_prefix!r}: set "
            message += "nats.inbox_prefix to the one the user is allowed)"
        log.warning("nats error", error=message)

    # nats-py retries a refused first connection forever when reconnects are unbounded;
    # bound the wait so a wrong URL ends with a clear message instead of hanging.
    connecting = asyncio.ensure_future(
        nats.connect(
            servers=servers,
            name=name,
            user=settings.user,
            password=settings.password,
            user_credentials=settings.creds,
            nkeys_seed=settings.nkey_seed,
            inbox_prefix=settings.inbox_prefix,
            connect_timeout=settings.connect_timeout_s,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            allow_reconnect=True,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            error_cb=on_error,
        )
    )
    waits: set[asyncio.Future[Client] | asyncio.Future[str]] = {connecting, refused}
    await asyncio.wait(waits, timeout=settings.connect_wait_s, return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done():
        connecting.cancel()
        with contextlib.suppress(BaseException):
            await connecting
        if refused.done():
            raise NatsUnavailable(
                f"NATS at {shown} refused this connection's credentials ({refused.result()}): "
                "give the role's user with nats.nkey_seed, nats.creds or nats.user and "
                "nats.password (NOVA_NATS_NKEY_SEED, ...)"
            )
        raise NatsUnavailable(
            f"cannot connect to NATS at {shown} (gave up after {settings.connect_wait_s:.0f}s); "
            "is nats-server running? set NOVA_NATS_URL, or use `nova up` to start one"
        )
    try:
        nc = connecting.result()
    except Exception as exc:  # nats-py raises several unrelated types here
        raise NatsUnavailable(f"cannot connect to NATS at {shown}: {exc}") from exc
    holder.append(nc)
    return nc
