"""What an outcome means for its message: ack, retry later, or give up (dead letter).

Pure, so that model code can raise these errors without knowing about NATS; the step that acts
on a fate is ``nova_common.lifecycle.settle``.
"""

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


def fate_of(exc: BaseException | None, *, last_delivery: bool = False) -> Fate:
    """``last_delivery``: JetStream will not deliver the message again, so a failure that would
    be retried is given up instead: the session must hear about it, not wait forever."""
    if exc is None:
        return Fate.ACK
    if isinstance(exc, PermanentError) or last_delivery:
        return Fate.DEAD
    # Anything unexpected is retried; max_deliver bounds the retries.
    return Fate.RETRY
