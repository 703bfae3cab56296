"""Decoding any audio file PyAV (FFmpeg) understands into PCM16 chunks the gateway accepts.

Used by ``nova transcribe`` (before streaming a file) and by the gateway's OpenAI-compatible API
(an upload). A file keeps its own sample rate when the gateway takes it; otherwise it is
resampled here with soxr, as the gateway resamples live audio: to 16 kHz when slower, to 48 kHz
when faster. (FFmpeg's own resampler, with its default short filter, leaves images of a 4 kHz
file's speech at -39 dB between 2 and 6 kHz; Whisper heard "Good morning, everyone" through
them as Thai. soxr's HQ filter leaves them at -84 dB.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soxr

from nova_common.audio import MAX_RATE, MIN_RATE, SAMPLE_RATE

# A high-rate recording comes down to 48 kHz: its audible band stays intact.
RATE_FOR_FAST = 48000


class AudioFileError(RuntimeError):
    pass


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int  # the rate pcm_chunks delivers (and the session's): always supported
    channels: int
    duration: float | None  # seconds, when the container knows
    source_rate: int | None = None  # the file's own rate, when it differs from sample_rate


def target_rate(source_rate: int) -> int:
    """The file's own rate when the gateway accepts it, else the rate to resample it to."""
    if source_rate < MIN_RATE:
        return SAMPLE_RATE
    if source_rate > MAX_RATE:
        return RATE_FOR_FAST
    return source_rate


def _open_audio(path: Path) -> tuple[av.container.InputContainer, av.audio.stream.AudioStream]:
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise AudioFileError(f"{path}: cannot read audio ({exc})") from exc
    if not container.streams.audio:
        container.close()
        raise AudioFileError(f"{path}: contains no audio stream")
    return container, container.streams.audio[0]


def probe(path: Path) -> AudioInfo:
    container, stream = _open_audio(path)
    with container:
        rate = stream.codec_context.sample_rate or stream.rate
        channels = min(stream.codec_context.channels or 1, 2)
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration and stream.time_base
            else None
        )
        if duration is None and container.duration:
            duration = container.duration / 1_000_000
    rate = int(rate or 0)
    target = target_rate(rate)
    return AudioInfo(
        sample_rate=target,
        channels=int(channels),
        duration=duration,
        # A container that does not say its rate: FFmpeg converts from what it decodes.
        source_rate=rate if rate and rate != target else None,
    )


def _frames(path: Path, info: AudioInfo) -> Iterator[np.ndarray]:
    """Decoded audio as int16 (samples, channels) at the file's own rate: PyAV converts the
    sample format and channel layout, and the rate only where the container did not say it."""
    layout = "stereo" if info.channels == 2 else "mono"
    container, stream = _open_audio(path)
    with container:
        rate = info.source_rate or info.sample_rate
        converter = av.AudioResampler(format="s16", layout=layout, rate=rate)
        try:
            for frame in container.decode(stream):
                for out in converter.resample(frame):
                    yield np.asarray(out.to_ndarray()).reshape(-1, info.channels)
            for out in converter.resample(None):
                yield np.asarray(out.to_ndarray()).reshape(-1, info.channels)
        except av.error.FFmpegError as exc:
            raise AudioFileError(f"{path}: decoding failed ({exc})") from exc


def _resampled(frames: Iterator[np.ndarray], info: AudioInfo) -> Iterator[np.ndarray]:
    if info.source_rate is None:
        yield from frames
        return
    stream = soxr.ResampleStream(
        info.source_rate, info.sample_rate, info.channels, dtype="int16", quality="HQ"
    )
    for frame in frames:
        yield stream.resample_chunk(frame)
    yield stream.resample_chunk(np.zeros((0, info.channels), dtype=np.int16), last=True)


def pcm_chunks(path: Path, info: AudioInfo, chunk_seconds: float = 0.1) -> Iterator[bytes]:
    """Interleaved PCM16 LE at ``info.sample_rate`` (mono or stereo), in chunks of whole frames."""
    chunk_bytes = max(int(info.sample_rate * chunk_seconds), 1) * 2 * info.channels
    buffer = bytearray()
    for samples in _resampled(_frames(path, info), info):
        buffer += samples.astype("<i2", copy=False).tobytes()
        while len(buffer) >= chunk_bytes:
            yield bytes(buffer[:chunk_bytes])
            del buffer[:chunk_bytes]
    if buffer:
        yield bytes(buffer)
