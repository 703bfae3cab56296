"""A whole Nova stack in one process: used by `nova up`, the benchmarks and the tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from nova_cli.runtime import connect_and_provision
from nova_common.nats_auth import Role
from nova_common.nats_server import EmbeddedNatsServer, free_port
from nova_common.nats_users import RoleUsers
from nova_common.settings import Settings
from nova_gateway.server import Gateway
from nova_gateway.service import make_gateway
from nova_mt.backend import TranslationBackend
from nova_mt.worker import MtWorker
from nova_stt.service import load_model, make_worker
from nova_stt.transcriber import SpeechToText
from nova_stt.worker import SttWorker

log = structlog.get_logger(__name__)


@dataclass
class LocalStack:
    settings: Settings
    stt_workers: int = 1
    # Reuse an already loaded model (tests share one); otherwise each stack loads its own.
    model: SpeechToText | None = None
    # Translation workers, given these backends (None: load the configured ones).
    mt_workers: int = 0
    backends: list[TranslationBackend] | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # Each service connects as its role's own NATS user (nova_common/nats_users.py), and an
    # admin user provisions; None: every connection as ``settings.nats`` says.
    users: RoleUsers | None = None

    nats_url: str = ""
    gateway: Gateway | None = None
    workers: list[SttWorker] = field(default_factory=list)
    mt: list[MtWorker] = field(default_factory=list)
    _server: EmbeddedNatsServer | None = None
    _connections: list[Client] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Set when a worker dies on its own: `nova up` must not keep accepting audio nobody takes.
    failed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ws_url(self) -> str:
        assert self.gateway is not None
        return f"ws://{self.settings.gateway.host}:{self.gateway.port}/ws"

    @property
    def http_url(self) -> str:
        assert self.gateway is not None
        return f"http://{self.settings.gateway.host}:{self.gateway.port}"

    async def start(self, *, port: int | None = None) -> LocalStack:
        url = self.settings.nats.url
        if url is None:
            nats_port = free_port()
            self._server = EmbeddedNatsServer(
                Path(self.settings.data_dir) / "nats",
                port=nats_port,
                config_file=self.users.config_file if self.users else None,
            )
            self._server.start()
            url = self._server.url
        self.nats_url = url
        if self.users is not None:  # the services may not provision: the admin does, first
            admin = await connect_and_provision(self.as_role("admin"), name="nova-admin", url=url)
            await admin.drain()
        gateway = self.as_role("gateway")
        gw_nc = await connect_and_provision(gateway, name="nova-gateway", url=url)
        self._connections.append(gw_nc)
        self.gateway = make_gateway(gw_nc, gateway, self.registry)
        await self.gateway.start(port=self.settings.gateway.port if port is None else port)
        if self.stt_workers:
            model = self.model
            if model is None:
                model = await asyncio.to_thread(load_model, self.settings)
            for _ in range(self.stt_workers):
                await self.add_worker(model)
        if self.mt_workers:
            backends = self.backends
            if backends is None:
                from nova_mt.service import load_backends

                backends = await asyncio.to_thread(load_backends, self.settings)
            for _ in range(self.mt_workers):
                await self.add_mt_worker(backends)
        return self

    def as_role(self, role: Role) -> Settings:
        """The settings a service of ``role`` runs with here."""
        return self.settings if self.users is None else self.users.settings_for(role, self.settings)

    async def wait_ready(self, timeout: float = 15.0) -> None:
        """Until the gateway has heard every worker's heartbeat, so that a session started now
        is not told that no worker is running."""
        assert self.gateway is not None
        async with asyncio.timeout(timeout):
            await self.gateway.workers.wait_for("stt", {w.worker_id for w in self.workers})
            await self.gateway.workers.wait_for("mt", {w.worker_id for w in self.mt})

    async def add_worker(self, model: SpeechToText) -> SttWorker:
        settings = self.as_role("stt")
        nc = await connect_and_provision(settings, name="nova-stt", url=self.nats_url, create=False)
        self._connections.append(nc)
        # Each worker gets its own registry: metric names would collide in a shared one.
        worker = make_worker(nc, settings, model, CollectorRegistry())
        self.workers.append(worker)
        self._run(worker.run())
        return worker

    async def add_mt_worker(self, backends: list[TranslationBackend]) -> MtWorker:
        from nova_mt.service import make_worker as make_mt_worker

        settings = self.as_role("mt")
        nc = await connect_and_provision(settings, name="nova-mt", url=self.nats_url, create=False)
        self._connections.append(nc)
        worker = make_mt_worker(nc, settings, backends, CollectorRegistry())
        self.mt.append(worker)
        self._run(worker.run())
        return worker

    def _run(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        task.add_done_callback(self._on_worker_exit)
        self._tasks.append(task)

    def _on_worker_exit(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("worker crashed", error=repr(task.exception()))
        self.failed.set()

    async def stop(self) -> None:
        # The gateway first: its open sessions flush and wait for their finals, which needs the
        # workers still running; only then do the workers finish their batch and stop.
        if self.gateway is not None:
            await self.gateway.close()
        # Then the workers, each after the batch in hand; a transcript handed on for
        # translation after the MT workers stopped waits in the TEXT stream for the next start.
        for worker in self.workers:
            worker.stop()
        for mt in self.mt:
            mt.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for nc in self._connections:
            with contextlib.suppress(Exception):
                await nc.drain()
        if self._server is not None:
            self._server.stop()

    async def __aenter__(self) -> LocalStack:
        await self.start()
        await self.wait_ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
