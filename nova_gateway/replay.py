"""Reading a session's results back from the RESULTS stream.

The gateway receives results live through a core subscription; a message missed there (the
gateway's NATS connection dropped for a moment) is still in the stream. A session whose results
are overdue reads its subject's history, and in-order delivery drops what it already has.
"""

from __future__ import annotations

import contextlib

import msgspec
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from nova_common.messages import ResultMessage, result_decoder
from nova_common.subjects import Subjects


async def _pending(js: JetStreamContext, stream: str, subject: str) -> int:
    info = await js.stream_info(stream, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


async def audio_pending(js: JetStreamContext, subjects: Subjects, session_id: str) -> int:
    """Segments of this session still in the AUDIO work queue (queued or being transcribed:
    workers publish the result before they ack, so an empty queue means every result is out)."""
    return await _pending(js, subjects.audio_stream, subjects.audio(session_id))


async def text_pending(js: JetStreamContext, subjects: Subjects, session_id: str) -> int:
    """Finals of this session still waiting in the TEXT work queue for translation."""
    return await _pending(js, subjects.text_stream, subjects.text(session_id))


async def replay_results(
    js: JetStreamContext,
    subjects: Subjects,
    session_id: str,
    *,
    translations_only: bool = False,
    batch: int = 256,
) -> list[ResultMessage]:
    """The session's results from RESULTS, but only once its audio has all been transcribed:
    while segments are still queued a gap is ordinary waiting, and replaying would only add
    load to a busy system. When only translations are owed (``translations_only``), likewise
    only once its text has all been translated — but a missing final is replayed whatever the
    translation queue holds, since transcription must not wait for an MT worker that is down."""
    if await audio_pending(js, subjects, session_id):
        return []
    if translations_only and await text_pending(js, subjects, session_id):
        return []
    return await read_results(js, subjects, session_id, batch=batch)


async def results_stored(js: JetStreamContext, subjects: Subjects, session_id: str) -> int:
    """How many results RESULTS holds for the session (no consumer needed to ask)."""
    return await _pending(js, subjects.results_stream, subjects.results(session_id))


async def read_results(
    js: JetStreamContext,
    subjects: Subjects,
    session_id: str,
    *,
    batch: int = 256,
    complete: bool = False,
) -> list[ResultMessage]:
    """Every result of the session still in RESULTS, in the order they were stored. With
    ``complete``, a read that times out part-way raises ``TimeoutError`` instead of returning
    what it has (a replay can use part; a subtitle file must not be silently short)."""
    psub = await js.pull_subscribe(
        subjects.results(session_id),
        stream=subjects.results_stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30.0,  # the server removes it by itself should we not
        ),
    )
    results: list[ResultMessage] = []
    name: str | None = None
    try:
        info = await psub.consumer_info()
        name = info.name
        remaining = info.num_pending or 0
        while remaining > 0:
            msgs = await psub.fetch(min(batch, remaining), timeout=2.0)
            remaining -= len(msgs)
            for msg in msgs:
                with contextlib.suppress(msgspec.DecodeError):
                    results.append(result_decoder.decode(msg.data))
    except TimeoutError:
        if complete:
            raise
    finally:
        await psub.unsubscribe()
        if name is not None:
            with contextlib.suppress(Exception):
                await js.delete_consumer(subjects.results_stream, name)
    return results
