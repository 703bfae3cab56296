"""Subject and stream names, derived from one prefix so tests (and tenants) can be kept apart."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

# fullmatch, not "$": "$" also matches before a trailing newline, which would let "nova\n" through.
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def new_session_id() -> str:
    """128 random bits, URL-safe, usable as one subject token."""
    return secrets.token_urlsafe(16)


def is_valid_token(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None


@dataclass(frozen=True)
class Subjects:
    prefix: str = "nova"

    def __post_init__(self) -> None:
        if not all(is_valid_token(part) for part in self.prefix.split(".")):
            raise ValueError(
                f"subject prefix {self.prefix!r} must be dot-separated [A-Za-z0-9_-] tokens"
            )

    @property
    def _stream_base(self) -> str:
        return re.sub(r"[^A-Z0-9]", "_", self.prefix.upper())

    # Streams
    @property
    def audio_stream(self) -> str:
        return f"{self._stream_base}_AUDIO"

    @property
    def sessions_bucket(self) -> str:
        """The KV bucket of session state kept for resume (its stream is ``KV_<bucket>``)."""
        return f"{self._stream_base}_SESSIONS"

    @property
    def results_stream(self) -> str:
        return f"{self._stream_base}_RESULTS"

    @property
    def text_stream(self) -> str:
        return f"{self._stream_base}_TEXT"

    @property
    def windows_stream(self) -> str:
        return f"{self._stream_base}_WINDOWS"

    @property
    def dlq_stream(self) -> str:
        return f"{self._stream_base}_DLQ"

    @property
    def advisories_stream(self) -> str:
        """Where the server's MaxDeliveries advisories for Nova's work queues are kept, so that
        a message whose deliveries all timed out (its worker died each time) is still found."""
        return f"{self._stream_base}_ADVISORIES"

    # Subjects
    def audio(self, session_id: str) -> str:
        return f"{self.prefix}.audio.{session_id}"

    @property
    def audio_all(self) -> str:
        return f"{self.prefix}.audio.*"

    def windows(self, session_id: str) -> str:
        """Partial windows of the utterance in progress, apart from AUDIO: its depth is finals
        owed, and a backlog of windows can never stand in front of a final."""
        return f"{self.prefix}.windows.{session_id}"

    @property
    def windows_all(self) -> str:
        return f"{self.prefix}.windows.*"

    def results(self, session_id: str) -> str:
        return f"{self.prefix}.results.{session_id}"

    @property
    def results_all(self) -> str:
        return f"{self.prefix}.results.*"

    def partials(self, session_id: str) -> str:
        """Partial transcripts: core NATS only, in no stream (best effort, never replayed)."""
        return f"{self.prefix}.partials.{session_id}"

    def text(self, session_id: str) -> str:
        return f"{self.prefix}.text.{session_id}"

    @property
    def text_all(self) -> str:
        return f"{self.prefix}.text.*"

    def dlq(self, stage: str, session_id: str) -> str:
        """A message given up by ``stage`` (``stt``, ``mt``), kept with why it was given up."""
        return f"{self.prefix}.dlq.{stage}.{session_id}"

    @property
    def dlq_all(self) -> str:
        return f"{self.prefix}.dlq.>"

    def max_deliveries(self, stream: str, durable: str = "*") -> str:
        """The server's advisory for a message of ``stream`` that reached max_deliver."""
        return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{durable}"

    def worker_heartbeats(self, role: str = "*") -> str:
        return f"{self.prefix}.workers.{role}"
