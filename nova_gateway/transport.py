"""The WebSocket as the protocol code sees it: frames in, text out, a close with a code.

``ClientConnection``, ``SeedConnection`` and the frame reader use only ``Transport``, so they
do not care which library gives them the socket (aiohttp's today, see ``AiohttpTransport``).
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import WSMsgType, web


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
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def receive(self) -> str | bytes:
        msg = await self._ws.receive()
        if msg.type is WSMsgType.TEXT:
            return str(msg.data)
        if msg.type is WSMsgType.BINARY:
            return bytes(msg.data)
        # CLOSE, CLOSING, CLOSED, or ERROR (an oversized frame, invalid UTF-8: aiohttp has
        # already closed the connection with 1009 or 1007).
        raise TransportClosed(f"websocket {msg.type.name.lower()}")

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

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code
