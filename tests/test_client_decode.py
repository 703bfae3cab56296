"""The client decodes any file to a sample rate the gateway accepts (8000–192000 Hz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nova_client.decode import AudioInfo, pcm_chunks, probe
from tests.speech import resample, speak, write_wav


def decode(path: Path, info: AudioInfo) -> np.ndarray:
    return np.frombuffer(b"".join(pcm_chunks(path, info)), dtype="<i2")


@pytest.fixture(scope="module")
def speech_16k() -> np.ndarray:
    return speak("The train is late again, so we will meet at noon.")


def test_a_4khz_file_is_resampled_to_16khz(speech_16k: np.ndarray, tmp_path: Path) -> None:
    audio = resample(speech_16k, 16000, 4000)
    path = write_wav(tmp_path / "phone.wav", audio, 4000)

    info = probe(path)
    assert info.sample_rate == 16000 and info.source_rate == 4000, info
    assert info.channels == 1
    assert info.duration == pytest.approx(len(audio) / 4000, abs=0.01)

    out = decode(path, info)
    assert abs(len(out) - len(audio) * 4) <= 16, (len(out), len(audio))
    # Still the same speech: the 4 kHz audio brought back to 16 kHz here matches what PyAV made.
    reference = resample(audio, 4000, 16000).astype(np.float64)
    n = min(len(out), len(reference))
    corr = np.corrcoef(out[:n].astype(np.float64), reference[:n])[0, 1]
    assert corr > 0.9, corr


def test_a_384khz_file_is_resampled_to_48khz(speech_16k: np.ndarray, tmp_path: Path) -> None:
    audio = resample(speech_16k, 16000, 384000)
    path = write_wav(tmp_path / "studio.wav", audio, 384000)

    info = probe(path)
    assert info.sample_rate == 48000 and info.source_rate == 384000, info
    out = decode(path, info)
    assert abs(len(out) - len(audio) / 8) <= 64, (len(out), len(audio))


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 192000])
def test_a_supported_rate_is_kept(rate: int, tmp_path: Path) -> None:
    t = np.arange(rate // 2) / rate
    audio = np.rint(8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    stereo = np.stack([audio, audio // 2], axis=1).reshape(-1)
    path = write_wav(tmp_path / f"{rate}.wav", stereo, rate, channels=2)

    info = probe(path)
    assert (info.sample_rate, info.channels, info.source_rate) == (rate, 2, None), info
    assert np.array_equal(decode(path, info), stereo)  # untouched: no resampling at all


def test_the_limits_are_the_gateways() -> None:
    from nova_client import decode
    from nova_gateway import audio

    assert (decode.MIN_RATE, decode.MAX_RATE) == (audio.MIN_RATE, audio.MAX_RATE)
    audio.check_format(decode.RATE_FOR_SLOW, 1)
    audio.check_format(decode.RATE_FOR_FAST, 2)
