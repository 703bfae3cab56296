"""The OpenAI-compatible API, driven by the official `openai` client against a real stack
(gateway, nats-server, Whisper base): every response format, translations, streaming, word
times, other containers and rates, and the errors a client can run into. (Parsing and rendering
on their own: test_openai_format.py.)"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import openai
import pytest

from nova_cli.stack import LocalStack
from nova_common.nats_server import EmbeddedNatsServer
from nova_common.settings import Settings, load_settings
from nova_gateway.openai.run import SessionRun
from nova_stt.transcriber import SpeechToText
from tests.processes import TEST_STREAMS
from tests.speech import normalise, resample, speak, wer, with_pauses, write_wav

ENGLISH = [
    "Good morning, everyone, and welcome to the meeting.",
    "Please send the report to my office.",
    "The children are playing in the garden.",
]
GERMAN = "Ich möchte eine Tasse Kaffee, bitte."
UPLOAD_LIMIT = 2_000_000

TIME_SRT = r"\d{2}:\d{2}:\d{2},\d{3}"
TIME_VTT = r"\d{2}:\d{2}:\d{2}\.\d{3}"


# --------------------------------------------------------------------------- against a stack


@dataclass
class Files:
    english: Path  # three sentences, 16 kHz mono WAV
    ogg: Path  # one sentence, Opus in Ogg, 48 kHz stereo
    mp3: Path  # another, MP3 at 44.1 kHz stereo
    german: Path
    silence: Path


def encode(path: Path, audio_16k: np.ndarray, codec: str, container: str, rate: int) -> Path:
    """``audio_16k`` as stereo ``codec`` at ``rate`` Hz, encoded by PyAV (FFmpeg)."""
    audio = resample(audio_16k, 16000, rate)
    interleaved = np.stack([audio, audio], axis=1).reshape(1, -1)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
        frame.rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    tmp = tmp_path_factory.mktemp("openai-audio")
    english = with_pauses([speak(sentence) for sentence in ENGLISH])
    return Files(
        english=write_wav(tmp / "english.wav", english, 16000),
        ogg=encode(tmp / "one.ogg", speak(ENGLISH[1]), "libopus", "ogg", 48000),
        mp3=encode(tmp / "two.mp3", speak(ENGLISH[2]), "libmp3lame", "mp3", 44100),
        german=write_wav(tmp / "german.wav", with_pauses([speak(GERMAN, "de")]), 16000),
        silence=write_wav(tmp / "silence.wav", np.zeros(16000, dtype=np.int16), 16000),
    )


def stack_settings(
    nats_server: EmbeddedNatsServer,
    data_dir: Path,
    *,
    gateway: dict[str, Any] | None = None,
    streams: dict[str, Any] | None = None,
) -> Settings:
    """Like conftest's ``settings``, for stacks this module makes itself (its own prefix)."""
    return load_settings(
        environ={},
        overrides={
            "data_dir": str(data_dir),
            "nats": {"url": nats_server.url, "subject_prefix": f"t{uuid.uuid4().hex[:10]}"},
            "gateway": {"port": 0, "openai_max_upload_bytes": UPLOAD_LIMIT, **(gateway or {})},
            "streams": {**TEST_STREAMS, **(streams or {})},
            # One utterance per model call: finals then come one by one, as on a busy server.
            "stt": {"fetch_timeout_s": 0.5, "heartbeat_interval_s": 0.5, "batch_size": 1},
        },
    )


@pytest.fixture(scope="module")
async def openai_stack(
    nats_server: EmbeddedNatsServer, data_dir: Path, whisper: SpeechToText
) -> AsyncIterator[LocalStack]:
    """One stack for the module: gateway (on a free port) and a Whisper base worker."""
    settings = stack_settings(nats_server, data_dir)
    async with LocalStack(settings, stt_workers=1, model=whisper) as stack:
        yield stack


def base_url(stack: LocalStack) -> str:
    """On the gateway's own port, beside /ws."""
    return f"{stack.http_url}/v1"


@pytest.fixture
async def client(openai_stack: LocalStack) -> AsyncIterator[openai.AsyncOpenAI]:
    async with client_of(openai_stack) as client:
        yield client


def client_of(stack: LocalStack) -> openai.AsyncOpenAI:
    # No retries: a failure must show as it is, not as the third attempt of it.
    return openai.AsyncOpenAI(base_url=base_url(stack), api_key="unused", max_retries=0)


def seconds(stamp: str) -> float:
    h, m, rest = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(rest)


def cues(body: str, time_re: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each numbered cue, checking each block's layout."""
    out = []
    for number, block in enumerate(body.strip().split("\n\n"), start=1):
        lines = block.split("\n")
        assert lines[0] == str(number) and len(lines) >= 3, block
        match = re.fullmatch(rf"({time_re}) --> ({time_re})", lines[1])
        assert match, lines[1]
        out.append((seconds(match.group(1)), seconds(match.group(2)), " ".join(lines[2:])))
    return out


def assert_in_order(spans: list[tuple[float, float]], duration: float) -> None:
    assert spans, "no segments"
    for start, end in spans:
        assert 0.0 <= start < end <= duration + 0.05, (start, end, duration)
    assert all(a[1] <= b[0] + 0.05 for a, b in itertools.pairwise(spans)), spans


@pytest.mark.slow
async def test_every_response_format(client: openai.AsyncOpenAI, files: Files) -> None:
    async def transcribe(fmt: str, **extra: Any) -> Any:
        with files.english.open("rb") as f:
            return await client.audio.transcriptions.create(
                file=f,
                model="whisper-1",
                response_format=fmt,
                **extra,  # type: ignore[arg-type]
            )

    # At once: each request is a session of its own, like concurrent WebSocket clients.
    as_json, text, srt, vtt, verbose = await asyncio.gather(
        transcribe("json"),
        transcribe("text"),
        transcribe("srt"),
        transcribe("vtt"),
        transcribe("verbose_json", timestamp_granularities=["segment", "word"], language="en"),
    )
    reference = " ".join(ENGLISH)
    assert wer([reference], [as_json.text]) <= 0.15, as_json.text
    duration = len(with_pauses([speak(s) for s in ENGLISH])) / 16000
    assert as_json.usage.seconds == pytest.approx(duration, abs=0.05)
    assert text == as_json.text + "\n"

    srt_cues = cues(srt, TIME_SRT)
    vtt_cues = cues(vtt.removeprefix("WEBVTT\n\n"), TIME_VTT)
    assert vtt.startswith("WEBVTT\n\n")
    assert len(srt_cues) == len(ENGLISH), srt  # one cue per spoken sentence
    assert [c[2] for c in srt_cues] == [c[2] for c in vtt_cues]
    assert wer(ENGLISH, [c[2] for c in srt_cues]) <= 0.15
    assert_in_order([(c[0], c[1]) for c in srt_cues], duration)

    assert (verbose.language, verbose.text) == ("english", as_json.text)
    assert verbose.duration == pytest.approx(duration, abs=0.05)
    assert verbose.segments is not None and verbose.words is not None
    assert [s.text for s in verbose.segments] == [c[2] for c in srt_cues]
    assert [s.id for s in verbose.segments] == list(range(len(srt_cues)))
    assert_in_order([(s.start, s.end) for s in verbose.segments], duration)
    assert wer([reference], [" ".join(w.word for w in verbose.words)]) <= 0.15
    for word in verbose.words:  # each word inside the audio, and inside some segment
        assert 0.0 <= word.start <= word.end <= duration + 0.05, word
        assert any(
            s.start - 0.5 <= word.start and word.end <= s.end + 0.5 for s in verbose.segments
        ), word
    assert all(a.start <= b.start for a, b in itertools.pairwise(verbose.words))


@pytest.mark.slow
async def test_stream_sends_a_delta_per_final_as_it_arrives(
    client: openai.AsyncOpenAI, files: Files
) -> None:
    with files.english.open("rb") as f:
        expected = (await client.audio.transcriptions.create(file=f, model="whisper-1")).text
    arrivals: list[tuple[float, Any]] = []
    with files.english.open("rb") as f:
        stream = await client.audio.transcriptions.create(file=f, model="whisper-1", stream=True)
        async for event in stream:
            arrivals.append((time.monotonic(), event))
    events = [event for _, event in arrivals]
    assert [e.type for e in events] == ["transcript.text.delta"] * len(ENGLISH) + [
        "transcript.text.done"
    ], events
    assert "".join(e.delta for e in events[:-1]) == events[-1].text == expected
    # Each delta as its final came, not all at the end: with one utterance per model call, the
    # first is out at least one more utterance's transcription before the last.
    assert arrivals[-1][0] - arrivals[0][0] > 0.3, [t for t, _ in arrivals]


@pytest.mark.slow
# openai-python marks the translations endpoint deprecated (OpenAI's whisper-1 retirement).
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
async def test_translation_to_english(client: openai.AsyncOpenAI, files: Files) -> None:
    with files.german.open("rb") as f:
        result = await client.audio.translations.create(
            file=f, model="whisper-1", response_format="verbose_json"
        )
    assert (result.language, getattr(result, "task", None)) == ("english", "translate")
    # English, not the German that was said. Whisper base translates this synthetic German
    # loosely, and how depends on CTranslate2's build: "If you want to have a cup of coffee,
    # eat it." (4.8.5), "…, it is better to have a cup of coffee." (4.6.3–4.8.4), "I have to have
    # a cup of coffee." (4.5, 4.6.0). So the words are asserted, not the wording.
    words = set(normalise(result.text).split())
    assert {"cup", "coffee"} <= words, result.text
    assert not words & {"kaffee", "tasse", "bitte", "möchte", "eine", "ich"}, result.text
    with files.german.open("rb") as f:
        text = await client.audio.translations.create(
            file=f, model="whisper-1", response_format="text"
        )
    assert text == result.text + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("which", ["ogg", "mp3"])
async def test_compressed_stereo_at_other_rates(
    client: openai.AsyncOpenAI, files: Files, which: str
) -> None:
    path, sentence = (files.ogg, ENGLISH[1]) if which == "ogg" else (files.mp3, ENGLISH[2])
    with path.open("rb") as f:
        result = await client.audio.transcriptions.create(
            file=f, model="whisper-1", language="en", prompt="Office report, garden."
        )
    assert wer([sentence], [result.text]) <= 0.15, result.text


@pytest.mark.slow
async def test_silence_gives_no_text(client: openai.AsyncOpenAI, files: Files) -> None:
    with files.silence.open("rb") as f:
        result = await client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="verbose_json"
        )
    assert (result.text, result.segments, result.duration) == ("", [], 1.0)


@pytest.mark.slow
async def test_models_lists_the_workers_model(
    client: openai.AsyncOpenAI, openai_stack: LocalStack
) -> None:
    models = [m.id async for m in client.models.list()]
    assert models == [openai_stack.settings.stt.model]
    assert (await client.models.retrieve(models[0])).id == models[0]
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("whisper-1")


@pytest.mark.slow
async def test_bad_requests_are_openai_errors(
    client: openai.AsyncOpenAI, files: Files, tmp_path: Path
) -> None:
    with pytest.raises(openai.BadRequestError) as info, files.english.open("rb") as f:
        await client.audio.transcriptions.create(file=f, model="whisper-1", language="xx")
    assert (info.value.code, info.value.param) == ("unsupported_language", "language")
    assert "'xx'" in info.value.message

    with pytest.raises(openai.BadRequestError) as info:
        await client.audio.transcriptions.create(
            file=("notes.wav", b"no audio" * 100), model="whisper-1"
        )
    assert (info.value.code, info.value.param) == ("invalid_audio", "file")
    assert "notes.wav" in info.value.message and "/tmp" not in info.value.message

    empty = write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.int16), 16000)
    with pytest.raises(openai.BadRequestError) as info, empty.open("rb") as f:
        await client.audio.transcriptions.create(file=f, model="whisper-1")
    assert (info.value.code, info.value.param) == ("audio_too_short", "file")

    # Refused from its Content-Length, and (just over the limit, within the form's allowance)
    # once the upload passed the limit.
    for size in (UPLOAD_LIMIT * 2, UPLOAD_LIMIT + 1000):
        with pytest.raises(openai.APIStatusError) as too_large:
            await client.audio.transcriptions.create(
                file=("big.wav", bytes(size)), model="whisper-1"
            )
        assert too_large.value.status_code == 413
        assert too_large.value.code == "file_too_large"


@pytest.mark.slow
async def test_requests_without_a_file_or_form(openai_stack: LocalStack) -> None:
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData({"model": "whisper-1"}, default_to_multipart=True)
        async with http.post(f"{base_url(openai_stack)}/audio/transcriptions", data=form) as r:
            assert r.status == 400
            assert (await r.json())["error"]["param"] == "file"
        async with http.post(f"{base_url(openai_stack)}/audio/translations", json={}) as r:
            assert r.status == 400
            assert "multipart/form-data" in (await r.json())["error"]["message"]
        async with http.get(f"{base_url(openai_stack)}/audio/transcriptions") as r:
            assert r.status == 405
            assert set((await r.json())["error"]) == {"message", "type", "param", "code"}


def running_sessions() -> list[asyncio.Task[Any]]:
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == SessionRun._drive.__qualname__
    ]


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_a_client_that_hangs_up_ends_its_session(
    openai_stack: LocalStack, client: openai.AsyncOpenAI, files: Files
) -> None:
    url = f"{base_url(openai_stack)}/audio/transcriptions"
    async with aiohttp.ClientSession() as http:
        # Gone while its transcription is under way…
        form = aiohttp.FormData({"model": "whisper-1"})
        form.add_field("file", files.english.read_bytes(), filename="english.wav")
        request = asyncio.ensure_future(http.post(url, data=form))
        await until(lambda: bool(running_sessions()), "the session to start")
        request.cancel()
        # …and in the middle of a stream, after its first event.
        form = aiohttp.FormData({"model": "whisper-1", "stream": "true"})
        form.add_field("file", files.english.read_bytes(), filename="english.wav")
        async with http.post(url, data=form) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert (await response.content.readline()).startswith(b"data: ")
    await until(lambda: not running_sessions(), "the sessions to end")
    # Nothing broke: the next request is answered in full.
    with files.ogg.open("rb") as f:
        result = await client.audio.transcriptions.create(file=f, model="whisper-1")
    assert wer([ENGLISH[1]], [result.text]) <= 0.15


# --------------------------------------------------------------------------- failures


@pytest.mark.slow
async def test_no_final_in_time_is_504_or_a_stream_error(
    nats_server: EmbeddedNatsServer, data_dir: Path, files: Files
) -> None:
    """No STT worker: the request waits like a live session, up to `final_timeout_s`."""
    settings = stack_settings(nats_server, data_dir, gateway={"final_timeout_s": 1.5})
    async with LocalStack(settings, stt_workers=0) as stack:
        async with client_of(stack) as client:
            with pytest.raises(openai.APIStatusError) as info, files.ogg.open("rb") as f:
                await client.audio.transcriptions.create(file=f, model="whisper-1")
            assert (info.value.status_code, info.value.code) == (504, "finals_timeout")
            assert info.value.response.headers["x-should-retry"] == "false"

            with files.ogg.open("rb") as f:
                stream = await client.audio.transcriptions.create(
                    file=f, model="whisper-1", stream=True
                )
                with pytest.raises(openai.APIError) as streamed:
                    async for _ in stream:
                        pass
            assert "timed out" in streamed.value.message
        url = base_url(stack)
    # Closed with the gateway.
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"{url}/models")


@pytest.mark.slow
async def test_audio_the_queue_refuses_is_503(
    nats_server: EmbeddedNatsServer, data_dir: Path, files: Files
) -> None:
    """An AUDIO stream too small for one utterance refuses it (back-pressure): the client is
    told to retry rather than given part of the text."""
    settings = stack_settings(nats_server, data_dir, streams={"audio_max_bytes": 16_000})
    async with LocalStack(settings, stt_workers=0) as stack:
        async with client_of(stack) as client:
            with pytest.raises(openai.APIStatusError) as info, files.ogg.open("rb") as f:
                await client.audio.transcriptions.create(file=f, model="whisper-1")
    assert (info.value.status_code, info.value.code) == (503, "backpressure")
    assert info.value.response.headers["x-should-retry"] == "true"


@pytest.mark.slow
async def test_the_api_can_be_turned_off(nats_server: EmbeddedNatsServer, data_dir: Path) -> None:
    settings = stack_settings(nats_server, data_dir, gateway={"openai_api": False})
    async with LocalStack(settings, stt_workers=0) as stack:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base_url(stack)}/models") as reply:
                assert reply.status == 404
                assert "/v1/models" in (await reply.json())["error"]
            async with http.get(f"{stack.http_url}/health") as reply:
                assert reply.status == 200  # the rest of the gateway is there
