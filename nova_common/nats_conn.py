"""Connecting to NATS the way every Nova process should: reconnect forever, say who we are."""

from __future__ import annotations

import asyncio

import nats
import structlog
from nats.aio.client import Client

from nova_common.settings import NatsSettings

DEFAULT_URL = "nats://127.0.0.1:4222"
log = structlog.get_logger(__name__)


class NatsUnavailable(ConnectionError):
    pass


async def connect(settings: NatsSettings, *, name: str, url: str | None = None) -> Client:
    target = url or settings.url or DEFAULT_URL
    holder: list[Client] = []

    async def on_disconnect() -> None:
        # A drain on shutdown disconnects too; only an unexpected loss deserves a warning.
        if holder and (holder[0].is_draining or holder[0].is_closed):
            return
        log.warning("nats disconnected", url=target)

    async def on_reconnect() -> None:
        log.info("nats reconnected", url=target)

    async def on_error(exc: Exception) -> None:
        log.warning("nats error", error=str(exc))

    try:
        # nats-py retries a refused first connection forever when reconnects are unbounded;
        # bound the wait so a wrong URL ends with a clear message instead of hanging.
        connecting = nats.connect(
            servers=[target],
            name=name,
            user=settings.user,
            password=settings.password,
            connect_timeout=settings.connect_timeout_s,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            allow_reconnect=True,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            error_cb=on_error,
        )
        nc = await asyncio.wait_for(connecting, settings.connect_wait_s)
    except TimeoutError as exc:
        raise NatsUnavailable(
            f"cannot connect to NATS at {target} (gave up after {settings.connect_wait_s:.0f}s); "
            "is nats-server running? set NOVA_NATS_URL, or use `nova up` to start one"
        ) from exc
    except Exception as exc:  # nats-py raises several unrelated types here
        raise NatsUnavailable(f"cannot connect to NATS at {target}: {exc}") from exc
    holder.append(nc)
    return nc
