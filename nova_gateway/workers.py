"""Which workers are alive, learned from their heartbeats (no polling, no admin rights needed)."""

from __future__ import annotations

import asyncio
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
        self._changed = asyncio.Condition()

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
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, role: str, worker_ids: set[str]) -> None:
        """Until every one of ``worker_ids`` has been heard from."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: worker_ids <= {beat.worker_id for beat in self.alive(role)}
            )

    def ready(self, role: str) -> list[WorkerHeartbeat]:
        """Alive and taking work: a worker whose breaker is open (its model keeps failing)
        is alive but not ready; a half-open one is, as only work can close it."""
        return [beat for beat in self.alive(role) if beat.breaker != "open"]

    def alive(self, role: str) -> list[WorkerHeartbeat]:
        now = time.monotonic()
        return [
            beat
            for seen, beat in self._seen.values()
            if beat.role == role and now - seen <= self._stale_after
        ]
