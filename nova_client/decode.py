"""Decoding any audio file PyAV (FFmpeg) understands into PCM16 chunks at its own rate."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


class AudioFileError(RuntimeError):
    pass


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    duration: float | None  # seconds, when the container knows


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
    return AudioInfo(sample_rate=int(rate), channels=int(channels), duration=duration)


def pcm_chunks(path: Path, info: AudioInfo, chunk_seconds: float = 0.1) -> Iterator[bytes]:
    """Interleaved PCM16 LE at the file's own rate (mono or stereo), in chunks of whole frames."""
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
