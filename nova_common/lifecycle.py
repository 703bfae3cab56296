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

from nova_common.dead_letters import DeadLetterQueue, Original
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
    msg: Msg,
    error: BaseException | None,
    policy: RetryPolicy,
    *,
    report: Report | None = None,
    dead_letters: DeadLetterQueue | None = None,
) -> Fate:
    """Ack, nak with delay, or dead-letter ``msg`` by what became of its item, and return the
    fate it met (RETRY for one that will come back). A message given up is first copied to
    ``dead_letters``; ``report`` then runs for an item that is acked or given up. Should either
    fail, the message is nak'd instead, so that it is kept and the session told on a later
    delivery. (On the last delivery there is none: the server then announces MaxDeliveries,
    and a worker of the stage rescues the message from the ADVISORIES stream.)"""
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
            if dead_letters is not None:
                try:
                    await dead_letters.keep(original_of(msg), reason_of(error))
                except Exception as exc:
                    log.warning("could not dead-letter; kept", error=repr(exc), subject=msg.subject)
                    await msg.nak(delay=policy.nak_delay_s)
                    return Fate.RETRY
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
            # On a work-queue stream term deletes the message: its copy is in the DLQ by now.
            await msg.term()
    except Exception as exc:  # it comes back after ack_wait
        log.warning("could not settle", error=repr(exc), subject=msg.subject, fate=fate.value)
        return Fate.RETRY
    return fate


def original_of(msg: Msg) -> Original:
    meta = msg.metadata
    return Original(
        stream=meta.stream,
        stream_seq=meta.sequence.stream,
        subject=msg.subject,
        data=msg.data,
        headers=dict(msg.headers or {}),
        deliveries=meta.num_delivered,
    )


def reason_of(error: BaseException | None) -> str:
    if error is None:
        return "given up"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
