"""Language per utterance, locked per session, or detected among an allowed list — through the
gateway to the real Whisper base model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import websockets

from nova_cli.stack import LocalStack
from nova_cli.transcribe import run_transcribe
from nova_common.messages import StartMessage
from nova_stt.transcriber import SpeechToText
from tests.client import chunks
from tests.speech import silence, speak, write_wav

pytestmark = pytest.mark.slow

# Too short for Whisper base to be sure: detected freely, it has come back as Thai.
SHORT_ENGLISH = "Good morning, everyone."


async def finals_of(url: str, start: StartMessage, audio: np.ndarray) -> list[dict[str, object]]:
    from nova_client.streaming import stream_audio

    result = await stream_audio(url, start, chunks(audio, 16000))
    assert result.errors == []
    return [{"text": f.text, "language": f.language} for f in result.finals]


async def test_detection_among_allowed_languages(stack: LocalStack, whisper: SpeechToText) -> None:
    english = np.concatenate([silence(0.3), speak(SHORT_ENGLISH), silence(1.0)])
    german = np.concatenate(
        [silence(0.3), speak("Guten Morgen, ich gehe heute einkaufen.", voice="de"), silence(1.0)]
    )
    start = StartMessage(languages=("en", "de"))
    [en] = await finals_of(stack.ws_url, start, english)
    [de] = await finals_of(stack.ws_url, start, german)
    assert en["language"] == "en" and "morning" in str(en["text"]).lower(), en
    assert de["language"] == "de" and "morgen" in str(de["text"]).lower(), de
    # The same audio, a single allowed language: locked to it whatever detection says.
    direct = whisper.transcribe(english.tobytes(), language=None, task="transcribe",
                                allowed=("en",))  # fmt: skip
    assert direct.language == "en" and direct.language_probability == 1.0


@pytest.mark.parametrize(
    ("start", "code"),
    [
        ({"language": "en", "languages": ["en", "de"]}, "unsupported_language"),
        ({"languages": ["en", "klingon"]}, "unsupported_language"),
        ({"languages": "en"}, "invalid_message"),
    ],
)
async def test_bad_language_lists_refuse_the_session(
    stack: LocalStack, start: dict[str, object], code: str
) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        await ws.send(json.dumps({"type": "start", **start}))
        event = json.loads(await ws.recv())
    assert (event["type"], event["code"]) == ("error", code), event


async def test_started_echoes_the_allowed_languages(stack: LocalStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        await ws.send(json.dumps({"type": "start", "languages": ["DE", " en", "de"]}))
        event = json.loads(await ws.recv())
    assert event["type"] == "started" and event["languages"] == ["de", "en"], event


async def test_transcribe_language_list_restricts_detection(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = write_wav(
        tmp_path / "short.wav", np.concatenate([silence(0.3), speak(SHORT_ENGLISH), silence(1.0)]),
        16000,
    )  # fmt: skip
    status = await run_transcribe(
        [wav], url=stack.ws_url, language="en,de", task="transcribe", fmt="jsonl",
        realtime=False, output_dir=None,
    )  # fmt: skip
    assert status == 0
    # The in-process stack logs to the same stdout; the records are the JSON lines.
    out = capsys.readouterr().out.splitlines()
    [record] = [json.loads(line) for line in out if line.startswith("{")]
    assert record["language"] == "en", record
