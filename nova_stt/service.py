"""Running an STT worker as a service: load the model off the loop, then pull until stopped."""

from __future__ import annotations

from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from nova_common.metrics import SttMetrics
from nova_common.provision import rescuer_durable, topology
from nova_common.settings import Settings
from nova_common.subjects import Subjects
from nova_stt.filters import FilterSettings
from nova_stt.transcriber import SpeechToText
from nova_stt.worker import SttWorker


def load_model(settings: Settings) -> SpeechToText:
    stt = settings.stt
    filters = FilterSettings(
        speech_gate=stt.speech_gate,
        min_speech_s=stt.min_speech_s,
        no_speech_threshold=stt.no_speech_threshold,
        log_prob_threshold=stt.log_prob_threshold,
        compression_ratio_threshold=stt.compression_ratio_threshold,
    )
    return SpeechToText(
        stt.model,
        cache_dir=settings.models_dir,
        device=stt.device,
        compute_type=stt.compute_type,
        cpu_threads=stt.cpu_threads,
        beam_size=stt.beam_size,
        filters=filters,
        final_windows_s=stt.final_windows_s,
    )


def make_worker(
    nc: Client, settings: Settings, model: SpeechToText, registry: CollectorRegistry
) -> SttWorker:
    subjects = Subjects(settings.nats.subject_prefix)
    # The worker re-creates its durable consumers from these configs should they vanish, but
    # only where it may provision: without admin rights the operator's `nova init` does.
    topo = topology(subjects, settings.streams, settings.stt, settings.mt)
    recreate = settings.nats.provision
    return SttWorker(
        nc,
        stt=model,
        settings=settings.stt,
        streams=settings.streams,
        subjects=subjects,
        metrics=SttMetrics.create(registry),
        consumer=topo.consumer(settings.stt.durable) if recreate else None,
        windows_consumer=topo.consumer(settings.stt.windows_durable) if recreate else None,
        rescuer=topo.consumer(rescuer_durable(settings.stt.durable)) if recreate else None,
    )
