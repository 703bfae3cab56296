"""A session's way back: results from the bus become the client's events, finals in ``seq`` order
and once, each final's translations after it, partials where they belong; what the live
subscription missed is replayed from the RESULTS stream.

Knows nothing of audio: ``nova_gateway.ingest`` numbers the utterances and tells this side what
it published; this side tells ingest when the partials settle a sentence (where to cut).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    PartialEvent,
    ResultMessage,
    ServerEvent,
    StartMessage,
    Transcript,
    Translation,
    TranslationEvent,
    TranslationFailed,
)
from nova_common.metrics import GatewayMetrics
from nova_common.subtitles import caption_lines
from nova_gateway.language_memory import SessionLanguage
from nova_gateway.ordering import InOrderDelivery
from nova_gateway.partials import LocalAgreement, PartialWindows
from nova_gateway.translations import TranslationOutcome, TranslationTracker

Send = Callable[[ServerEvent], Awaitable[None]]
# Called with translations_only=True when every final is out and only translations are owed.
Recover = Callable[[bool], Awaitable[list[ResultMessage]]]
# A partial's words agreed: ingest may end the utterance in progress there.
OnAgreement = Callable[[Transcript, LocalAgreement], None]


class ResultDelivery:
    def __init__(
        self,
        session_id: str,
        start: StartMessage,
        *,
        send: Send,
        metrics: GatewayMetrics,
        numbering: InOrderDelivery[FinalEvent | ErrorEvent],
        translations: TranslationTracker,
        heard: SessionLanguage,
        partials: PartialWindows | None = None,
        recover: Recover | None = None,
        recover_after_s: float = 5.0,
        caption_chars: int = 0,
    ) -> None:
        """``numbering``: issued by ingest, released here. ``caption_chars``: lay text events
        out as two caption lines of at most this many characters (0: no layout)."""
        self.session_id = session_id
        self.start = start
        self._send_event = send
        self._metrics = metrics
        self._numbering = numbering
        self._translations = translations
        self._heard = heard
        self._heard_seqs: set[int] = set()  # a redelivered final's evidence counts once
        self._partials = partials
        self._agreed: OnAgreement = lambda result, agreement: None
        self._recover = recover
        self._recover_after = recover_after_s
        self._caption_chars = caption_chars
        self._last_progress = time.monotonic()
        self._finishing = False
        # Live results and replayed ones may arrive together: release and send under one lock,
        # or a slow client could see seq 8 overtake seq 7.
        self.lock = asyncio.Lock()
        # seq → when it was published, for the final latency; the oldest is the longest owed.
        self.published_at: dict[int, float] = {}
        self._partial_sent_at: dict[tuple[int, int], float] = {}
        self._all_resolved = asyncio.Event()
        self._all_resolved.set()
        self.last_language: str | None = None
        self.finals = 0
        self.failed = 0

    async def send(self, event: ServerEvent) -> None:
        await self._send_event(event)

    def on_agreement(self, agreed: OnAgreement) -> None:
        """Who hears that a partial's words agreed (ingest, which may cut there)."""
        self._agreed = agreed

    # -- what ingest tells this side -------------------------------------------------------

    def issued(self) -> None:
        """A final was numbered: the session is owed one more."""
        self._all_resolved.clear()

    def published(self, seq: int) -> None:
        self.published_at[seq] = time.monotonic()

    def window_sent(self, seq: int, revision: int, *, at: float) -> None:
        self._partial_sent_at[(seq, revision)] = at

    def forget_windows_through(self, seq: int) -> None:
        for key in [k for k in self._partial_sent_at if k[0] <= seq]:
            del self._partial_sent_at[key]

    def oldest_owed_since(self) -> float | None:
        return next(iter(self.published_at.values()), None)

    # -- results from the bus --------------------------------------------------------------

    async def on_result(self, result: ResultMessage) -> None:
        if isinstance(result, Translation | TranslationFailed):
            await self._on_translation(result)
            return
        if result.kind == "partial":
            if isinstance(result, Transcript):
                await self._on_partial(result)
            return
        event: FinalEvent | ErrorEvent
        if isinstance(result, Transcript):
            if result.seq not in self._heard_seqs:
                self._heard_seqs.add(result.seq)
                self._heard.observe(result)
            event = FinalEvent(
                session_id=self.session_id,
                seq=result.seq,
                text=result.text,
                language=result.language,
                start=result.start,
                end=result.end,
                words=result.words if self.start.word_timestamps else (),
                lines=self.lines(result.text),
            )
        else:
            event = ErrorEvent(
                code=result.code,
                reason=f"utterance {result.seq} could not be transcribed: {result.reason}",
                session_id=self.session_id,
                seq=result.seq,
            )
        await self.resolve(result.seq, event)

    def lines(self, text: str) -> tuple[str, ...]:
        return caption_lines(text, self._caption_chars) if self._caption_chars else ()

    async def _on_partial(self, result: Transcript) -> None:
        if self._partials is None:
            return
        async with self.lock:
            agreement = self._partials.answer(result.seq, result.revision, result.text)
            if agreement is None or not agreement.text:
                return
            self._agreed(result, agreement)
            # Earlier finals still owed: shown all the same, or held until they are out.
            if self._partials.show_now(result, agreement, first_owed=self._numbering.next_release):
                await self._show_partial(result, agreement)

    async def _show_partial(self, result: Transcript, agreement: LocalAgreement) -> None:
        sent = self._partial_sent_at.pop((result.seq, result.revision), None)
        if sent is not None:
            self._metrics.partial_latency.observe(time.monotonic() - sent)
        self._metrics.partials_delivered.inc()
        await self.send(
            PartialEvent(
                session_id=self.session_id,
                seq=result.seq,
                revision=result.revision,
                text=agreement.text,
                committed=agreement.committed_text,
                language=result.language,
                start=result.start,
                end=result.end,
                lines=self.lines(agreement.text),
            )
        )

    async def _on_translation(self, result: Translation | TranslationFailed) -> None:
        times = self._translations.times(result.seq)
        if times is None:
            return  # a repeat, or for a final that had no text
        outcome: TranslationOutcome
        if isinstance(result, Translation):
            outcome = TranslationEvent(
                session_id=self.session_id,
                seq=result.seq,
                language=result.language,
                source_language=result.source_language,
                text=result.text,
                start=times[0],
                end=times[1],
                backend=result.backend,
            )
        else:
            outcome = ErrorEvent(
                code=result.code,
                reason=f"utterance {result.seq} was not translated to {result.language}: "
                f"{result.reason}",
                session_id=self.session_id,
                seq=result.seq,
                language=result.language,
            )
        async with self.lock:
            ready = self._translations.accept(result.seq, outcome)
            if ready:
                self._last_progress = time.monotonic()
            await self._send_translations(ready)
            self._check_resolved()

    async def _send_translations(self, ready: list[TranslationOutcome]) -> None:
        for outcome in ready:
            if isinstance(outcome, TranslationEvent):
                self._metrics.translations_delivered.inc()
            else:
                self._metrics.client_errors.labels(outcome.code).inc()
            await self.send(outcome)

    def _check_resolved(self) -> None:
        if self._numbering.outstanding == 0 and self._translations.outstanding == 0:
            self._all_resolved.set()

    async def resolve(self, seq: int, event: FinalEvent | ErrorEvent) -> None:
        """``seq``'s outcome: sent once every earlier one is, with the translations it frees."""
        async with self.lock:
            released = self._numbering.accept(seq, event)
            if released:
                self._last_progress = time.monotonic()
            for ready in released:
                if isinstance(ready, FinalEvent):
                    if ready.text:
                        self.last_language = ready.language
                    self.finals += 1
                    self._metrics.finals_delivered.inc()
                    sent = self.published_at.pop(ready.seq, None)
                    if sent is not None:
                        self._metrics.final_latency.observe(time.monotonic() - sent)
                else:
                    self.failed += 1
                    if ready.seq is not None:
                        self.published_at.pop(ready.seq, None)
                    self._metrics.client_errors.labels(ready.code).inc()
                await self.send(ready)
                assert ready.seq is not None
                has_text = isinstance(ready, FinalEvent) and bool(ready.text)
                await self._send_translations(
                    self._translations.final_released(ready.seq, has_text=has_text)
                )
            if self._partials is not None and (
                held := self._partials.unheld(self._numbering.next_release)
            ):
                await self._show_partial(*held)  # it waited for the finals just sent
            self._check_resolved()

    # -- waiting for what is owed ----------------------------------------------------------

    async def check_stall(self) -> None:
        """Replay results from the stream when delivery has made no progress for a while:
        a result missed on the live subscription is still in JetStream."""
        owed = self._numbering.outstanding or self._translations.outstanding
        waiting = self._numbering.stalled or (self._finishing and owed)
        if not waiting or self._recover is None:
            return
        if time.monotonic() - self._last_progress < self._recover_after:
            return
        self._last_progress = time.monotonic()
        for result in await self._recover(self._numbering.outstanding == 0):
            await self.on_result(result)

    async def _wait_all(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._all_resolved.wait(), self._recover_after)
                return
            except TimeoutError:
                await self.check_stall()

    async def wait_all(self, timeout: float) -> None:
        """Until every final and every translation asked for is delivered, or ``timeout``:
        then the client hears what did not come."""
        self._finishing = True
        try:
            await asyncio.wait_for(self._wait_all(), timeout)
        except TimeoutError:
            missing = self._numbering.outstanding
            self.failed += missing
            untranslated = self._translations.give_up()
            self._translations.failed += untranslated
            await self.send(
                ErrorEvent(
                    code="finals_timeout",
                    reason=f"{missing} final(s) and {untranslated} translation(s) did not "
                    f"arrive within {timeout:g}s",
                    session_id=self.session_id,
                )
            )
