"""Client PCM in any supported rate/channel count becomes 16 kHz mono, seamlessly across frames."""

from __future__ import annotations

import numpy as np
import pytest

from nova_common.audio import SAMPLE_RATE, AudioFormatError, check_format
from nova_gateway.audio import AudioConverter


def sine(freq: float, rate: int, seconds: float, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def convert_in_chunks(
    converter: AudioConverter, interleaved: np.ndarray, sizes: list[int]
) -> np.ndarray:
    """Feed ``interleaved`` int16 samples in chunks of ``sizes`` sample frames (cycled), then flush."""
    data = interleaved.astype("<i2").tobytes()
    step = converter.frame_bytes
    out: list[np.ndarray] = []
    pos, i = 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)] * step
        out.append(converter.convert(data[pos : pos + n]))
        pos += n
        i += 1
    out.append(converter.flush())
    return np.concatenate(out)


def test_44100_stereo_becomes_16k_mono_of_the_right_length() -> None:
    seconds = 3.0
    left = sine(440, 44100, seconds)
    right = sine(660, 44100, seconds)
    stereo = np.stack([left, right], axis=1).reshape(-1)
    out = convert_in_chunks(AudioConverter(44100, 2), stereo, [441, 1000, 17, 4410, 3])
    assert out.dtype == np.int16
    expected = seconds * SAMPLE_RATE
    assert abs(len(out) - expected) <= 0.01 * expected


def test_chunking_does_not_change_the_output() -> None:
    """The resampler keeps state between frames, so chunk edges leave no clicks or gaps."""
    audio = sine(300, 22050, 2.0)
    whole = convert_in_chunks(AudioConverter(22050, 1), audio, [len(audio)])
    chunked = convert_in_chunks(AudioConverter(22050, 1), audio, [100, 2205, 7])
    assert len(chunked) == len(whole)
    assert np.max(np.abs(chunked.astype(np.int32) - whole.astype(np.int32))) <= 1


def test_stereo_is_averaged_to_mono() -> None:
    left = np.full(1600, 1000, dtype=np.int16)
    right = np.full(1600, -3000, dtype=np.int16)
    stereo = np.stack([left, right], axis=1).reshape(-1)
    out = AudioConverter(SAMPLE_RATE, 2).convert(stereo.tobytes())
    assert np.array_equal(out, np.full(1600, -1000, dtype=np.int16))


def test_16k_mono_passes_through_unchanged() -> None:
    audio = sine(1000, SAMPLE_RATE, 0.5)
    converter = AudioConverter(SAMPLE_RATE, 1)
    out = converter.convert(audio.tobytes())
    assert np.array_equal(out, audio)
    # A copy of its own, not a read-only view of the frame's bytes.
    assert out.dtype == np.int16 and out.flags.writeable
    assert converter.flush().size == 0


def test_sine_keeps_its_frequency_after_resampling() -> None:
    out = convert_in_chunks(AudioConverter(48000, 1), sine(1000, 48000, 2.0), [960])
    # Skip the resampler's start-up transient, then look for the spectral peak.
    steady = out[1600:].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    freqs = np.fft.rfftfreq(len(steady), 1 / SAMPLE_RATE)
    assert abs(freqs[int(np.argmax(spectrum))] - 1000) <= 2 * SAMPLE_RATE / len(steady)
    # And its level: the amplitude survives resampling within a few percent.
    assert abs(np.max(np.abs(steady)) - 10000) < 300


def test_full_scale_input_does_not_wrap_around() -> None:
    """Resampler overshoot on a full-scale square wave is clipped, not wrapped to the other sign."""
    square = np.where(sine(100, 44100, 1.0) >= 0, 32767, -32768).astype(np.int16)
    out = convert_in_chunks(AudioConverter(44100, 1), square, [4410])
    x = out.astype(np.int32)
    # A wrapped sample is a spike to the other rail with both neighbours on the original one;
    # the square wave's own edges are steps, not spikes.
    spikes = (np.abs(x[1:-1] - x[:-2]) > 50000) & (np.abs(x[1:-1] - x[2:]) > 50000)
    assert not spikes.any()
    assert x.max() == 32767 and x.min() == -32768  # the overshoot was clipped


def test_odd_byte_count_is_a_bad_frame() -> None:
    with pytest.raises(AudioFormatError) as info:
        AudioConverter(SAMPLE_RATE, 1).convert(b"\x00\x01\x02")
    assert info.value.code == "bad_frame"


def test_partial_stereo_frame_is_a_bad_frame() -> None:
    with pytest.raises(AudioFormatError) as info:
        AudioConverter(44100, 2).convert(b"\x00\x01\x02")
    assert info.value.code == "bad_frame"
    assert "2-channel" in str(info.value)


@pytest.mark.parametrize(
    ("rate", "channels", "code"),
    [
        (7999, 1, "unsupported_sample_rate"),
        (192001, 1, "unsupported_sample_rate"),
        (0, 1, "unsupported_sample_rate"),
        (16000, 0, "unsupported_channels"),
        (16000, 9, "unsupported_channels"),
        (16000, -1, "unsupported_channels"),
    ],
)
def test_check_format_rejects_out_of_range(rate: int, channels: int, code: str) -> None:
    with pytest.raises(AudioFormatError) as info:
        check_format(rate, channels)
    assert info.value.code == code
    with pytest.raises(AudioFormatError):
        AudioConverter(rate, channels)


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (192000, 8), (44100, 2), (16000, 1)])
def test_check_format_accepts_the_supported_range(rate: int, channels: int) -> None:
    check_format(rate, channels)
