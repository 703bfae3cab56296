"""The WebSocket as the protocol code sees it: frames in, text out, a close with a code.

``ClientConnection``, ``SeedConnection`` and the frame reader use only ``Transport``, so they
do not care which library gives them the socket (aiohttp's today, see ``AiohttpTransport``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMsgType, web

# aiohttp fails a connection whose frame breaks the WebSocket protocol itself (too large to be
# buffered, text that is not UTF-8, a malformed frame) with an empty close reason, so the
# client would see only a number.
_PROTOCOL_CLOSE_REASONS: dict[int, str] = {
    WSCloseCode.INVALID_TEXT: "text frame is not valid UTF-8",
    WSCloseCode.PROTOCOL_ERROR: "frame breaks the WebSocket protocol",
}


class WebSocketResponse(web.WebSocketResponse):
    """aiohttp's, reading frames of up to ``largest_frame`` bytes; its own closes carry a reason
    a client can show."""

    def __init__(self, *, largest_frame: int, **options: Any) -> None:
        # aiohttp refuses a frame of exactly max_msg_size bytes, not only a larger one.
        super().__init__(max_msg_size=largest_frame + 1, **options)
        self._reasons = {
            **_PROTOCOL_CLOSE_REASONS,
            WSCloseCode.MESSAGE_TOO_BIG: f"frame larger than {largest_frame} bytes",
        }

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if not message:
            message = self._reasons.get(code, "").encode()
        return await super().close(code=code, message=message, drain=drain)


class TransportClosed(Exception):
    """The client has gone (it closed, the connection dropped, or the frame broke the
    protocol and the server closed it): nothing more can be received or sent."""


class Transport(Protocol):
    async def receive(self) -> str | bytes:
        """The next text or binary frame; ``TransportClosed`` once the client has gone."""
        ...

    async def send_text(self, text: str) -> None:
        """``TransportClosed`` when the client has gone."""
        ...

    async def send_bytes(self, data: bytes) -> None:
        """``TransportClosed`` when the client has gone."""
        ...

    async def close(self, code: int, reason: str) -> None: ...

    @property
    def close_code(self) -> int | None: ...


class AiohttpTransport:
    """aiohttp answers a client's pings only while ``receive()`` runs, and a session that is
    finishing (waiting for its finals, up to minutes) reads nothing: so one task reads all the
    time and hands frames over through a small queue. When the queue is full the reader waits,
    so a client cannot make the gateway buffer more than a few frames."""

    QUEUE_FRAMES = 4

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._frames: asyncio.Queue[str | bytes | TransportClosed] = asyncio.Queue(
            self.QUEUE_FRAMES
        )
        self._closed: TransportClosed | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                msg = await self._ws.receive()
                if msg.type is WSMsgType.TEXT:
                    await self._frames.put(str(msg.data))
                elif msg.type is WSMsgType.BINARY:
                    await self._frames.put(bytes(msg.data))
                else:
                    # CLOSE, CLOSING, CLOSED, or ERROR (an oversized frame, invalid UTF-8:
                    # aiohttp has already closed the connection with 1009 or 1007).
                    await self._frames.put(TransportClosed(f"websocket {msg.type.name.lower()}"))
                    return
        except Exception as exc:  # the protocol code must hear of it, not wait forever
            await self._frames.put(TransportClosed(f"websocket failed: {exc!r}"))

    async def receive(self) -> str | bytes:
        if self._closed is not None:
            raise self._closed
        frame = await self._frames.get()  # cancelling this loses no frame
        if isinstance(frame, TransportClosed):
            self._closed = frame
            raise frame
        return frame

    async def send_text(self, text: str) -> None:
        if self._ws.closed:
            raise TransportClosed("websocket closed")
        try:
            await self._ws.send_str(text)
        except ConnectionError as exc:  # aiohttp's ClientConnectionResetError among them
            raise TransportClosed(str(exc)) from exc

    async def send_bytes(self, data: bytes) -> None:
        if self._ws.closed:
            raise TransportClosed("websocket closed")
        try:
            await self._ws.send_bytes(data)
        except ConnectionError as exc:
            raise TransportClosed(str(exc)) from exc

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, message=reason.encode())

    async def stop(self) -> None:
        """Stop reading (the connection is over)."""
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code
