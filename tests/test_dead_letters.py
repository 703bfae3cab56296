"""Dead letters on a real nats-server with the real STT worker: a segment that fails on every
delivery, and one whose every delivery goes unanswered (its worker hung each time), both end in
the DLQ with their headers, the session is told, later segments are unaffected, and `nova dlq`
(run as the real command) lists, shows and replays them."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import nats
import pytest
from nats.js import JetStreamContext

from nova_cli.runtime import connect_and_provision
from nova_cli.stack import LocalStack
from nova_common import dead_letters
from nova_common.messages import SegmentFailed, Transcript, TranslationFailed
from nova_common.provision import provision, topology
from nova_common.settings import Settings
from nova_common.subjects import Subjects, new_session_id
from nova_stt.transcriber import SpeechToText
from tests.processes import nova_env, run_nova
from tests.speech import speak
from tests.worker_helpers import (
    eventually,
    next_result,
    publish,
    segment,
    stream_messages,
    subjects_of,
)

pytestmark = pytest.mark.slow  # the worker holds the real Whisper model


def failing_fast(settings: Settings, *, ack_wait_s: float = 3.0) -> Settings:
    """Two deliveries, redelivered within seconds."""
    return msgspec.structs.replace(
        settings,
        stt=msgspec.structs.replace(settings.stt, nak_delay_s=0.3),
        streams=msgspec.structs.replace(settings.streams, ack_wait_s=ack_wait_s, max_deliver=2),
    )


async def letters(js: JetStreamContext, subjects: Subjects) -> list[dead_letters.DeadLetter]:
    return [letter async for letter in dead_letters.all_of(js, subjects)]


def nova_dlq(settings: Settings, *args: str) -> str:
    env = nova_env(
        Path(settings.data_dir),
        NOVA_NATS_URL=str(settings.nats.url),
        NOVA_NATS_SUBJECT_PREFIX=settings.nats.subject_prefix,
    )
    done = run_nova("dlq", *args, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_segment_failing_every_time_is_dead_lettered_then_replayed(
    settings: Settings, whisper: SpeechToText
) -> None:
    """Handing the transcript on fails on every delivery (the TEXT stream is gone): after
    max_deliver the segment is in the DLQ, its session hears its translation will not come,
    a later segment goes through once TEXT is back, and `nova dlq replay` finishes the first."""
    settings = failing_fast(settings)
    subjects = subjects_of(settings)
    async with LocalStack(settings, stt_workers=1, model=whisper) as stack:
        nc = await nats.connect(stack.nats_url)
        try:
            js = nc.jetstream()
            await js.delete_stream(subjects.text_stream)
            sid = new_session_id()
            results = await nc.subscribe(subjects.results(sid))
            pcm = speak("I would like a cup of coffee.").tobytes()
            await publish(js, subjects, segment(sid, 0, pcm, language="en", translate_to=("es",)))

            seen = []
            while not any(isinstance(r, TranslationFailed) for r in seen):
                seen.append(await next_result(results))
            failed = next(r for r in seen if isinstance(r, TranslationFailed))
            assert (failed.seq, failed.language) == (0, "es")

            (letter,) = await letters(js, subjects)
            assert letter.stage == "stt"
            assert letter.session_id == sid and letter.seq == 0
            assert letter.deliveries == 2
            assert letter.original_subject == subjects.audio(sid)
            assert letter.subject == subjects.dlq("stt", sid)
            assert "HandOnFailed" in letter.reason
            assert letter.headers["Nova-Original-Stream"] == subjects.audio_stream
            assert letter.headers["Nova-Original-Msg-Id"] == f"{sid}:0:final"
            # Copied, then removed from the work queue: nothing waits there, nothing is lost.
            assert await stream_messages(js, subjects.audio_stream) == 0

            # TEXT is back: the next segment is unaffected by the one in the DLQ.
            await provision(js, topology(subjects, settings.streams, settings.stt, settings.mt))
            await publish(js, subjects, segment(sid, 1, pcm, language="en", translate_to=("es",)))
            later = await next_result(results)
            assert isinstance(later, Transcript) and later.seq == 1, later

            async def both_handed_on() -> bool:
                return await stream_messages(js, subjects.text_stream) == 2

            listed = json.loads(nova_dlq(settings, "ls", "--json"))
            assert [(row["id"], row["stage"], row["seq"]) for row in listed] == [
                (letter.id, "stt", 0)
            ]
            shown = json.loads(nova_dlq(settings, "show", str(letter.id)))
            assert shown["payload"]["seq"] == 0 and shown["payload"]["pcm"].endswith("bytes>")
            assert f"replayed {letter.id}" in nova_dlq(settings, "replay", "--all")

            await eventually(both_handed_on, "the replayed segment's translation request")
            assert await letters(js, subjects) == []
            assert await stream_messages(js, subjects.audio_stream) == 0
        finally:
            await nc.drain()


async def test_a_segment_no_delivery_answered_is_rescued_into_the_dlq(
    settings: Settings, whisper: SpeechToText
) -> None:
    """Every delivery goes to a worker that hangs (it fetches and never answers): the server
    gives up at max_deliver and announces it; a live worker of the stage moves the segment to
    the DLQ, tells its session, and removes it from AUDIO."""
    settings = failing_fast(settings, ack_wait_s=1.0)
    subjects = subjects_of(settings)
    nc = await connect_and_provision(settings, name="hung-worker")
    try:
        js = nc.jetstream()
        sid = new_session_id()
        results = await nc.subscribe(subjects.results(sid))
        await publish(js, subjects, segment(sid, 0, speak("Good morning.").tobytes()))
        hung = await js.pull_subscribe_bind(
            durable=settings.stt.durable, stream=subjects.audio_stream
        )
        for _ in range(settings.streams.max_deliver):  # take each delivery, answer none
            (msg,) = await hung.fetch(1, timeout=10)
            assert msg.metadata.num_delivered == _ + 1
        await hung.unsubscribe()

        async with LocalStack(settings, stt_workers=1, model=whisper):
            result = await next_result(results)
            assert isinstance(result, SegmentFailed), result
            assert (result.seq, result.code) == (0, "stt_failed")
            assert "without an answer" in result.reason

            async def rescued() -> bool:
                return (
                    await stream_messages(js, subjects.audio_stream) == 0
                    and await stream_messages(js, subjects.advisories_stream) == 0
                )

            await eventually(rescued, "the segment out of AUDIO and its advisory settled")
            (letter,) = await letters(js, subjects)
            assert (letter.stage, letter.seq, letter.deliveries) == ("stt", 0, 2)
            assert "without an answer" in letter.reason
    finally:
        await nc.drain()
