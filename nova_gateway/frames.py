"""Reading a client's frames until it leaves or the gateway shuts down."""

from __future__ import annotations

import asyncio
from typing import Literal

from nova_gateway.transport import Transport


class FrameReader:
    def __init__(self, transport: Transport, shutting_down: asyncio.Event) -> None:
        self._transport = transport
        self._shutting_down = shutting_down
        self._waiter: asyncio.Task[Literal[True]] | None = None

    async def next(self) -> str | bytes | None:
        """The next frame, or None when the gateway is shutting down. Raises
        ``TransportClosed`` when the client left."""
        if self._shutting_down.is_set():
            return None
        if self._waiter is None:  # one per connection, not one per audio frame
            self._waiter = asyncio.ensure_future(self._shutting_down.wait())
        receive = asyncio.ensure_future(self._transport.receive())
        try:
            await asyncio.wait({receive, self._waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not receive.done():
                # Shutting down (or cancelled): a frame not yet handed over was never
                # accepted; it stays unread.
                receive.cancel()
        if receive.done() and not receive.cancelled():
            return receive.result()
        return None

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()
