"""Streams and consumers, created or updated idempotently (at start-up and by `nova init`)."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from nova_common.settings import MtSettings, StreamSettings, SttSettings
from nova_common.subjects import Subjects

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Topology:
    streams: tuple[StreamConfig, ...]
    consumers: tuple[tuple[str, ConsumerConfig], ...]

    def consumer(self, durable: str) -> ConsumerConfig:
        """The config of the durable consumer named ``durable`` (for re-creating it)."""
        for _, config in self.consumers:
            if config.durable_name == durable:
                return config
        raise KeyError(f"no consumer {durable!r} in the topology")


def _work_queue(name: str, subject: str, description: str, streams: StreamSettings,
                max_bytes: int | None = None) -> StreamConfig:  # fmt: skip
    return StreamConfig(
        name=name,
        description=description,
        subjects=[subject],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        # A full stream rejects new messages: the publisher reports back-pressure, nothing is
        # evicted.
        discard=DiscardPolicy.NEW,
        max_age=streams.audio_max_age_s,
        max_bytes=max_bytes,
        duplicate_window=streams.duplicate_window_s,
        num_replicas=streams.replicas,
    )


def _workers_consumer(
    durable: str, subject: str, description: str, streams: StreamSettings
) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable,
        description=description,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=streams.ack_wait_s,
        max_deliver=streams.max_deliver,
        backoff=list(streams.redelivery_backoff_s()) or None,
        filter_subject=subject,
        max_ack_pending=10_000,
    )


def topology(
    subjects: Subjects, streams: StreamSettings, stt: SttSettings, mt: MtSettings
) -> Topology:
    audio = _work_queue(
        subjects.audio_stream,
        subjects.audio_all,
        "Utterances waiting for speech-to-text (work queue)",
        streams,
        max_bytes=streams.audio_max_bytes,
    )
    text = _work_queue(
        subjects.text_stream,
        subjects.text_all,
        "Transcripts waiting for translation (work queue)",
        streams,
    )
    results = StreamConfig(
        name=subjects.results_stream,
        description="Transcripts and translations per session, kept briefly for replay",
        subjects=[subjects.results_all],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=streams.results_max_age_s,
        max_msgs_per_subject=streams.results_max_per_subject,
        duplicate_window=streams.duplicate_window_s,
        num_replicas=streams.replicas,
    )
    windows = StreamConfig(
        name=subjects.windows_stream,
        description="Partial windows of utterances in progress (best effort; newest per session)",
        subjects=[subjects.windows_all],
        retention=RetentionPolicy.WORK_QUEUE,
        # Ephemeral by design: lost with the server, replaced by the next window or the final.
        storage=StorageType.MEMORY,
        # One per session subject: a newer window replaces one not yet fetched.
        max_msgs_per_subject=1,
        discard=DiscardPolicy.OLD,
        max_age=stt.partial_max_age_s,
        duplicate_window=min(streams.duplicate_window_s, stt.partial_max_age_s),
        num_replicas=streams.replicas,
    )
    windows_consumer = ConsumerConfig(
        durable_name=stt.windows_durable,
        description="Speech-to-text workers take partial windows from here when no final waits",
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=max(stt.partial_max_age_s * 2, 5.0),
        # Never redelivered: a window not answered is replaced by the next one.
        max_deliver=1,
        filter_subject=subjects.windows_all,
        max_ack_pending=10_000,
    )
    dlq = StreamConfig(
        name=subjects.dlq_stream,
        description="Messages a stage gave up on, with why (`nova dlq ls`, `nova dlq replay`)",
        subjects=[subjects.dlq_all],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        # Full means refused: the worker then keeps the message in its work queue, not lost.
        discard=DiscardPolicy.NEW,
        max_age=streams.dlq_max_age_s,
        max_bytes=streams.dlq_max_bytes,
        duplicate_window=streams.duplicate_window_s,
        num_replicas=streams.replicas,
    )
    watched = ((subjects.audio_stream, stt.durable), (subjects.text_stream, mt.durable))
    advisories = StreamConfig(
        name=subjects.advisories_stream,
        description="The server's MaxDeliveries advisories for the work queues, until rescued",
        subjects=[subjects.max_deliveries(stream, durable) for stream, durable in watched],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        max_age=streams.dlq_max_age_s,
        num_replicas=streams.replicas,
    )
    rescuers = tuple(
        (
            subjects.advisories_stream,
            ConsumerConfig(
                durable_name=rescuer_durable(durable),
                description=f"Workers of {stream} move its undeliverable messages to the DLQ",
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=streams.ack_wait_s,
                filter_subject=subjects.max_deliveries(stream, durable),
                max_ack_pending=1_000,
            ),
        )
        for stream, durable in watched
    )
    stt_consumer = _workers_consumer(
        stt.durable, subjects.audio_all, "Speech-to-text workers share this pull consumer", streams
    )
    mt_consumer = _workers_consumer(
        mt.durable, subjects.text_all, "Translation workers share this pull consumer", streams
    )
    return Topology(
        streams=(audio, text, results, windows, dlq, advisories),
        consumers=(
            (subjects.audio_stream, stt_consumer),
            (subjects.text_stream, mt_consumer),
            (subjects.windows_stream, windows_consumer),
            *rescuers,
        ),
    )


def rescuer_durable(durable: str) -> str:
    """The consumer on ADVISORIES whose messages name undeliverable messages of ``durable``."""
    return f"{durable}-dead-letters"


async def provision(js: JetStreamContext, topo: Topology) -> None:
    """Create what is missing and update what differs; safe to run from every process at once."""
    for cfg in topo.streams:
        assert cfg.name is not None
        try:
            await js.stream_info(cfg.name)
        except NotFoundError:
            await js.add_stream(cfg)
            log.info("stream created", stream=cfg.name)
        else:
            await js.update_stream(cfg)
    for stream, ccfg in topo.consumers:
        await js.add_consumer(stream, ccfg)  # same config again is a no-op on the server
        log.debug("consumer ready", stream=stream, consumer=ccfg.durable_name)


async def missing(js: JetStreamContext, topo: Topology) -> list[str]:
    """Names of streams and consumers that do not exist (for health checks)."""
    absent: list[str] = []
    for cfg in topo.streams:
        assert cfg.name is not None
        try:
            await js.stream_info(cfg.name)
        except NotFoundError:
            absent.append(f"stream {cfg.name}")
    for stream, ccfg in topo.consumers:
        assert ccfg.durable_name is not None
        try:
            await js.consumer_info(stream, ccfg.durable_name)
        except NotFoundError:
            absent.append(f"consumer {stream}/{ccfg.durable_name}")
    return absent
