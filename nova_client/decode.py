"""Decoding any audio file PyAV (FFmpeg) understands into PCM16 chunks the gateway accepts.

The file keeps its own sample rate when the gateway supports it (8000–192000 Hz); otherwise it is
resampled here, while decoding: to 16000 Hz when slower, to 48000 Hz when faster.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

# The sample rates a Nova gateway accepts (nova_gateway.audio.MIN_RATE / MAX_RATE), and the rates
# a file outside them is resampled to: 16 kHz is what Whisper hears anyway; 48 kHz keeps a
# high-rate recording's audible band intact.
MIN_RATE = 8000
MAX_RATE = 192000
RATE_FOR_SLOW = 16000
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
        return RATE_FOR_SLOW
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
        source_rate=rate if rate != target else None,
    )


def pcm_chunks(path: Path, info: AudioInfo, chunk_seconds: float = 0.1) -> Iterator[bytes]:
    """Interleaved PCM16 LE at ``info.sample_rate`` (mono or stereo), in chunks of whole frames;
    PyAV resamples the decoded audio when the file's own rate differs from it."""
    layout = "stereo" if info.channels == 2 else "mono"
    resampler = av.AudioResampler(format="s16", layout=layout, rate=info.sample_rate)
    chunk_bytes = max(int(info.sample_rate * chunk_seconds), 1) * 2 * info.channels
    buffer = bytearray()
    container, stream = _open_audio(path)
    with container:
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    buffer += np.asarray(out.to_ndarray()).tobytes()
                while len(buffer) >= chunk_bytes:
                    yield bytes(buffer[:chunk_bytes])
                    del buffer[:chunk_bytes]
            for out in resampler.resample(None):
                buffer += np.asarray(out.to_ndarray()).tobytes()
        except av.error.FFmpegError as exc:
            raise AudioFileError(f"{path}: decoding failed ({exc})") from exc
    if buffer:
        yield bytes(buffer)
