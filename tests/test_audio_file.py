"""Files decode to a sample rate the gateway accepts (8000–192000 Hz), resampled cleanly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nova_common import audio
from nova_common.audio_file import RATE_FOR_FAST, AudioInfo, pcm_chunks, probe
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
    # Still the same speech: the 4 kHz audio brought back to 16 kHz matches soxr's own.
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


def test_upsampling_adds_no_images_above_the_source_band(
    speech_16k: np.ndarray, tmp_path: Path
) -> None:
    """A 4 kHz file holds nothing above 2 kHz, and after resampling neither may the audio:
    FFmpeg's default resampler left the speech's mirror images at -39 dB between 2 and 6 kHz,
    enough for Whisper to hear English as Thai."""
    path = write_wav(tmp_path / "phone.wav", resample(speech_16k, 16000, 4000), 4000)
    out = decode(path, probe(path)).astype(np.float64)
    power = np.abs(np.fft.rfft(out)) ** 2
    freqs = np.fft.rfftfreq(len(out), 1 / 16000)
    images_db = 10 * np.log10(power[(freqs > 2100) & (freqs < 6000)].sum() / power.sum())
    assert images_db < -60, images_db


def test_the_rates_files_are_resampled_to_are_accepted_by_the_gateway() -> None:
    audio.check_format(audio.SAMPLE_RATE, 1)
    audio.check_format(RATE_FOR_FAST, 2)
