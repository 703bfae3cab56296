"""Process plumbing shared by the service commands: signals, NATS, provisioning."""

from __future__ import annotations

import asyncio
import signal

from nats.aio.client import Client

from nova_common import provision
from nova_common.nats_conn import connect
from nova_common.settings import Settings
from nova_common.subjects import Subjects


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set ``stop``; a second one exits at once."""
    loop = asyncio.get_running_loop()

    def handler() -> None:
        if stop.is_set():
            raise SystemExit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handler)


async def connect_and_provision(
    settings: Settings, *, name: str, url: str | None = None, create: bool | None = None
) -> Client:
    """Connect, then create or update the streams and consumers: always when ``create`` is
    True (`nova init`), never when False, and by default as ``nats.provision`` says."""
    nc = await connect(settings.nats, name=name, url=url)
    if settings.nats.provision if create is None else create:
        subjects = Subjects(settings.nats.subject_prefix)
        await provision.provision(
            nc.jetstream(),
            provision.topology(subjects, settings.streams, settings.stt, settings.mt),
        )
    return nc
