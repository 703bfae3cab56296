"""Helpers shared by the STT worker tests (test_worker_fate, test_worker_resilience).

Segments are published straight to the AUDIO stream (as the gateway would), results read from a
core subscription on the session's results subject, exactly as the gateway reads them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from nova_common.lifecycle import id_header
from nova_common.messages import (
    AudioSegment,
    ResultMessage,
    Transcript,
    msgpack_encoder,
    result_decoder,
)
from nova_common.settings import Settings
from nova_common.subjects import Subjects

# Generous: two slow cores shared with other test runs.
RESULT_TIMEOUT_S = 120.0


def subjects_of(settings: Settings) -> Subjects:
    return Subjects(settings.nats.subject_prefix)


async def publish(js: JetStreamContext, subjects: Subjects, segment: AudioSegment) -> None:
    await js.publish(
        subjects.audio(segment.session_id),
        msgpack_encoder.encode(segment),
        headers=id_header(segment),
    )


async def next_result(sub: Subscription, timeout: float = RESULT_TIMEOUT_S) -> ResultMessage:
    msg = await sub.next_msg(timeout=timeout)
    return result_decoder.decode(msg.data)


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = RESULT_TIMEOUT_S
) -> None:
    """Poll ``check`` until it holds: acks and deletions reach the server asynchronously."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.1)


async def stream_messages(js: JetStreamContext, stream: str) -> int:
    return (await js.stream_info(stream)).state.messages


async def next_transcript(sub: Subscription) -> Transcript:
    result = await next_result(sub)
    assert isinstance(result, Transcript), result
    return result


def segment(session_id: str, seq: int, pcm: bytes, **fields: object) -> AudioSegment:
    return AudioSegment(
        session_id=session_id,
        seq=seq,
        start=float(seq),
        end=float(seq) + len(pcm) / 32000,
        pcm=pcm,
        **fields,  # type: ignore[arg-type]
    )
