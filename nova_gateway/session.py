"""One client session: audio in, utterances out to JetStream, results back in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from nova_common.messages import (
    AudioSegment,
    ErrorEvent,
    FinalEvent,
    ResultMessage,
    ServerEvent,
    StartMessage,
    SummaryEvent,
    Transcript,
)
from nova_common.metrics import GatewayMetrics
from nova_common.settings import VadSettings
from nova_gateway.audio import TARGET_RATE, AudioConverter
from nova_gateway.ordering import InOrderDelivery
from nova_gateway.publisher import AudioPublisher, PublishRejected
from nova_gateway.segmenter import Utterance, UtteranceSegmenter

Send = Callable[[ServerEvent], Awaitable[None]]
Recover = Callable[[], Awaitable[list[ResultMessage]]]


class Session:
    def __init__(
        self,
        session_id: str,
        start: StartMessage,
        *,
        vad: VadSettings,
        publisher: AudioPublisher,
        send: Send,
        metrics: GatewayMetrics,
        recover: Recover | None = None,
        recover_after_s: float = 5.0,
    ) -> None:
        self.session_id = session_id
        self.start = start
        self._converter = AudioConverter(start.sample_rate, start.channels)
        self._segmenter = UtteranceSegmenter(vad)
        self._delivery: InOrderDelivery[FinalEvent | ErrorEvent] = InOrderDelivery()
        self._publisher = publisher
        self._send = send
        self._metrics = metrics
        self._recover = recover
        self._recover_after = recover_after_s
        self._last_progress = time.monotonic()
        self._finishing = False
        # Live results and replayed ones may arrive together: release and send under one lock,
        # or a slow client could see seq 8 overtake seq 7.
        self._deliver = asyncio.Lock()
        self._published_at: dict[int, float] = {}
        self._all_resolved = asyncio.Event()
        self._all_resolved.set()
        self.samples = 0
        self.finals = 0
        self.failed = 0

    @property
    def language(self) -> str | None:
        return None if self.start.language in ("", "auto") else self.start.language

    @property
    def frame_bytes(self) -> int:
        return self._converter.frame_bytes

    async def feed(self, pcm: bytes) -> None:
        """Raises ``AudioFormatError`` for a malformed frame; nothing already accepted changes."""
        samples = self._converter.convert(pcm)
        self.samples += len(samples)
        for utterance in self._segmenter.push(samples):
            await self._publish(utterance)

    async def skip(self, nbytes: int) -> None:
        """Refused audio still took time in the client's recording: it counts as silence, so
        later start/end seconds still match the client's audio."""
        frames = nbytes // self._converter.frame_bytes
        await self.feed(bytes(frames * self._converter.frame_bytes))

    async def _publish(self, utterance: Utterance) -> None:
        seq = self._delivery.issue()
        self._all_resolved.clear()
        segment = AudioSegment(
            session_id=self.session_id,
            seq=seq,
            kind="final",
            start=round(utterance.start, 3),
            end=round(utterance.end, 3),
            pcm=utterance.pcm.tobytes(),
            language=self.language,
            task=self.start.task,
            sent_at=time.time(),
        )
        try:
            await self._publisher.publish(segment)
        except PublishRejected as exc:
            await self._resolve(
                seq, ErrorEvent(code=exc.code, reason=str(exc), session_id=self.session_id, seq=seq)
            )
            return
        self._published_at[seq] = time.monotonic()

    async def on_result(self, result: ResultMessage) -> None:
        if result.kind != "final":
            return
        event: FinalEvent | ErrorEvent
        if isinstance(result, Transcript):
            event = FinalEvent(
                session_id=self.session_id,
                seq=result.seq,
                text=result.text,
                language=result.language,
                start=result.start,
                end=result.end,
            )
        else:
            event = ErrorEvent(
                code=result.code,
                reason=f"utterance {result.seq} could not be transcribed: {result.reason}",
                session_id=self.session_id,
                seq=result.seq,
            )
        await self._resolve(result.seq, event)

    async def _resolve(self, seq: int, event: FinalEvent | ErrorEvent) -> None:
        async with self._deliver:
            released = self._delivery.accept(seq, event)
            if released:
                self._last_progress = time.monotonic()
            for ready in released:
                if isinstance(ready, FinalEvent):
                    self.finals += 1
                    self._metrics.finals_delivered.inc()
                    sent = self._published_at.pop(ready.seq, None)
                    if sent is not None:
                        self._metrics.final_latency.observe(time.monotonic() - sent)
                else:
                    self.failed += 1
                    self._metrics.client_errors.labels(ready.code).inc()
                await self._send(ready)
            if self._delivery.outstanding == 0:
                self._all_resolved.set()

    async def check_stall(self) -> None:
        """Replay results from the stream when delivery has made no progress for a while:
        a result missed on the live subscription is still in JetStream."""
        waiting = self._delivery.stalled or (self._finishing and self._delivery.outstanding)
        if not waiting or self._recover is None:
            return
        if time.monotonic() - self._last_progress < self._recover_after:
            return
        self._last_progress = time.monotonic()
        for result in await self._recover():
            await self.on_result(result)

    async def _wait_all(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._all_resolved.wait(), self._recover_after)
                return
            except TimeoutError:
                await self.check_stall()

    async def finish(self, timeout: float) -> SummaryEvent:
        """Flush the last utterance and wait until every final has been delivered."""
        tail = self._converter.flush()
        self.samples += len(tail)
        for utterance in [*self._segmenter.push(tail), *self._segmenter.flush()]:
            await self._publish(utterance)
        self._finishing = True
        try:
            await asyncio.wait_for(self._wait_all(), timeout)
        except TimeoutError:
            missing = self._delivery.outstanding
            self.failed += missing
            await self._send(
                ErrorEvent(
                    code="finals_timeout",
                    reason=f"{missing} final(s) did not arrive within {timeout:.0f}s",
                    session_id=self.session_id,
                )
            )
        return SummaryEvent(
            session_id=self.session_id,
            finals=self.finals,
            failed=self.failed,
            audio_seconds=round(self.samples / TARGET_RATE, 3),
        )
