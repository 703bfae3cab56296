"""What the STT worker does with a segment it cannot transcribe, observed on a real nats-server:
impossible audio, an undecodable message, an unsupported language. Each fails once and leaves the
queue. (Graceful stops, failing settles, unexpected errors and re-binds: test_worker_resilience.)

Segments are published straight to the AUDIO stream (as the gateway would), results read from a
core subscription on the session's results subject, exactly as the gateway reads them.
"""

from __future__ import annotations

import pytest
from nats.aio.client import Client

from nova_cli.stack import LocalStack
from nova_common.languages import UnsupportedLanguage
from nova_common.messages import SegmentFailed, Transcript
from nova_common.settings import Settings
from nova_common.subjects import new_session_id
from nova_stt.transcriber import SpeechToText
from tests.speech import speak
from tests.worker_helpers import (
    eventually,
    next_result,
    next_transcript,
    publish,
    segment,
    stream_messages,
    subjects_of,
)

pytestmark = pytest.mark.slow  # the workers hold the real Whisper model


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
