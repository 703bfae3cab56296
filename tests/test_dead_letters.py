"""Dead letters on a real nats-server with the real STT worker: a segment that fails on every
delivery, and one whose every delivery goes unanswered (its worker hung each time), both end in
the DLQ with their headers, the session is told, later segments are unaffected, and `nova dlq`
(run as the real command) lists, shows and replays them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import nats
import numpy as np
import pytest
import websockets
from nats.js import JetStreamContext

from nova_cli.runtime import connect_and_provision
from nova_cli.stack import LocalStack
from nova_common import dead_letters
from nova_common.messages import (
    ResultMessage,
    SegmentFailed,
    Transcript,
    Translation,
    TranslationFailed,
)
from nova_common.provision import provision, topology
from nova_common.settings import Settings
from nova_common.subjects import Subjects, new_session_id
from nova_mt.apertium import ApertiumBackend
from nova_stt.transcriber import SpeechToText
from tests.client import chunks
from tests.processes import nova_env, run_nova
from tests.speech import silence, speak
from tests.worker_helpers import (
    RESULT_TIMEOUT_S,
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

            seen: list[ResultMessage] = []
            while not any(isinstance(r, TranslationFailed) for r in seen):
                seen.append(await next_result(results))
            # The transcript is out (a retry may repeat it): only its translation fails.
            assert all(r.seq == 0 for r in seen if isinstance(r, Transcript))
            assert not any(isinstance(r, SegmentFailed) for r in seen), seen
            failed = next(r for r in seen if isinstance(r, TranslationFailed))
            assert (failed.seq, failed.language, failed.code) == (0, "es", "translation_failed")

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


async def test_the_client_hears_of_its_dead_letter_and_its_later_utterances_go_through(
    settings: Settings, whisper: SpeechToText
) -> None:
    """Through the gateway: the first utterance's translation is dead-lettered (TEXT is gone
    while it is handed on) and the client gets an error naming its seq; the second utterance,
    once TEXT is back, gets its final and translation; replaying the dead letter brings the
    first one's translation into the session's results."""
    settings = failing_fast(settings)
    subjects = subjects_of(settings)
    apertium = ApertiumBackend.discover("apertium")
    assert apertium is not None and ("en", "es") in apertium.pairs, (
        "apertium-eng-spa is missing (make test installs it)"
    )
    first = np.concatenate([silence(0.3), speak("I would like a cup of coffee."), silence(1.5)])
    second = np.concatenate([speak("The train leaves at noon."), silence(1.5)])
    async with LocalStack(
        settings, stt_workers=1, model=whisper, mt_workers=1, backends=[apertium]
    ) as stack:
        nc = await nats.connect(stack.nats_url)
        js = nc.jetstream()
        try:
            await js.delete_stream(subjects.text_stream)
            async with websockets.connect(stack.ws_url) as ws:
                await ws.send(json.dumps({"type": "start", "language": "en",
                                          "translate_to": ["es"]}))  # fmt: skip
                started = json.loads(await ws.recv())
                sid = started["session_id"]
                results = await nc.subscribe(subjects.results(sid))
                for pcm in chunks(first, 16000):
                    await ws.send(pcm)
                events = await events_until(ws, lambda e: e.get("type") == "error")
                error = events[-1]
                assert (error["seq"], error["language"]) == (0, "es"), error
                assert error["code"] == "translation_failed"
                assert [e["seq"] for e in events if e["type"] == "final"] == [0]
                (letter,) = await letters(js, subjects)
                assert (letter.session_id, letter.seq) == (sid, 0)

                await provision(js, topology(subjects, settings.streams, settings.stt, settings.mt))
                for pcm in chunks(second, 16000):
                    await ws.send(pcm)
                await ws.send(json.dumps({"type": "stop"}))
                events = await events_until(ws, lambda e: e.get("type") == "summary")
                finals = [e for e in events if e["type"] == "final"]
                translations = [e for e in events if e["type"] == "translation"]
                assert [e["seq"] for e in finals] == [1]
                assert [(e["seq"], e["language"]) for e in translations] == [(1, "es")]

            await dead_letters.replay(js, subjects, letter)
            while True:  # the replayed utterance's translation reaches the session's results
                result = await next_result(results)
                if isinstance(result, Translation) and result.seq == 0:
                    break
            assert result.language == "es" and result.text
            assert await letters(js, subjects) == []
        finally:
            await nc.drain()


async def events_until(
    ws: websockets.ClientConnection, done: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while not events or not done(events[-1]):
        events.append(json.loads(await asyncio.wait_for(ws.recv(), RESULT_TIMEOUT_S)))
    return events
