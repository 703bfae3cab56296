"""The one settle step and the message ids, as pure logic: a recording stand-in for the fetched
message (the workers' behaviour on a real nats-server is in test_worker_fate.py,
test_worker_resilience.py and test_mt_worker.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from nova_common.fate import Fate, PermanentError
from nova_common.lifecycle import RetryPolicy, message_id, settle
from nova_common.messages import (
    AudioSegment,
    SegmentFailed,
    Transcript,
    Translation,
    TranslationFailed,
    TranslationRequest,
)

POLICY = RetryPolicy(max_deliver=3, nak_delay_s=0.5)


@dataclass
class Metadata:
    num_delivered: int


@dataclass
class FetchedMessage:
    """Records what was done to it, in order."""

    num_delivered: int = 1
    fail: str | None = None  # the call that raises, as a lost connection would
    subject: str = "nova.audio.s"
    calls: list[str] = field(default_factory=list)

    @property
    def metadata(self) -> Metadata:
        return Metadata(self.num_delivered)

    async def _record(self, call: str) -> None:
        self.calls.append(call)
        if call.startswith(self.fail or "-"):
            raise ConnectionError(f"{call} failed")

    async def ack(self) -> None:
        await self._record("ack")

    async def nak(self, delay: float | None = None) -> None:
        await self._record(f"nak {delay}")

    async def term(self) -> None:
        await self._record("term")


async def run(
    msg: FetchedMessage, error: BaseException | None, *, report_fails: bool = False
) -> Fate:
    async def report(fate: Fate) -> None:
        msg.calls.append(f"report {fate.value}")
        if report_fails:
            raise ConnectionError("publish failed")

    return await settle(msg, error, POLICY, report=report)  # type: ignore[arg-type]


async def test_success_is_reported_then_acked() -> None:
    msg = FetchedMessage()
    assert await run(msg, None) is Fate.ACK
    assert msg.calls == ["report ack", "ack"]


async def test_a_transient_failure_is_retried_later_without_a_report() -> None:
    msg = FetchedMessage()
    assert await run(msg, RuntimeError("model busy")) is Fate.RETRY
    assert msg.calls == ["nak 0.5"]


async def test_a_permanent_failure_is_reported_then_given_up() -> None:
    msg = FetchedMessage()
    assert await run(msg, PermanentError("undecodable")) is Fate.DEAD
    assert msg.calls == ["report dead", "term"]


async def test_the_last_delivery_is_given_up_not_retried() -> None:
    msg = FetchedMessage(num_delivered=POLICY.max_deliver)
    assert await run(msg, RuntimeError("model busy")) is Fate.DEAD
    assert msg.calls == ["report dead", "term"]


@pytest.mark.parametrize("error", [None, PermanentError("bad")], ids=["ack", "dead"])
async def test_a_failed_report_leaves_the_message_to_come_back(error: Exception | None) -> None:
    """The session must hear of it: the message is not acked or removed unreported."""
    msg = FetchedMessage()
    assert await run(msg, error, report_fails=True) is Fate.RETRY
    assert msg.calls[-1] == "nak 0.5"
    assert "ack" not in msg.calls and "term" not in msg.calls


@pytest.mark.parametrize("fail", ["ack", "nak", "term"])
async def test_settling_never_raises(fail: str) -> None:
    msg = FetchedMessage(fail=fail)
    error = {"ack": None, "nak": RuntimeError("busy"), "term": PermanentError("bad")}[fail]
    # It comes back after ack_wait: the caller must not count it as done.
    assert await run(msg, error) is Fate.RETRY


def test_every_message_has_its_own_id() -> None:
    common = {"session_id": "s", "seq": 4}
    pcm = {"start": 0.0, "end": 1.0, "pcm": b""}
    text = {"language": "en", "source_language": "de", "worker_id": "w"}
    request = TranslationRequest(
        **common, text="hi", source_language="en", targets=("es",), start=0, end=1
    )
    transcript = Transcript(
        **common, text="hi", language="en", language_probability=1.0, start=0, end=1,
        worker_id="w", compute_s=0.1,
    )  # fmt: skip
    pairs = [
        (AudioSegment(**common, **pcm), "s:4:final"),
        (AudioSegment(**common, **pcm, kind="partial", revision=2), "s:4:partial:2"),
        (request, "s:4:text"),
        (transcript, "s:4:final:stt"),
        (SegmentFailed(**common, code="bad_segment", reason="x", worker_id="w"),
         "s:4:final:stt-failed"),
        # A translation and its failure share one: only the first of the two is stored.
        (Translation(**common, **text, text="hola", backend="apertium"), "s:4:translation:en"),
        (TranslationFailed(**common, **text, code="c", reason="r"), "s:4:translation:en"),
    ]  # fmt: skip
    assert [message_id(payload) for payload, _ in pairs] == [want for _, want in pairs]


@dataclass
class RecordingDeadLetters:
    """Stands in for the DLQ stream: records what it was asked to keep."""

    calls: list[str]
    fail: bool = False

    async def keep(self, original: object, reason: str) -> int:
        self.calls.append(f"dlq {reason}")
        if self.fail:
            raise ConnectionError("DLQ unreachable")
        return 1


@dataclass
class JetStreamMetadata:
    num_delivered: int
    stream: str = "NOVA_AUDIO"
    sequence: object = field(default_factory=lambda: type("Seq", (), {"stream": 7})())


@dataclass
class DeliveredMessage(FetchedMessage):
    data: bytes = b"segment"
    headers: dict[str, str] = field(default_factory=lambda: {"Nats-Msg-Id": "s:4:final"})

    @property
    def metadata(self) -> JetStreamMetadata:  # type: ignore[override]
        return JetStreamMetadata(self.num_delivered)


async def test_a_message_given_up_is_copied_to_the_dlq_before_it_is_removed() -> None:
    msg = DeliveredMessage()
    dlq = RecordingDeadLetters(msg.calls)
    fate = await settle(msg, PermanentError("undecodable"), POLICY, dead_letters=dlq)  # type: ignore[arg-type]
    assert fate is Fate.DEAD
    assert msg.calls == ["dlq PermanentError: undecodable", "term"]


async def test_a_message_the_dlq_cannot_keep_is_kept_in_its_queue() -> None:
    msg = DeliveredMessage()
    dlq = RecordingDeadLetters(msg.calls, fail=True)
    fate = await settle(msg, PermanentError("undecodable"), POLICY, dead_letters=dlq)  # type: ignore[arg-type]
    assert fate is Fate.RETRY
    assert "term" not in msg.calls and msg.calls[-1] == "nak 0.5"
