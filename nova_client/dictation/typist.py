"""The typing loop: a live session's events, in the order they came, become keystrokes.

Events are queued as they arrive (the WebSocket is never held up by typing) and typed by one
task. Partials that a newer partial or the final of their utterance has already superseded by
the time the typist gets to them are skipped. Before each round of keystrokes the typist waits
until no modifier key is held (keystrokes with Ctrl down would be shortcuts, and the hotkey's
own modifiers are often still down), then asks which window has the focus.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import TextIO

import structlog

from nova_client.dictation.editor import Edit, Editor
from nova_client.dictation.typers import Typer
from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    PartialEvent,
    ServerEvent,
    SessionStarted,
    json_encoder,
)

log = structlog.get_logger("nova.type")

MODIFIER_POLL_S = 0.02


class Typist:
    def __init__(
        self,
        editor: Editor,
        typer: Typer,
        *,
        own_windows: set[Hashable] | None = None,
        finals_log: TextIO | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.editor = editor
        self.typer = typer
        # The terminal `nova type` runs in: text typed there would end up in its shell.
        self._own_windows = own_windows or set()
        self._finals_log = finals_log
        self._on_error = on_error
        self._warn = warn or (lambda message: None)
        self._queue: asyncio.Queue[ServerEvent | None] = asyncio.Queue()
        self._in_own_window = False
        self.error: BaseException | None = None
        # For the benchmark: monotonic time each round of keystrokes finished.
        self.typed_at: list[float] = []

    def put(self, event: ServerEvent) -> None:
        if isinstance(event, FinalEvent) and self._finals_log is not None:
            record = {"seq": event.seq, "text": event.text, "language": event.language,
                      "start": event.start, "end": event.end}  # fmt: skip
            self._finals_log.write(json_encoder.encode(record).decode() + "\n")
            self._finals_log.flush()
        if isinstance(event, PartialEvent | FinalEvent | SessionStarted | ErrorEvent):
            self._queue.put_nowait(event)

    def close(self) -> None:
        """No more events: `run` returns once the queued ones are typed."""
        self._queue.put_nowait(None)

    async def run(self) -> None:
        try:
            while True:
                batch = [await self._queue.get()]
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                events = [e for e in batch if e is not None]
                if events:
                    await self._type(_superseded_dropped(events))
                if len(events) < len(batch):
                    return
        except Exception as exc:
            self.error = exc
            if self._on_error is not None:
                self._on_error(exc)

    async def _type(self, events: list[ServerEvent]) -> None:
        focus: Hashable | None = None
        if any(isinstance(e, PartialEvent | FinalEvent) for e in events):
            await self._modifiers_released()
            focus = self._focus()
        for event in events:
            if isinstance(event, SessionStarted):
                self.editor.abandon()  # a new session: seq numbers start again
            elif isinstance(event, ErrorEvent):
                if event.seq is not None and event.language is None:
                    self.editor.abandon(event.seq)
            elif isinstance(event, PartialEvent):
                await self._apply(self.editor.partial(event, focus), event.seq)
            elif isinstance(event, FinalEvent):
                await self._apply(self.editor.final(event, focus), event.seq)

    async def _apply(self, edits: list[Edit], seq: int) -> None:
        for edit in edits:
            await self.typer.apply(edit)
            log.debug("typed", seq=seq, erase=edit.erase, text=edit.text)
        if edits:
            self.typed_at.append(time.monotonic())

    async def _modifiers_released(self) -> None:
        if not self.typer.modifiers_held():
            return
        log.debug("waiting for the modifier keys to be released")
        # The keyboard state is only to be had by asking: there is nothing to wait on.
        while self.typer.modifiers_held():  # noqa: ASYNC110
            await asyncio.sleep(MODIFIER_POLL_S)

    def _focus(self) -> Hashable | None:
        focus = self.typer.focused_window()
        own = focus is not None and focus in self._own_windows
        if own and not self._in_own_window:
            self._warn("the focus is on nova type's own terminal: not typing there")
        self._in_own_window = own
        return None if own else focus


def _superseded_dropped(events: list[ServerEvent]) -> list[ServerEvent]:
    """Without partials that a later event of the same utterance replaces."""
    # Keyed by session too: the seq numbers of a new session are other utterances.
    keys: list[tuple[int, int] | None] = []
    session = 0
    for event in events:
        session += isinstance(event, SessionStarted)
        keys.append((session, event.seq) if isinstance(event, PartialEvent | FinalEvent) else None)
    last = {key: i for i, key in enumerate(keys) if key is not None}
    return [
        event
        for i, (event, key) in enumerate(zip(events, keys, strict=True))
        if not (isinstance(event, PartialEvent) and last[key] != i)  # type: ignore[index]
    ]
