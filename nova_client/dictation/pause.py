"""Pausing `nova type`: while paused no audio leaves the machine.

Pausing stops sending audio rather than typing: what is said while paused is private, and the
gateway and workers do no work for it. The utterance in progress when the pause begins is
finished and typed — the source sends a second of silence first, so the gateway hears it end —
and afterwards the capture goes on but its audio is dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from nova_client.sources import AudioSource

# Past the gateway's end-of-utterance silence (300 ms in the typing profile, 600 ms otherwise).
FLUSH_SILENCE_S = 1.0


class Pause:
    def __init__(self, on_change: Callable[[bool, str], None] | None = None) -> None:
        self.paused = False
        self._on_change = on_change

    def toggle(self, why: str) -> None:
        self.paused = not self.paused
        if self._on_change is not None:
            self._on_change(self.paused, why)


class PausableSource:
    """``source`` with its audio replaced (briefly by silence, then by nothing) while paused."""

    def __init__(self, source: AudioSource, pause: Pause) -> None:
        self._source = source
        self._pause = pause
        self.sample_rate = source.sample_rate
        self.channels = source.channels
        self.description = source.description

    async def chunks(self) -> AsyncIterator[bytes]:
        flush_bytes = int(FLUSH_SILENCE_S * self.sample_rate) * self.channels * 2
        silence_left = 0
        async for chunk in self._source.chunks():
            if not self._pause.paused:
                silence_left = flush_bytes
                yield chunk
            elif silence_left > 0:
                silence_left -= len(chunk)
                yield bytes(len(chunk))
