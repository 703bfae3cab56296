"""Running an MT worker as a service: load the backends off the loop, then pull until stopped."""

from __future__ import annotations

import structlog
from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from nova_common.metrics import MtMetrics
from nova_common.provision import rescuer_durable, topology
from nova_common.settings import Settings
from nova_common.subjects import Subjects
from nova_mt.backend import TranslationBackend
from nova_mt.translate import TranslationRouter
from nova_mt.worker import MtWorker

log = structlog.get_logger(__name__)

NO_BACKEND_HINT = (
    "no translation backend is installed: every translation request will fail with "
    "'translation_unavailable'. Install Apertium pairs (apt-get install apertium-eng-spa) or a "
    "model (nova models pull nllb-200-distilled-600M, needs internet)"
)


def load_backends(settings: Settings) -> list[TranslationBackend]:
    """The configured CTranslate2 models (all installed ones by default) and Apertium's pairs.

    Raises ``MtModelNotAvailable`` for a configured model that is not there.
    """
    from nova_mt.apertium import ApertiumBackend
    from nova_mt.ct2 import Ct2Backend
    from nova_mt.models import installed_models, resolve_mt_model

    mt = settings.mt
    backends: list[TranslationBackend] = []
    references = mt.models or tuple(m.name for m in installed_models(settings.models_dir))
    for reference in references:
        location = resolve_mt_model(reference, settings.models_dir)
        backends.append(
            Ct2Backend(
                location,
                name=location.name,
                device=mt.device,
                compute_type=mt.compute_type,
                cpu_threads=mt.cpu_threads,
                beam_size=mt.beam_size,
                max_decoding_length=mt.max_decoding_length,
            )
        )
    if mt.apertium:
        apertium = ApertiumBackend.discover(mt.apertium_command)
        if apertium is not None and apertium.pairs:
            backends.append(apertium)
    if not backends:
        log.warning(NO_BACKEND_HINT)
    return backends


def describe_backends(backends: list[TranslationBackend]) -> str:
    """One line for start-up banners: which backends, or what to install."""
    if not backends:
        return "none installed (apt-get install apertium-eng-spa, or nova models pull …)"
    return ", ".join(b.name for b in backends)


def make_worker(
    nc: Client,
    settings: Settings,
    backends: list[TranslationBackend],
    registry: CollectorRegistry,
) -> MtWorker:
    subjects = Subjects(settings.nats.subject_prefix)
    # The worker re-creates its durable consumers from these configs should they vanish, but
    # only where it may provision: without admin rights the operator's `nova init` does.
    topo = topology(subjects, settings.streams, settings.stt, settings.mt)
    recreate = settings.nats.provision
    return MtWorker(
        nc,
        router=TranslationRouter(backends, cache_size=settings.mt.cache_size),
        settings=settings.mt,
        streams=settings.streams,
        subjects=subjects,
        metrics=MtMetrics.create(registry),
        consumer=topo.consumer(settings.mt.durable) if recreate else None,
        rescuer=topo.consumer(rescuer_durable(settings.mt.durable)) if recreate else None,
    )
