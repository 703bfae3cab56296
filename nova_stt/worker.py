"""The STT worker: fetch a batch, transcribe each segment off the event loop, publish, ack.

The model code (``transcriber``) knows nothing about NATS and this module nothing about Whisper
beyond ``SpeechToText.transcribe``; the JetStream loop itself is ``nova_common.pull_worker``.
A final that a session wants translated goes on to the TEXT stream for the MT workers; English
asked of Whisper's own translate task is done here, after the transcript is out.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig

from nova_common.audio import SAMPLE_RATE
from nova_common.fate import Fate, PermanentError, TransientError
from nova_common.lifecycle import RetryPolicy, id_header, settle
from nova_common.messages import (
    AudioSegment,
    SegmentFailed,
    Task,
    Transcript,
    Translation,
    TranslationFailed,
    TranslationRequest,
    WorkerHeartbeat,
    msgpack_encoder,
)
from nova_common.metrics import SttMetrics
from nova_common.pull_worker import PullLoop, PullOptions, PullWorker, keep_alive, quietly
from nova_common.settings import StreamSettings, SttSettings
from nova_common.subjects import Subjects
from nova_stt.outcomes import (
    HandOnFailed,
    decoded,
    failures_of,
    transcript_of,
    undecodable,
)
from nova_stt.priority import BatchPlan, plan_batch
from nova_stt.transcriber import SpeechResult, SpeechToText

log = structlog.get_logger(__name__)

WINDOW_FETCH_TIMEOUT_S = 0.25


class SttWorker(PullWorker):
    """Pulls from the durable "stt" consumer until stopped; see ``PullLoop`` for resilience."""

    role = "stt"

    def __init__(
        self,
        nc: Client,
        *,
        stt: SpeechToText,
        settings: SttSettings,
        streams: StreamSettings,
        subjects: Subjects,
        metrics: SttMetrics,
        worker_id: str | None = None,
        consumer: ConsumerConfig | None = None,
        windows_consumer: ConsumerConfig | None = None,
        rescuer: ConsumerConfig | None = None,
    ) -> None:
        """``consumer``, ``windows_consumer``: the durable consumers' configurations, so that
        the worker can re-create one that vanished."""
        super().__init__(
            nc,
            section=settings,
            stream=subjects.audio_stream,
            subjects=subjects,
            worker_id=worker_id,
            consumer=consumer,
            rescuer=rescuer,
            breaker_metrics=metrics.breaker,
        )
        self._stt = stt
        self._settings = settings
        self._streams = streams
        self._metrics = metrics
        self._retry = RetryPolicy(streams.max_deliver, settings.nak_delay_s)
        # Finals fetched and not yet done: while any is, no partial window starts.
        self._finals_owed = 0
        self._no_finals = asyncio.Event()
        self._no_finals.set()
        windows = PullOptions(
            stream=subjects.windows_stream,
            durable=settings.windows_durable,
            batch_size=settings.windows_batch_size,
            # Short: a window fetch still pending when this worker starts a final would take
            # a window into that final's wait, while another worker may be free.
            fetch_timeout_s=min(settings.fetch_timeout_s, WINDOW_FETCH_TIMEOUT_S),
            rebind_after_idle=settings.rebind_after_idle,
            rebind_after_errors=settings.rebind_after_errors,
        )
        self._windows = PullLoop(
            self._js,
            windows,
            lambda msgs: self._process_windows(msgs),
            consumer=windows_consumer,
            name=f"{self.worker_id}-windows",
            # While this worker runs a final it fetches no windows: they go to a free one.
            ready=self._windows_ready,
        )
        self._loops.append(self._windows)

    async def _windows_ready(self) -> None:
        """No final in hand, and the breaker closed: a window is never a half-open trial."""
        while not self._windows.stopping and not (
            self._no_finals.is_set() and self.gate.closed.is_set()
        ):
            await self._windows.until(self._no_finals)
            await self._windows.until(self.gate.closed)

    def _heartbeat(self) -> WorkerHeartbeat:
        return WorkerHeartbeat(
            worker_id=self.worker_id,
            role="stt",
            model=self._stt.reference,
            device=self._stt.device,
            processed=self.processed,
            in_flight=self._in_flight,
            sent_at=time.time(),
            breaker=self.gate.state.value,
        )

    async def _process_batch(self, msgs: list[Msg]) -> None:
        self._finals_owed += len(msgs)
        self._no_finals.clear()
        try:
            await self._run_batch(msgs)
        finally:
            self._finals_owed -= len(msgs)
            if self._finals_owed == 0:
                self._no_finals.set()

    async def _planned(self, msgs: list[Msg]) -> tuple[list[AudioSegment | None], BatchPlan]:
        """The batch decoded and planned; the partials not worth running are already dropped."""
        segments = [decoded(msg.data) for msg in msgs]
        plan = plan_batch(
            segments, now=time.time(), partial_max_age_s=self._settings.partial_max_age_s
        )
        for reason, dropped in (("stale", plan.stale), ("superseded", plan.superseded)):
            for i in dropped:
                await self._drop_partial(msgs[i], segments[i], reason)
        return segments, plan

    async def _process_windows(self, msgs: list[Msg]) -> None:
        """Partial windows run on the model's spare time: none is fetched while a final runs,
        one fetched just before waits for it, and those left when a final arrives give way
        (their sessions send newer ones)."""
        await self._no_finals.wait()
        segments, plan = await self._planned(msgs)
        for n, i in enumerate(plan.run):
            segment = segments[i]
            if segment is None or segment.kind != "partial":
                await self._drop_partial(msgs[i], segment, "failed")  # not a window: unread
            elif self._finals_owed:
                await self._drop_partial(msgs[i], segment, "yielded")
            elif not self.gate.closed.is_set():
                await self._drop_partial(msgs[i], segment, "breaker")
            else:
                self._in_flight = len(plan.run) - n
                try:
                    await self._partial(msgs[i], segment)
                finally:
                    self._in_flight = 0

    async def _run_batch(self, msgs: list[Msg]) -> None:
        self._metrics.batch_size.observe(len(msgs))
        segments, plan = await self._planned(msgs)
        pending = set(plan.run)
        self._in_flight = len(pending)
        try:
            async with keep_alive(msgs, pending, self._streams.ack_wait_s):
                for i in plan.run:
                    msg, segment = msgs[i], segments[i]
                    if segment is not None and segment.kind == "partial":
                        if self.gate.closed.is_set():
                            await self._partial(msg, segment)
                        else:
                            await self._drop_partial(msg, segment, "breaker")
                    elif not await self.gate.hand_back(msg, self._retry):
                        await self._final(msg, segment)
                    pending.discard(i)
                    self._in_flight -= 1
        finally:
            self._in_flight = 0

    async def _run_model(
        self,
        segment: AudioSegment,
        *,
        task: Task,
        language: str | None,
        allowed: tuple[str, ...] = (),
    ) -> SpeechResult:
        return await self.gate.infer(
            lambda: self._stt.transcribe(
                segment.pcm,
                language=language,
                task=task,
                allowed=allowed,
                word_timestamps=segment.word_timestamps,
                prompt=segment.prompt,
                # The session's belief decides short, unclear utterances (language None only).
                prior=segment.language_prior,
            ),
        )

    async def _partial(self, msg: Msg, segment: AudioSegment) -> None:
        # The finals run before it in this batch took time.
        if time.time() - segment.sent_at > self._settings.partial_max_age_s:
            await self._drop_partial(msg, segment, "stale")
            return
        try:
            result = await self.gate.infer(
                lambda: self._stt.partial(
                    segment.pcm,
                    language=segment.language,
                    task=segment.task,
                    allowed=segment.allowed_languages,
                    prompt=segment.prompt,
                    prior=segment.language_prior,
                ),
            )
        except Exception as exc:
            # Best effort: never retried, never reported failed (its utterance's final comes).
            log.warning("partial failed, dropped", error=repr(exc), subject=msg.subject)
            await self._drop_partial(msg, segment, "failed")
            return
        self._metrics.segments.labels("partial").inc()
        self._metrics.inference_seconds.labels("partial").observe(result.compute_s)
        await self._settle_partial(msg, transcript_of(segment, result, self.worker_id))

    async def _drop_partial(self, msg: Msg, segment: AudioSegment | None, reason: str) -> None:
        """A partial not run (or failed): the session hears of it, so that its one window in
        flight is free for the next, and the message leaves the queue."""
        self._metrics.partials_dropped.labels(reason).inc()
        empty = None
        if segment is not None:
            empty = transcript_of(
                segment,
                SpeechResult(
                    text="",
                    language=segment.language or "und",
                    language_probability=0.0,
                    compute_s=0.0,
                    suppressed=(f"partial_{reason}",),
                ),
                self.worker_id,
            )
        await self._settle_partial(msg, empty)

    async def _settle_partial(self, msg: Msg, transcript: Transcript | None) -> None:
        """A partial is acked whatever became of it: a newer window or its final follows."""

        async def report(fate: Fate) -> None:
            if transcript is None:
                return
            # On core NATS only, on a subject no stream stores: nobody replays a partial.
            published = await quietly(
                self._nc.publish(
                    self._subjects.partials(transcript.session_id),
                    msgpack_encoder.encode(transcript),
                ),
                "publish",
                seq=transcript.seq,
            )
            if not published and transcript.text:
                self._metrics.partials_dropped.labels("failed").inc()

        await settle(msg, None, self._retry, report=report)

    async def _final(self, msg: Msg, segment: AudioSegment | None) -> None:
        error: BaseException | None = None
        try:
            if segment is None:
                raise undecodable(msg.data)
            if segment.sample_rate != SAMPLE_RATE:
                raise PermanentError(
                    f"segment sample rate {segment.sample_rate}, expected {SAMPLE_RATE}"
                )
            await self._transcribe(segment)
        except Exception as err:
            error = err

        async def report(fate: Fate) -> None:
            """A segment given up: the session hears what will not come."""
            if fate is Fate.DEAD and segment is not None:
                for failed in failures_of(segment, error, self.worker_id):
                    await self._publish_result(failed)

        fate = await settle(msg, error, self._retry, report=report, dead_letters=self.dead_letters)
        if fate is Fate.ACK:
            self.processed += 1  # counted once acked: a failed ack means it comes back
        elif error is not None:  # (an ack that failed is no failure of the segment's)
            self._metrics.failures.labels(fate.value).inc()

    def _seq_of(self, data: bytes) -> int | None:
        segment = decoded(data)
        return None if segment is None else segment.seq

    async def _tell_given_up(self, data: bytes, reason: str) -> None:
        segment = decoded(data)
        if segment is None or segment.kind != "final":
            return  # nobody to tell; a partial window is never owed
        for failed in failures_of(segment, TransientError(reason), self.worker_id):
            await self._publish_result(failed)

    async def _transcribe(self, segment: AudioSegment) -> None:
        """Transcribe, publish, hand on (``HandOnFailed`` when only the last step failed)."""
        result = await self._run_model(
            segment,
            task=segment.task,
            language=segment.language,
            allowed=segment.allowed_languages,
        )
        transcript = transcript_of(segment, result, self.worker_id)
        await self._publish_result(transcript)
        self._metrics.segments.labels(segment.kind).inc()
        self._metrics.inference_seconds.labels("final").observe(result.compute_s)
        self._metrics.audio_seconds.inc(segment.end - segment.start)
        for reason in result.suppressed:
            self._metrics.suppressed.labels(reason).inc()
        if result.rechecked:
            self._metrics.finals_rechecked.inc()
        if segment.kind == "final" and transcript.text:
            try:
                await self._hand_on(segment, transcript)
            except Exception as exc:
                raise HandOnFailed(exc) from exc

    async def _hand_on(self, segment: AudioSegment, transcript: Transcript) -> None:
        """What a final needs beyond its transcript: MT targets to TEXT, English from Whisper."""
        # A translate-task final is already English.
        source = "en" if segment.task == "translate" else transcript.language
        if segment.translate_to:
            request = TranslationRequest(
                session_id=segment.session_id,
                seq=segment.seq,
                text=transcript.text,
                source_language=source,
                targets=segment.translate_to,
                start=segment.start,
                end=segment.end,
                sent_at=time.time(),
            )
            await self._js.publish(
                self._subjects.text(segment.session_id),
                msgpack_encoder.encode(request),
                headers=id_header(request),
            )
        if segment.whisper_translate:
            await self._publish_result(await self._whisper_english(segment, transcript, source))

    async def _whisper_english(
        self, segment: AudioSegment, transcript: Transcript, source: str
    ) -> Translation | TranslationFailed:
        if source == "en":
            text, compute_s = transcript.text, 0.0
        else:
            try:
                # A second pass over the same audio: Whisper's translate task only ever yields
                # English. The source language is known now, so detection is not repeated.
                english = await self._run_model(segment, task="translate", language=source)
            except Exception as err:
                # Not retried: the transcript is out, and a retry would redo it too.
                log.warning("whisper translation failed", error=repr(err), seq=segment.seq)
                return TranslationFailed(
                    session_id=segment.session_id,
                    seq=segment.seq,
                    language="en",
                    source_language=source,
                    code="translation_failed",
                    reason=f"Whisper could not translate this utterance: {err}",
                    worker_id=self.worker_id,
                )
            text, compute_s = english.text, english.compute_s
        return Translation(
            session_id=segment.session_id,
            seq=segment.seq,
            language="en",
            source_language=source,
            text=text,
            backend="whisper",
            worker_id=self.worker_id,
            compute_s=compute_s,
        )

    async def _publish_result(
        self, result: Transcript | SegmentFailed | Translation | TranslationFailed
    ) -> None:
        # The message id makes a re-run after a crash between publish and ack harmless.
        await self._js.publish(
            self._subjects.results(result.session_id),
            msgpack_encoder.encode(result),
            headers=id_header(result),
        )
