"""What the STT worker does with each message, observed on a real nats-server.

Segments are published straight to the AUDIO stream (as the gateway would), results read from a
core subscription on the session's results subject, exactly as the gateway reads them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry

from nova_cli.runtime import connect_and_provision
from nova_cli.stack import LocalStack
from nova_common.languages import UnsupportedLanguage
from nova_common.messages import (
    AudioSegment,
    ResultMessage,
    SegmentFailed,
    Transcript,
    msgpack_encoder,
    result_decoder,
)
from nova_common.metrics import SttMetrics
from nova_common.provision import topology
from nova_common.settings import Settings
from nova_common.subjects import Subjects, new_session_id
from nova_stt.service import make_worker
from nova_stt.transcriber import SpeechToText
from nova_stt.worker import SttWorker
from tests.speech import speak, wer

pytestmark = pytest.mark.slow  # the workers hold the real Whisper model

# Generous: two slow cores shared with other test runs.
RESULT_TIMEOUT_S = 120.0


@pytest.fixture
async def nc(stack: LocalStack) -> AsyncIterator[Client]:
    """The test's own connection, standing in for a gateway."""
    client = await nats.connect(stack.nats_url)
    yield client
    await client.drain()


def subjects_of(settings: Settings) -> Subjects:
    return Subjects(settings.nats.subject_prefix)


async def publish(js: JetStreamContext, subjects: Subjects, segment: AudioSegment) -> None:
    await js.publish(
        subjects.audio(segment.session_id),
        msgpack_encoder.encode(segment),
        headers={"Nats-Msg-Id": f"{segment.session_id}:{segment.seq}:{segment.kind}"},
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


@pytest.mark.parametrize(
    ("pcm", "fields", "reason"),
    [
        (b"\x00" * 3201, {}, "odd byte count"),
        (b"\x00" * 3200, {"sample_rate": 8000}, "sample rate 8000"),
        (b"", {}, "empty audio"),
    ],
    ids=["odd-byte-count", "8khz", "empty"],
)
async def test_impossible_segment_fails_once_and_leaves_the_queue(
    stack: LocalStack,
    settings: Settings,
    nc: Client,
    pcm: bytes,
    fields: dict[str, object],
    reason: str,
) -> None:
    js = nc.jetstream()
    subjects = subjects_of(settings)
    sid = new_session_id()
    # Subscribe before publishing, as the gateway does, so the result cannot slip past.
    results = await nc.subscribe(subjects.results(sid))
    await publish(js, subjects, segment(sid, 0, pcm, **fields))

    result = await next_result(results)
    assert isinstance(result, SegmentFailed), result
    assert (result.session_id, result.seq, result.kind) == (sid, 0, "final")
    assert result.code == "bad_segment"
    assert reason in result.reason
    assert result.worker_id == stack.workers[0].worker_id

    # Work-queue stream: the dead message is removed, not left to be redelivered.
    async def drained() -> bool:
        return await stream_messages(js, subjects.audio_stream) == 0

    await eventually(drained, "the AUDIO stream to be empty")
    consumer = await js.consumer_info(subjects.audio_stream, settings.stt.durable)
    # A permanent error is not retried: one delivery, nothing pending or awaiting an ack.
    assert consumer.num_redelivered == 0
    assert consumer.num_ack_pending == 0
    assert consumer.num_pending == 0


async def test_undecodable_message_is_removed_without_retries(
    stack: LocalStack, settings: Settings, nc: Client
) -> None:
    js = nc.jetstream()
    subjects = subjects_of(settings)
    await js.publish(subjects.audio(new_session_id()), b"\xc1 not msgpack")

    async def drained() -> bool:
        return await stream_messages(js, subjects.audio_stream) == 0

    await eventually(drained, "the AUDIO stream to be empty")
    consumer = await js.consumer_info(subjects.audio_stream, settings.stt.durable)
    assert consumer.num_redelivered == 0
    assert consumer.num_ack_pending == 0
    # The worker survived it and still transcribes.
    sid = new_session_id()
    results = await nc.subscribe(subjects.results(sid))
    await publish(js, subjects, segment(sid, 0, speak("Good morning.").tobytes()))
    assert isinstance(await next_result(results), Transcript)


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
                await publish(js, subjects, segment(sid, seq, speak(text).tobytes()))

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


async def test_unknown_language_fails_on_the_first_delivery(
    stack: LocalStack, settings: Settings, nc: Client
) -> None:
    js = nc.jetstream()
    subjects = subjects_of(settings)
    sid = new_session_id()
    results = await nc.subscribe(subjects.results(sid))
    pcm = speak("Good morning.").tobytes()
    await publish(js, subjects, segment(sid, 0, pcm, language="xx"))

    result = await next_result(results)
    assert isinstance(result, SegmentFailed), result
    assert (result.session_id, result.seq) == (sid, 0)
    assert result.code == "unsupported_language"
    assert "'xx'" in result.reason

    async def drained() -> bool:
        return await stream_messages(js, subjects.audio_stream) == 0

    await eventually(drained, "the AUDIO stream to be empty")
    consumer = await js.consumer_info(subjects.audio_stream, settings.stt.durable)
    # Never retried: delivered exactly once (a fresh consumer per test), settled at once.
    assert consumer.delivered.consumer_seq == 1
    assert consumer.num_redelivered == 0
    assert consumer.num_ack_pending == 0

    # Codes are case-insensitive and "auto" means detect: both transcribe.
    for seq, language in ((1, "EN"), (2, "auto")):
        await publish(js, subjects, segment(sid, seq, pcm, language=language))
        transcript = await next_transcript(results)
        assert (transcript.seq, transcript.language) == (seq, "en")


def test_faster_whispers_own_language_error_is_permanent(
    whisper: SpeechToText, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should our table ever let a code through that faster-whisper rejects, it is still final."""
    monkeypatch.setattr("nova_stt.transcriber.check_language", lambda code: code or None)
    with pytest.raises(UnsupportedLanguage, match="not a valid language code") as caught:
        whisper.transcribe(speak("Hello.").tobytes(), language="xx", task="transcribe")
    assert caught.value.code == "unsupported_language"


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


@pytest.mark.parametrize("target", ["_handle", "_process_batch"])
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
    consumer_config = dict(topology(subjects, settings.streams, settings.stt).consumers)[
        subjects.audio_stream
    ]
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
