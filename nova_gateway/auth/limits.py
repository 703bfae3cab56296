"""Per-key limits: frame size, audio rate (a token bucket over audio seconds), session length,
sessions per key and per gateway; each refusal with its own close code.

A connection's checks are ``SessionLimits``; the front ends (connection.py, seed/connection.py)
call ``check_frame`` on every frame and ``take_audio`` before feeding audio, and end the session
on ``LimitExceeded`` the way ``stop`` does, so the finals of audio already accepted still come.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Close codes (the README's protocol section lists them with the others).
FRAME_LIMIT = 1009  # RFC 6455 "message too big": a frame over the key's frame limit
GATEWAY_FULL = 1013  # RFC 6455 "try again later": this gateway holds its most sessions
SESSION_LIMIT = 4408  # the session's audio reached the key's session length
TOO_MANY_SESSIONS = 4409  # the key already holds its most sessions on this gateway
RATE_LIMIT = 4429  # audio came faster than the key's rate, and its burst is spent

_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 123 bytes


class LimitExceeded(Exception):
    """A limit tripped: ``code`` and ``str(exc)`` for the error event, ``close_code`` and the
    shorter ``close_reason`` for the close frame."""

    def __init__(self, close_code: int, code: str, reason: str, close_reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.code = code
        self.close_reason = close_reason.encode()[:_CLOSE_REASON_BYTES].decode(errors="ignore")


@dataclass(frozen=True)
class Limits:
    """One key's limits in effect; 0 means none."""

    rate: float = 0.0  # audio seconds per second, over all the key's sessions on a gateway
    burst_s: float = 0.0  # audio seconds that may come ahead of the rate
    max_session_s: float = 0.0  # audio seconds in one session
    max_sessions: int = 0  # sessions of the key open at once on a gateway
    max_frame_bytes: int = 0

    def describe(self) -> dict[str, float | int]:
        return {k: v for k, v in self.__dict__.items() if v}


class TokenBucket:
    """``capacity`` audio seconds in hand, refilled at ``rate`` a second; starts full."""

    def __init__(
        self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._level = capacity
        self._at = clock()

    def level(self) -> float:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
        self._at = now
        return self._level

    def take(self, amount: float) -> bool:
        """Take ``amount`` if it is there; a refused take takes nothing."""
        if self.level() < amount:
            return False
        self._level -= amount
        return True


class SessionLimits:
    """The checks of one connection, under its key's ``limits`` and shared ``bucket``."""

    def __init__(self, name: str, limits: Limits, bucket: TokenBucket | None) -> None:
        self._who = f"key {name!r}" if name else "this gateway"
        self.limits = limits
        self._bucket = bucket
        self.audio_s = 0.0

    @classmethod
    def none(cls) -> SessionLimits:
        return cls("", Limits(), None)

    def check_frame(self, frame: str | bytes) -> None:
        limit = self.limits.max_frame_bytes
        if not limit:
            return
        # A text frame's bytes: UTF-8 has at most 4 a character, so short ones skip encoding.
        size = len(frame)
        if isinstance(frame, str) and size * 4 > limit:
            size = len(frame.encode())
        if size > limit:
            raise LimitExceeded(
                FRAME_LIMIT,
                "frame_limit",
                f"a frame of {size} bytes is over the limit of {limit} bytes for {self._who}; "
                "the frame was refused and the session ended (send smaller frames)",
                f"frame over {limit} bytes",
            )

    def take_audio(self, nbytes: int, bytes_per_second: int) -> None:
        """Account for audio about to be accepted, or refuse it with ``LimitExceeded``."""
        seconds = nbytes / bytes_per_second
        longest = self.limits.max_session_s
        if longest and self.audio_s + seconds > longest:
            raise LimitExceeded(
                SESSION_LIMIT,
                "session_limit",
                f"the session reached {longest:g} s of audio, the longest {self._who} allows; "
                "audio up to there is transcribed (start a new session to go on)",
                f"session limit of {longest:g} s of audio",
            )
        if self._bucket is not None and not self._bucket.take(seconds):
            rate = self.limits.rate
            raise LimitExceeded(
                RATE_LIMIT,
                "rate_limited",
                f"audio came faster than {rate:g} s per second (with {self.limits.burst_s:g} s "
                f"of burst), the rate {self._who} allows across its sessions; audio before "
                "this frame is transcribed",
                f"audio rate over {rate:g}x",
            )
        self.audio_s += seconds


class SessionSlots:
    """Sessions open on this gateway, per key and in all."""

    def __init__(self, gateway_max: int) -> None:
        self._gateway_max = gateway_max
        self._per_key: dict[str, int] = {}
        self.total = 0

    def open_for(self, name: str) -> int:
        return self._per_key.get(name, 0)

    def acquire(self, name: str, limits: Limits) -> Callable[[], None]:
        """A session slot for the key ``name`` and the call that gives it back (once), or
        ``LimitExceeded``."""
        if self._gateway_max and self.total >= self._gateway_max:
            raise LimitExceeded(
                GATEWAY_FULL,
                "gateway_full",
                f"this gateway holds its most sessions ({self._gateway_max}); try again "
                "later or another gateway",
                f"gateway full ({self._gateway_max} sessions)",
            )
        held = self._per_key.get(name, 0)
        if limits.max_sessions and held >= limits.max_sessions:
            who = f"key {name!r}" if name else "this gateway"
            raise LimitExceeded(
                TOO_MANY_SESSIONS,
                "too_many_sessions",
                f"{who} already has {held} sessions open here, its most; end one first",
                f"{held} sessions open, the most for {who}",
            )
        self._per_key[name] = held + 1
        self.total += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.total -= 1
            left = self._per_key[name] - 1
            if left:
                self._per_key[name] = left
            else:
                del self._per_key[name]

        return release
