"""The circuit breaker's states on an injected clock, which held messages go back, what a
worker's heartbeat says of it, and how the gateway counts a worker whose breaker is open. (On a
real nats-server with real workers: test_breaker_worker.)"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from nova_common.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from nova_common.fate import PermanentError
from nova_common.lifecycle import RetryPolicy
from nova_common.messages import WorkerHeartbeat, heartbeat_decoder, msgpack_encoder
from nova_common.metrics import BreakerMetrics
from nova_common.model_gate import ModelGate
from nova_common.settings import ConfigError, load_settings
from nova_gateway.workers import WorkerRegistry
from tests.test_lifecycle import FetchedMessage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(failures: int = 3, open_s: float = 30.0) -> tuple[CircuitBreaker, Clock, list[str]]:
    clock = Clock()
    changes: list[str] = []
    made = CircuitBreaker(
        BreakerPolicy(failures, open_s),
        clock=clock,
        on_change=lambda old, new: changes.append(f"{old.value}->{new.value}"),
    )
    return made, clock, changes


def test_opens_after_n_consecutive_failures_only() -> None:
    b, _, changes = breaker(failures=3)
    b.failed()
    b.failed()
    b.succeeded()  # a success in between: the count starts again
    b.failed()
    b.failed()
    assert b.state is BreakerState.CLOSED and b.admits()
    b.failed()
    assert b.state is BreakerState.OPEN and not b.admits()
    assert b.consecutive_failures == 3 and b.times_opened == 1
    assert changes == ["closed->open"]


def test_half_open_after_the_open_time_then_success_closes() -> None:
    b, clock, changes = breaker(failures=1, open_s=30.0)
    b.failed()
    clock.now += 10.0
    assert not b.admits()
    assert b.open_for_s() == pytest.approx(20.0)
    clock.now += 19.9
    assert not b.admits()
    clock.now += 0.1
    assert b.admits() and b.state is BreakerState.HALF_OPEN
    assert b.open_for_s() == 0.0
    b.succeeded()
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 0
    assert changes == ["closed->open", "open->half_open", "half_open->closed"]


def test_a_failed_trial_opens_it_again_for_the_full_time() -> None:
    b, clock, changes = breaker(failures=5, open_s=30.0)
    for _ in range(5):
        b.failed()
    clock.now += 30.0
    assert b.state is BreakerState.HALF_OPEN
    b.failed()  # one failure is enough in half-open, not five
    assert b.state is BreakerState.OPEN and b.times_opened == 2
    assert b.open_for_s() == pytest.approx(30.0)
    clock.now += 29.0
    assert not b.admits()
    assert changes == ["closed->open", "open->half_open", "half_open->open"]


def test_failures_while_open_do_not_extend_it() -> None:
    """Calls under way when it opened still report; the open time counts from the opening."""
    b, clock, _ = breaker(failures=1, open_s=30.0)
    b.failed()
    clock.now += 20.0
    b.failed()
    assert b.state is BreakerState.OPEN and b.times_opened == 1
    assert b.open_for_s() == pytest.approx(10.0)


@pytest.mark.parametrize(("failures", "open_s"), [(0, 30.0), (3, 0.0), (3, -1.0)])
def test_bad_policy_is_refused(failures: int, open_s: float) -> None:
    with pytest.raises(ValueError, match="breaker"):
        BreakerPolicy(failures, open_s)


def test_settings_refuse_a_bad_breaker() -> None:
    assert load_settings(environ={}).stt.breaker_failures == 3
    assert load_settings(environ={"NOVA_MT_BREAKER_OPEN_S": "5"}).mt.breaker_open_s == 5.0
    with pytest.raises(ConfigError, match=r"stt\.breaker_failures must be at least 1"):
        load_settings(environ={"NOVA_STT_BREAKER_FAILURES": "0"})
    with pytest.raises(ConfigError, match=r"mt\.breaker_open_s must be positive"):
        load_settings(environ={"NOVA_MT_BREAKER_OPEN_S": "0"})


async def test_the_gate_tells_the_breaker_what_the_model_did() -> None:
    """Model failures count, a message's own (PermanentError) does not; a verdict on the
    result counts like a raise; the metrics and the heartbeat wake-up follow the state."""
    registry = CollectorRegistry()
    with ThreadPoolExecutor(max_workers=1) as pool:
        gate = ModelGate(
            BreakerPolicy(2, 30.0), pool, name="w", metrics=BreakerMetrics.create(registry, "stt")
        )

        def boom() -> None:
            raise RuntimeError("CUDA out of memory")

        def bad_message() -> None:
            raise PermanentError("empty audio segment")

        with pytest.raises(PermanentError):
            await gate.infer(bad_message)
        assert gate.breaker.consecutive_failures == 0
        with pytest.raises(RuntimeError):
            await gate.infer(boom)
        assert await gate.infer(lambda: 7, lambda _: False) == 7  # says nothing of the model
        assert gate.breaker.consecutive_failures == 1
        assert not gate.changed.is_set()
        await gate.infer(lambda: 7, lambda _: RuntimeError("backend failed"))
        assert gate.state is BreakerState.OPEN
        assert not gate.closed.is_set() and gate.changed.is_set()
        assert registry.get_sample_value("nova_stt_breaker_state") == 2
        assert registry.get_sample_value("nova_stt_breaker_opened_total") == 1

        stopping = False
        paused: list[float] = []

        async def pause(seconds: float) -> None:
            nonlocal stopping
            paused.append(seconds)
            stopping = True  # the worker is stopped while it waits

        await asyncio.wait_for(gate.admitted(pause, lambda: stopping), 1.0)
        assert paused == [pytest.approx(30.0, abs=1.0)]


async def test_held_messages_go_back_untried_but_never_on_their_last_delivery() -> None:
    """A nak on the last delivery would make the message a dead letter: that one is kept and
    tried; the others go back with the delay; with the breaker closed nothing goes back."""
    policy = RetryPolicy(max_deliver=3, nak_delay_s=0.5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        gate = ModelGate(BreakerPolicy(1, 30.0), pool, name="w")
        closed = FetchedMessage(num_delivered=1)
        assert not await gate.hand_back(closed, policy)  # type: ignore[arg-type]
        gate.breaker.failed()
        first, last = FetchedMessage(num_delivered=2), FetchedMessage(num_delivered=3)
        assert await gate.hand_back(first, policy)  # type: ignore[arg-type]
        assert not await gate.hand_back(last, policy)  # type: ignore[arg-type]
    assert (closed.calls, first.calls, last.calls) == ([], ["nak 0.5"], [])


def beat(worker_id: str, **fields: object) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        worker_id=worker_id, role="stt", model="base", device="cpu", processed=0, in_flight=0,
        sent_at=0.0, **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_heartbeats_without_the_field_decode_as_closed() -> None:
    """Workers from before the breaker send no ``breaker``; gateways from before ignore it."""

    class OldHeartbeat(msgspec.Struct, frozen=True, kw_only=True):
        worker_id: str
        role: str
        model: str
        device: str
        processed: int
        in_flight: int
        sent_at: float

    old = msgpack_encoder.encode(
        OldHeartbeat(worker_id="old", role="stt", model="base", device="cpu", processed=0,
                     in_flight=0, sent_at=0.0)
    )  # fmt: skip
    assert heartbeat_decoder.decode(old).breaker == "closed"
    new = msgpack_encoder.encode(beat("new", breaker="open"))
    assert msgspec.msgpack.decode(new, type=OldHeartbeat).worker_id == "new"
    assert heartbeat_decoder.decode(new).breaker == "open"


async def test_a_worker_with_an_open_breaker_is_alive_but_not_ready() -> None:
    registry = WorkerRegistry(stale_after_s=10.0)
    for worker in (beat("a"), beat("b", breaker="open"), beat("c", breaker="half_open")):
        data = msgpack_encoder.encode(worker)
        await registry._on_beat(Msg(_client=None, subject="t.workers.stt", data=data))  # type: ignore[arg-type]
    assert sorted(b.worker_id for b in registry.alive("stt")) == ["a", "b", "c"]
    assert sorted(b.worker_id for b in registry.ready("stt")) == ["a", "c"]
