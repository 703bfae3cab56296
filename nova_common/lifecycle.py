"""A work item's life on JetStream, in one place for every stage: the ids its messages are
published under, and the one step that turns an item's outcome into its message's fate.

Message ids (``Nats-Msg-Id``) make a repeated publish harmless: the stream's duplicate window
drops it. Every publish to AUDIO, TEXT and RESULTS takes its id from ``message_id``.

``settle`` is the only code that acks, naks or dead-letters a fetched message. It never raises:
a message it cannot settle (connection lost) comes back after ``ack_wait``, and since results
carry message ids and the gateway de-duplicates by ``seq``, a repeat is harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from nats.aio.msg import Msg

from nova_common.fate import Fate, fate_of
from nova_common.messages import (
    AudioSegment,
    SegmentFailed,
    Transcript,
    Translation,
    TranslationFailed,
    TranslationRequest,
)

log = structlog.get_logger(__name__)

Published = (
    AudioSegment | TranslationRequest | Transcript | SegmentFailed | Translation | TranslationFailed
)
# What the session must hear before the message goes: the results of an item that succeeded,
# or what failed of one that is given up. Raising leaves the message to be retried.
Report = Callable[[Fate], Awaitable[None]]


def message_id(payload: Published) -> str:
    if isinstance(payload, AudioSegment):
        if payload.kind == "partial":  # every revision is a window of its own
            return f"{payload.session_id}:{payload.seq}:partial:{payload.revision}"
        return f"{payload.session_id}:{payload.seq}:{payload.kind}"
    if isinstance(payload, TranslationRequest):
        return f"{payload.session_id}:{payload.seq}:text"
    if isinstance(payload, Translation | TranslationFailed):
        # The MT worker and Whisper's own translation share it: one translation per target.
        return f"{payload.session_id}:{payload.seq}:translation:{payload.language}"
    if isinstance(payload, SegmentFailed):
        # Its own id: a transcript already published for this seq must not swallow it.
        return f"{payload.session_id}:{payload.seq}:{payload.kind}:stt-failed"
    return f"{payload.session_id}:{payload.seq}:{payload.kind}:stt"


def id_header(payload: Published) -> dict[str, str]:
    return {"Nats-Msg-Id": message_id(payload)}


@dataclass(frozen=True)
class RetryPolicy:
    max_deliver: int  # the consumer's: after this many deliveries JetStream gives up
    nak_delay_s: float


def deliveries(msg: Msg) -> int:
    try:
        return msg.metadata.num_delivered
    except Exception:  # not a JetStream message (unit tests hand in plain ones)
        return 1


async def settle(
    msg: Msg, error: BaseException | None, policy: RetryPolicy, *, report: Report | None = None
) -> Fate:
    """Ack, nak with delay, or dead-letter ``msg`` by what became of its item, and return the
    fate it met (RETRY for one that will come back). ``report`` runs first for an item that is
    acked or given up; should it fail, the message is nak'd instead, so that the session is
    told on a later delivery. (On the last delivery there is none: JetStream then announces
    MaxDeliveries, which the dead-letter work is to capture; until then the session's client
    learns of it from its finals timeout.)"""
    delivered = deliveries(msg)
    fate = fate_of(error, last_delivery=delivered >= policy.max_deliver)
    try:
        if fate is Fate.RETRY:
            log.warning("will retry", error=repr(error), delivered=delivered, subject=msg.subject)
            await msg.nak(delay=policy.nak_delay_s)
            return fate
        if fate is Fate.DEAD:
            log.error("failed permanently", error=repr(error), delivered=delivered,
                      subject=msg.subject)  # fmt: skip
        if report is not None:
            try:
                await report(fate)
            except Exception as exc:
                log.warning("could not report; will retry", error=repr(exc), subject=msg.subject)
                await msg.nak(delay=policy.nak_delay_s)
                return Fate.RETRY
        if fate is Fate.ACK:
            await msg.ack()
        else:
            await dead_letter(msg)
    except Exception as exc:  # it comes back after ack_wait
        log.warning("could not settle", error=repr(exc), subject=msg.subject, fate=fate.value)
        return Fate.RETRY
    return fate


async def dead_letter(msg: Msg) -> None:
    """Give the message up. Today that is ``term``, which on a work-queue stream deletes the
    payload; and because the workers give up on the last delivery themselves, JetStream never
    reaches max_deliver, so its MaxDeliveries advisory never fires. The reliability work changes
    this one function: copy the original to the DLQ stream first."""
    await msg.term()
