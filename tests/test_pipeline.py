"""End to end through the real gateway, a real nats-server and the real Whisper base model."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from nova_cli.stack import LocalStack
from nova_common.settings import Settings
from nova_stt.transcriber import SpeechToText
from tests.client import transcribe
from tests.speech import librivox, read_wav, resample, speak, wer, with_pauses

pytestmark = pytest.mark.slow

SENTENCES = [
    "Good morning, everyone, and welcome to the meeting.",
    "Please send the report to my office.",
    "I would like a cup of coffee.",
    "The children are playing in the garden.",
    "Thank you for your help with the project.",
]


async def test_five_sentences_come_back_as_five_finals(stack: LocalStack) -> None:
    audio = with_pauses([speak(s) for s in SENTENCES])
    result = await transcribe(stack.ws_url, audio)

    assert result.errors == []
    assert result.summary is not None and result.summary.finals == 5
    assert [f.seq for f in result.finals] == [0, 1, 2, 3, 4]
    assert all(f.language == "en" for f in result.finals), [
        (f.text, f.language) for f in result.finals
    ]
    starts = [f.start for f in result.finals]
    assert starts == sorted(starts)
    error = wer(SENTENCES, [f.text for f in result.finals])
    assert error <= 0.10, (error, [f.text for f in result.finals])


async def test_librivox_through_gateway_matches_direct_model(
    stack: LocalStack, whisper: SpeechToText
) -> None:
    references, via_gateway, direct = [], [], []
    for path, reference in librivox():
        audio, rate, _ = read_wav(path)
        result = await transcribe(stack.ws_url, audio, rate=rate)
        assert result.errors == []
        via_gateway.append(" ".join(f.text for f in result.finals))
        direct_result = await asyncio.to_thread(
            whisper.transcribe, resample(audio, rate, 16000).tobytes(), language=None,
            task="transcribe",
        )  # fmt: skip
        direct.append(direct_result.text)
        references.append(reference)

    gateway_wer = wer(references, via_gateway)
    direct_wer = wer(references, direct)
    print(f"LibriVox WER: gateway {gateway_wer:.3f}, direct faster-whisper {direct_wer:.3f}")
    assert gateway_wer <= direct_wer + 0.01


@pytest.mark.parametrize(
    ("voice", "text", "expected"),
    [
        ("de", "Guten Morgen. Ich gehe heute in die Stadt, um frisches Brot zu kaufen.", "de"),
        ("es", "Buenos días. Hoy voy a la ciudad para comprar pan y leche fresca.", "es"),
    ],
)
async def test_language_is_detected(
    stack: LocalStack, voice: str, text: str, expected: str
) -> None:
    result = await transcribe(stack.ws_url, with_pauses([speak(text, voice)]))
    assert [f.language for f in result.finals] == [expected]


async def test_44k_stereo_audio_is_resampled_and_downmixed(stack: LocalStack) -> None:
    sentence = "Can you tell me the way to the museum?"
    mono = resample(with_pauses([speak(sentence)]), 16000, 44100)
    # Left and right differ (one quieter), as in a real recording.
    stereo = np.stack([mono, (mono * 0.5).astype(np.int16)], axis=1).reshape(-1)
    result = await transcribe(stack.ws_url, stereo, rate=44100, channels=2)
    assert result.errors == []
    assert len(result.finals) == 1
    assert wer([sentence], [result.finals[0].text]) <= 0.2, result.finals[0].text


async def test_two_workers_share_one_consumer(settings: Settings, whisper: SpeechToText) -> None:
    texts = [f"This is sentence number {n} for the second worker test." for n in range(1, 9)]
    async with LocalStack(settings, stt_workers=2, model=whisper) as two:
        audio = with_pauses([speak(t) for t in texts])
        result = await transcribe(two.ws_url, audio)
    # Read after the stack stopped: a worker publishes the result before it acks, so the last
    # ack (which counts as processed) may still be on its way when the summary arrives.
    processed = [w.processed for w in two.workers]

    assert result.errors == []
    assert [f.seq for f in result.finals] == list(range(len(texts)))  # each exactly once, in order
    assert all(n > 0 for n in processed), processed
    assert sum(processed) == len(texts)
