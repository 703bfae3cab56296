"""Publishing utterances to the AUDIO stream (partial windows to WINDOWS): idempotent message
ids, bounded retries."""

from __future__ import annotations

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from nova_common.lifecycle import id_header
from nova_common.messages import AudioSegment, msgpack_encoder
from nova_common.metrics import GatewayMetrics
from nova_common.subjects import Subjects

_TRANSIENT = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    # No stream answered: in a cluster, the stream's leader died and its replicas are electing
    # the next (seconds); what nats-py raises for a publish that met no responders.
    NoStreamResponseError,
)


# The code of a publish that failed because NATS could not be reached (worth trying again).
UNAVAILABLE = "queue_unavailable"


class PublishRejected(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class AudioPublisher:
    def __init__(
        self, js: JetStreamContext, subjects: Subjects, metrics: GatewayMetrics, attempts: int = 4
    ) -> None:
        self._js = js
        self._subjects = subjects
        self._metrics = metrics
        self._attempts = attempts

    async def publish(self, segment: AudioSegment) -> None:
        """Raises ``PublishRejected``. A partial window gets one attempt: it is best effort, and
        the audio loop must not wait on retries for it."""
        payload = msgpack_encoder.encode(segment)
        attempts = 1 if segment.kind == "partial" else self._attempts
        # Same id on every attempt: if an attempt was stored but its ack lost, the retry is dropped
        # by the stream's duplicate window instead of being transcribed twice.
        headers = id_header(segment)
        # Windows apart from utterances: AUDIO's depth is finals owed (the autoscaler reads it).
        subject = (
            self._subjects.windows(segment.session_id)
            if segment.kind == "partial"
            else self._subjects.audio(segment.session_id)
        )
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(_TRANSIENT),
                stop=stop_after_attempt(attempts),
                wait=wait_exponential(multiplier=0.2, max=2.0),
                reraise=True,
            ):
                with attempt:
                    await self._js.publish(subject, payload, headers=headers)
        except APIError as exc:
            self._metrics.publish_failures.labels("rejected", segment.kind).inc()
            raise PublishRejected(
                "backpressure",
                f"the speech queue did not accept utterance {segment.seq}: {exc.description}",
            ) from exc
        except _TRANSIENT as exc:
            self._metrics.publish_failures.labels("unavailable", segment.kind).inc()
            raise PublishRejected(
                UNAVAILABLE,
                f"utterance {segment.seq} could not be queued, NATS is unavailable: {exc!r}",
            ) from exc
        except nats.errors.Error as exc:  # e.g. payload over the server's max_payload
            self._metrics.publish_failures.labels("error", segment.kind).inc()
            raise PublishRejected(
                "publish_failed", f"utterance {segment.seq} could not be queued: {exc!r}"
            ) from exc
        self._metrics.segments_published.labels(segment.kind).inc()
