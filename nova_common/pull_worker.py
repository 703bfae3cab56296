"""The JetStream side of every worker: pull batches from a durable consumer until stopped.

A worker (STT, MT) hands this loop a coroutine that processes one fetched batch; the loop knows
nothing about what is in the messages. It survives what a long-running consumer meets: idle
periods, connection churn, a server restart that leaves the pull subscription quiet, a consumer
deleted under it (DESIGN §7).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError

from nova_common.breaker import BreakerPolicy
from nova_common.dead_letters import DeadLetterQueue, MaxDeliveriesAdvisory, rescue
from nova_common.fate import PermanentError
from nova_common.lifecycle import RetryPolicy, settle
from nova_common.messages import WorkerHeartbeat, msgpack_encoder
from nova_common.metrics import BreakerMetrics
from nova_common.model_gate import ModelGate
from nova_common.provision import rescuer_durable
from nova_common.subjects import Subjects

log = structlog.get_logger(__name__)

BatchHandler = Callable[[list[Msg]], Awaitable[None]]
_advisory_decoder = msgspec.json.Decoder(MaxDeliveriesAdvisory)
# A rescue that failed (the DLQ unreachable or full) is tried again, for as long as it takes:
# the message waits in its work queue meanwhile.
_RESCUE_RETRY = RetryPolicy(max_deliver=1 << 30, nak_delay_s=5.0)


def new_worker_id(role: str) -> str:
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class PullOptions:
    stream: str
    durable: str
    batch_size: int
    fetch_timeout_s: float
    # After this many empty fetches in a row, or failed ones, check the consumer and bind afresh.
    rebind_after_idle: int
    rebind_after_errors: int

    def __post_init__(self) -> None:
        if self.rebind_after_idle < 1 or self.rebind_after_errors < 1:
            raise ValueError("rebind_after_idle and rebind_after_errors must be at least 1")

    @classmethod
    def of(cls, section: PullSettings, stream: str) -> PullOptions:
        """From a worker's settings section (``stt``, ``mt``), which share these field names."""
        return cls(
            stream=stream,
            durable=section.durable,
            batch_size=section.batch_size,
            fetch_timeout_s=section.fetch_timeout_s,
            rebind_after_idle=section.rebind_after_idle,
            rebind_after_errors=section.rebind_after_errors,
        )


class PullSettings(Protocol):
    @property
    def durable(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def fetch_timeout_s(self) -> float: ...
    @property
    def rebind_after_idle(self) -> int: ...
    @property
    def rebind_after_errors(self) -> int: ...
    @property
    def heartbeat_interval_s(self) -> float: ...
    @property
    def breaker_failures(self) -> int: ...
    @property
    def breaker_open_s(self) -> float: ...


async def quietly(action: Awaitable[object], what: str, **context: object) -> bool:
    """Await a NATS call whose failure must not end a worker loop (the connection may be gone)."""
    try:
        await action
    except Exception as exc:
        log.warning(f"{what} failed", error=repr(exc), **context)
        return False
    return True


class PullLoop:
    """Fetches batches and hands each to ``handle_batch``; no message or failure ends the loop.

    ``consumer`` is the durable consumer's configuration (from ``nova_common.provision``): with it
    the loop re-creates the consumer should it vanish (deleted, or lost with the server's store).
    """

    def __init__(
        self,
        js: JetStreamContext,
        options: PullOptions,
        handle_batch: BatchHandler,
        *,
        consumer: ConsumerConfig | None = None,
        name: str = "worker",
        ready: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """``ready``: awaited before each fetch, so that a loop whose work must wait (partial
        windows while the worker runs a final) leaves its messages to other workers."""
        if consumer is not None and consumer.durable_name != options.durable:
            raise ValueError(
                f"consumer config is for {consumer.durable_name!r}, worker binds {options.durable!r}"
            )
        self._js = js
        self._options = options
        self._handle_batch = handle_batch
        self._consumer = consumer
        self._name = name
        self._ready = ready
        self._stopping = asyncio.Event()
        self.rebinds = 0  # fresh subscriptions bound after idleness or errors
        self.consumers_recreated = 0

    def stop(self) -> None:
        """Stop fetching; the batch in hand is finished first."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        opts = self._options
        psub = await self._first_bind()
        if psub is None:
            return
        errors = 0
        idle = 0
        while not self._stopping.is_set():
            if self._ready is not None:
                await self._ready()
                if self._stopping.is_set():
                    break
            try:
                msgs = await psub.fetch(opts.batch_size, timeout=opts.fetch_timeout_s)
            except TimeoutError:  # nats.errors.TimeoutError, or asyncio's from inside fetch: idle
                idle += 1
                if idle >= opts.rebind_after_idle:
                    idle = 0
                    psub = await self._rebind(psub, "idle")
                continue
            except Exception as exc:  # connection churn, or the consumer is gone (503)
                errors += 1
                log.warning("fetch failed", worker=self._name, error=repr(exc), consecutive=errors)
                await self.pause(min(0.2 * errors, 2.0))
                if errors % opts.rebind_after_errors == 0:
                    psub = await self._rebind(psub, "errors")
                continue
            errors = 0
            idle = 0
            if not msgs:
                continue
            try:
                await self._handle_batch(msgs)
            except Exception:
                # A bug, not a bad message: keep serving; unsettled messages come back after
                # ack_wait and max_deliver bounds the retries.
                log.exception("batch failed unexpectedly", worker=self._name, size=len(msgs))
        await quietly(psub.unsubscribe(), "unsubscribe")

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the loop is stopped."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def until(self, event: asyncio.Event) -> None:
        """Wait for ``event``, but wake at once when the loop is stopped (a ``ready`` gate
        must not hold a stopping worker)."""
        waits = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(self._stopping.wait())}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _first_bind(self) -> JetStreamContext.PullSubscription | None:
        """Bind, waiting for the consumer should it not exist yet (a worker started before
        `nova init`, or the server still recovering its store); None if stopped meanwhile."""
        attempt = 0
        while not self._stopping.is_set():
            try:
                return await self._bind()
            except Exception as exc:
                attempt += 1
                if attempt == 1:
                    log.warning("cannot bind yet; retrying", worker=self._name,
                                stream=self._options.stream, consumer=self._options.durable,
                                error=repr(exc))  # fmt: skip
                try:
                    await self._ensure_consumer()
                except Exception as check:
                    log.debug("could not check the consumer", error=repr(check))
                await self.pause(min(0.2 * attempt, 2.0))
        return None

    async def _bind(self) -> JetStreamContext.PullSubscription:
        return await self._js.pull_subscribe_bind(
            durable=self._options.durable, stream=self._options.stream
        )

    async def _ensure_consumer(self) -> None:
        """Re-create the durable consumer if it is gone; one that exists is left as it is."""
        if self._consumer is None:
            return
        stream, durable = self._options.stream, self._options.durable
        try:
            await self._js.consumer_info(stream, durable)
        except NotFoundError:
            # Idempotent: several workers racing to re-create it with one config all succeed.
            await self._js.add_consumer(stream, self._consumer)
            self.consumers_recreated += 1
            log.warning("consumer was missing; re-created", stream=stream, consumer=durable)

    async def _rebind(
        self, psub: JetStreamContext.PullSubscription, reason: str
    ) -> JetStreamContext.PullSubscription:
        """A fresh pull subscription (and consumer, if it vanished); the old one if that fails."""
        log.debug("re-binding pull subscription", worker=self._name, reason=reason)
        try:
            await self._ensure_consumer()
        except Exception as exc:  # no JetStream API access or no connection: bind anyway
            log.warning("could not check the consumer", error=repr(exc))
        try:
            fresh = await self._bind()
        except Exception as exc:
            log.warning("re-bind failed; keeping the old subscription", error=repr(exc))
            return psub
        await quietly(psub.unsubscribe(), "unsubscribe")
        self.rebinds += 1
        return fresh


@contextlib.asynccontextmanager
async def keep_alive(msgs: list[Msg], pending: set[int], ack_wait_s: float) -> AsyncIterator[None]:
    """While the block runs, tell JetStream the still ``pending`` messages are being worked on,
    so a long batch is not redelivered to another worker."""

    async def beat() -> None:
        interval = max(ack_wait_s / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            for i in list(pending):
                try:
                    await msgs[i].in_progress()
                except Exception as exc:
                    log.debug("in_progress failed", error=repr(exc))

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


async def announce(
    nc: Client,
    subject: str,
    beat: Callable[[], WorkerHeartbeat],
    interval_s: float,
    wake: asyncio.Event | None = None,
) -> None:
    """Publish ``beat()`` on core NATS every ``interval_s`` until cancelled (no admin rights
    needed; gateways and operators see who is ready with ``nats sub 'nova.workers.>'``), and
    at once when ``wake`` is set: a change the gateways should not hear of late."""
    wake = wake or asyncio.Event()
    while True:
        wake.clear()
        try:
            await nc.publish(subject, msgpack_encoder.encode(beat()))
        except Exception as exc:
            log.debug("heartbeat failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=interval_s)


class PullWorker:
    """The shell every worker shares: a ``PullLoop`` over its durable consumer, heartbeats on
    ``<prefix>.workers.<role>``, and one thread for the model, so inference never runs on the
    event loop. Subclasses process a batch and describe themselves in a heartbeat."""

    role = "worker"

    def __init__(
        self,
        nc: Client,
        *,
        section: PullSettings,
        stream: str,
        subjects: Subjects,
        worker_id: str | None = None,
        consumer: ConsumerConfig | None = None,
        rescuer: ConsumerConfig | None = None,
        breaker_metrics: BreakerMetrics | None = None,
    ) -> None:
        """``consumer``, ``rescuer``: the configs of the worker's durable consumer and of the
        one on ADVISORIES that names its undeliverable messages, to re-create either."""
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._subjects = subjects
        self.worker_id = worker_id or new_worker_id(self.role)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.role)
        self._heartbeat_subject = subjects.worker_heartbeats(self.role)
        self._heartbeat_interval_s = section.heartbeat_interval_s
        # Model calls go through it (``self.gate.infer``); see nova_common/breaker.py.
        self.gate = ModelGate(
            BreakerPolicy(section.breaker_failures, section.breaker_open_s),
            self._executor,
            name=self.worker_id,
            metrics=breaker_metrics,
        )
        options = PullOptions.of(section, stream)
        # Late-bound, so the batch handler can be wrapped (metrics, tests) after construction.
        self._pull = PullLoop(
            self._js,
            options,
            lambda msgs: self._process_batch(msgs),
            consumer=consumer,
            name=self.worker_id,
            # While the breaker is open nothing is fetched: the work waits in the queue, or
            # goes to the stage's other workers.
            ready=lambda: self.gate.admitted(self._pull.pause, lambda: self._pull.stopping),
        )
        self.dead_letters = DeadLetterQueue(self._js, subjects, self.role, self._seq_of)
        rescues = PullOptions(
            stream=subjects.advisories_stream,
            durable=rescuer_durable(section.durable),
            batch_size=1,
            fetch_timeout_s=max(section.fetch_timeout_s, 1.0),
            rebind_after_idle=section.rebind_after_idle,
            rebind_after_errors=section.rebind_after_errors,
        )
        # A worker may pull from more than one consumer (STT: finals, then partial windows),
        # and each stage's workers rescue the messages of their queue no delivery answered.
        self._loops = [
            self._pull,
            PullLoop(self._js, rescues, self._rescue_batch, consumer=rescuer,
                     name=f"{self.worker_id}-dead-letters"),
        ]  # fmt: skip
        self.processed = 0
        self._in_flight = 0

    @property
    def rebinds(self) -> int:
        return self._pull.rebinds

    @property
    def consumers_recreated(self) -> int:
        return self._pull.consumers_recreated

    def stop(self) -> None:
        """Stop fetching; the batch in hand is finished, published and acked first."""
        for loop in self._loops:
            loop.stop()

    async def run(self) -> None:
        heartbeat = asyncio.create_task(
            announce(self._nc, self._heartbeat_subject, self._heartbeat,
                     self._heartbeat_interval_s, wake=self.gate.changed)
        )  # fmt: skip
        try:
            log.info(f"{self.role} worker ready", worker=self.worker_id)
            await asyncio.gather(*(loop.run() for loop in self._loops))
        finally:
            heartbeat.cancel()
            # Waits for work still running in the thread: off the loop, not blocking it.
            await asyncio.to_thread(self._executor.shutdown, wait=True)
            log.info(f"{self.role} worker stopped", worker=self.worker_id, processed=self.processed)

    async def _process_batch(self, msgs: list[Msg]) -> None:
        raise NotImplementedError

    def _seq_of(self, data: bytes) -> int | None:
        """The session's seq in one of this stage's payloads, or None if undecodable."""
        raise NotImplementedError

    async def _tell_given_up(self, data: bytes, reason: str) -> None:
        """Tell the session what will not come of a payload given up without an answer."""
        raise NotImplementedError

    async def _rescue_batch(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            error: BaseException | None = None
            try:
                advisory = _advisory_decoder.decode(msg.data)
            except msgspec.DecodeError as exc:
                error = PermanentError(f"not a MaxDeliveries advisory: {exc}")
            else:
                try:
                    await rescue(self.dead_letters, advisory, self._tell_given_up)
                except Exception as exc:
                    error = exc
            await settle(msg, error, _RESCUE_RETRY)

    def _heartbeat(self) -> WorkerHeartbeat:
        raise NotImplementedError


class Worker(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


async def work_until(worker: Worker, stop: asyncio.Event) -> None:
    """Stops fetching when ``stop`` is set; the batch in hand is finished and acked first."""
    run = asyncio.create_task(worker.run())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({run, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        log.info("stopping: fetching no more, finishing the work in hand")
    worker.stop()
    stopper.cancel()
    await run
