"""The client against a scripted stand-in gateway: refused sessions, early closes, notices and
translations, in `stream_audio` and in `nova transcribe` (run in-process)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from nova_cli.transcribe import run_transcribe
from nova_client.formats import Format
from nova_client.streaming import GatewayError, SessionRefused, stream_audio
from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    NoticeEvent,
    ServerEvent,
    SessionStarted,
    StartMessage,
    SummaryEvent,
    TranslationEvent,
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
            translate_to=start.translate_to,
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


async def translating(ws: ServerConnection, number: int, *, broken: bool = False) -> None:
    """Finals and their translations as the gateway sends them for targets es and de: the German
    for the first final fails, the second final is empty. ``broken``: the connection drops after
    the first final, before its translations."""
    start = client_message_decoder.decode(await ws.recv())
    assert isinstance(start, StartMessage) and start.translate_to == ("es", "de"), start
    sid = f"s{number}"
    await send(ws, SessionStarted(session_id=sid, sample_rate=start.sample_rate,
                                  channels=start.channels, language=start.language,
                                  task=start.task, translate_to=start.translate_to))  # fmt: skip
    async for frame in ws:
        if not isinstance(frame, bytes):
            break  # `stop`

    def final(seq: int, text: str) -> FinalEvent:
        return FinalEvent(session_id=sid, seq=seq, text=text, language="en", start=seq, end=seq + 1)

    def translated(seq: int, language: str, text: str) -> TranslationEvent:
        return TranslationEvent(session_id=sid, seq=seq, language=language, source_language="en",
                                text=text, start=seq, end=seq + 1, backend="apertium")  # fmt: skip

    await send(ws, final(0, f"Hello {number}."))
    if broken:
        await ws.close(1011, "gateway failed")
        return
    await send(ws, translated(0, "es", f"Hola {number}."))
    await ws.send(UNKNOWN_EVENT)
    await send(ws, ErrorEvent(code="translation_unavailable", reason="no backend for en→de",
                              session_id=sid, seq=0, language="de"))  # fmt: skip
    await send(ws, final(1, ""))
    await send(ws, final(2, "Bye."))
    await send(ws, translated(2, "de", "Tschüss."))  # before the Spanish: order is the client's
    await send(ws, translated(2, "es", "Adiós."))
    await send(ws, SummaryEvent(session_id=sid, finals=3, failed=0, audio_seconds=0.5,
                                translations=3, translations_failed=1))  # fmt: skip
    await ws.close()


async def translating_then_broken(ws: ServerConnection, number: int) -> None:
    await translating(ws, number, broken=True)


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


async def test_translations_and_their_failures_are_collected_apart_from_finals() -> None:
    seen: list[TranslationEvent] = []
    errors: list[ErrorEvent] = []
    async with stand_in(translating) as url:
        result = await stream_audio(
            url,
            StartMessage(translate_to=("es", "de")),
            chunks(),
            on_translation=seen.append,
            on_error=errors.append,
        )
    assert result.translate_to == ("es", "de")
    assert [(t.seq, t.language, t.text) for t in result.translations] == [
        (0, "es", "Hola 0."), (2, "de", "Tschüss."), (2, "es", "Adiós."),
    ]  # fmt: skip
    assert seen == result.translations
    assert result.errors == []  # every final arrived
    assert [(e.seq, e.language, e.code) for e in result.translation_errors] == [
        (0, "de", "translation_unavailable")
    ]
    assert errors == result.translation_errors
    assert [f.seq for f in result.finals] == [0, 1, 2]
    assert result.summary is not None and result.summary.translations_failed == 1


# --------------------------------------------------------------------------- nova transcribe


async def transcribe(
    files: list[Path],
    url: str,
    output_dir: Path | None = None,
    *,
    fmt: Format = "text",
    translate_to: tuple[str, ...] = (),
) -> int:
    return await run_transcribe(
        files,
        url=url,
        language="auto",
        task="transcribe",
        fmt=fmt,
        realtime=False,
        output_dir=output_dir,
        translate_to=translate_to,
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


async def test_transcribe_prints_translations_under_each_final(
    wavs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    async with stand_in(translating) as url:
        status = await transcribe(wavs[:1], url, translate_to=("es", "de"))
    captured = capsys.readouterr()
    assert captured.out == "Hello 0.\n  [es] Hola 0.\nBye.\n  [es] Adiós.\n  [de] Tschüss.\n"
    # The German that never came is reported and fails the file, like a failed final.
    assert status == 1, captured
    assert (
        "nova transcribe: one.wav: translation_unavailable: no backend for en→de" in captured.err
    ), captured.err
    assert "Traceback" not in captured.err, captured.err


async def test_transcribe_jsonl_adds_translations_to_each_final(
    wavs: list[Path], tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    async with stand_in(translating) as url:
        status = await transcribe(wavs, url, out_dir, fmt="jsonl", translate_to=("es", "de"))
    assert status == 1
    for number, path in enumerate(wavs):
        lines = (out_dir / f"{path.stem}.jsonl").read_text().splitlines()
        records = [msgspec.json.decode(line) for line in lines]
        assert [(r["seq"], r.get("translations")) for r in records] == [
            (0, {"es": f"Hola {number}."}),
            (1, None),
            (2, {"es": "Adiós.", "de": "Tschüss."}),
        ], lines


async def test_transcribe_keeps_finals_whose_translations_were_cut_off(
    wavs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    async with stand_in(translating_then_broken) as url:
        status = await transcribe(wavs[:1], url, translate_to=("es", "de"))
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == "Hello 0.\n", captured  # held for its translations, still written
    assert "closed the connection before the summary" in captured.err, captured.err


async def test_transcribe_reports_a_gateway_that_ignores_translate_to(
    wavs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    async def older_gateway(ws: ServerConnection, number: int) -> None:
        start = client_message_decoder.decode(await ws.recv())
        assert isinstance(start, StartMessage) and start.translate_to == ("es",)
        await ws.send(
            '{"type":"started","session_id":"s0","sample_rate":16000,"channels":1,'
            '"language":"auto","task":"transcribe"}'
        )
        async for frame in ws:
            if not isinstance(frame, bytes):
                break
        await send(ws, FinalEvent(session_id="s0", seq=0, text="Hello.", language="en",
                                  start=0.0, end=1.0))  # fmt: skip
        await send(ws, SummaryEvent(session_id="s0", finals=1, failed=0, audio_seconds=0.5))

    async with stand_in(older_gateway) as url:
        status = await transcribe(wavs[:1], url, translate_to=("es",))
    captured = capsys.readouterr()
    assert captured.out == "Hello.\n"
    assert status == 1
    assert "one.wav: this gateway does not translate" in captured.err, captured.err


async def test_transcribe_writes_each_final_as_soon_as_its_translations_are_settled(
    wavs: list[Path], tmp_path: Path
) -> None:
    """Not only at the end: once its last translation arrived or failed, a final is out."""
    out_file = tmp_path / "out" / "one.txt"
    written: list[str] = []

    async def watched(ws: ServerConnection, number: int) -> None:
        start = client_message_decoder.decode(await ws.recv())
        assert isinstance(start, StartMessage)
        await send(ws, SessionStarted(session_id="s0", sample_rate=16000, channels=1,
                                      language="auto", task="transcribe",
                                      translate_to=start.translate_to))  # fmt: skip
        async for frame in ws:
            if not isinstance(frame, bytes):
                break
        await send(ws, FinalEvent(session_id="s0", seq=0, text="Hello.", language="en",
                                  start=0.0, end=1.0))  # fmt: skip
        await send(ws, TranslationEvent(session_id="s0", seq=0, language="es",
                                        source_language="en", text="Hola.", start=0.0, end=1.0,
                                        backend="apertium"))  # fmt: skip
        written.append(await read_when_changed(out_file, ""))  # the German is still owed
        await send(ws, ErrorEvent(code="translation_unavailable", reason="no en→de",
                                  session_id="s0", seq=0, language="de"))  # fmt: skip
        written.append(await read_when_changed(out_file, written[0]))
        await send(ws, SummaryEvent(session_id="s0", finals=1, failed=0, audio_seconds=0.5,
                                    translations=1, translations_failed=1))  # fmt: skip

    async with stand_in(watched) as url:
        status = await transcribe(wavs[:1], url, tmp_path / "out", translate_to=("es", "de"))
    assert status == 1
    # Held while the German was owed, written when it failed, before the session ended.
    assert written == ["", "Hello.\n  [es] Hola.\n"]
    assert out_file.read_text() == "Hello.\n  [es] Hola.\n"


async def read_when_changed(path: Path, before: str, wait: float = 0.5) -> str:
    """The file's text once it differs from ``before``, or as it is after ``wait`` seconds."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        text = read(path)
        if text != before or asyncio.get_running_loop().time() > deadline:
            return text
        await asyncio.sleep(0.01)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
