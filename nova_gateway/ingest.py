"""A session's way in: the client's audio becomes numbered utterances on the AUDIO stream, and
windows of the utterance in progress on WINDOWS when partials are on.

Everything that decides where an utterance ends lives here (the segmenter, the cuts the partials
ask for), so ``seq`` follows the audio's order; what happens to an utterance once it is out is
``nova_gateway.delivery``'s, which this side tells what it numbered and published.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nova_common.messages import (
    AudioSegment,
    ErrorEvent,
    FinalEvent,
    NoticeEvent,
    PartialEvent,
    StartMessage,
    Transcript,
)
from nova_common.metrics import GatewayMetrics
from nova_common.settings import VadSettings
from nova_gateway.audio import AudioConverter
from nova_gateway.cuts import CutPolicy, cut_point
from nova_gateway.delivery import ResultDelivery
from nova_gateway.language_memory import SessionLanguage
from nova_gateway.ordering import InOrderDelivery
from nova_gateway.outbox import OutboxFull, PublishOutbox
from nova_gateway.partials import LocalAgreement, PartialWindows
from nova_gateway.publisher import AudioPublisher, PublishRejected
from nova_gateway.segmenter import Utterance, UtteranceSegmenter
from nova_gateway.translations import Routing, TranslationTracker

Route = Callable[[tuple[str, ...]], Routing]


def text_only(targets: tuple[str, ...]) -> Routing:
    return Routing(targets, whisper_english=False)


class AudioIngest:
    def __init__(
        self,
        session_id: str,
        start: StartMessage,
        *,
        vad: VadSettings,
        publisher: AudioPublisher,
        metrics: GatewayMetrics,
        delivery: ResultDelivery,
        numbering: InOrderDelivery[FinalEvent | ErrorEvent],
        translations: TranslationTracker,
        heard: SessionLanguage,
        route: Route = text_only,
        partials: PartialWindows | None = None,
        stt_alive: Callable[[], bool] = lambda: True,
        falling_behind_s: float = 0.0,
        cuts: CutPolicy | None = None,
        outbox_max_bytes: int = 16 << 20,
    ) -> None:
        """``partials``: None for no partial results. ``falling_behind_s``: the client is told
        once a final has been owed this long (0: never). ``cuts``: end utterances where
        committed partial text closes a sentence (None: only at pauses and at
        ``vad.max_unfinal_s``)."""
        self.session_id = session_id
        self.start = start
        # Changed by the client's `update`; applies to utterances published from then on.
        self.translate_to = start.translate_to
        self._route = route
        self._converter = AudioConverter(start.sample_rate, start.channels)
        self._segmenter = UtteranceSegmenter(vad)
        self.outbox = PublishOutbox(
            publisher,
            max_bytes=outbox_max_bytes,
            on_done=self._published,
            on_window_lost=lambda window: partials.not_sent() if partials else None,
        )
        self._metrics = metrics
        self._delivery = delivery
        self._numbering = numbering
        self._translations = translations
        self._heard = heard
        self._partials = partials
        self._stt_alive = stt_alive
        self._falling_behind_s = falling_behind_s
        self._told_behind = False
        self._cuts = cuts
        # (seq, session seconds): where the utterance in progress is to end, once the next
        # audio frame comes (ingest stays in one place, so seqs follow the audio's order).
        self._cut: tuple[int, float] | None = None
        self.samples = 0

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

    async def skip(self, nbytes: int) -> None:
        """Refused audio still took time in the client's recording: it counts as silence, so
        later start/end seconds still match the client's audio."""
        frames = nbytes // self._converter.frame_bytes
        await self.feed(bytes(frames * self._converter.frame_bytes))

    async def flush(self) -> None:
        """The client stopped: what is left of its audio is the last utterance."""
        tail = self._converter.flush()
        self.samples += len(tail)
        for utterance in [*self._segmenter.push(tail), *self._segmenter.flush()]:
            await self._publish(utterance)

    # -- cuts the partials ask for ---------------------------------------------------------

    def plan_cut(self, result: Transcript, agreement: LocalAgreement) -> None:
        """A partial of the utterance in progress settled a sentence: end the utterance there."""
        span = self._segmenter.in_progress_span()
        if self._cuts is None or span is None or result.seq != self._numbering.next_seq:
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

    async def _apply_cut(self) -> None:
        if self._cut is None:
            return
        (seq, at), self._cut = self._cut, None
        if seq != self._numbering.next_seq:
            return  # that utterance has ended meanwhile
        if (head := self._segmenter.cut_near(at)) is not None:
            self._metrics.utterance_cuts.inc()
            await self._publish(head)

    # -- out to the bus --------------------------------------------------------------------

    async def _publish(self, utterance: Utterance) -> None:
        seq = self._numbering.issue()
        if self._partials is not None:
            self._partials.final(seq)
            self._delivery.forget_windows_through(seq)
        self._delivery.issued()
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
            self.outbox.put(segment)  # the read loop never waits on a publish
        except OutboxFull as exc:
            self._metrics.publish_failures.labels("overloaded", "final").inc()
            await self._refused(seq, exc.code, str(exc))
            return
        self._delivery.published(seq)

    async def _published(self, segment: AudioSegment, rejected: PublishRejected | None) -> None:
        if rejected is not None:
            await self._refused(segment.seq, rejected.code, str(rejected))

    async def _refused(self, seq: int, code: str, reason: str) -> None:
        await self._delivery.resolve(
            seq, ErrorEvent(code=code, reason=reason, session_id=self.session_id, seq=seq)
        )

    async def _maybe_partial(self) -> None:
        """A partial window of the utterance in progress, when one is due."""
        if self._partials is None:
            return
        if (span := self._segmenter.in_progress_span()) is None:
            await self._abandon_partials()
            return
        if not self._stt_alive():
            return  # the window would only wait in the queue, taking room from finals
        seq = self._numbering.next_seq
        now = time.monotonic()
        revision = self._partials.due(seq, span[1] - span[0], now)
        if revision is None:
            return
        current = self._segmenter.in_progress()
        assert current is not None
        last = self._delivery.last_language
        language = self.language or (None if self.start.languages else last)
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
        # Best effort: a window lost on the way is no loss, the final carries the utterance.
        self.outbox.put_window(segment)
        self._delivery.window_sent(seq, revision, at=now)

    async def _abandon_partials(self) -> None:
        """Between utterances: one the segmenter dropped (too little voiced audio) leaves its
        seq to the next; the partials shown for it are withdrawn with an empty one."""
        seq = self._numbering.next_seq
        if self._partials is None or not self._partials.abandon(seq):
            return
        async with self._delivery.lock:
            await self._delivery.send(
                PartialEvent(
                    session_id=self.session_id,
                    seq=seq,
                    revision=self._partials.revision(seq),
                    text="",
                    committed="",
                    language=self._delivery.last_language or "",
                    start=0.0,
                    end=0.0,
                )
            )

    async def _check_behind(self) -> None:
        """Overload shows first as slower partials (best effort); finals owed for long are
        said, once, so a growing lag is never silent."""
        if not self._falling_behind_s:
            return
        oldest = self._delivery.oldest_owed_since()
        behind = oldest is not None and time.monotonic() - oldest > self._falling_behind_s
        if behind and not self._told_behind:
            self._metrics.falling_behind.inc()
            await self._delivery.send(
                NoticeEvent(
                    code="falling_behind",
                    reason=f"speech-to-text is behind: a final has been waited for over "
                    f"{self._falling_behind_s:.0f}s (more speech than the workers can keep up "
                    "with); everything is still queued and will come",
                    session_id=self.session_id,
                )
            )
        self._told_behind = behind
