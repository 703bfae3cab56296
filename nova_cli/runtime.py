"""Process plumbing shared by the service commands: signals, NATS, provisioning."""

from __future__ import annotations

import asyncio
import signal

from nats.aio.client import Client
from nats.js.errors import APIError

from nova_common import provision
from nova_common.nats_conn import NatsUnavailable, connect
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
        try:
            await provision.provision(
                nc.jetstream(),
                provision.topology(subjects, settings.streams, settings.stt, settings.mt),
            )
        except TimeoutError as exc:
            await nc.close()
            # A user without JetStream admin rights: its API requests go unanswered (the
            # server reports a permissions violation, which nats-py logs, and drops them).
            # In a cluster, a stream changing its replicas (about 10 s) answers late too.
            raise NatsUnavailable(
                "no answer creating the streams and consumers: this NATS user may lack "
                "JetStream admin rights. Run the services with nats.provision = false "
                "(NOVA_NATS_PROVISION=false) and `nova init` as the admin user. (In a "
                "cluster a stream may be changing its replicas or leader: try again.)"
            ) from exc
        except APIError as exc:
            await nc.close()
            raise NatsUnavailable(_refused_topology(exc, settings.streams.replicas)) from exc
    return nc


def _refused_topology(exc: APIError, replicas: int) -> str:
    reason = f"NATS refused Nova's streams and consumers: {exc.description or exc}"
    if replicas > 1:
        # The commonest cause: R3 settings pointed at a single server, or a cluster too small.
        reason += (
            f". streams.replicas = {replicas} needs a JetStream cluster of at least {replicas} "
            "nodes (deploy/cluster/); a single nats-server takes streams.replicas = 1"
        )
    return reason
