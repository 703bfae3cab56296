"""Which workers are alive, learned from their heartbeats (no polling, no admin rights needed)."""

from __future__ import annotations

import time

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from nova_common.messages import WorkerHeartbeat, heartbeat_decoder
from nova_common.subjects import Subjects


class WorkerRegistry:
    def __init__(self, stale_after_s: float) -> None:
        self._stale_after = stale_after_s
        self._seen: dict[str, tuple[float, WorkerHeartbeat]] = {}
        self._sub: Subscription | None = None

    async def start(self, nc: Client, subjects: Subjects) -> None:
        self._sub = await nc.subscribe(subjects.worker_heartbeats("*"), cb=self._on_beat)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def _on_beat(self, msg: Msg) -> None:
        try:
            beat = heartbeat_decoder.decode(msg.data)
        except msgspec.DecodeError:
            return
        self._seen[beat.worker_id] = (time.monotonic(), beat)

    def alive(self, role: str) -> list[WorkerHeartbeat]:
        now = time.monotonic()
        return [
            beat
            for seen, beat in self._seen.values()
            if beat.role == role and now - seen <= self._stale_after
        ]
