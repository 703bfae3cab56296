"""The MT worker: fetch a batch of transcripts, translate them grouped by language pair, publish
one ``Translation`` per (seq, target) to RESULTS, ack.

The JetStream loop is ``nova_common.pull_worker``; the translation itself is
``TranslationRouter.translate``, run in one thread for the whole batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig

from nova_common.fate import Fate, PermanentError, TransientError
from nova_common.lifecycle import RetryPolicy, id_header, settle
from nova_common.messages import (
    Translation,
    TranslationFailed,
    TranslationRequest,
    WorkerHeartbeat,
    msgpack_encoder,
    translation_request_decoder,
)
from nova_common.metrics import MtMetrics
from nova_common.pull_worker import PullWorker, keep_alive
from nova_common.settings import MtSettings, StreamSettings
from nova_common.subjects import Subjects
from nova_mt.translate import (
    BackendFailed,
    Outcome,
    RouterReport,
    Translated,
    TranslationJob,
    TranslationRouter,
    Unavailable,
)

log = structlog.get_logger(__name__)


@dataclass
class _Item:
    """One fetched message and what became of it."""

    msg: Msg
    request: TranslationRequest | None
    error: BaseException | None = None
    first_job: int = 0  # index of its first target in the batch's job list


def _verdict(report: RouterReport) -> BaseException | bool:
    """What a report says of the backends: the router turns a backend's exception into
    ``BackendFailed`` outcomes, so they failed when one is there and no backend call worked;
    cache hits and pairs no backend has tell nothing."""
    if report.calls:
        return True
    failed = [o.error for o in report.outcomes if isinstance(o, BackendFailed)]
    return failed[0] if failed else False


class MtWorker(PullWorker):
    """Pulls from the durable "mt" consumer until stopped; see ``PullLoop`` for resilience."""

    role = "mt"

    def __init__(
        self,
        nc: Client,
        *,
        router: TranslationRouter,
        settings: MtSettings,
        streams: StreamSettings,
        subjects: Subjects,
        metrics: MtMetrics,
        worker_id: str | None = None,
        consumer: ConsumerConfig | None = None,
        rescuer: ConsumerConfig | None = None,
    ) -> None:
        super().__init__(
            nc,
            section=settings,
            stream=subjects.text_stream,
            subjects=subjects,
            worker_id=worker_id,
            consumer=consumer,
            rescuer=rescuer,
            breaker_metrics=metrics.breaker,
        )
        self._router = router
        self._settings = settings
        self._streams = streams
        self._metrics = metrics
        self._retry = RetryPolicy(streams.max_deliver, settings.nak_delay_s)
        log.info("translation backends", worker=self.worker_id, backends=self.backends)

    @property
    def backends(self) -> tuple[str, ...]:
        return self._router.names

    def _heartbeat(self) -> WorkerHeartbeat:
        return WorkerHeartbeat(
            worker_id=self.worker_id,
            role="mt",
            model=",".join(self.backends) or "none",
            device=self._settings.device,
            processed=self.processed,
            in_flight=self._in_flight,
            sent_at=time.time(),
            backends=self.backends,
            multilingual_mt=any(b.multilingual for b in self._router.backends),
            breaker=self.gate.state.value,
        )

    async def _process_batch(self, msgs: list[Msg]) -> None:
        self._metrics.batch_size.observe(len(msgs))
        items: list[_Item] = []
        jobs: list[TranslationJob] = []
        for msg in msgs:
            try:
                request = translation_request_decoder.decode(msg.data)
            except msgspec.DecodeError as err:
                items.append(_Item(msg, None, PermanentError(f"undecodable request: {err}")))
                continue
            items.append(_Item(msg, request, first_job=len(jobs)))
            jobs.extend(
                TranslationJob(request.text, request.source_language, target)
                for target in request.targets
            )
        pending = set(range(len(msgs)))
        self._in_flight = len(msgs)
        try:
            async with keep_alive(msgs, pending, self._streams.ack_wait_s):
                report = await self._translate(jobs)
                self._observe(report)
                for i, item in enumerate(items):
                    outcomes = self._outcomes_of(item, report)
                    await self._finish(item, outcomes)
                    pending.discard(i)
        finally:
            self._in_flight = 0

    async def _translate(self, jobs: list[TranslationJob]) -> RouterReport:
        """The router's report, run through the breaker."""
        if not jobs:
            return RouterReport(outcomes=[])
        return await self.gate.infer(lambda: self._router.translate(jobs), _verdict)

    @staticmethod
    def _outcomes_of(item: _Item, report: RouterReport) -> list[Outcome]:
        if item.request is None:
            return []
        return report.outcomes[item.first_job : item.first_job + len(item.request.targets)]

    def _observe(self, report: RouterReport) -> None:
        for call in report.calls:
            self._metrics.group_size.observe(call.sentences)
            self._metrics.translate_seconds.observe(call.seconds)
        self._metrics.cache_hits.inc(report.cache_hits)
        for outcome in report.outcomes:
            if isinstance(outcome, Translated):
                self._metrics.translations.labels(outcome.backend).inc()

    async def _finish(self, item: _Item, outcomes: list[Outcome]) -> None:
        error = item.error
        if error is None:
            failed = [o for o in outcomes if isinstance(o, BackendFailed)]
            if failed:
                error = TransientError(f"translation backend failed: {failed[0].error!r}")
                error.__cause__ = failed[0].error
        request = item.request

        async def report(fate: Fate) -> None:
            """Every target's translation, or why it will not come."""
            if request is not None:
                for target, outcome in zip(request.targets, outcomes, strict=True):
                    await self._publish(request, target, outcome, error)

        fate = await settle(
            item.msg, error, self._retry, report=report, dead_letters=self.dead_letters
        )
        if fate is Fate.ACK:
            self.processed += 1
        elif error is not None:  # (an ack that failed is no failure of the request's)
            self._metrics.failures.labels(fate.value).inc()

    def _seq_of(self, data: bytes) -> int | None:
        try:
            return translation_request_decoder.decode(data).seq
        except msgspec.DecodeError:
            return None

    async def _tell_given_up(self, data: bytes, reason: str) -> None:
        try:
            request = translation_request_decoder.decode(data)
        except msgspec.DecodeError:
            return  # nobody to tell
        error = TransientError(reason)
        for target in request.targets:
            await self._publish(request, target, BackendFailed(error), error)

    async def _publish(
        self,
        request: TranslationRequest,
        target: str,
        outcome: Outcome,
        exc: BaseException | None,
    ) -> None:
        result: Translation | TranslationFailed
        if isinstance(outcome, Translated):
            result = Translation(
                session_id=request.session_id,
                seq=request.seq,
                language=target,
                source_language=request.source_language,
                text=outcome.text,
                backend=outcome.backend,
                worker_id=self.worker_id,
            )
        else:
            code, reason = (
                (outcome.code, outcome.reason)
                if isinstance(outcome, Unavailable)
                else ("translation_failed", f"translation kept failing: {exc}")
            )
            result = TranslationFailed(
                session_id=request.session_id,
                seq=request.seq,
                language=target,
                source_language=request.source_language,
                code=code,
                reason=reason,
                worker_id=self.worker_id,
            )
        await self._js.publish(
            self._subjects.results(request.session_id),
            msgpack_encoder.encode(result),
            headers=id_header(result),
        )
