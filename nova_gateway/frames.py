"""Reading a client's frames until it leaves or the gateway shuts down."""

from __future__ import annotations

import asyncio

from nova_gateway.transport import Transport


class FrameReader:
    """Frames from ``transport`` until ``shutting_down`` is set.

    The wait for a frame is not raced against the shutdown per frame (a task and an
    ``asyncio.wait`` for every audio frame were ~7 % of the gateway's CPU under load,
    bench/overhead.py): one callback on the shutdown event cancels the read in progress instead,
    and ``next`` turns that cancellation into "no more frames". A transport's ``receive`` must
    lose no frame when cancelled."""

    def __init__(self, transport: Transport, shutting_down: asyncio.Event) -> None:
        self._transport = transport
        self._shutting_down = shutting_down
        self._waiter: asyncio.Task[object] | None = None
        self._reading: asyncio.Task[object] | None = None  # the task waiting in ``next``
        self._interrupted = False  # we cancelled it, for the shutdown

    async def next(self) -> str | bytes | None:
        """The next frame, or None when the gateway is shutting down. Raises
        ``TransportClosed`` when the client left."""
        if self._shutting_down.is_set():
            return None
        if self._waiter is None:  # one per connection, not one per audio frame
            self._waiter = asyncio.ensure_future(self._shutting_down.wait())
            self._waiter.add_done_callback(self._interrupt)
        task = asyncio.current_task()
        assert task is not None
        self._reading = task
        try:
            return await self._transport.receive()
        except asyncio.CancelledError:
            if not self._interrupted:
                raise  # somebody else's cancellation
            self._interrupted = False
            if task.uncancel() > 0:
                raise  # cancelled from elsewhere too
            return None  # a frame not yet handed over was never accepted; it stays unread
        finally:
            self._reading = None

    def _interrupt(self, waiter: asyncio.Task[object]) -> None:
        if self._reading is not None and not waiter.cancelled():
            self._interrupted = True
            self._reading.cancel()

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()
