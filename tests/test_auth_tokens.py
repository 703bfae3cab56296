"""TokenSigner: what it issues verifies; expired, forged, re-aimed or malformed tokens are refused."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from nova_gateway.auth.tokens import MIN_SECRET_BYTES, TokenError, TokenSigner

SECRET = b"s" * 32


def test_issued_token_verifies_with_its_claims() -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue(subject="alice", audience="session", ttl_s=60, claims={"sid": "abc"})
    claims = signer.verify(token, audience="session")
    assert claims["sub"] == "alice"
    assert claims["sid"] == "abc"
    assert claims["iss"] == "nova"
    assert claims["exp"] > time.time() + 50


def test_another_gateway_with_the_same_secret_accepts_it() -> None:
    token = TokenSigner(SECRET).issue(subject="alice", audience="session", ttl_s=60)
    assert TokenSigner(SECRET).verify(token, audience="session")["sub"] == "alice"


def test_tokens_are_unique_even_with_equal_claims() -> None:
    signer = TokenSigner(SECRET)
    one = signer.issue(subject="a", audience="session", ttl_s=60)
    two = signer.issue(subject="a", audience="session", ttl_s=60)
    assert one != two


def test_expired_token_is_refused() -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue(subject="alice", audience="session", ttl_s=0.05)
    time.sleep(0.1)
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token, audience="session")


def test_token_signed_with_another_secret_is_refused() -> None:
    token = TokenSigner(b"x" * 32).issue(subject="alice", audience="session", ttl_s=60)
    with pytest.raises(TokenError, match="signature"):
        TokenSigner(SECRET).verify(token, audience="session")


def test_tampered_payload_is_refused() -> None:
    signer = TokenSigner(SECRET)
    head, body, sig = signer.issue(subject="alice", audience="session", ttl_s=60).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="signature"):
        signer.verify(f"{head}.{forged}.{sig}", audience="session")


def test_unsigned_alg_none_token_is_refused() -> None:
    now = time.time()
    unsigned = jwt.encode(
        {"sub": "a", "aud": "session", "iss": "nova", "iat": int(now), "exp": now + 60},
        key=None,
        algorithm="none",
    )
    with pytest.raises(TokenError):
        TokenSigner(SECRET).verify(unsigned, audience="session")


def test_token_for_another_audience_is_refused() -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue(subject="alice", audience="resume", ttl_s=60)
    with pytest.raises(TokenError, match="not for this use"):
        signer.verify(token, audience="session")


def test_token_from_another_issuer_is_refused() -> None:
    token = TokenSigner(SECRET, issuer="other").issue(subject="a", audience="session", ttl_s=60)
    with pytest.raises(TokenError, match="issuer"):
        TokenSigner(SECRET).verify(token, audience="session")


def test_token_issued_far_in_the_future_is_refused() -> None:
    now = time.time()
    token = jwt.encode(
        {"sub": "a", "aud": "session", "iss": "nova", "iat": int(now) + 600, "exp": now + 900},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(TokenError, match="future"):
        TokenSigner(SECRET).verify(token, audience="session")


def test_token_lacking_expiry_is_refused() -> None:
    token = jwt.encode(
        {"sub": "a", "aud": "session", "iss": "nova", "iat": int(time.time())},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(TokenError, match="'exp'"):
        TokenSigner(SECRET).verify(token, audience="session")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "\u00e9.\u00e9.\u00e9"])
def test_malformed_token_is_refused_with_a_reason(garbage: str) -> None:
    with pytest.raises(TokenError, match="malformed"):
        TokenSigner(SECRET).verify(garbage, audience="session")


def test_short_secret_and_bad_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError, match=str(MIN_SECRET_BYTES)):
        TokenSigner(b"short")
    signer = TokenSigner(SECRET)
    with pytest.raises(ValueError, match="ttl_s"):
        signer.issue(subject="a", audience="session", ttl_s=0)
    with pytest.raises(ValueError, match="exp"):
        signer.issue(subject="a", audience="session", ttl_s=1, claims={"exp": 1})
