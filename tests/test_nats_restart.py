"""One nats-server stopped and started again in the middle of a live session: the gateway's
outbox holds what the client says meanwhile, workers and gateway reconnect, results missed live
are replayed from RESULTS, and the session ends with every final once, word for word what an
undisturbed run of the same recording gives."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from nova_cli.stack import LocalStack
from nova_client.streaming import stream_audio
from nova_common.messages import StartMessage
from nova_common.nats_server import EmbeddedNatsServer
from nova_common.settings import Settings
from nova_stt.transcriber import SpeechToText
from tests.client import chunks
from tests.speech import speak, wer, with_pauses

pytestmark = pytest.mark.slow  # the real Whisper model, a session in real time

SENTENCES = [
    "The children are playing in the garden.",
    "Please close the window before you leave.",
    "We waited on the platform for an hour.",
    "The train leaves at noon.",
]
OUTAGE_S = 3.0


async def test_nats_restarted_mid_session_loses_nothing(
    settings: Settings, whisper: SpeechToText, tmp_path: Path
) -> None:
    server = EmbeddedNatsServer(tmp_path / "nats").start()  # this test's own, to stop
    settings = msgspec.structs.replace(
        settings,
        nats=msgspec.structs.replace(settings.nats, url=server.url),
        # Quick replay of a result that was published while the gateway was reconnecting.
        gateway=msgspec.structs.replace(settings.gateway, recover_after_s=2.0),
    )
    audio = with_pauses([speak(sentence) for sentence in SENTENCES])
    start = StartMessage(language="en", partials=False)  # utterances end by the audio alone
    try:
        async with LocalStack(settings, stt_workers=1, model=whisper) as stack:
            undisturbed = await stream_audio(stack.ws_url, start, chunks(audio, 16000))

            first_final = asyncio.Event()

            async def outage() -> float:
                await first_final.wait()
                server.stop()  # SIGTERM: the server goes away mid-stream
                stopped = time.monotonic()
                await asyncio.sleep(OUTAGE_S)
                await asyncio.to_thread(server.start)  # same port, same store
                return time.monotonic() - stopped

            restarting = asyncio.create_task(outage())
            try:
                disturbed = await asyncio.wait_for(
                    stream_audio(
                        stack.ws_url,
                        start,
                        chunks(audio, 16000),
                        realtime=True,
                        on_final=lambda final: first_final.set(),
                    ),
                    timeout=120,
                )
                away = await asyncio.wait_for(restarting, 30)
            finally:
                restarting.cancel()
    finally:
        server.stop()

    n = len(SENTENCES)
    assert [f.seq for f in undisturbed.finals] == list(range(n)), undisturbed
    assert wer(SENTENCES, [f.text for f in undisturbed.finals]) <= 0.2, undisturbed.finals
    assert away >= OUTAGE_S
    assert disturbed.errors == [], disturbed.errors
    assert [f.seq for f in disturbed.finals] == list(range(n))  # every final, once, in order
    assert [f.text for f in disturbed.finals] == [f.text for f in undisturbed.finals]
    assert disturbed.summary is not None and disturbed.summary.finals == n
