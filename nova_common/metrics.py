"""Prometheus metrics; the registry is passed in so each test (and each service) gets its own."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class GatewayMetrics:
    sessions_active: Gauge
    sessions_total: Counter
    segments_published: Counter
    publish_failures: Counter
    client_errors: Counter
    finals_delivered: Counter
    final_latency: Histogram
    translations_delivered: Counter
    partials_delivered: Counter
    partial_latency: Histogram
    utterance_cuts: Counter
    falling_behind: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> GatewayMetrics:
        return cls(
            sessions_active=Gauge(
                "nova_gateway_sessions_active", "Open WebSocket sessions", registry=registry
            ),
            sessions_total=Counter(
                "nova_gateway_sessions", "Sessions started", registry=registry
            ),
            segments_published=Counter(
                "nova_gateway_segments_published", "Utterances accepted by JetStream",
                ["kind"], registry=registry,
            ),
            publish_failures=Counter(
                "nova_gateway_publish_failures",
                "Segments JetStream did not accept, by reason and kind (final, partial)",
                ["reason", "kind"], registry=registry,
            ),
            client_errors=Counter(
                "nova_gateway_client_errors", "Error events sent to clients",
                ["code"], registry=registry,
            ),
            finals_delivered=Counter(
                "nova_gateway_finals_delivered", "Finals forwarded to clients", registry=registry
            ),
            partials_delivered=Counter(
                "nova_gateway_partials_delivered", "Partial results forwarded to clients",
                registry=registry,
            ),
            partial_latency=Histogram(
                "nova_gateway_partial_latency_seconds",
                "Partial window published to its partial shown",
                buckets=_LATENCY_BUCKETS, registry=registry,
            ),
            final_latency=Histogram(
                "nova_gateway_final_latency_seconds",
                "Utterance published to its final delivered",
                buckets=_LATENCY_BUCKETS, registry=registry,
            ),
            translations_delivered=Counter(
                "nova_gateway_translations_delivered", "Translations forwarded to clients",
                registry=registry,
            ),
            utterance_cuts=Counter(
                "nova_gateway_utterance_cuts",
                "Utterances ended where their committed partial text closed a sentence "
                "or clause, before any pause",
                registry=registry,
            ),
            falling_behind=Counter(
                "nova_gateway_falling_behind",
                "Sessions told their finals are falling behind the speech",
                registry=registry,
            ),
        )  # fmt: skip


@dataclass(frozen=True)
class BreakerMetrics:
    """A worker's circuit breaker (nova_common/breaker.py), under its role's name."""

    state: Gauge  # 0 closed, 1 half-open, 2 open
    opened: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, role: str) -> BreakerMetrics:
        return cls(
            state=Gauge(
                f"nova_{role}_breaker_state",
                "The model's circuit breaker: 0 closed (taking work), 1 half-open (trying one "
                "batch), 2 open (the model kept failing; taking no work)",
                registry=registry,
            ),
            opened=Counter(
                f"nova_{role}_breaker_opened",
                "Times the breaker opened after consecutive model failures",
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class SttMetrics:
    breaker: BreakerMetrics
    segments: Counter
    failures: Counter
    inference_seconds: Histogram
    audio_seconds: Counter
    batch_size: Histogram
    suppressed: Counter
    partials_dropped: Counter
    finals_rechecked: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> SttMetrics:
        return cls(
            breaker=BreakerMetrics.create(registry, "stt"),
            finals_rechecked=Counter(
                "nova_stt_finals_rechecked",
                "Finals decoded again in Whisper's 30 s window, their sized window's text being "
                "improbable",
                registry=registry,
            ),
            partials_dropped=Counter(
                "nova_stt_partials_dropped",
                "Partial windows dropped: stale, superseded in the same batch, yielded to a final, "
                "failed, or not run while the breaker is open",
                ["reason"], registry=registry,
            ),
            suppressed=Counter(
                "nova_stt_suppressed",
                "Text dropped or trimmed as not speech (hallucination filters), by reason",
                ["reason"], registry=registry,
            ),
            segments=Counter(
                "nova_stt_segments", "Segments transcribed", ["kind"], registry=registry
            ),
            failures=Counter(
                "nova_stt_failures", "Segments that failed, by fate", ["fate"], registry=registry
            ),
            inference_seconds=Histogram(
                "nova_stt_inference_seconds", "Model time per segment, by kind (final, partial)",
                ["kind"], buckets=_LATENCY_BUCKETS, registry=registry,
            ),
            audio_seconds=Counter(
                "nova_stt_audio_seconds", "Seconds of audio transcribed", registry=registry
            ),
            batch_size=Histogram(
                "nova_stt_batch_size", "Messages per fetched batch",
                buckets=(1, 2, 4, 8, 16, 32), registry=registry,
            ),
        )  # fmt: skip


@dataclass(frozen=True)
class MtMetrics:
    breaker: BreakerMetrics
    translations: Counter
    failures: Counter
    batch_size: Histogram
    group_size: Histogram
    translate_seconds: Histogram
    cache_hits: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> MtMetrics:
        return cls(
            breaker=BreakerMetrics.create(registry, "mt"),
            translations=Counter(
                "nova_mt_translations", "Sentences translated, by backend", ["backend"],
                registry=registry,
            ),
            failures=Counter(
                "nova_mt_failures", "Translation requests that failed, by fate", ["fate"],
                registry=registry,
            ),
            batch_size=Histogram(
                "nova_mt_batch_size", "Messages per fetched batch",
                buckets=(1, 2, 4, 8, 16, 32, 64), registry=registry,
            ),
            group_size=Histogram(
                "nova_mt_group_size", "Sentences per backend call (one language pair)",
                buckets=(1, 2, 4, 8, 16, 32, 64), registry=registry,
            ),
            translate_seconds=Histogram(
                "nova_mt_translate_seconds", "Backend time per call",
                buckets=_LATENCY_BUCKETS, registry=registry,
            ),
            cache_hits=Counter(
                "nova_mt_cache_hits", "Sentences answered from the worker's cache",
                registry=registry,
            ),
        )  # fmt: skip
