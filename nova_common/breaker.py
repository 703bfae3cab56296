"""A circuit breaker around a worker's model: after repeated model failures the worker stops
taking work for a while, then tries one batch before it takes work again.

Pure: a clock is injected, nothing here knows about NATS. The worker records the outcome of
each model call (``succeeded`` / ``failed``) and asks ``admits`` before it fetches; the
PullLoop's ``ready`` gate waits on it (nova_common.pull_worker). Failures of a message's own
(``PermanentError``) are not the model's and are never recorded.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from nova_common.fate import TransientError

log = structlog.get_logger(__name__)


class BreakerState(enum.Enum):
    CLOSED = "closed"  # taking work
    OPEN = "open"  # not taking work: the model kept failing
    HALF_OPEN = "half_open"  # the next model call decides: success closes, failure reopens


@dataclass(frozen=True)
class BreakerPolicy:
    failures: int  # consecutive model failures that open the breaker
    open_s: float  # how long it stays open before a trial

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError("breaker_failures must be at least 1")
        if self.open_s <= 0:
            raise ValueError("breaker_open_s must be positive")


StateChange = Callable[[BreakerState, BreakerState], None]


class CircuitBreaker:
    def __init__(
        self,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: StateChange | None = None,
        name: str = "worker",
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._on_change = on_change
        self._name = name
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        """The state, moved on to half-open once the open time is over."""
        if self._state is BreakerState.OPEN and self.open_for_s() <= 0:
            self._move(BreakerState.HALF_OPEN)
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def admits(self) -> bool:
        """May the worker take (fetch) work now? Closed, or half-open: one batch is the trial."""
        return self.state is not BreakerState.OPEN

    def open_for_s(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when not open)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(self._opened_at + self._policy.open_s - self._clock(), 0.0)

    def succeeded(self) -> None:
        self._consecutive = 0
        if self._state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED)

    def failed(self, error: BaseException | None = None) -> None:
        self._consecutive += 1
        state = self.state
        if state is BreakerState.HALF_OPEN or (
            state is BreakerState.CLOSED and self._consecutive >= self._policy.failures
        ):
            self._opened_at = self._clock()
            self.times_opened += 1
            self._move(BreakerState.OPEN, error)
        # Already open: a call that was under way when it opened; the open time is not extended.

    def _move(self, new: BreakerState, error: BaseException | None = None) -> None:
        old, self._state = self._state, new
        if new is BreakerState.OPEN:
            log.warning("model keeps failing: breaker open, taking no work",
                        worker=self._name, consecutive_failures=self._consecutive,
                        open_s=self._policy.open_s, error=repr(error))  # fmt: skip
        elif new is BreakerState.HALF_OPEN:
            log.info("breaker half-open: trying one batch", worker=self._name)
        else:
            log.info("model works again: breaker closed", worker=self._name)
        if self._on_change is not None:
            self._on_change(old, new)


class BreakerOpen(TransientError):
    """A message handed back untried: this worker's breaker is open (retried, like any
    transient failure, but it was never the message's or the model's attempt)."""
