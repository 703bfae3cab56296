"""N live sessions at once over `/ws`, each paced at real time, each recording what it saw.

Every stream is its own session (partials and word times on) carrying the same audio in 100 ms
chunks, all started together, as N speakers talking at the same moment would be: the hardest
case for a shared STT worker, since their utterances end together.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np

from bench.latency_parts import chunks
from bench.realtime_words import StreamRecord
from nova_client.streaming import GatewayError, SessionResult, start_message, stream_audio

CHUNK_MS = 100


@dataclass
class StreamOutcome:
    record: StreamRecord
    result: SessionResult | None = None
    failure: str | None = None  # the session broke off (GatewayError)
    max_send_lag_s: float = 0.0  # how far the sender fell behind real time (pacing check)
    notices: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every final the gateway counted arrived, none failed, no error events."""
        result = self.result
        return (
            self.failure is None
            and result is not None
            and result.summary is not None
            and result.summary.failed == 0
            and result.summary.finals == len(result.finals)
            and not result.errors
        )


async def one_stream(ws_url: str, audio: np.ndarray, language: str) -> StreamOutcome:
    outcome = StreamOutcome(StreamRecord())
    record = outcome.record

    def on_sent(seconds: float) -> None:
        now = time.monotonic()
        if record.t0 is None:
            # The first chunk leaves when its last sample would have been captured.
            record.t0 = now - seconds
        outcome.max_send_lag_s = max(outcome.max_send_lag_s, now - record.t0 - seconds)

    start = start_message(language, partials=True, word_timestamps=True)
    try:
        outcome.result = await stream_audio(
            ws_url,
            start,
            chunks(audio, CHUNK_MS),
            realtime=True,
            on_sent=on_sent,
            on_partial=lambda p: record.partials.append((time.monotonic(), p)),
            on_final=lambda f: record.finals.append((time.monotonic(), f)),
            on_notice=lambda n: outcome.notices.append(n.code),
        )
    except GatewayError as exc:
        outcome.failure = str(exc)
    return outcome


async def run_streams(ws_url: str, audio: np.ndarray, language: str, n: int) -> list[StreamOutcome]:
    return list(await asyncio.gather(*(one_stream(ws_url, audio, language) for _ in range(n))))
