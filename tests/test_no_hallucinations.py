"""No text that nobody said: a minute each of silence, white noise and a synthetic music-like
signal, streamed through the gateway to the real Whisper base model, produce no words."""

from __future__ import annotations

import numpy as np
import pytest

from nova_cli.stack import LocalStack
from nova_stt.filters import FilterSettings
from nova_stt.transcriber import SpeechToText
from tests.client import transcribe
from tests.speech import librivox, read_wav, resample, speak, wer

pytestmark = pytest.mark.slow

RATE = 16000
NOTES_HZ = (220.0, 277.18, 329.63, 440.0, 392.0, 329.63, 293.66, 261.63)


def white_noise(seconds: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, 0.1, int(seconds * RATE))
    return (noise * 32767).clip(-32768, 32767).astype(np.int16)


def music(seconds: float) -> np.ndarray:
    """Plucked notes with harmonics, two a second: tonal, rhythmic, voice-like in pitch."""
    t = np.arange(int(0.5 * RATE)) / RATE
    envelope = np.exp(-3.0 * t)
    notes = [envelope * sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3)) for f in NOTES_HZ]
    out = np.concatenate([notes[i % len(notes)] for i in range(int(seconds * 2))])
    return (out / np.abs(out).max() * 0.5 * 32767).astype(np.int16)


SIGNALS = {
    "silence": lambda: np.zeros(60 * RATE, np.int16),
    "white_noise": lambda: white_noise(60),
    "music": lambda: music(60),
}


@pytest.mark.parametrize("name", list(SIGNALS))
async def test_a_minute_of_it_produces_no_words(stack: LocalStack, name: str) -> None:
    result = await transcribe(stack.ws_url, SIGNALS[name]())
    assert result.errors == []
    assert result.summary is not None
    words = [f.text for f in result.finals if f.text.strip()]
    assert words == [], words


def test_noise_never_reaches_the_model(whisper: SpeechToText) -> None:
    result = whisper.transcribe(white_noise(20).tobytes(), language=None, task="transcribe")
    assert (result.text, result.suppressed) == ("", ("no_speech_vad",))
    # Speech passes the gate and is transcribed as before.
    speech = whisper.transcribe(
        speak("I would like a cup of coffee.").tobytes(), language=None, task="transcribe"
    )
    assert "coffee" in speech.text.lower() and speech.suppressed == ()


def test_filters_cost_real_speech_nothing(
    whisper: SpeechToText, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LibriVox with every filter on vs Whisper's text with the gate and thresholds off."""
    clips = [(resample(*read_wav(path)[:2], 16000).tobytes(), text) for path, text in librivox()]
    filtered = [whisper.transcribe(pcm, language=None, task="transcribe") for pcm, _ in clips]
    permissive = FilterSettings(
        speech_gate=False,
        no_speech_threshold=2.0,
        log_prob_threshold=-1e9,
        compression_ratio_threshold=1e9,
        weak_no_speech_prob=2.0,
        max_repeats=10_000,
    )
    monkeypatch.setattr(whisper, "filters", permissive)
    raw = [whisper.transcribe(pcm, language=None, task="transcribe") for pcm, _ in clips]
    references = [text for _, text in clips]
    assert all(r.suppressed == () for r in filtered), [r.suppressed for r in filtered]
    assert wer(references, [r.text for r in filtered]) <= wer(references, [r.text for r in raw])
