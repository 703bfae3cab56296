"""FrameReader: frames in order, shutdown ends the wait without losing a frame, other
cancellations and a client that left pass through."""

from __future__ import annotations

import asyncio

import pytest

from nova_gateway.frames import FrameReader
from nova_gateway.transport import TransportClosed


class QueueTransport:
    """The receiving side of ``Transport``: frames from a queue (cancel-safe like aiohttp's)."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[str | bytes | TransportClosed] = asyncio.Queue()

    async def receive(self) -> str | bytes:
        frame = await self.frames.get()
        if isinstance(frame, TransportClosed):
            raise frame
        return frame


async def test_frames_in_order_then_client_left() -> None:
    transport = QueueTransport()
    reader = FrameReader(transport, asyncio.Event())  # type: ignore[arg-type]
    for frame in ("start", b"\x00\x01", "stop"):
        transport.frames.put_nowait(frame)
    transport.frames.put_nowait(TransportClosed("gone"))
    assert [await reader.next() for _ in range(3)] == ["start", b"\x00\x01", "stop"]
    with pytest.raises(TransportClosed):
        await reader.next()
    reader.close()


async def test_shutdown_ends_the_wait_and_keeps_later_frames_unread() -> None:
    transport = QueueTransport()
    shutting_down = asyncio.Event()
    reader = FrameReader(transport, shutting_down)  # type: ignore[arg-type]
    transport.frames.put_nowait(b"first")
    assert await reader.next() == b"first"
    waiting = asyncio.create_task(reader.next())
    await asyncio.sleep(0.01)
    shutting_down.set()
    assert await asyncio.wait_for(waiting, 1.0) is None
    assert not waiting.cancelled() and waiting.cancelling() == 0
    transport.frames.put_nowait(b"late")
    assert await reader.next() is None  # shutting down: nothing more is read
    assert transport.frames.qsize() == 1
    reader.close()


async def test_shutdown_with_a_frame_just_arrived_loses_nothing() -> None:
    transport = QueueTransport()
    shutting_down = asyncio.Event()
    reader = FrameReader(transport, shutting_down)  # type: ignore[arg-type]
    waiting = asyncio.create_task(reader.next())
    await asyncio.sleep(0.01)
    # The frame wakes the reader, and the shutdown comes before it runs.
    transport.frames.put_nowait(b"frame")
    shutting_down.set()
    result = await asyncio.wait_for(waiting, 1.0)
    assert result == b"frame" or (result is None and transport.frames.qsize() == 1)
    reader.close()


async def test_someone_elses_cancellation_propagates() -> None:
    reader = FrameReader(QueueTransport(), asyncio.Event())  # type: ignore[arg-type]
    waiting = asyncio.create_task(reader.next())
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    reader.close()


async def test_cancelled_and_shut_down_at_once_stays_cancelled() -> None:
    shutting_down = asyncio.Event()
    reader = FrameReader(QueueTransport(), shutting_down)  # type: ignore[arg-type]
    waiting = asyncio.create_task(reader.next())
    await asyncio.sleep(0.01)
    shutting_down.set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    reader.close()
