"""Connecting to NATS the way every Nova process should: reconnect forever, say who we are."""

from __future__ import annotations

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

    async def on_disconnect() -> None:
        log.warning("nats disconnected", url=target)

    async def on_reconnect() -> None:
        log.info("nats reconnected", url=target)

    async def on_error(exc: Exception) -> None:
        log.warning("nats error", error=str(exc))

    try:
        return await nats.connect(
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
    except Exception as exc:  # nats-py raises several unrelated types here
        raise NatsUnavailable(f"cannot connect to NATS at {target}: {exc}") from exc
