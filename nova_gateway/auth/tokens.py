"""Short-lived signed tokens (JWT, HS256) that any gateway sharing the secret accepts.

Generic on purpose: session tokens (minted with an API key) and resume tokens use the same signer
with different audiences, so one kind can never be replayed as the other.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

_ALGORITHM = "HS256"
# Gateways' clocks differ a little: a token issued a second "in the future" by another gateway is
# not forged. Expiry gets no such grace, so a token's lifetime is what its issuer said.
_CLOCK_SKEW_S = 5.0
# HS256 with a short secret is brute-forceable offline from any token a client holds.
MIN_SECRET_BYTES = 32
_RESERVED = frozenset({"iss", "sub", "aud", "iat", "nbf", "exp", "jti"})


class TokenError(Exception):
    """A token that is not accepted; str(exc) is a reason a client may see."""


class TokenSigner:
    def __init__(self, secret: bytes, *, issuer: str = "nova") -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"token secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._issuer = issuer

    def issue(
        self,
        *,
        subject: str,
        audience: str,
        ttl_s: float,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        extra = dict(claims or {})
        clash = _RESERVED.intersection(extra)
        if clash:
            raise ValueError(f"claims may not set {sorted(clash)}")
        now = time.time()
        payload: dict[str, Any] = {
            **extra,
            "iss": self._issuer,
            "sub": subject,
            "aud": audience,
            "iat": int(now),
            # Float expiry: tests and resume tokens use sub-second lifetimes.
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str, *, audience: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                # Pinning the algorithm refuses "alg": "none" and key-confusion tokens.
                algorithms=[_ALGORITHM],
                audience=audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token is not for this use") from None
        except jwt.InvalidIssuerError:
            raise TokenError("token from another issuer") from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature is not valid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise TokenError("malformed token") from None
        issued = claims["iat"]
        if not isinstance(issued, int | float) or issued > time.time() + _CLOCK_SKEW_S:
            raise TokenError("token issued in the future")
        return claims
