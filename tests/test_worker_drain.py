"""SIGTERM drains a worker process: `nova stt` stops fetching, finishes the segment it holds,
publishes its transcript once, acks it, drains its connection and exits 0; `nova mt` finishes
the batch it fetched and leaves the rest queued. Real processes on the test session's nats-server."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import nats
import numpy as np
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from nova_common.lifecycle import id_header
from nova_common.messages import (
    Transcript,
    Translation,
    TranslationRequest,
    msgpack_encoder,
    result_decoder,
)
from nova_common.nats_server import EmbeddedNatsServer
from nova_common.subjects import Subjects, new_session_id
from tests.processes import STOP_TIMEOUT, NovaProcess, nova_env, nova_process
from tests.speech import silence, speak, wer
from tests.worker_helpers import next_result, publish, segment, stream_messages

pytestmark = pytest.mark.slow  # worker processes, one with the real Whisper model

# About 25 s of speech in one segment: seconds of model time on any CPU, so the SIGTERM
# lands while the worker holds it.
LONG = [
    "Good morning, everyone, and welcome to the weekly meeting of the planning team.",
    "Today we will talk about the budget for next year and the new office in the city.",
    "Please send the report to my office before Friday afternoon, if you can.",
    "After that we will have lunch together in the small restaurant near the station.",
]


async def stored(js: JetStreamContext, stream: str, session_id: str) -> list[object]:
    """Every result the RESULTS stream holds for the session: what was published, once or not."""
    info = await js.stream_info(stream)
    found: list[object] = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        result = result_decoder.decode(msg.data)
        if result.session_id == session_id:
            found.append(result)
    return found


async def wait_exit(process: NovaProcess) -> int | None:
    try:
        return await asyncio.to_thread(process.proc.wait, STOP_TIMEOUT)
    except Exception:
        return None


def assert_clean_stop(process: NovaProcess, code: int | None, role: str) -> None:
    assert code == 0, f"exit {code}\n{process.describe()}"
    assert f"{role} worker stopped" in process.stderr, process.describe()
    assert "Traceback" not in process.stderr, process.describe()


async def test_sigterm_lets_nova_stt_finish_the_segment_it_holds(
    nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path, prefix: str
) -> None:
    subjects = Subjects(prefix)
    env = nova_env(cli_data_dir, NOVA_NATS_URL=nats_server.url, NOVA_NATS_SUBJECT_PREFIX=prefix)
    pcm = np.concatenate([part for text in LONG for part in (speak(text), silence(0.3))])
    assert 18.0 < len(pcm) / 16000 <= 30.0  # one Whisper window
    nc: Client = await nats.connect(nats_server.url)
    try:
        with nova_process(["stt"], env=env, log_dir=cli_dir / "logs" / prefix, name="stt") as stt:
            await asyncio.to_thread(stt.wait_for_stdout, r"nova stt worker (\S+) ready")
            js = nc.jetstream()
            sid = new_session_id()
            results = await nc.subscribe(subjects.results(sid))
            await publish(js, subjects, segment(sid, 0, pcm.tobytes(), language="en"))

            # Delivered to the worker and not acked: it is transcribing.
            deadline = time.monotonic() + 60.0
            while (await js.consumer_info(subjects.audio_stream, "stt")).num_ack_pending != 1:
                assert time.monotonic() < deadline, "the worker never took the segment"
                await asyncio.sleep(0.02)
            stt.proc.send_signal(signal.SIGTERM)
            with pytest.raises(nats.errors.TimeoutError):
                # Nothing was out yet: what comes, comes after the SIGTERM.
                await next_result(results, timeout=0.01)

            transcript = await next_result(results, timeout=STOP_TIMEOUT)
            code = await wait_exit(stt)
            assert_clean_stop(stt, code, "stt")

        assert isinstance(transcript, Transcript) and transcript.seq == 0, transcript
        assert wer([" ".join(LONG)], [transcript.text]) <= 0.25, transcript.text
        # Published once, and acked: AUDIO is a work queue, an acked segment leaves it.
        assert await stored(js, subjects.results_stream, sid) == [transcript]
        assert await stream_messages(js, subjects.audio_stream) == 0
        consumer = await js.consumer_info(subjects.audio_stream, "stt")
        assert consumer.num_pending == 0 and consumer.num_ack_pending == 0, consumer
        assert consumer.num_redelivered == 0, consumer
        with pytest.raises(nats.errors.TimeoutError):
            await next_result(results, timeout=0.5)
    finally:
        await nc.drain()


async def test_sigterm_lets_nova_mt_finish_its_batch_and_leave_the_rest_queued(
    nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path, prefix: str
) -> None:
    """Requests outnumber what it translates before the SIGTERM: what it fetched is translated
    once and acked (none left pending for another worker to wait out), the rest stays queued."""
    subjects = Subjects(prefix)
    env = nova_env(cli_data_dir, NOVA_NATS_URL=nats_server.url, NOVA_NATS_SUBJECT_PREFIX=prefix)
    count = 300
    nc: Client = await nats.connect(nats_server.url)
    try:
        with nova_process(["mt"], env=env, log_dir=cli_dir / "logs" / prefix, name="mt") as mt:
            await asyncio.to_thread(mt.wait_for_stdout, r"nova mt worker (\S+) ready")
            js = nc.jetstream()
            sid = new_session_id()
            results = await nc.subscribe(subjects.results(sid))
            for seq in range(count):
                request = TranslationRequest(
                    session_id=sid, seq=seq, text=f"{LONG[seq % len(LONG)]} Number {seq}.",
                    source_language="en", targets=("es",), start=float(seq), end=seq + 1.0,
                    sent_at=time.time(),
                )  # fmt: skip
                await js.publish(
                    subjects.text(sid), msgpack_encoder.encode(request), headers=id_header(request)
                )
            first = await next_result(results, timeout=60.0)
            mt.proc.send_signal(signal.SIGTERM)
            code = await wait_exit(mt)
            assert_clean_stop(mt, code, "mt")

        assert isinstance(first, Translation), first
        translations = await stored(js, subjects.results_stream, sid)
        assert all(isinstance(t, Translation) and t.language == "es" for t in translations)
        seqs = Counter(t.seq for t in translations)  # type: ignore[attr-defined]
        assert max(seqs.values()) == 1, "a request translated twice"
        left = await stream_messages(js, subjects.text_stream)
        assert left > 0, "it went on fetching after the SIGTERM"
        assert len(seqs) + left == count, (len(seqs), left)
        consumer = await js.consumer_info(subjects.text_stream, "mt")
        assert consumer.num_ack_pending == 0 and consumer.num_redelivered == 0, consumer
        assert consumer.num_pending == left, consumer
    finally:
        await nc.close()  # not drain: the translations left unread would hold it for 30 s
