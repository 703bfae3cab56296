"""Dead letters: messages a stage gave up on, kept in the DLQ stream with why, until an operator
replays or drops them (`nova dlq`; `nats stream view <PREFIX>_DLQ` shows the same).

A work item reaches here two ways. Its worker gave up on it (a permanent failure, or the last
delivery failed): ``settle`` copies it before it terms it. Or every delivery timed out, because
the message killed or hung its worker each time: the server then announces MaxDeliveries, which
the ADVISORIES stream keeps, and a worker of that stage later rescues the message from its work
queue (``rescue``). Either way the copy is stored *before* the original is removed, under a
message id of its own, so the two ways racing store it once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import msgspec
import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from nova_common.subjects import Subjects

log = structlog.get_logger(__name__)

# Headers of a dead letter, besides the original message's own.
STAGE = "Nova-Stage"
REASON = "Nova-Reason"
DELIVERIES = "Nova-Deliveries"
ORIGINAL_SUBJECT = "Nova-Original-Subject"
ORIGINAL_STREAM = "Nova-Original-Stream"
ORIGINAL_SEQUENCE = "Nova-Original-Sequence"
FAILED_AT = "Nova-Failed-At"
SEQ = "Nova-Seq"  # the session's seq, where the stage could read it
ORIGINAL_ID = "Nova-Original-Msg-Id"
REPLAYS = "Nova-Replays"  # how often this message was replayed before
_OURS = (STAGE, REASON, DELIVERIES, ORIGINAL_SUBJECT, ORIGINAL_STREAM, ORIGINAL_SEQUENCE,
         FAILED_AT, SEQ, ORIGINAL_ID)  # fmt: skip
_MSG_ID = "Nats-Msg-Id"


def _is_control(header: str) -> bool:
    """Headers that steer a publish (ids, expectations), not part of the message: copied along
    they would make the DLQ's or the replay's publish fail or be dropped."""
    return header == _MSG_ID or header.startswith("Nats-Expected-")


@dataclass(frozen=True)
class Original:
    """The message as it was in its work queue."""

    stream: str
    stream_seq: int
    subject: str
    data: bytes
    headers: Mapping[str, str] | None
    deliveries: int


class MaxDeliveriesAdvisory(msgspec.Struct, frozen=True):
    """``io.nats.jetstream.advisory.v1.max_deliver``, the fields Nova reads."""

    stream: str
    consumer: str
    stream_seq: int
    deliveries: int


def session_of(subject: str) -> str:
    """Every work subject ends in the session id (``<prefix>.audio.<sid>``)."""
    return subject.rsplit(".", 1)[-1]


async def store(
    js: JetStreamContext,
    subjects: Subjects,
    stage: str,
    original: Original,
    reason: str,
    *,
    seq: int | None = None,
) -> int:
    """Copy ``original`` into the DLQ; returns the dead letter's id (its DLQ sequence).
    Raises when it could not be stored: the caller must then keep the original."""
    own = dict(original.headers or {})
    original_id = own.pop(_MSG_ID, None) or f"{original.stream}:{original.stream_seq}"
    headers = {k: v for k, v in own.items() if k != ORIGINAL_ID and not _is_control(k)}
    headers.update(
        {
            STAGE: stage,
            # Headers are one line each; a reason is for people, so it is shortened, not lost.
            REASON: " ".join(reason.split())[:500] or "unknown",
            DELIVERIES: str(original.deliveries),
            ORIGINAL_SUBJECT: original.subject,
            ORIGINAL_STREAM: original.stream,
            ORIGINAL_SEQUENCE: str(original.stream_seq),
            ORIGINAL_ID: original_id,
            FAILED_AT: f"{time.time():.3f}",
            # One dead letter per stored message, however many ways reach here.
            _MSG_ID: f"dlq:{original.stream}:{original.stream_seq}",
        }
    )
    if seq is not None:
        headers[SEQ] = str(seq)
    ack = await js.publish(
        subjects.dlq(stage, session_of(original.subject)),
        original.data,
        stream=subjects.dlq_stream,
        headers=headers,
    )
    log.error(
        "dead-lettered",
        stage=stage,
        subject=original.subject,
        reason=headers[REASON],
        deliveries=original.deliveries,
        dead_letter=ack.seq,
    )
    return ack.seq


async def fetch_original(js: JetStreamContext, stream: str, stream_seq: int) -> Original | None:
    """The message an advisory names, or None where it is gone already (settled meanwhile)."""
    try:
        raw = await js.get_msg(stream, stream_seq)
    except NotFoundError:
        return None
    return Original(
        stream=stream,
        stream_seq=stream_seq,
        subject=raw.subject or "",
        data=raw.data or b"",
        headers=dict(raw.headers or {}),
        deliveries=0,
    )


@dataclass(frozen=True)
class DeadLetterQueue:
    """One stage's way into the DLQ: what ``settle`` and the rescue of timed-out messages use."""

    js: JetStreamContext
    subjects: Subjects
    stage: str
    # The session's seq in a payload of this stage, or None (undecodable): for the operator.
    seq_of: Callable[[bytes], int | None] = lambda data: None

    async def keep(self, original: Original, reason: str) -> int:
        return await store(
            self.js, self.subjects, self.stage, original, reason, seq=self.seq_of(original.data)
        )


# What the session must hear of a message given up: its stage decodes the payload and says
# what will not come. Raising leaves the message where it is, to be rescued again.
TellSession = Callable[[bytes, str], Awaitable[None]]


async def rescue(
    dlq: DeadLetterQueue, advisory: MaxDeliveriesAdvisory, tell: TellSession
) -> int | None:
    """A message whose every delivery timed out: into the DLQ, the session told, then out of
    its work queue. Returns the dead letter's id, or None where the message was gone already."""
    original = await fetch_original(dlq.js, advisory.stream, advisory.stream_seq)
    if original is None:
        return None
    original = dataclasses.replace(original, deliveries=advisory.deliveries)
    reason = (
        f"delivered {advisory.deliveries} times without an answer "
        "(the worker died or hung on it each time)"
    )
    letter = await dlq.keep(original, reason)
    await tell(original.data, reason)
    await dlq.js.delete_msg(advisory.stream, advisory.stream_seq)
    return letter


# -- What the operator sees and does (`nova dlq`) --------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    id: int  # its sequence in the DLQ stream
    subject: str
    data: bytes
    headers: Mapping[str, str]

    @property
    def stage(self) -> str:
        return self.headers.get(STAGE, "?")

    @property
    def reason(self) -> str:
        return self.headers.get(REASON, "")

    @property
    def original_subject(self) -> str:
        return self.headers.get(ORIGINAL_SUBJECT, "")

    @property
    def session_id(self) -> str:
        return session_of(self.original_subject or self.subject)

    @property
    def seq(self) -> int | None:
        value = self.headers.get(SEQ)
        return int(value) if value is not None and value.isdigit() else None

    @property
    def deliveries(self) -> int:
        value = self.headers.get(DELIVERIES, "0")
        return int(value) if value.isdigit() else 0

    @property
    def failed_at(self) -> float:
        try:
            return float(self.headers.get(FAILED_AT, "0"))
        except ValueError:
            return 0.0


class DeadLetterNotFound(LookupError):
    pass


async def get(js: JetStreamContext, subjects: Subjects, dead_letter_id: int) -> DeadLetter:
    try:
        raw = await js.get_msg(subjects.dlq_stream, dead_letter_id)
    except NotFoundError as exc:
        raise DeadLetterNotFound(
            f"no dead letter {dead_letter_id} in {subjects.dlq_stream}"
        ) from exc
    return DeadLetter(
        id=dead_letter_id,
        subject=raw.subject or "",
        data=raw.data or b"",
        headers=dict(raw.headers or {}),
    )


async def all_of(js: JetStreamContext, subjects: Subjects) -> AsyncIterator[DeadLetter]:
    """Every dead letter, oldest first (ids are the stream's sequence; removed ones are gaps)."""
    info = await js.stream_info(subjects.dlq_stream)
    if not info.state.messages:
        return
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            yield await get(js, subjects, seq)
        except DeadLetterNotFound:
            continue


async def replay(js: JetStreamContext, subjects: Subjects, letter: DeadLetter) -> int:
    """Put the original back into its work queue, then drop the dead letter; returns the new
    message's stream sequence. Its message id is new, or the work queue's duplicate window
    would swallow it as the message it already saw; the next failure dead-letters it again."""
    subject = letter.original_subject
    if not subject:
        raise ValueError(f"dead letter {letter.id} names no original subject")
    replays = int(letter.headers.get(REPLAYS, "0") or 0) + 1
    headers = {k: v for k, v in letter.headers.items() if k not in _OURS and not _is_control(k)}
    base = letter.headers.get(ORIGINAL_ID) or subject
    headers[REPLAYS] = str(replays)
    # The same letter replayed twice (a crash between publish and delete) is stored once.
    headers[_MSG_ID] = f"{base}:replay:{letter.id}"
    ack = await js.publish(subject, letter.data, headers=headers)
    await js.delete_msg(subjects.dlq_stream, letter.id)
    log.info("dead letter replayed", dead_letter=letter.id, subject=subject, stream_seq=ack.seq)
    return ack.seq
