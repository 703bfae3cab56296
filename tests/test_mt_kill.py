"""A translation worker killed mid-stream (SIGKILL, mid-batch) and another started: every
translation still reaches the client, exactly once. `nova mt` runs as a real process; the
gateway and STT worker run in-process on a real nats-server."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import msgspec
import nats
import pytest

from nova_cli.stack import LocalStack
from nova_common.settings import Settings
from nova_common.subjects import Subjects
from nova_stt.transcriber import SpeechToText
from tests.processes import NovaProcess, nova_env
from tests.speech import speak
from tests.test_translation import ENGLISH, of_type, session
from tests.worker_helpers import eventually

pytestmark = pytest.mark.slow

ACK_WAIT_S = 3.0


def slow_apertium(directory: Path, started: Path) -> Path:
    """Apertium that takes two seconds per translation and notes in ``started`` when one
    begins, so the test kills the worker while a batch is certainly in its hands."""
    script = directory / "slow-apertium"
    script.write_text(
        f'#!/bin/sh\n[ "$1" = "-l" ] || echo started >> "{started}"\nsleep 2\nexec apertium "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def test_killing_the_mt_worker_mid_batch_loses_and_repeats_nothing(
    settings: Settings, whisper: SpeechToText, tmp_path: Path
) -> None:
    settings = msgspec.structs.replace(
        settings, streams=msgspec.structs.replace(settings.streams, ack_wait_s=ACK_WAIT_S)
    )
    subjects = Subjects(settings.nats.subject_prefix)
    sentences = [*ENGLISH, "Please send the report to my office."]
    started = tmp_path / "translations-started"
    async with LocalStack(settings, model=whisper) as stack:
        env = nova_env(
            tmp_path / "data",
            NOVA_NATS_URL=stack.nats_url,
            NOVA_NATS_SUBJECT_PREFIX=settings.nats.subject_prefix,
            NOVA_STREAMS_ACK_WAIT_S=str(ACK_WAIT_S),
            NOVA_MT_APERTIUM_COMMAND=str(slow_apertium(tmp_path, started)),
            NOVA_MT_FETCH_TIMEOUT_S="0.3",
            NOVA_MT_HEARTBEAT_INTERVAL_S="0.5",
        )
        first = NovaProcess(["mt"], env=env, log_dir=tmp_path, name="mt-1")
        second: NovaProcess | None = None
        nc = await nats.connect(stack.nats_url)
        try:
            await asyncio.to_thread(first.wait_for_stdout, r"nova mt worker \S+ ready")
            assert "apertium" in first.stdout
            task = asyncio.create_task(
                session(
                    stack.ws_url,
                    {"language": "en", "translate_to": ["es"]},
                    [speak(s) for s in sentences],
                )
            )

            async def translating() -> bool:
                return started.exists()

            # The first final's translation has begun (the rest of the speech is still being
            # transcribed): kill the worker in the middle of it.
            await eventually(translating, "the MT worker to start translating", timeout=180)
            first.kill()
            assert not task.done()
            second = NovaProcess(["mt"], env=env, log_dir=tmp_path, name="mt-2")
            await asyncio.to_thread(second.wait_for_stdout, r"nova mt worker \S+ ready")
            events = await asyncio.wait_for(task, 300)
            info = await nc.jetstream().consumer_info(subjects.text_stream, "mt")
        finally:
            await nc.drain()
            first.close()
            if second is not None:
                second.close()

    # The killed worker's batch was delivered again (deliveries outnumber requests).
    assert info.delivered.consumer_seq > info.delivered.stream_seq, info.delivered
    assert of_type(events, "error") == []
    finals = of_type(events, "final")
    translations = of_type(events, "translation")
    assert [f["seq"] for f in finals] == list(range(len(sentences)))
    # Every final's translation, each exactly once.
    assert sorted(t["seq"] for t in translations) == [f["seq"] for f in finals]
    assert all(t["text"] for t in translations)
    summary = events[-1]
    assert summary["type"] == "summary" and summary["translations"] == len(sentences)
