"""Test-side helpers for talking to the gateway the way clients do."""

from __future__ import annotations

import numpy as np

from nova_client.streaming import SessionResult, stream_audio
from nova_common.messages import StartMessage


def chunks(audio: np.ndarray, rate: int, channels: int = 1, seconds: float = 0.1) -> list[bytes]:
    step = int(rate * seconds) * channels
    raw = audio.astype("<i2")
    return [raw[i : i + step].tobytes() for i in range(0, len(raw), step)]


async def transcribe(
    url: str,
    audio: np.ndarray,
    *,
    rate: int = 16000,
    channels: int = 1,
    language: str = "auto",
) -> SessionResult:
    start = StartMessage(language=language, sample_rate=rate, channels=channels)
    return await stream_audio(url, start, chunks(audio, rate, channels))
