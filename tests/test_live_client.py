"""The desktop clients' live session: audio goes out as it comes, and a lost gateway is
reconnected to, with the audio captured meanwhile sent to the next session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from nova_cli.runtime import connect_and_provision
from nova_cli.stack import LocalStack
from nova_client.live import ConnectionStatus, _Backlog, retry_delay, run_live
from nova_client.sources import FileSource
from nova_client.streaming import GatewayUnreachable, start_message
from nova_common.messages import FinalEvent, NoticeEvent, ServerEvent, SessionStarted
from nova_gateway.service import make_gateway
from tests.processes import unused_port
from tests.speech import normalise, silence, speak, wer, with_pauses, write_wav

SENTENCES = [
    "Good morning, everyone, and welcome to the meeting.",
    "Please send the report to my office.",
    "Then we went home and had dinner.",
]
# The gateway goes away in the middle of this pause after the first sentence.
OUTAGE_PAUSE_S = 4.0


class Recorder:
    def __init__(self) -> None:
        self.statuses: list[ConnectionStatus] = []
        self.events: list[ServerEvent] = []
        self.first_final = asyncio.Event()
        self.sent = 0.0

    def status(self, status: ConnectionStatus) -> None:
        self.statuses.append(status)

    def event(self, event: ServerEvent) -> None:
        self.events.append(event)
        if isinstance(event, FinalEvent):
            self.first_final.set()

    def audio_sent(self, seconds: float) -> None:
        self.sent = seconds


async def test_backlog_keeps_the_newest_audio_within_its_bound() -> None:
    backlog = _Backlog(max_bytes=10)
    for chunk in (b"aaaa", b"bbbb", b"cccc", b"dddd"):
        backlog.put(chunk)
    backlog.end()
    assert [await backlog.get() for _ in range(3)] == [b"cccc", b"dddd", None]
    assert backlog.dropped_bytes == 8


def test_reconnection_waits_grow_and_are_bounded() -> None:
    waits = [retry_delay(n) for n in range(8)]
    assert waits == sorted(waits) and waits[0] < 1 and waits[-1] == 10.0


async def test_an_unreachable_gateway_without_reconnect_is_an_error(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "quiet.wav", silence(0.5), 16000)
    with pytest.raises(GatewayUnreachable):
        await run_live(
            f"ws://127.0.0.1:{unused_port()}/ws",
            start_message("en"),
            FileSource(wav),
            Recorder(),
            reconnect=False,
        )


@pytest.mark.slow
async def test_a_restarted_gateway_is_reconnected_to_and_gets_the_audio_captured_meanwhile(
    stack: LocalStack, tmp_path: Path
) -> None:
    speech = [speak(s) for s in SENTENCES]
    audio = np.concatenate(
        [silence(0.5), speech[0], silence(OUTAGE_PAUSE_S), with_pauses(speech[1:])]
    )
    wav = write_wav(tmp_path / "three.wav", audio, 16000)
    outage_at = 0.5 + len(speech[0]) / 16000 + OUTAGE_PAUSE_S / 2
    assert stack.gateway is not None
    port = stack.gateway.port
    listener = Recorder()
    session = asyncio.create_task(
        run_live(stack.ws_url, start_message("en", partials=False), FileSource(wav), listener)
    )
    while listener.sent < outage_at:  # noqa: ASYNC110 (the listener is a plain callback)
        await asyncio.sleep(0.05)
    # A gateway restart between sentences: the old one finishes its session and goes; the
    # client keeps capturing.
    await stack.gateway.close()
    await asyncio.sleep(1.5)
    nc = await connect_and_provision(stack.settings, name="nova-gateway", url=stack.nats_url)
    stack.gateway = make_gateway(nc, stack.settings, CollectorRegistry())
    await stack.gateway.start(port=port)
    summary = await asyncio.wait_for(session, 120)
    await stack.gateway.close()
    stack.gateway = None  # this test's gateway, on this test's connection
    await nc.drain()

    states = [s.state for s in listener.statuses]
    assert "reconnecting" in states, states
    assert states[-1] == "stopped"
    sessions = [e.session_id for e in listener.events if isinstance(e, SessionStarted)]
    assert len(set(sessions)) == 2
    assert summary is not None and summary.session_id == sessions[-1]
    finals = [e.text for e in listener.events if isinstance(e, FinalEvent)]
    # What was said before, during and after the outage, each word once.
    assert wer([normalise(" ".join(SENTENCES))], [normalise(" ".join(finals))]) <= 0.15, finals
    dropped = [
        e for e in listener.events if isinstance(e, NoticeEvent) and e.code == "audio_dropped"
    ]
    assert not dropped
