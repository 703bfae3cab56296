"""The circuit breaker as a worker uses it: model calls run through it, fetching waits on it,
and a message fetched before it opened goes back untried.

``nova_common.breaker`` is the pure state machine; this module is its seam with a worker's
thread, JetStream messages, metrics and heartbeats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import TypeVar

from nats.aio.msg import Msg

from nova_common.breaker import BreakerOpen, BreakerPolicy, BreakerState, CircuitBreaker
from nova_common.fate import PermanentError
from nova_common.lifecycle import RetryPolicy, deliveries, settle
from nova_common.metrics import BreakerMetrics

T = TypeVar("T")
# What a model call's result says of the model: it worked (True), it failed (the error), or
# nothing (False: e.g. every answer came from a cache).
Verdict = Callable[[T], BaseException | bool]
_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class ModelGate:
    def __init__(
        self,
        policy: BreakerPolicy,
        executor: Executor,
        *,
        name: str,
        metrics: BreakerMetrics | None = None,
    ) -> None:
        self._executor = executor
        self._name = name
        self._metrics = metrics
        self.breaker = CircuitBreaker(policy, on_change=self._changed, name=name)
        # Set while closed: what only a healthy model should fetch (STT's partial windows,
        # never a trial) waits on it.
        self.closed = asyncio.Event()
        self.closed.set()
        # Set on every change, so the heartbeat goes out at once.
        self.changed = asyncio.Event()

    @property
    def state(self) -> BreakerState:
        return self.breaker.state

    async def admitted(
        self, pause: Callable[[float], Awaitable[None]], stopping: Callable[[], bool]
    ) -> None:
        """Until the breaker lets work through (closed, or half-open for a trial batch) or
        the worker stops; ``pause`` sleeps, and wakes when it stops."""
        while not stopping() and not self.breaker.admits():
            await pause(self.breaker.open_for_s())

    async def infer(self, call: Callable[[], T], verdict: Verdict[T] = lambda _: True) -> T:
        """Run a model call in the worker's thread, its outcome told to the breaker: what it
        raised, or what ``verdict`` finds in its result, for a model that reports failures
        instead of raising. A ``PermanentError`` is the message's fault: not told."""
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except PermanentError:
            raise
        except Exception as exc:
            self.breaker.failed(exc)
            raise
        found = verdict(result)
        if isinstance(found, BaseException):
            self.breaker.failed(found)
        elif found:
            self.breaker.succeeded()
        return result

    async def hand_back(self, msg: Msg, policy: RetryPolicy) -> bool:
        """While the breaker is open, give a message fetched before it opened back untried,
        with a delay, for another worker or a later trial. False (kept, to be tried) when it
        is closed, or on the message's last delivery, which a nak would make a dead letter."""
        if self.breaker.admits() or deliveries(msg) >= policy.max_deliver:
            return False
        await settle(msg, BreakerOpen(f"worker {self._name}: breaker open"), policy)
        return True

    def _changed(self, old: BreakerState, new: BreakerState) -> None:
        if new is BreakerState.CLOSED:
            self.closed.set()
        else:
            self.closed.clear()
        if self._metrics is not None:
            self._metrics.state.set(_GAUGE[new])
            if new is BreakerState.OPEN:
                self._metrics.opened.inc()
        self.changed.set()
