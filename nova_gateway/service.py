"""Running the gateway as a service: connect, provision, serve until told to stop."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from nova_common import provision
from nova_common.settings import Settings
from nova_common.subjects import Subjects
from nova_gateway.auth.access import Access
from nova_gateway.server import Gateway


def make_gateway(nc: Client, settings: Settings, registry: CollectorRegistry) -> Gateway:
    subjects = Subjects(settings.nats.subject_prefix)
    return Gateway(
        nc,
        settings=settings.gateway,
        vad=settings.vad,
        subjects=subjects,
        topology=provision.topology(subjects, settings.streams, settings.stt, settings.mt),
        registry=registry,
        english_via=settings.mt.english_via,
        access=Access.from_settings(settings),
    )


async def serve_until(gateway: Gateway, stop: asyncio.Event, *, port: int | None = None) -> None:
    await gateway.start(port=port)
    try:
        await stop.wait()
    finally:
        await gateway.close()
