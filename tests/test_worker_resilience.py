"""The STT worker keeps going, observed on a real nats-server: a graceful stop hands queued
segments over, and a failing ack/term, an unexpected error or a deleted consumer do not stop it.
(Segments that cannot be transcribed: test_worker_fate.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import msgspec
import nats
import pytest
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from nova_cli.runtime import connect_and_provision
from nova_cli.stack import LocalStack
from nova_common.messages import ResultMessage, Transcript
from nova_common.metrics import SttMetrics
from nova_common.provision import topology
from nova_common.settings import Settings
from nova_common.subjects import new_session_id
from nova_stt.service import make_worker
from nova_stt.transcriber import SpeechToText
from nova_stt.worker import SttWorker
from tests.speech import speak, wer
from tests.worker_helpers import (
    RESULT_TIMEOUT_S,
    eventually,
    next_result,
    next_transcript,
    publish,
    segment,
    stream_messages,
    subjects_of,
)

pytestmark = pytest.mark.slow  # the workers hold the real Whisper model


SENTENCES = [
    "Please send the report to my office.",
    "I would like a cup of coffee.",
    "The children are playing in the garden.",
]


async def test_graceful_stop_loses_nothing(settings: Settings, whisper: SpeechToText) -> None:
    settings = msgspec.structs.replace(
        settings,
        # One segment a fetch, so the stop lands while segments are still queued (with a batch
        # of 4 the first worker would take all three at once and the hand-over go untested).
        stt=msgspec.structs.replace(settings.stt, batch_size=1),
        # A short ack wait bounds the worst case: a message delivered to the stopping worker's
        # inbox after its last fetch is redelivered to the next worker after this, not after 30 s.
        streams=msgspec.structs.replace(settings.streams, ack_wait_s=10.0),
    )
    subjects = subjects_of(settings)
    # Provisions the streams and the consumer; workers are started by hand below.
    async with LocalStack(settings, stt_workers=0) as stack:
        nc = await nats.connect(stack.nats_url)
        worker_nc = await connect_and_provision(
            settings, name="nova-stt-first", url=stack.nats_url, create=False
        )
        first = make_worker(worker_nc, settings, whisper, CollectorRegistry())
        first_run = asyncio.create_task(first.run())
        try:
            js = nc.jetstream()
            sid = new_session_id()
            results = await nc.subscribe(subjects.results(sid))
            transcripts: list[Transcript] = []

            async def drain_results(timeout: float) -> None:
                """Move every result that has arrived (or arrives within ``timeout``) over."""
                while True:
                    try:
                        result = await next_result(results, timeout)
                    except nats.errors.TimeoutError:
                        return
                    assert isinstance(result, Transcript), result
                    transcripts.append(result)
                    timeout = 0.05

            for seq, text in enumerate(SENTENCES):
                # The language given: detection of one of these espeak sentences sits between
                # English and Thai, and the subject here is the hand-over.
                pcm = speak(text).tobytes()
                await publish(js, subjects, segment(sid, seq, pcm, language="en"))

            transcripts.append(await next_transcript(results))
            first.stop()
            await asyncio.wait_for(first_run, RESULT_TIMEOUT_S)

            # Whatever the first worker took, it finished; the rest is still queued. Every segment
            # is in exactly one of the two places (polled: acks reach the server asynchronously).
            async def accounted() -> bool:
                await drain_results(0.05)
                queued = await stream_messages(js, subjects.audio_stream)
                return len(transcripts) + queued == len(SENTENCES)

            await eventually(accounted, "transcripts + queued segments == 3", timeout=30.0)
            assert all(t.worker_id == first.worker_id for t in transcripts)
            assert first.processed == len(transcripts)

            second = await stack.add_worker(whisper)

            async def all_done() -> bool:
                await drain_results(0.05)
                consumer = await js.consumer_info(subjects.audio_stream, settings.stt.durable)
                return (
                    len({t.seq for t in transcripts}) == len(SENTENCES)
                    and consumer.num_pending == 0
                    and consumer.num_ack_pending == 0
                )

            await eventually(all_done, "all three transcripts, nothing left to deliver")
            await drain_results(0.5)  # a duplicate, were there one, would show up now
            assert Counter(t.seq for t in transcripts) == {0: 1, 1: 1, 2: 1}

            async def counted() -> bool:  # `processed` counts after the ack call returns
                return first.processed + second.processed == len(SENTENCES)

            await eventually(counted, "both workers to have counted their acks", timeout=10.0)
            by_seq = sorted(transcripts, key=lambda t: t.seq)
            assert wer(SENTENCES, [t.text for t in by_seq]) <= 0.2, [t.text for t in by_seq]
        finally:
            first.stop()
            await asyncio.gather(first_run, return_exceptions=True)
            await nc.drain()
            await worker_nc.drain()


def quick_retries(settings: Settings, **stt: object) -> Settings:
    """Redeliveries within seconds: an unsettled message comes back after a 3 s ack wait."""
    return msgspec.structs.replace(
        settings,
        stt=msgspec.structs.replace(settings.stt, nak_delay_s=0.5, **stt),
        streams=msgspec.structs.replace(settings.streams, ack_wait_s=3.0),
    )


def fail_once(
    original: Callable[..., Awaitable[None]], calls: list[str], error: Exception
) -> Callable[..., Awaitable[None]]:
    """``original``, except that its first call raises ``error``; ``calls`` counts them."""

    async def flaky(*args: object, **kwargs: object) -> None:
        calls.append(original.__name__)
        if len(calls) == 1:
            raise error
        await original(*args, **kwargs)

    return flaky


@pytest.mark.parametrize(
    ("settle", "language"),
    [("ack", None), ("term", "xx")],
    ids=["ack-fails", "term-fails"],
)
async def test_a_failed_settle_does_not_stop_the_worker(
    settings: Settings,
    whisper: SpeechToText,
    monkeypatch: pytest.MonkeyPatch,
    settle: str,
    language: str | None,
) -> None:
    settings = quick_retries(settings)
    subjects = subjects_of(settings)
    calls: list[str] = []
    # The connection "drops" on the first ack (or term) the worker sends.
    monkeypatch.setattr(
        Msg, settle, fail_once(getattr(Msg, settle), calls, nats.errors.ConnectionClosedError())
    )
    async with LocalStack(settings, stt_workers=1, model=whisper) as stack:
        nc = await nats.connect(stack.nats_url)
        try:
            js = nc.jetstream()
            sid = new_session_id()
            results = await nc.subscribe(subjects.results(sid))
            pcm = speak("Good morning.").tobytes()
            await publish(js, subjects, segment(sid, 0, pcm, language=language))
            first = await next_result(results)
            assert first.seq == 0

            # The worker lives on: the next segment is transcribed.
            await publish(js, subjects, segment(sid, 1, pcm))
            seen: list[ResultMessage] = []
            while {r.seq for r in seen} != {0, 1}:
                seen.append(await next_result(results))
            # The unsettled segment came back (after ack_wait) and was settled this time.
            assert any(r.seq == 0 for r in seen), seen
            redone = next(r for r in seen if r.seq == 0)
            assert type(redone) is type(first)

            async def settled() -> bool:
                consumer = await js.consumer_info(subjects.audio_stream, settings.stt.durable)
                return consumer.num_ack_pending == 0 and consumer.num_pending == 0

            await eventually(settled, "every segment settled")
            assert calls.count(settle) >= 2  # the failed one, then the successful retry
            assert not stack.failed.is_set()
            assert stack.workers[0].processed >= 1
        finally:
            await nc.drain()


@pytest.mark.parametrize("target", ["_transcribe", "_process_batch"])
async def test_an_unexpected_error_does_not_stop_the_worker(
    settings: Settings,
    whisper: SpeechToText,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
) -> None:
    settings = quick_retries(settings)
    subjects = subjects_of(settings)
    async with LocalStack(settings, stt_workers=1, model=whisper) as stack:
        worker = stack.workers[0]
        calls: list[str] = []
        # A bug, not a bad message: the first call raises; the message must come back.
        monkeypatch.setattr(
            worker, target, fail_once(getattr(worker, target), calls, RuntimeError("bug"))
        )
        nc = await nats.connect(stack.nats_url)
        try:
            js = nc.jetstream()
            sid = new_session_id()
            results = await nc.subscribe(subjects.results(sid))
            await publish(js, subjects, segment(sid, 0, speak("Good morning.").tobytes()))
            transcript = await next_transcript(results)
            assert transcript.seq == 0
            assert len(calls) >= 2
            consumer = await js.consumer_info(subjects.audio_stream, settings.stt.durable)
            # It failed once and was delivered again (one message, two deliveries).
            assert consumer.delivered.consumer_seq >= 2
            assert not stack.failed.is_set()
        finally:
            await nc.drain()


async def test_worker_recreates_a_deleted_consumer(
    settings: Settings, whisper: SpeechToText
) -> None:
    # Short fetches and low thresholds, so idleness and errors trigger a re-bind within seconds.
    settings = msgspec.structs.replace(
        settings, stt=msgspec.structs.replace(settings.stt, fetch_timeout_s=0.2)
    )
    subjects = subjects_of(settings)
    consumer_config = dict(
        topology(subjects, settings.streams, settings.stt, settings.mt).consumers
    )[subjects.audio_stream]
    async with LocalStack(settings, stt_workers=0) as stack:
        nc = await nats.connect(stack.nats_url)
        worker_nc = await connect_and_provision(
            settings, name="nova-stt-rebind", url=stack.nats_url, create=False
        )
        worker = SttWorker(
            worker_nc,
            stt=whisper,
            settings=msgspec.structs.replace(
                settings.stt, rebind_after_idle=3, rebind_after_errors=2
            ),
            streams=settings.streams,
            subjects=subjects,
            metrics=SttMetrics.create(CollectorRegistry()),
            consumer=consumer_config,
        )
        run = asyncio.create_task(worker.run())
        try:
            js = nc.jetstream()

            async def rebound_when_idle() -> bool:
                return worker.rebinds >= 1

            await eventually(rebound_when_idle, "a re-bind after idle fetches", timeout=60.0)
            assert worker.consumers_recreated == 0  # it existed: left alone

            await js.delete_consumer(subjects.audio_stream, settings.stt.durable)
            sid = new_session_id()
            results = await nc.subscribe(subjects.results(sid))
            await publish(js, subjects, segment(sid, 0, speak("Good morning.").tobytes()))

            transcript = await next_transcript(results)
            assert transcript.seq == 0
            assert transcript.worker_id == worker.worker_id
            assert worker.consumers_recreated >= 1
            consumer = await js.consumer_info(subjects.audio_stream, settings.stt.durable)
            assert consumer.config.max_deliver == settings.streams.max_deliver
            assert consumer.config.ack_wait == settings.streams.ack_wait_s
            assert not run.done()
        finally:
            worker.stop()
            await asyncio.wait_for(run, RESULT_TIMEOUT_S)
            await nc.drain()
            await worker_nc.drain()
