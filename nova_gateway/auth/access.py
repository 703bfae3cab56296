"""The gateway's access decisions in one object: who a credential is, whether the gateway may
be open, minting session tokens, and each key's limits (its bucket, its session slots).

Open (no key needed) only while the keys file holds no key *and* the gateway listens on a
loopback address; listening elsewhere with no key refuses to start. Adding a key to a running
open gateway closes it from the next request on.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Literal

from nova_common.settings import AccessSettings, Settings
from nova_gateway.auth.keys import KeyStore, StoredKey, keys_path, looks_like_key
from nova_gateway.auth.limits import Limits, SessionLimits, SessionSlots, TokenBucket
from nova_gateway.auth.origin import OriginPolicy
from nova_gateway.auth.secret import token_secret
from nova_gateway.auth.tokens import TokenError, TokenSigner

# The audience of tokens minted by POST /auth/token (resume tokens have their own).
SESSION_AUDIENCE = "session"


class AccessRefused(Exception):
    """The gateway may not start so; the message tells the operator what to do."""


class Unauthorized(Exception):
    """The request is refused; ``str(exc)`` is the reason the client is told."""


@dataclass(frozen=True)
class Principal:
    """Who a request is: a key's name ("" while the gateway is open) and how it showed it."""

    name: str
    via: Literal["open", "key", "token"]
    limits: Limits
    key_id: str = ""
    expires_at: float | None = None


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name, or "" / "0.0.0.0" style wildcards: not known to be local


def describe_access(access: Access) -> str:
    """One line for the start-up banner."""
    if not access.required:
        return "open: no API keys, listening on loopback only (nova keys add NAME closes it)"
    count = len(access.keys.keys())
    return f"an API key or a session token required ({count} key{'s' if count != 1 else ''})"


class Access:
    def __init__(
        self,
        settings: AccessSettings,
        *,
        keys: KeyStore,
        signer: TokenSigner,
        max_frame_bytes: int,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.signer = signer
        self._max_frame_bytes = max_frame_bytes
        self.origins = OriginPolicy(settings.allowed_origins)
        self.slots = SessionSlots(settings.gateway_max_sessions)
        self._buckets: dict[str, TokenBucket] = {}
        # Until it is bound the gateway counts as public: nothing is let in unchecked.
        self._loopback = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        access = settings.access
        return cls(
            access,
            keys=KeyStore(keys_path(access.keys_file, settings.data_dir)),
            signer=TokenSigner(token_secret(access.token_secret, settings.data_dir)),
            max_frame_bytes=settings.gateway.max_frame_bytes,
        )

    @classmethod
    def unconfigured(cls, max_frame_bytes: int) -> Access:
        """No keys file and a random secret: open on loopback, refusing to listen elsewhere."""
        import secrets

        return cls(
            AccessSettings(),
            keys=KeyStore(None),
            signer=TokenSigner(secrets.token_bytes(32)),
            max_frame_bytes=max_frame_bytes,
        )

    # ------------------------------------------------------------------ binding

    def check_bind(self, host: str) -> None:
        """Before listening on ``host``: ``AccessRefused`` where it would be open to others."""
        loopback = is_loopback(host)
        if not loopback and not self.keys:
            where = self.keys.path or "the keys file"
            raise AccessRefused(
                f"refusing to listen on {host or 'every address'} without authentication: "
                f"anyone who can reach the port could use it, and {where} holds no API key. "
                "Add one with `nova keys add NAME` (clients then need it, or a token minted "
                "with it), or listen on 127.0.0.1"
            )
        self._loopback = loopback

    @property
    def required(self) -> bool:
        return not self._loopback or bool(self.keys)

    # ------------------------------------------------------------------ who is it

    def authenticate(self, credential: str | None) -> Principal:
        if not self.required:
            return Principal("", "open", self.limits_for(None))
        if credential is None:
            raise Unauthorized(
                "this gateway needs an API key or a session token: send 'Authorization: "
                "Bearer <key>', or the WebSocket subprotocol 'bearer.<token>', or ?token=<token>"
            )
        if looks_like_key(credential):
            stored = self.keys.verify(credential)
            if stored is None:
                raise Unauthorized("unknown or revoked API key")
            return Principal(stored.name, "key", self.limits_for(stored), stored.key_id)
        try:
            claims = self.signer.verify(credential, audience=SESSION_AUDIENCE)
        except TokenError as exc:
            raise Unauthorized(str(exc)) from None
        stored = self.keys.by_name(str(claims["sub"]))
        # A key removed (or removed and made again) takes its tokens with it.
        if stored is None or stored.key_id != claims.get("kid"):
            raise Unauthorized("the token's API key was revoked")
        return Principal(
            stored.name, "token", self.limits_for(stored), stored.key_id, float(claims["exp"])
        )

    def mint(self, principal: Principal, ttl_s: float | None = None) -> tuple[str, float]:
        """A session token for ``principal``'s key, and when it expires (Unix seconds)."""
        longest = self.settings.token_ttl_s
        ttl = longest if ttl_s is None else min(ttl_s, longest)
        token = self.signer.issue(
            subject=principal.name,
            audience=SESSION_AUDIENCE,
            ttl_s=ttl,
            claims={"kid": principal.key_id},
        )
        return token, time.time() + ttl

    # ------------------------------------------------------------------ how much

    def limits_for(self, stored: StoredKey | None) -> Limits:
        """``stored``'s own limits, the defaults (``access.*``) where it sets none."""
        d = self.settings
        own = stored.limits if stored is not None else None
        if own is None:
            rate, burst, longest, sessions, frame = (
                d.rate,
                d.burst_s,
                d.max_session_s,
                d.max_sessions,
                d.max_frame_bytes,
            )
        else:
            rate = d.rate if own.rate is None else own.rate
            burst = d.burst_s if own.burst_s is None else own.burst_s
            longest = d.max_session_s if own.max_session_s is None else own.max_session_s
            sessions = d.max_sessions if own.max_sessions is None else own.max_sessions
            frame = d.max_frame_bytes if own.max_frame_bytes is None else own.max_frame_bytes
        return Limits(
            rate=rate,
            # A bucket smaller than a frame would refuse everything.
            burst_s=max(burst, 1.0) if rate else 0.0,
            max_session_s=longest,
            max_sessions=sessions,
            # Never above the gateway's own frame limit, which answers with an error event.
            max_frame_bytes=min(frame, self._max_frame_bytes) if frame else 0,
        )

    def session_limits(self, principal: Principal) -> SessionLimits:
        """A new connection's checks; its key's sessions on this gateway share one bucket."""
        limits = principal.limits
        bucket = None
        if limits.rate:
            bucket = self._buckets.get(principal.name)
            if bucket is None or (bucket.rate, bucket.capacity) != (limits.rate, limits.burst_s):
                bucket = TokenBucket(limits.rate, limits.burst_s)
                self._buckets[principal.name] = bucket
        return SessionLimits(principal.name, limits, bucket)
