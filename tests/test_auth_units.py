"""The access parts one at a time: the key store, limits, the bucket, origins, credentials."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from nova_common.settings import AccessSettings, ConfigError, load_settings
from nova_gateway.auth.access import Access, AccessRefused, Unauthorized, is_loopback
from nova_gateway.auth.credentials import BadCredentials, presented
from nova_gateway.auth.keys import KeyLimits, KeyStore, KeyStoreError
from nova_gateway.auth.limits import (
    FRAME_LIMIT,
    GATEWAY_FULL,
    RATE_LIMIT,
    SESSION_LIMIT,
    TOO_MANY_SESSIONS,
    LimitExceeded,
    Limits,
    SessionLimits,
    SessionSlots,
    TokenBucket,
)
from nova_gateway.auth.origin import OriginPolicy
from nova_gateway.auth.secret import SecretError, token_secret
from nova_gateway.auth.tokens import TokenSigner

SECRET = b"k" * 32


# --------------------------------------------------------------------------- keys


def test_a_key_is_shown_once_and_stored_only_hashed(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "access" / "keys.json")
    key = store.add("alice", KeyLimits(rate=1.5))
    raw = store.path.read_text()
    secret = key.split("_", 2)[2]
    assert secret not in raw and key not in raw
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    record = json.loads(raw)["keys"][0]
    assert record["name"] == "alice" and record["limits"]["rate"] == 1.5
    verified = store.verify(key)
    assert verified is not None and verified.name == "alice"


def test_wrong_malformed_and_removed_keys_do_not_verify(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    key = store.add("alice", KeyLimits())
    wrong_secret = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert store.verify(wrong_secret) is None
    assert store.verify("nova_000000000000_" + "A" * 43) is None
    assert store.verify("not a key") is None
    assert store.verify(key) is not None  # and now from the cache of verified keys
    # Another process (`nova keys rm`) changes the file: this store sees it at once.
    KeyStore(store.path).remove("alice")
    assert store.verify(key) is None
    assert not store


def test_names_are_unique_and_checked(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    store.add("alice", KeyLimits())
    with pytest.raises(KeyStoreError, match="exists"):
        store.add("alice", KeyLimits())
    with pytest.raises(KeyStoreError, match="invalid key name"):
        store.add("../etc", KeyLimits())
    with pytest.raises(KeyStoreError, match="no key named"):
        store.remove("bob")


def test_a_damaged_keys_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(KeyStoreError, match="damaged"):
        KeyStore(path).keys()


# --------------------------------------------------------------------------- access


def access(tmp_path: Path, **settings: object) -> Access:
    return Access(
        AccessSettings(**settings),  # type: ignore[arg-type]
        keys=KeyStore(tmp_path / "keys.json"),
        signer=TokenSigner(SECRET),
        max_frame_bytes=1 << 20,
    )


def test_open_only_on_loopback_without_keys(tmp_path: Path) -> None:
    gate = access(tmp_path)
    with pytest.raises(AccessRefused, match=r"refusing to listen on 0\.0\.0\.0"):
        gate.check_bind("0.0.0.0")
    assert gate.required  # never bound: nothing gets in unchecked
    gate.check_bind("127.0.0.1")
    assert gate.authenticate(None).via == "open"
    gate.keys.add("alice", KeyLimits())
    with pytest.raises(Unauthorized, match="needs an API key"):
        gate.authenticate(None)
    gate.check_bind("0.0.0.0")  # with a key it may listen anywhere


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("", False), ("::", False),
     ("192.168.1.4", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_minted_token_names_its_key_and_dies_with_it(tmp_path: Path) -> None:
    gate = access(tmp_path, token_ttl_s=60)
    gate.check_bind("127.0.0.1")
    key = gate.keys.add("alice", KeyLimits(max_sessions=2))
    by_key = gate.authenticate(key)
    token, expires = gate.mint(by_key, ttl_s=600)  # asked for longer than allowed
    assert 55 < expires - time.time() <= 60
    by_token = gate.authenticate(token)
    assert (by_token.name, by_token.via, by_token.limits.max_sessions) == ("alice", "token", 2)
    gate.keys.remove("alice")
    gate.keys.add("alice", KeyLimits())  # same name, another key: old tokens stay dead
    with pytest.raises(Unauthorized, match="revoked"):
        gate.authenticate(token)


def test_key_limits_fall_back_to_the_settings(tmp_path: Path) -> None:
    gate = access(tmp_path, rate=2.0, burst_s=10.0, max_sessions=3, max_frame_bytes=1 << 30)
    gate.check_bind("127.0.0.1")
    key = gate.keys.add("k", KeyLimits(rate=0.0, max_session_s=60.0))
    limits = gate.authenticate(key).limits
    # rate 0 of its own: unlimited, though the default has one; the frame limit never above
    # the gateway's own.
    assert limits == Limits(rate=0.0, burst_s=0.0, max_session_s=60.0, max_sessions=3,
                            max_frame_bytes=1 << 20)  # fmt: skip
    other = gate.keys.add("l", KeyLimits(burst_s=0.2))
    assert gate.authenticate(other).limits.burst_s == 1.0  # a bucket smaller than a frame: 1 s


def test_secret_from_settings_or_kept_in_the_data_dir(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="at least 32"):
        token_secret("short", tmp_path)
    assert token_secret("s" * 40, tmp_path) == b"s" * 40
    made = token_secret(None, tmp_path)
    assert len(made) >= 32 and token_secret(None, tmp_path) == made  # kept, not made anew
    assert stat.S_IMODE(os.stat(tmp_path / "access" / "token_secret").st_mode) == 0o600


def test_access_settings_are_checked_and_the_secret_never_shown() -> None:
    settings = load_settings(environ={"NOVA_ACCESS_TOKEN_SECRET": "x" * 40, "NOVA_API_KEY": "k1"})
    assert "x" * 40 not in repr(settings) and "'k1'" not in repr(settings)
    with pytest.raises(ConfigError, match=r"tls_cert and access\.tls_key"):
        load_settings(environ={"NOVA_ACCESS_TLS_CERT": "/c.pem"})


# --------------------------------------------------------------------------- limits


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1.0, capacity=3.0, clock=clock)
    assert bucket.take(2.0) and bucket.take(1.0)
    assert not bucket.take(0.5)  # spent; a refused take takes nothing
    clock.now = 0.5
    assert bucket.take(0.5) and not bucket.take(0.1)
    clock.now = 100.0
    assert bucket.level() == 3.0  # refills up to its capacity only


def test_live_audio_at_real_time_never_trips_a_rate_of_one() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1.0, capacity=2.0, clock=clock)
    checks = SessionLimits("mic", Limits(rate=1.0, burst_s=2.0), bucket)
    for _ in range(600):  # a minute of 100 ms frames, a little early each time
        clock.now += 0.098
        checks.take_audio(3200, 32000)
    assert checks.audio_s == pytest.approx(60.0)


def test_each_limit_trips_with_its_close_code() -> None:
    checks = SessionLimits("k", Limits(max_frame_bytes=100, max_session_s=1.0), None)
    checks.check_frame(b"x" * 100)
    with pytest.raises(LimitExceeded) as frame:
        checks.check_frame(b"x" * 101)
    with pytest.raises(LimitExceeded):
        checks.check_frame("é" * 51)  # 102 bytes in UTF-8
    checks.take_audio(32000, 32000)
    with pytest.raises(LimitExceeded) as length:
        checks.take_audio(2, 32000)
    fast = SessionLimits("k", Limits(rate=1.0, burst_s=1.0), TokenBucket(1.0, 1.0, Clock()))
    fast.take_audio(32000, 32000)
    with pytest.raises(LimitExceeded) as rate:
        fast.take_audio(3200, 32000)
    assert (frame.value.close_code, length.value.close_code, rate.value.close_code) == (
        FRAME_LIMIT, SESSION_LIMIT, RATE_LIMIT,
    )  # fmt: skip
    assert (frame.value.code, length.value.code, rate.value.code) == (
        "frame_limit", "session_limit", "rate_limited",
    )  # fmt: skip
    for exc in (frame.value, length.value, rate.value):
        assert len(exc.close_reason.encode()) <= 123 and "'k'" in str(exc)


def test_session_slots_per_key_and_per_gateway() -> None:
    slots = SessionSlots(gateway_max=3)
    one = Limits(max_sessions=1)
    release_a = slots.acquire("a", one)
    with pytest.raises(LimitExceeded) as per_key:
        slots.acquire("a", one)
    assert per_key.value.close_code == TOO_MANY_SESSIONS
    release_a()
    release_a()  # giving back twice gives back once
    assert slots.total == 0
    held = [slots.acquire("a", one), slots.acquire("b", Limits()), slots.acquire("b", Limits())]
    with pytest.raises(LimitExceeded) as full:
        slots.acquire("c", Limits())
    assert full.value.close_code == GATEWAY_FULL
    for release in held:
        release()
    assert (slots.total, slots.open_for("b")) == (0, 0)


# --------------------------------------------------------------------------- origin, credentials


def test_origin_policy() -> None:
    policy = OriginPolicy(("https://app.example.com",))
    assert policy.allows(None, "gw:8765")  # not a browser
    assert policy.allows("http://gw:8765", "gw:8765")  # the page's own
    assert policy.allows("https://GW:8765/", "gw:8765")  # behind a TLS proxy, any case
    assert policy.allows("https://app.example.com", "gw:8765")
    assert not policy.allows("https://evil.example", "gw:8765")
    assert not policy.allows("http://gw:9999", "gw:8765")
    assert not policy.allows("null", "gw:8765")
    assert OriginPolicy(("*",)).allows("https://evil.example", "gw:8765")


def headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in values.items()}))


def test_credentials_from_header_subprotocol_or_query() -> None:
    assert presented(headers(Authorization="Bearer abc"), {}) == "abc"
    assert presented(headers(Sec_WebSocket_Protocol="nova.v1, bearer.x.y.z"), {}) == "x.y.z"
    assert presented(headers(), {"token": "t1"}) == "t1"
    assert presented(headers(), {}) is None
    assert presented(headers(Sec_WebSocket_Protocol="nova.v1"), {"token": " "}) is None
    with pytest.raises(BadCredentials, match="Bearer"):
        presented(headers(Authorization="Basic dXNlcjpwdw=="), {})
