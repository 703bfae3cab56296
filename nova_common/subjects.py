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
    def results_stream(self) -> str:
        return f"{self._stream_base}_RESULTS"

    @property
    def text_stream(self) -> str:
        return f"{self._stream_base}_TEXT"

    @property
    def windows_stream(self) -> str:
        return f"{self._stream_base}_WINDOWS"

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

    def worker_heartbeats(self, role: str = "*") -> str:
        return f"{self.prefix}.workers.{role}"
