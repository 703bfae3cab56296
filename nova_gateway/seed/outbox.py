"""One seed session's events as the seed's messages, in the seed's order."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    NoticeEvent,
    PartialEvent,
    SeedError,
    SeedEvent,
    SeedRealtime,
    SeedUtteranceEnd,
    ServerEvent,
    TranslationEvent,
)

# A final waits this long for its translation: the seed's client types only the translation when
# translating, so text and translation should arrive together. One that comes later follows as
# another final (with its own utterance_end).
TRANSLATION_WAIT_S = 5.0
# Finals remembered for a translation that missed the wait (no MT worker: it may never come).
LATE_TRANSLATIONS_KEPT = 64


@dataclass
class _Utterance:
    seq: int
    text: str | None  # None: the utterance failed; the client only gets its utterance_end
    deadline: float = 0.0
    waiting: bool = False  # for its translation
    translation: str = ""


class SeedOutbox:
    """One session's events as the seed's messages, in the seed's order: partials while no final
    is held back, each final with its translation, then ``utterance_end``."""

    def __init__(
        self,
        emit: Callable[[SeedEvent], Awaitable[None]],
        client_id: str,
        translating: Callable[[], bool],
        *,
        wait_s: float = TRANSLATION_WAIT_S,
    ) -> None:
        """``translating``: whether the session's finals get translated now."""
        self._emit = emit
        self.client_id = client_id
        self._translating = translating
        self._wait_s = wait_s
        self._held: deque[_Utterance] = deque()
        # Finals that went out before their translation: seq → text, for a late translation.
        self._untranslated: dict[int, str] = {}
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, event: ServerEvent) -> None:
        """The session's ``send``: must not wait for anything but the client (the session calls
        it under its delivery lock, which the translation it waits for also needs)."""
        if isinstance(event, PartialEvent):
            # Never ahead of a final still held back, nor between a final and its utterance_end.
            async with self._lock:
                if not self._held:
                    await self._realtime(event.seq, event.text, "", is_final=False)
        elif isinstance(event, FinalEvent):
            wait = bool(event.text) and self._translating()
            deadline = asyncio.get_running_loop().time() + self._wait_s
            self._held.append(_Utterance(event.seq, event.text, deadline, waiting=wait))
            await self._release()
        elif isinstance(event, TranslationEvent):
            await self._translated(event.seq, event.text)
        elif isinstance(event, ErrorEvent):
            await self.error(event.code, event.reason)
            if event.seq is None:
                return
            if event.language is not None:  # a translation failed: its final goes without
                await self._translated(event.seq, None)
            else:  # the utterance failed: close it where the client shows its partials
                self._held.append(_Utterance(event.seq, None))
                await self._release()
        elif isinstance(event, NoticeEvent):
            await self.error(event.code, event.reason)
        # Summaries have no counterpart in the seed's protocol.

    async def error(self, code: str, message: str) -> None:
        await self._emit(SeedError(message=message, code=code, client_id=self.client_id))

    async def close(self) -> None:
        """The session is over: whatever is held goes out now."""
        if self._timer is not None:
            self._timer.cancel()
        await self._release(everything=True)

    async def _translated(self, seq: int, translation: str | None) -> None:
        held = next((u for u in self._held if u.seq == seq), None)
        if held is not None:
            held.waiting = False
            held.translation = translation or ""
            await self._release()
            return
        text = self._untranslated.pop(seq, None)
        if text is not None and translation:
            async with self._lock:
                await self._realtime(seq, text, translation, is_final=True)
                await self._emit(SeedUtteranceEnd(client_id=self.client_id, timestamp=_now()))

    async def _release(self, *, everything: bool = False) -> None:
        async with self._lock:
            now = asyncio.get_running_loop().time()
            while self._held and (
                everything or not self._held[0].waiting or self._held[0].deadline <= now
            ):
                utterance = self._held.popleft()
                if utterance.text is not None:
                    if utterance.waiting:
                        self._untranslated[utterance.seq] = utterance.text
                        if len(self._untranslated) > LATE_TRANSLATIONS_KEPT:
                            del self._untranslated[next(iter(self._untranslated))]
                    await self._realtime(
                        utterance.seq, utterance.text, utterance.translation, is_final=True
                    )
                await self._emit(SeedUtteranceEnd(client_id=self.client_id, timestamp=_now()))
            self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(self._held[0].deadline, self._on_timer)

    def _on_timer(self) -> None:
        task = asyncio.ensure_future(self._release())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _realtime(self, seq: int, text: str, translation: str, *, is_final: bool) -> None:
        await self._emit(
            SeedRealtime(
                text=text,
                translation=translation,
                is_final=is_final,
                client_id=self.client_id,
                timestamp=_now(),
                segment_id=seq,
            )
        )


def _now() -> float:
    """The seed's timestamps: Unix seconds."""
    return round(time.time(), 3)
