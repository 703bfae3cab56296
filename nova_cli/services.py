"""`nova up`, `nova gateway`, `nova stt`, `nova init`: the long-running commands."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import structlog
from nats.aio.client import Client
from prometheus_client import CollectorRegistry, start_http_server

from nova_cli.runtime import connect_and_provision, stop_on_signals
from nova_cli.stack import LocalStack
from nova_common.nats_server import EmbeddedNatsServer, free_port
from nova_common.nats_users import RoleUsers, embedded_users
from nova_common.pull_worker import PullWorker, work_until
from nova_common.settings import Settings, SttSettings
from nova_gateway.auth.access import describe_access
from nova_gateway.service import make_gateway
from nova_mt.service import describe_backends, load_backends
from nova_mt.service import make_worker as make_mt_worker
from nova_stt.service import load_model, make_worker

log = structlog.get_logger("nova")


def _nova_command() -> str:
    """How to run `nova` from where the user is: plain `nova` only when it is on PATH."""
    on_path = shutil.which("nova")
    invoked = Path(sys.argv[0]).resolve()
    if on_path and Path(on_path).resolve() == invoked:
        return "nova"
    try:
        return str(invoked.relative_to(Path.cwd()))
    except ValueError:
        return str(invoked)


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _openai_line(settings: Settings, port: int) -> str:
    """The banner's line for the OpenAI-compatible API (base URL for OpenAI clients)."""
    if not settings.gateway.openai_api:
        return ""
    return f"  OpenAI-compatible API: http{_s(settings)}://{settings.gateway.host}:{port}/v1\n"


def _s(settings: Settings) -> str:
    """The "s" of https and wss when the gateway serves TLS."""
    return "s" if settings.access.tls_cert else ""


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def stt_layout(stt: SttSettings, cores: int) -> tuple[int, int]:
    """(workers, cpu_threads each) for `nova up`'s STT workers; settings that are set win.

    On 2 cores two workers of one thread each beat one worker with both threads
    (bench/stt_workers.py, 4 streams, base, medians of 3 rounds: 3.7 instead of 2.7 s of audio
    transcribed per second, ahead in every round; finals 7.2 instead of 16.6 s after their
    utterance at real-time pace): while one worker is in its single-threaded steps (decoding,
    features, Python), the other keeps the second core busy. Unmeasured beyond 2 cores, so at
    most 2 workers there, sharing the cores out. CTranslate2's own default (4 threads)
    oversubscribes 2 cores: it was the slowest."""
    workers = stt.workers or min(max(cores, 1), 2)
    threads = stt.cpu_threads or max(cores // workers, 1)
    return workers, threads


async def run_up(settings: Settings, *, port: int | None) -> int:
    stop = asyncio.Event()
    stop_on_signals(stop)
    server: EmbeddedNatsServer | None = None
    users: RoleUsers | None = None
    if settings.nats.url is None:
        # The well-known port when it is free, so the nats CLI finds it without flags.
        nats_port = 4222 if _port_free("127.0.0.1", 4222) else free_port()
        users = embedded_users(settings)
        server = EmbeddedNatsServer(
            Path(settings.data_dir) / "nats",
            port=nats_port,
            config_file=users.config_file if users else None,
        ).start()
        log.info("embedded nats-server started", url=server.url, store=str(server.store_dir),
                 users=str(users.directory) if users else "none (nats.embedded_auth off)")  # fmt: skip
        settings = msgspec.structs.replace(
            settings, nats=msgspec.structs.replace(settings.nats, url=server.url)
        )
    stack = LocalStack(settings, stt_workers=0, users=users)
    status = 0
    try:
        await stack.start(port=port)
        workers, threads = stt_layout(settings.stt, usable_cores())
        log.info("loading speech model", model=settings.stt.model, workers=workers,
                 cpu_threads=threads)  # fmt: skip
        tuned = msgspec.structs.replace(
            settings, stt=msgspec.structs.replace(settings.stt, cpu_threads=threads)
        )
        for _ in range(workers):  # a model each: one CTranslate2 model runs one call at a time
            model = await asyncio.to_thread(load_model, tuned)
            worker = await stack.add_worker(model)
            log.info("stt worker started", worker=worker.worker_id)
        backends = await asyncio.to_thread(load_backends, settings)
        await stack.add_mt_worker(backends)
        await stack.wait_ready()
        assert stack.gateway is not None
        host, gw_port, s = settings.gateway.host, stack.gateway.port, _s(settings)
        print(
            f"Nova Voice is up: http{s}://{host}:{gw_port}/  (live subtitles in the browser)\n"
            f"  WebSocket: ws{s}://{host}:{gw_port}/ws\n"
            f"  health: http{s}://{host}:{gw_port}/health/full   NATS: {stack.nats_url}\n"
            f"  access: {describe_access(stack.gateway.access)}\n"
            f"{_nats_users_line(users)}"
            f"{_openai_line(settings, gw_port)}"
            f"  translation: {describe_backends(backends)}\n"
            f"  try:    {_nova_command()} transcribe FILE --url ws{s}://{host}:{gw_port}/ws\n"
            "  Ctrl-C to stop",
            flush=True,
        )
        stopping = asyncio.ensure_future(stop.wait())
        crashed = asyncio.ensure_future(stack.failed.wait())
        await asyncio.wait({stopping, crashed}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        crashed.cancel()
        if stack.failed.is_set():
            status = 1
            log.error("stopping: the speech-to-text worker failed")
        log.info("stopping: finishing in-flight work and draining")
    finally:
        await stack.stop()
        if server is not None:
            server.stop()
    log.info("stopped cleanly" if status == 0 else "stopped")
    return status


def _nats_users_line(users: RoleUsers | None) -> str:
    """Where the embedded server's per-role users are, and how the nats CLI gets in."""
    if users is None:
        return ""
    admin = users.seed_file("admin")
    return (
        f"  NATS users, one per role: {users.directory}  "
        f"(nats CLI: --nkey {admin} --inbox-prefix _INBOX_admin)\n"
    )


async def run_gateway(settings: Settings, *, port: int | None) -> int:
    stop = asyncio.Event()
    stop_on_signals(stop)
    nc = await connect_and_provision(settings, name="nova-gateway")
    gateway = make_gateway(nc, settings, CollectorRegistry())
    try:
        # Bind before announcing: a port in use fails here with a clear message, and the
        # printed port is the real one (also for --port 0).
        await gateway.start(port=port)
        print(
            f"nova gateway listening on ws{_s(settings)}://{settings.gateway.host}:{gateway.port}/ws"
            f" ({describe_access(gateway.access)})",
            flush=True,
        )
        print(_openai_line(settings, gateway.port), end="", flush=True)
        await stop.wait()
    finally:
        await gateway.close()
        await nc.drain()
    return 0


async def run_stt(settings: Settings, *, metrics_port: int | None) -> int:
    async def make(nc: Client, registry: CollectorRegistry) -> tuple[PullWorker, str]:
        model = await asyncio.to_thread(load_model, settings)
        worker = make_worker(nc, settings, model, registry)
        return worker, f"nova stt worker {worker.worker_id} ready (model {settings.stt.model})"

    return await _serve_worker(settings, "nova-stt", make, metrics_port=metrics_port)


async def run_mt(settings: Settings, *, metrics_port: int | None) -> int:
    async def make(nc: Client, registry: CollectorRegistry) -> tuple[PullWorker, str]:
        backends = await asyncio.to_thread(load_backends, settings)
        worker = make_mt_worker(nc, settings, backends, registry)
        return worker, f"nova mt worker {worker.worker_id} ready ({describe_backends(backends)})"

    return await _serve_worker(settings, "nova-mt", make, metrics_port=metrics_port)


async def _serve_worker(
    settings: Settings,
    name: str,
    make: Callable[[Client, CollectorRegistry], Awaitable[tuple[PullWorker, str]]],
    *,
    metrics_port: int | None,
) -> int:
    """Connect (NATS first: failing there is quick), load and build the worker, say it is
    ready, work until SIGINT/SIGTERM, drain."""
    stop = asyncio.Event()
    stop_on_signals(stop)
    registry = CollectorRegistry()
    if metrics_port:
        start_http_server(metrics_port, registry=registry)
    nc = await connect_and_provision(settings, name=name)
    worker, ready = await make(nc, registry)
    print(ready, flush=True)
    await work_until(worker, stop)
    await nc.drain()
    return 0


async def run_init(settings: Settings) -> int:
    nc = await connect_and_provision(settings, name="nova-init", create=True)
    await nc.drain()
    prefix = settings.nats.subject_prefix
    print(f"streams and consumers for prefix {prefix!r} are in place", file=sys.stdout)
    return 0
