"""One client session: audio in, utterances out to JetStream, results back in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from nova_common.audio import SAMPLE_RATE
from nova_common.messages import (
    AudioSegment,
    ErrorEvent,
    FinalEvent,
    NoticeEvent,
    PartialEvent,
    ResultMessage,
    ServerEvent,
    StartMessage,
    SummaryEvent,
    Transcript,
    Translation,
    TranslationEvent,
    TranslationFailed,
)
from nova_common.metrics import GatewayMetrics
from nova_common.settings import VadSettings
from nova_common.subtitles import caption_lines
from nova_gateway.audio import AudioConverter
from nova_gateway.cuts import CutPolicy, cut_point
from nova_gateway.language_memory import SessionLanguage
from nova_gateway.ordering import InOrderDelivery
from nova_gateway.partials import LocalAgreement, PartialWindows
from nova_gateway.publisher import AudioPublisher, PublishRejected
from nova_gateway.segmenter import Utterance, UtteranceSegmenter
from nova_gateway.translations import Routing, TranslationOutcome, TranslationTracker

Send = Callable[[ServerEvent], Awaitable[None]]
# Called with translations_only=True when every final is out and only translations are owed.
Recover = Callable[[bool], Awaitable[list[ResultMessage]]]
Route = Callable[[tuple[str, ...]], Routing]


def _text_only(targets: tuple[str, ...]) -> Routing:
    return Routing(targets, whisper_english=False)


class Session:
    def __init__(
        self,
        session_id: str,
        start: StartMessage,
        *,
        vad: VadSettings,
        publisher: AudioPublisher,
        send: Send,
        metrics: GatewayMetrics,
        recover: Recover | None = None,
        recover_after_s: float = 5.0,
        route: Route = _text_only,
        partials: PartialWindows | None = None,
        caption_chars: int = 0,
        stt_alive: Callable[[], bool] = lambda: True,
        falling_behind_s: float = 0.0,
        cuts: CutPolicy | None = None,
    ) -> None:
        """``partials``: None for no partial results. ``caption_chars``: lay text events out as
        two caption lines of at most this many characters (0: no layout).
        ``falling_behind_s``: the client is told once a final has been owed this long (0: never).
        ``cuts``: end utterances where committed partial text closes a sentence (None: only at
        pauses and at ``vad.max_unfinal_s``)."""
        self.session_id = session_id
        self.start = start
        # Changed by the client's `update`; applies to utterances published from then on.
        self.translate_to = start.translate_to
        self._route = route
        self._translations = TranslationTracker()
        self._converter = AudioConverter(start.sample_rate, start.channels)
        self._segmenter = UtteranceSegmenter(vad)
        self._delivery: InOrderDelivery[FinalEvent | ErrorEvent] = InOrderDelivery()
        self._publisher = publisher
        self._send = send
        self._metrics = metrics
        self._recover = recover
        self._recover_after = recover_after_s
        self._last_progress = time.monotonic()
        self._finishing = False
        # Live results and replayed ones may arrive together: release and send under one lock,
        # or a slow client could see seq 8 overtake seq 7.
        self._deliver = asyncio.Lock()
        self._published_at: dict[int, float] = {}
        self._all_resolved = asyncio.Event()
        self._all_resolved.set()
        self._partials = partials
        self._stt_alive = stt_alive
        self._caption_chars = caption_chars
        self._partial_sent_at: dict[tuple[int, int], float] = {}
        self._cuts = cuts
        # (seq, session seconds): where the utterance in progress is to end, once the next
        # audio frame comes (ingest stays in one place, so seqs follow the audio's order).
        self._cut: tuple[int, float] | None = None
        self._falling_behind_s = falling_behind_s
        self._told_behind = False
        self._last_language: str | None = None
        # With language auto: what the session's finals so far were heard as, so a short or
        # unclear utterance is decided by the session, not alone.
        self._heard = SessionLanguage()
        self._heard_seqs: set[int] = set()  # a redelivered final's evidence counts once
        self.samples = 0
        self.finals = 0
        self.failed = 0

    @property
    def language(self) -> str | None:
        return None if self.start.language in ("", "auto") else self.start.language

    @property
    def frame_bytes(self) -> int:
        return self._converter.frame_bytes

    async def feed(self, pcm: bytes) -> None:
        """Raises ``AudioFormatError`` for a malformed frame; nothing already accepted changes."""
        samples = self._converter.convert(pcm)
        self.samples += len(samples)
        for utterance in self._segmenter.push(samples):
            await self._publish(utterance)
        await self._apply_cut()
        await self._maybe_partial()
        await self._check_behind()

    async def _apply_cut(self) -> None:
        if self._cut is None:
            return
        (seq, at), self._cut = self._cut, None
        if seq != self._delivery.next_seq:
            return  # that utterance has ended meanwhile
        if (head := self._segmenter.cut_near(at)) is not None:
            self._metrics.utterance_cuts.inc()
            await self._publish(head)

    def _plan_cut(self, result: Transcript, agreement: LocalAgreement) -> None:
        """A partial of the utterance in progress settled a sentence: end the utterance there."""
        span = self._segmenter.in_progress_span()
        if self._cuts is None or span is None or result.seq != self._delivery.next_seq:
            return
        at = cut_point(
            committed=agreement.committed,
            hypothesis=result.text,
            ends=result.segment_ends,
            start=span[0],
            end=span[1],
            policy=self._cuts,
            pause_near=self._segmenter.pause_near,
        )
        if at is not None:
            self._cut = (result.seq, at)

    async def _check_behind(self) -> None:
        """Overload shows first as slower partials (best effort); finals owed for long are
        said, once, so a growing lag is never silent."""
        if not self._falling_behind_s:
            return
        oldest = next(iter(self._published_at.values()), None)
        behind = oldest is not None and time.monotonic() - oldest > self._falling_behind_s
        if behind and not self._told_behind:
            self._metrics.falling_behind.inc()
            await self._send(
                NoticeEvent(
                    code="falling_behind",
                    reason=f"speech-to-text is behind: a final has been waited for over "
                    f"{self._falling_behind_s:.0f}s (more speech than the workers can keep up "
                    "with); everything is still queued and will come",
                    session_id=self.session_id,
                )
            )
        self._told_behind = behind

    async def _abandon_partials(self) -> None:
        """Between utterances: one the segmenter dropped (too little voiced audio) leaves its
        seq to the next; the partials shown for it are withdrawn with an empty one."""
        seq = self._delivery.next_seq
        if self._partials is None or not self._partials.abandon(seq):
            return
        async with self._deliver:
            await self._send(
                PartialEvent(
                    session_id=self.session_id,
                    seq=seq,
                    revision=self._partials.revision(seq),
                    text="",
                    committed="",
                    language=self._last_language or "",
                    start=0.0,
                    end=0.0,
                )
            )

    def _lines(self, text: str) -> tuple[str, ...]:
        return caption_lines(text, self._caption_chars) if self._caption_chars else ()

    async def _maybe_partial(self) -> None:
        """A partial window of the utterance in progress, when one is due."""
        if self._partials is None:
            return
        if (span := self._segmenter.in_progress_span()) is None:
            await self._abandon_partials()
            return
        if not self._stt_alive():
            return  # the window would only wait in the queue, taking room from finals
        seq = self._delivery.next_seq
        now = time.monotonic()
        revision = self._partials.due(seq, span[1] - span[0], now)
        if revision is None:
            return
        current = self._segmenter.in_progress()
        assert current is not None
        language = self.language or (None if self.start.languages else self._last_language)
        segment = AudioSegment(
            session_id=self.session_id,
            seq=seq,
            kind="partial",
            revision=revision,
            start=round(current.start, 3),
            end=round(current.end, 3),
            pcm=current.pcm.tobytes(),
            # Language detection on a second of audio is poor (it hears Japanese in an English
            # "He might"): a partial assumes the language of the session's last final, unless
            # the session allows several (the next may be another of them).
            language=language,
            task=self.start.task,
            allowed_languages=self.start.languages,
            prompt=self.start.prompt,
            sent_at=time.time(),
            language_prior=() if language else self._heard.prior(),
        )
        try:
            await self._publisher.publish(segment)
        except PublishRejected:
            self._partials.not_sent()  # best effort: the final carries the utterance
            return
        self._partial_sent_at[(seq, revision)] = now

    async def skip(self, nbytes: int) -> None:
        """Refused audio still took time in the client's recording: it counts as silence, so
        later start/end seconds still match the client's audio."""
        frames = nbytes // self._converter.frame_bytes
        await self.feed(bytes(frames * self._converter.frame_bytes))

    async def _publish(self, utterance: Utterance) -> None:
        seq = self._delivery.issue()
        if self._partials is not None:
            self._partials.final(seq)
            for key in [k for k in self._partial_sent_at if k[0] <= seq]:
                del self._partial_sent_at[key]
        self._all_resolved.clear()
        routing = self._route(self.translate_to)
        segment = AudioSegment(
            session_id=self.session_id,
            seq=seq,
            kind="final",
            start=round(utterance.start, 3),
            end=round(utterance.end, 3),
            pcm=utterance.pcm.tobytes(),
            language=self.language,
            task=self.start.task,
            allowed_languages=self.start.languages,
            translate_to=routing.text_targets,
            whisper_translate=routing.whisper_english,
            word_timestamps=self.start.word_timestamps,
            prompt=self.start.prompt,
            sent_at=time.time(),
            language_prior=() if self.language else self._heard.prior(),
        )
        self._translations.expect(seq, routing.targets, segment.start, segment.end)
        try:
            await self._publisher.publish(segment)
        except PublishRejected as exc:
            await self._resolve(
                seq, ErrorEvent(code=exc.code, reason=str(exc), session_id=self.session_id, seq=seq)
            )
            return
        self._published_at[seq] = time.monotonic()

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
                lines=self._lines(result.text),
            )
        else:
            event = ErrorEvent(
                code=result.code,
                reason=f"utterance {result.seq} could not be transcribed: {result.reason}",
                session_id=self.session_id,
                seq=result.seq,
            )
        await self._resolve(result.seq, event)

    async def _on_partial(self, result: Transcript) -> None:
        if self._partials is None:
            return
        async with self._deliver:
            agreement = self._partials.answer(result.seq, result.revision, result.text)
            if agreement is None or not agreement.text:
                return
            self._plan_cut(result, agreement)
            # Earlier finals still owed: shown all the same, or held until they are out.
            if self._partials.show_now(result, agreement, first_owed=self._delivery.next_release):
                await self._show_partial(result, agreement)

    async def _show_partial(self, result: Transcript, agreement: LocalAgreement) -> None:
        sent = self._partial_sent_at.pop((result.seq, result.revision), None)
        if sent is not None:
            self._metrics.partial_latency.observe(time.monotonic() - sent)
        self._metrics.partials_delivered.inc()
        await self._send(
            PartialEvent(
                session_id=self.session_id,
                seq=result.seq,
                revision=result.revision,
                text=agreement.text,
                committed=agreement.committed_text,
                language=result.language,
                start=result.start,
                end=result.end,
                lines=self._lines(agreement.text),
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
        async with self._deliver:
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
            await self._send(outcome)

    def _check_resolved(self) -> None:
        if self._delivery.outstanding == 0 and self._translations.outstanding == 0:
            self._all_resolved.set()

    async def _resolve(self, seq: int, event: FinalEvent | ErrorEvent) -> None:
        async with self._deliver:
            released = self._delivery.accept(seq, event)
            if released:
                self._last_progress = time.monotonic()
            for ready in released:
                if isinstance(ready, FinalEvent):
                    if ready.text:
                        self._last_language = ready.language
                    self.finals += 1
                    self._metrics.finals_delivered.inc()
                    sent = self._published_at.pop(ready.seq, None)
                    if sent is not None:
                        self._metrics.final_latency.observe(time.monotonic() - sent)
                else:
                    self.failed += 1
                    if ready.seq is not None:
                        self._published_at.pop(ready.seq, None)
                    self._metrics.client_errors.labels(ready.code).inc()
                await self._send(ready)
                assert ready.seq is not None
                has_text = isinstance(ready, FinalEvent) and bool(ready.text)
                await self._send_translations(
                    self._translations.final_released(ready.seq, has_text=has_text)
                )
            if self._partials is not None and (
                held := self._partials.unheld(self._delivery.next_release)
            ):
                await self._show_partial(*held)  # it waited for the finals just sent
            self._check_resolved()

    async def check_stall(self) -> None:
        """Replay results from the stream when delivery has made no progress for a while:
        a result missed on the live subscription is still in JetStream."""
        owed = self._delivery.outstanding or self._translations.outstanding
        waiting = self._delivery.stalled or (self._finishing and owed)
        if not waiting or self._recover is None:
            return
        if time.monotonic() - self._last_progress < self._recover_after:
            return
        self._last_progress = time.monotonic()
        for result in await self._recover(self._delivery.outstanding == 0):
            await self.on_result(result)

    async def _wait_all(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._all_resolved.wait(), self._recover_after)
                return
            except TimeoutError:
                await self.check_stall()

    async def finish(self, timeout: float) -> SummaryEvent:
        """Flush the last utterance and wait until every final, and every translation asked
        for, has been delivered."""
        tail = self._converter.flush()
        self.samples += len(tail)
        for utterance in [*self._segmenter.push(tail), *self._segmenter.flush()]:
            await self._publish(utterance)
        self._finishing = True
        try:
            await asyncio.wait_for(self._wait_all(), timeout)
        except TimeoutError:
            missing = self._delivery.outstanding
            self.failed += missing
            untranslated = self._translations.give_up()
            self._translations.failed += untranslated
            await self._send(
                ErrorEvent(
                    code="finals_timeout",
                    reason=f"{missing} final(s) and {untranslated} translation(s) did not "
                    f"arrive within {timeout:.0f}s",
                    session_id=self.session_id,
                )
            )
        return SummaryEvent(
            session_id=self.session_id,
            finals=self.finals,
            failed=self.failed,
            audio_seconds=round(self.samples / SAMPLE_RATE, 3),
            translations=self._translations.delivered,
            translations_failed=self._translations.failed,
        )
