"""Exceptions become message fates in exactly one place: ack, nak with delay, or dead letter."""

from __future__ import annotations

import enum


class Fate(enum.Enum):
    ACK = "ack"
    RETRY = "retry"  # nak with a delay; JetStream redelivers up to max_deliver times
    DEAD = "dead"  # will never succeed: tell the session and stop redelivering


class PermanentError(Exception):
    """The message itself is bad (undecodable, impossible audio): retrying cannot help."""

    code = "bad_segment"


class TransientError(Exception):
    """Something outside the message failed (model busy, NATS hiccup): try again later."""


def fate_of(exc: BaseException | None) -> Fate:
    if exc is None:
        return Fate.ACK
    if isinstance(exc, PermanentError):
        return Fate.DEAD
    # Anything unexpected is retried; max_deliver bounds the retries and the DLQ catches the rest.
    return Fate.RETRY
