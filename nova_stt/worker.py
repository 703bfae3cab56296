"""The STT worker loop: fetch a batch, transcribe each segment off the event loop, publish, ack.

The model code (``transcriber``) knows nothing about NATS and this module nothing about Whisper
beyond the ``SpeechToText.transcribe`` call, so each can be tested and replaced alone.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError

from nova_common.fate import Fate, PermanentError, fate_of
from nova_common.messages import (
    AudioSegment,
    SegmentFailed,
    Transcript,
    WorkerHeartbeat,
    msgpack_encoder,
    segment_decoder,
)
from nova_common.metrics import SttMetrics
from nova_common.settings import StreamSettings, SttSettings
from nova_common.subjects import Subjects
from nova_stt.transcriber import SpeechToText

log = structlog.get_logger(__name__)


def new_worker_id(role: str) -> str:
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class SttWorker:
    """Pulls from the durable consumer until stopped; no single message or failure ends the loop.

    ``consumer`` is the durable consumer's configuration (from ``nova_common.provision``): with it
    the worker re-creates the consumer should it vanish (deleted, or lost with the server's store).
    A pull subscription can also go quiet after a server restart, so after ``rebind_after_idle``
    empty fetches in a row, or ``rebind_after_errors`` failed ones, the worker checks the consumer
    and binds a fresh subscription; both are cheap.
    """

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
    ) -> None:
        if consumer is not None and consumer.durable_name != settings.durable:
            raise ValueError(
                f"consumer config is for {consumer.durable_name!r}, worker binds {settings.durable!r}"
            )
        if settings.rebind_after_idle < 1 or settings.rebind_after_errors < 1:
            raise ValueError("rebind_after_idle and rebind_after_errors must be at least 1")
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._stt = stt
        self._settings = settings
        self._streams = streams
        self._subjects = subjects
        self._metrics = metrics
        self.worker_id = worker_id or new_worker_id("stt")
        self._stopping = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        self._consumer = consumer
        self._rebind_after_idle = settings.rebind_after_idle
        self._rebind_after_errors = settings.rebind_after_errors
        self.processed = 0
        self.rebinds = 0  # fresh subscriptions bound after idleness or errors
        self.consumers_recreated = 0
        self._in_flight = 0

    def stop(self) -> None:
        """Stop fetching; the batch in hand is finished, published and acked first."""
        self._stopping.set()

    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._announce())
        try:
            await self._loop()
        finally:
            heartbeat.cancel()
            # Waits for a transcription still running in the thread: off the loop, not blocking it.
            await asyncio.to_thread(self._executor.shutdown, wait=True)
            log.info("stt worker stopped", worker=self.worker_id, processed=self.processed)

    async def _bind(self) -> JetStreamContext.PullSubscription:
        return await self._js.pull_subscribe_bind(
            durable=self._settings.durable, stream=self._subjects.audio_stream
        )

    async def _ensure_consumer(self) -> None:
        """Re-create the durable consumer if it is gone; one that exists is left as it is."""
        if self._consumer is None:
            return
        stream, durable = self._subjects.audio_stream, self._settings.durable
        try:
            await self._js.consumer_info(stream, durable)
        except NotFoundError:
            # Idempotent: several workers racing to re-create it with one config all succeed.
            await self._js.add_consumer(stream, self._consumer)
            self.consumers_recreated += 1
            log.warning("consumer was missing; re-created", stream=stream, consumer=durable)

    async def _rebind(
        self, psub: JetStreamContext.PullSubscription, reason: str
    ) -> JetStreamContext.PullSubscription:
        """A fresh pull subscription (and consumer, if it vanished); the old one if that fails."""
        log.debug("re-binding pull subscription", worker=self.worker_id, reason=reason)
        try:
            await self._ensure_consumer()
        except Exception as exc:  # no JetStream API access or no connection: bind anyway
            log.warning("could not check the consumer", error=repr(exc))
        try:
            fresh = await self._bind()
        except Exception as exc:
            log.warning("re-bind failed; keeping the old subscription", error=repr(exc))
            return psub
        await self._quietly(psub.unsubscribe(), "unsubscribe")
        self.rebinds += 1
        return fresh

    async def _loop(self) -> None:
        psub = await self._bind()
        log.info("stt worker ready", worker=self.worker_id, model=self._stt.reference)
        errors = 0
        idle = 0
        while not self._stopping.is_set():
            try:
                msgs = await psub.fetch(
                    self._settings.batch_size, timeout=self._settings.fetch_timeout_s
                )
            except TimeoutError:  # nats.errors.TimeoutError, or asyncio's from inside fetch: idle
                idle += 1
                if idle >= self._rebind_after_idle:
                    idle = 0
                    psub = await self._rebind(psub, "idle")
                continue
            except Exception as exc:  # connection churn, or the consumer is gone (503)
                errors += 1
                log.warning("fetch failed", error=repr(exc), consecutive=errors)
                await self._pause(min(0.2 * errors, 2.0))
                if errors % self._rebind_after_errors == 0:
                    psub = await self._rebind(psub, "errors")
                continue
            errors = 0
            idle = 0
            if not msgs:
                continue
            try:
                self._metrics.batch_size.observe(len(msgs))
                await self._process_batch(msgs)
            except Exception:
                # A bug, not a bad message: keep serving; unsettled messages come back after
                # ack_wait and max_deliver bounds the retries.
                log.exception("batch failed unexpectedly", worker=self.worker_id, size=len(msgs))
        await self._quietly(psub.unsubscribe(), "unsubscribe")

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the worker is stopped."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    @staticmethod
    async def _quietly(action: Awaitable[object], what: str, **context: object) -> bool:
        """Await a NATS call whose failure must not end the loop (the connection may be gone)."""
        try:
            await action
        except Exception as exc:
            log.warning(f"{what} failed", error=repr(exc), **context)
            return False
        return True

    async def _process_batch(self, msgs: list[Msg]) -> None:
        pending = set(range(len(msgs)))
        self._in_flight = len(msgs)
        keepalive = asyncio.create_task(self._keep_alive(msgs, pending))
        try:
            for i, msg in enumerate(msgs):
                try:
                    await self._handle(msg)
                except Exception:
                    # One message's unexpected failure must not cost the rest of the batch.
                    log.exception("segment handling failed unexpectedly", subject=msg.subject)
                    await self._quietly(
                        msg.nak(delay=self._settings.nak_delay_s), "nak", subject=msg.subject
                    )
                pending.discard(i)
                self._in_flight -= 1
        finally:
            keepalive.cancel()
            self._in_flight = 0

    async def _keep_alive(self, msgs: list[Msg], pending: set[int]) -> None:
        """Tell JetStream we are still working, so a long batch is not redelivered elsewhere."""
        interval = max(self._streams.ack_wait_s / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            for i in list(pending):
                try:
                    await msgs[i].in_progress()
                except Exception as exc:
                    log.debug("in_progress failed", error=repr(exc))

    async def _handle(self, msg: Msg) -> None:
        segment: AudioSegment | None = None
        exc: BaseException | None = None
        try:
            try:
                segment = segment_decoder.decode(msg.data)
            except msgspec.DecodeError as err:
                raise PermanentError(f"undecodable segment: {err}") from err
            if segment.sample_rate != 16000:
                raise PermanentError(f"segment sample rate {segment.sample_rate}, expected 16000")
            result = await asyncio.get_running_loop().run_in_executor(
                self._executor,
                lambda: self._stt.transcribe(
                    segment.pcm, language=segment.language, task=segment.task
                ),
            )
            transcript = Transcript(
                session_id=segment.session_id,
                seq=segment.seq,
                kind=segment.kind,
                text=result.text,
                language=result.language,
                language_probability=result.language_probability,
                start=segment.start,
                end=segment.end,
                worker_id=self.worker_id,
                compute_s=result.compute_s,
            )
            await self._publish_result(transcript)
            self._metrics.segments.labels(segment.kind).inc()
            self._metrics.inference_seconds.observe(result.compute_s)
            self._metrics.audio_seconds.inc(segment.end - segment.start)
        except Exception as err:
            exc = err
        try:
            await self._settle(msg, segment, exc)
        except Exception as err:
            # Connection lost mid-settle: JetStream redelivers after ack_wait (a repeated result
            # is harmless: the gateway de-duplicates by seq); go on with the next message.
            log.warning("could not settle segment", error=repr(err), subject=msg.subject)

    async def _publish_result(self, result: Transcript | SegmentFailed) -> None:
        # The message id makes a re-run after a crash between publish and ack harmless.
        await self._js.publish(
            self._subjects.results(result.session_id),
            msgpack_encoder.encode(result),
            headers={"Nats-Msg-Id": f"{result.session_id}:{result.seq}:{result.kind}:stt"},
        )

    async def _settle(
        self, msg: Msg, segment: AudioSegment | None, exc: BaseException | None
    ) -> None:
        """The one place where an outcome becomes ack, nak-with-delay or dead letter."""
        fate = fate_of(exc)
        delivered = msg.metadata.num_delivered if msg.metadata else 1
        if fate is Fate.RETRY and delivered >= self._streams.max_deliver:
            fate = Fate.DEAD  # last attempt: the session must hear about it, not wait forever
        if fate is Fate.ACK:
            await msg.ack()
            self.processed += 1  # counted once acked: a failed ack means it comes back
            return
        self._metrics.failures.labels(fate.value).inc()
        if fate is Fate.RETRY:
            log.warning("segment failed, will retry", error=repr(exc), delivered=delivered)
            await msg.nak(delay=self._settings.nak_delay_s)
            return
        log.error("segment failed permanently", error=repr(exc), subject=msg.subject)
        if segment is not None:
            code = exc.code if isinstance(exc, PermanentError) else "stt_failed"
            failed = SegmentFailed(
                session_id=segment.session_id,
                seq=segment.seq,
                kind=segment.kind,
                code=code,
                reason=str(exc),
                worker_id=self.worker_id,
            )
            try:
                await self._publish_result(failed)
            except Exception as err:  # cannot tell the session now; let JetStream redeliver
                log.warning("could not report failure", error=repr(err))
                await msg.nak(delay=self._settings.nak_delay_s)
                return
        await msg.term()

    async def _announce(self) -> None:
        subject = self._subjects.worker_heartbeats("stt")
        while True:
            beat = WorkerHeartbeat(
                worker_id=self.worker_id,
                role="stt",
                model=self._stt.reference,
                device=self._stt.device,
                processed=self.processed,
                in_flight=self._in_flight,
                sent_at=time.time(),
            )
            try:
                await self._nc.publish(subject, msgpack_encoder.encode(beat))
            except Exception as exc:
                log.debug("heartbeat failed", error=repr(exc))
            await asyncio.sleep(self._settings.heartbeat_interval_s)
