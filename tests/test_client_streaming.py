"""The client against a scripted stand-in gateway: refused sessions, early closes and notices,
in `stream_audio` and in `nova transcribe` (run in-process)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from nova_cli.transcribe import run_transcribe
from nova_client.streaming import GatewayError, SessionRefused, stream_audio
from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    NoticeEvent,
    ServerEvent,
    SessionStarted,
    StartMessage,
    SummaryEvent,
    client_message_decoder,
    json_encoder,
)
from nova_common.nats_server import free_port
from tests.speech import write_wav

NO_WORKER = NoticeEvent(code="no_stt_worker", reason="no speech-to-text worker is running")

# What the stand-in does with its n-th connection (numbered from 0).
Behaviour = Callable[[ServerConnection, int], Awaitable[None]]
# An event type from a gateway newer than this client.
UNKNOWN_EVENT = msgspec.json.encode({"type": "weather", "sunny": True}).decode()


async def send(ws: ServerConnection, event: ServerEvent) -> None:
    await ws.send(json_encoder.encode(event).decode())


async def refused(ws: ServerConnection, _: int) -> None:
    await ws.recv()
    await send(ws, ErrorEvent(code="unsupported_language", reason="no such language 'xx'"))
    await ws.recv()  # the real gateway waits for a better `start`; the client hangs up instead


async def closed(ws: ServerConnection, _: int) -> None:
    await ws.recv()
    await ws.close(1013, "try again later")


async def serve_session(
    ws: ServerConnection, number: int, *, notices: bool = False, first: str | None = None
) -> None:
    """Start the session, take audio until `stop`, answer with one final and the summary."""
    start = client_message_decoder.decode(await ws.recv())
    assert isinstance(start, StartMessage)
    session_id = f"s{number}"
    if first is not None:
        await ws.send(first)
    if notices:
        await send(ws, NO_WORKER)  # before `started`, too: the client must take it in stride
    await send(
        ws,
        SessionStarted(
            session_id=session_id,
            sample_rate=start.sample_rate,
            channels=start.channels,
            language=start.language,
            task=start.task,
        ),
    )
    if notices:
        await send(ws, NO_WORKER)
    audio = 0
    async for frame in ws:
        if isinstance(frame, bytes):
            audio += len(frame)
            continue
        break  # `stop`
    if notices:
        await send(ws, NO_WORKER)  # the gateway repeats it at `stop` while no worker is there
    await send(
        ws,
        FinalEvent(
            session_id=session_id, seq=0, text=f"final of session {number}", language="en",
            start=0.0, end=1.0,
        ),
    )  # fmt: skip
    seconds = audio / (2 * start.channels * start.sample_rate)
    await send(ws, SummaryEvent(session_id=session_id, finals=1, failed=0, audio_seconds=seconds))
    await ws.close()


@contextlib.asynccontextmanager
async def stand_in(*behaviours: Behaviour) -> AsyncIterator[str]:
    """A WebSocket server whose n-th connection gets the n-th behaviour (the last one repeats)."""
    counter = itertools.count()

    async def handler(ws: ServerConnection) -> None:
        number = next(counter)
        behaviour = behaviours[min(number, len(behaviours) - 1)]
        await behaviour(ws, number)

    port = free_port()
    async with serve(handler, "127.0.0.1", port):
        yield f"ws://127.0.0.1:{port}/ws"


async def accepted(ws: ServerConnection, number: int) -> None:
    await serve_session(ws, number)


async def accepted_with_notices(ws: ServerConnection, number: int) -> None:
    await serve_session(ws, number, notices=True)


def chunks() -> list[bytes]:
    return [np.zeros(1600, dtype="<i2").tobytes()] * 5


@pytest.fixture
def wavs(tmp_path: Path) -> list[Path]:
    t = np.arange(8000) / 16000
    tone = np.rint(5000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return [write_wav(tmp_path / f"{name}.wav", tone, 16000) for name in ("one", "two")]


# --------------------------------------------------------------------------- stream_audio


async def test_a_refused_session_is_a_gateway_error() -> None:
    async with stand_in(refused) as url:
        with pytest.raises(SessionRefused) as caught:
            await stream_audio(url, StartMessage(language="xx"), chunks())
    assert isinstance(caught.value, GatewayError)
    message = str(caught.value)
    assert "refused" in message and "unsupported_language" in message, message
    assert "no such language 'xx'" in message, message


async def test_a_close_before_started_is_a_gateway_error() -> None:
    async with stand_in(closed) as url:
        with pytest.raises(SessionRefused) as caught:
            await stream_audio(url, StartMessage(), chunks())
    message = str(caught.value)
    assert "closed the connection before starting the session" in message, message
    assert "1013" in message and "try again later" in message, message


async def test_notices_are_passed_on_and_collected() -> None:
    seen: list[NoticeEvent] = []
    async with stand_in(accepted_with_notices) as url:
        result = await stream_audio(url, StartMessage(), chunks(), on_notice=seen.append)
    assert result.session_id == "s0"
    assert [n.code for n in result.notices] == ["no_stt_worker"] * 3
    assert seen == result.notices
    assert [f.text for f in result.finals] == ["final of session 0"]
    assert result.errors == []
    assert result.summary is not None and result.summary.audio_seconds == pytest.approx(0.5)


async def test_an_unknown_event_before_started_is_skipped() -> None:
    async def newer_gateway(ws: ServerConnection, number: int) -> None:
        await serve_session(ws, number, first=UNKNOWN_EVENT)

    async with stand_in(newer_gateway) as url:
        result = await stream_audio(url, StartMessage(), chunks())
    assert result.session_id == "s0"
    assert [f.text for f in result.finals] == ["final of session 0"]


# --------------------------------------------------------------------------- nova transcribe


async def transcribe(files: list[Path], url: str, output_dir: Path | None = None) -> int:
    return await run_transcribe(
        files,
        url=url,
        language="auto",
        task="transcribe",
        fmt="text",
        realtime=False,
        output_dir=output_dir,
    )


@pytest.mark.parametrize("behaviour", [refused, closed], ids=["error-event", "closed"])
async def test_transcribe_refused_session_fails_that_file_only(
    behaviour: Behaviour,
    wavs: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out_dir = tmp_path / "out"
    async with stand_in(behaviour, accepted) as url:
        status = await transcribe(wavs, url, out_dir)
    captured = capsys.readouterr()
    assert status == 1, captured
    assert f"nova transcribe: {wavs[0]}: the gateway" in captured.err, captured.err
    assert "Traceback" not in captured.err, captured.err
    assert str(wavs[1]) not in captured.err, captured.err
    # The second file went through; the refused one left no empty output file behind.
    assert sorted(p.name for p in out_dir.iterdir()) == ["two.txt"]
    assert (out_dir / "two.txt").read_text() == "final of session 1\n"


async def test_transcribe_prints_notices_without_failing(
    wavs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    async with stand_in(accepted_with_notices) as url:
        status = await transcribe(wavs, url)
    captured = capsys.readouterr()
    assert status == 0, captured
    assert captured.out == "final of session 0\nfinal of session 1\n"
    notes = [line for line in captured.err.splitlines() if "no speech-to-text worker" in line]
    # Once per file, however often the gateway repeats it.
    assert notes == [f"nova transcribe: note: {path.name}: {NO_WORKER.reason}" for path in wavs], (
        captured.err
    )


async def test_transcribe_unreachable_gateway_stops_at_once(
    wavs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws"
    status = await transcribe(wavs, url)
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("cannot reach the Nova gateway") == 1, err
