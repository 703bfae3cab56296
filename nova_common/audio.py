"""The audio every part of Nova agrees on: the rate Whisper hears, and the client formats the
gateway accepts (the file decoder picks its output rate from the same limits)."""

from __future__ import annotations

# Whisper hears 16 kHz mono; every segment on the bus is PCM16 at this rate.
SAMPLE_RATE = 16000
# What a client may send the gateway; the gateway resamples to SAMPLE_RATE.
MIN_RATE = 8000
MAX_RATE = 192000
MAX_CHANNELS = 8


class AudioFormatError(ValueError):
    """Audio a client sent that Nova cannot take; ``code`` is the error event's code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def check_format(sample_rate: int, channels: int) -> None:
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise AudioFormatError(
            "unsupported_sample_rate",
            f"sample_rate {sample_rate} Hz is not supported (use {MIN_RATE}–{MAX_RATE} Hz)",
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioFormatError(
            "unsupported_channels", f"channels {channels} is not supported (use 1–{MAX_CHANNELS})"
        )
