"""Client audio in any rate and channel count → 16 kHz mono PCM16, resampled with soxr."""

from __future__ import annotations

import numpy as np
import soxr

from nova_common.audio import SAMPLE_RATE, AudioFormatError, check_format


class AudioConverter:
    """Streaming converter; keeps resampler state between frames so chunk edges are seamless."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        check_format(sample_rate, channels)
        self.sample_rate = sample_rate
        self.channels = channels
        self._resampler = (
            soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            if sample_rate != SAMPLE_RATE
            else None
        )

    @property
    def frame_bytes(self) -> int:
        return 2 * self.channels

    def convert(self, pcm: bytes, *, last: bool = False) -> np.ndarray:
        """PCM16 LE interleaved → int16 mono at 16 kHz. ``pcm`` must hold whole sample frames."""
        if len(pcm) % self.frame_bytes:
            raise AudioFormatError(
                "bad_frame",
                f"binary frame of {len(pcm)} bytes is not a whole number of "
                f"{self.channels}-channel PCM16 samples ({self.frame_bytes} bytes each)",
            )
        samples = np.frombuffer(pcm, dtype="<i2")
        if self._resampler is None and self.channels == 1:
            # Already what the segmenter wants: one copy (frombuffer's view is read-only), not
            # the round trip through float32 (4 % of the gateway's CPU, bench/overhead.py).
            return samples.astype(np.int16)
        if self.channels > 1:
            mono = samples.reshape(-1, self.channels).astype(np.float32).mean(axis=1)
        else:
            mono = samples.astype(np.float32)
        if self._resampler is None:
            return mono.astype(np.int16)
        out = self._resampler.resample_chunk(mono, last=last)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, dtype=np.int16)
        return self.convert(b"", last=True)
