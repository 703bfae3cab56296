"""A session's bounded publish outbox: the WebSocket read loop hands utterances over and goes on,
and one task publishes them to AUDIO in order, waiting out a NATS outage with the same message
ids (a publish stored but whose ack was lost is then dropped by the duplicate window).

Past its bound the outbox refuses an utterance (the client hears it is overloaded); what it has
accepted it keeps trying to publish until the session is closed. Partial windows are best effort:
only the newest waits, behind every utterance, and it is tried once.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

import structlog

from nova_common.messages import AudioSegment
from nova_gateway.publisher import UNAVAILABLE, AudioPublisher, PublishRejected

log = structlog.get_logger(__name__)

# What became of an utterance: None when JetStream stored it, else why it never will.
OnDone = Callable[[AudioSegment, PublishRejected | None], Awaitable[None]]
OnWindowLost = Callable[[AudioSegment], None]


class OutboxFull(Exception):
    code = "overloaded"


class PublishOutbox:
    def __init__(
        self,
        publisher: AudioPublisher,
        *,
        max_bytes: int,
        on_done: OnDone,
        on_window_lost: OnWindowLost = lambda segment: None,
        retry_every_s: float = 0.5,
    ) -> None:
        self._publisher = publisher
        self._max_bytes = max_bytes
        self._on_done = on_done
        self._on_window_lost = on_window_lost
        self._retry_every_s = retry_every_s
        self._finals: collections.deque[AudioSegment] = collections.deque()
        self._window: AudioSegment | None = None
        self._bytes = 0
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._task: asyncio.Task[None] | None = None
        self.retries = 0  # publishes tried again while NATS was away

    @property
    def pending(self) -> int:
        """Utterances accepted and not yet stored."""
        return len(self._finals)

    def put(self, segment: AudioSegment) -> None:
        """Accept an utterance, or raise ``OutboxFull``; never waits."""
        size = len(segment.pcm)
        if self._finals and self._bytes + size > self._max_bytes:
            raise OutboxFull(
                f"utterance {segment.seq} refused: {len(self._finals)} utterance(s) "
                f"({self._bytes} bytes) are still waiting to be queued; NATS is away or slow"
            )
        self._finals.append(segment)
        self._bytes += size
        self._kick()

    def put_window(self, segment: AudioSegment) -> None:
        """The newest partial window; one still waiting is replaced (and counts as lost)."""
        if self._window is not None:
            self._on_window_lost(self._window)
        self._window = segment
        self._kick()

    def _kick(self) -> None:
        self._empty.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            if self._finals:
                await self._publish_final(self._finals[0])
                segment = self._finals.popleft()
                self._bytes -= len(segment.pcm)
            elif self._window is not None:
                window, self._window = self._window, None
                try:
                    await self._publisher.publish(window)
                except PublishRejected:
                    self._on_window_lost(window)
            else:
                self._empty.set()
                self._wake.clear()
                await self._wake.wait()

    async def _publish_final(self, segment: AudioSegment) -> None:
        while True:
            try:
                await self._publisher.publish(segment)
            except PublishRejected as exc:
                if exc.code == UNAVAILABLE:
                    # NATS is away: accepted audio waits for it, under the same message id.
                    self.retries += 1
                    await asyncio.sleep(self._retry_every_s)
                    continue
                await self._report(segment, exc)
                return
            await self._report(segment, None)
            return

    async def _report(self, segment: AudioSegment, rejected: PublishRejected | None) -> None:
        try:
            await self._on_done(segment, rejected)
        except Exception:  # the client may be gone; the next utterance must still go out
            log.exception("outbox report failed", session_id=segment.session_id, seq=segment.seq)

    async def drain(self, timeout: float) -> bool:
        """Wait until every accepted utterance is stored; False if ``timeout`` came first."""
        try:
            await asyncio.wait_for(self._empty.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float) -> int:
        """Publish what is waiting (for at most ``timeout``), then stop; returns how many
        utterances could not be stored in time."""
        drained = await self.drain(timeout) if self._task is not None else True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        left = 0 if drained else len(self._finals)
        if left:
            log.error("outbox closed with utterances not stored", pending=left,
                      session_id=self._finals[0].session_id)  # fmt: skip
        return left
