"""The session's publish outbox on a real nats-server that goes away and comes back: the read
loop's hand-over never waits, accepted utterances are stored after the reconnect, in order and
once, and past its bound the outbox refuses with `overloaded`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest
from prometheus_client import CollectorRegistry

from nova_common.messages import AudioSegment, segment_decoder
from nova_common.metrics import GatewayMetrics
from nova_common.nats_server import EmbeddedNatsServer
from nova_common.provision import provision, topology
from nova_common.settings import load_settings
from nova_common.subjects import Subjects, new_session_id
from nova_gateway.outbox import OutboxFull, PublishOutbox
from nova_gateway.publisher import AudioPublisher, PublishRejected


def utterance(sid: str, seq: int, nbytes: int = 32_000) -> AudioSegment:
    return AudioSegment(session_id=sid, seq=seq, start=seq, end=seq + 1, pcm=b"\x01" * nbytes)


async def test_utterances_wait_out_a_nats_outage_and_are_stored_once(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path / "nats").start()
    settings = load_settings(environ={})
    subjects = Subjects("outbox")

    async def quiet(exc: Exception) -> None:  # refused reconnects while the server is down
        pass

    nc = await nats.connect(
        server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, error_cb=quiet
    )
    try:
        js = nc.jetstream()
        await provision(js, topology(subjects, settings.streams, settings.stt, settings.mt))
        done: list[tuple[int, str | None]] = []

        async def on_done(segment: AudioSegment, rejected: PublishRejected | None) -> None:
            done.append((segment.seq, rejected and rejected.code))

        publisher = AudioPublisher(js, subjects, GatewayMetrics.create(CollectorRegistry()))
        outbox = PublishOutbox(publisher, max_bytes=10 * 32_000, on_done=on_done)
        sid = new_session_id()
        outbox.put(utterance(sid, 0))
        assert await outbox.drain(10)

        server.stop()  # NATS goes away mid-session
        began = time.monotonic()
        for seq in range(1, 6):
            outbox.put(utterance(sid, seq))
        assert time.monotonic() - began < 0.05  # handing over never waits on NATS
        with pytest.raises(OutboxFull):
            for seq in range(6, 20):
                outbox.put(utterance(sid, seq))
        accepted = 1 + outbox.pending  # what put() took before it refused
        await asyncio.sleep(6.0)  # longer than the publisher's own retries
        assert done == [(0, None)]  # nothing given up while NATS is away

        server.start()  # same port, same store
        assert await outbox.drain(30)
        assert done == [(seq, None) for seq in range(accepted)]
        info = await js.stream_info(subjects.audio_stream)
        assert info.state.messages == accepted  # once each, although retried
        psub = await js.pull_subscribe_bind(settings.stt.durable, subjects.audio_stream)
        msgs = await psub.fetch(accepted, timeout=5)
        assert [segment_decoder.decode(m.data).seq for m in msgs] == list(range(accepted))
        assert [m.headers["Nats-Msg-Id"] for m in msgs if m.headers] == [
            f"{sid}:{seq}:final" for seq in range(accepted)
        ]
        assert await outbox.close(1) == 0
    finally:
        await nc.close()
        server.stop()
