"""Nobody let in: a real gateway (real nats-server, aiohttp on a free port) with a keys file,
spoken to by the real websockets and aiohttp clients as users' programs do."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
from pathlib import Path

import aiohttp
import jwt
import pytest
from websockets.asyncio.client import connect

from nova_common.messages import SessionStarted
from nova_common.settings import Settings
from nova_gateway.auth.tokens import TokenSigner
from tests.auth_helpers import (
    SECRET,
    bearer,
    http,
    keyed_stack,
    mint,
    ws_refusal,
    ws_session,
)
from tests.speech import require_tool

PROTECTED_GETS = ["/metrics", "/sessions/abc/subtitles.vtt", "/auth/whoami", "/v1/models"]


async def test_without_a_credential_only_health_and_the_page_answer(
    settings: Settings, tmp_path: Path
) -> None:
    async with keyed_stack(settings, tmp_path) as gw:
        for path in ("/health", "/health/full", "/", "/static/app.js"):
            status, _, _ = await http("GET", gw.http + path)
            assert status in (200, 503), path  # /health/full: 503 without a worker, not 401
        for path in PROTECTED_GETS:
            status, body, headers = await http("GET", gw.http + path)
            assert status == 401, path
            assert headers["WWW-Authenticate"].startswith("Bearer")
        # The OpenAI API answers in its own shape, so OpenAI clients show the reason.
        _, body, _ = await http("GET", gw.http + "/v1/models")
        assert body["error"]["code"] == "unauthorized"
        assert "needs an API key" in body["error"]["message"]
        for path in ("/ws", "/ws/v0"):
            refused = await ws_refusal(gw.ws.removesuffix("/ws") + path)
            assert refused.status == 401
            assert "needs an API key or a session token" in refused.body["error"]


async def test_an_api_key_opens_ws_seed_and_the_openai_api(
    settings: Settings, tmp_path: Path
) -> None:
    async with keyed_stack(settings, tmp_path) as gw:
        outcome = await ws_session(gw.ws, headers=bearer(gw.key))
        assert outcome.started and outcome.summary is not None and outcome.close_code == 1000
        async with connect(gw.ws + "/v0", additional_headers=bearer(gw.key)) as seed:
            assert json.loads(await seed.recv())["type"] == "status"  # the seed's greeting
        status, body, _ = await http("GET", gw.http + "/v1/models", headers=bearer(gw.key))
        assert status == 200 and body["object"] == "list"
        status, who, _ = await http("GET", gw.http + "/auth/whoami", headers=bearer(gw.key))
        assert (status, who["key"], who["via"]) == (200, "alice", "key")


async def test_a_minted_token_works_as_subprotocol_query_and_header(
    settings: Settings, tmp_path: Path
) -> None:
    async with keyed_stack(settings, tmp_path) as gw:
        status, minted, headers = await http(
            "POST", gw.http + "/auth/token", headers=bearer(gw.key)
        )
        assert status == 200 and headers["Cache-Control"] == "no-store"
        assert minted["token_type"] == "Bearer" and 0 < minted["expires_in"] <= 300
        token = minted["token"]
        assert gw.key not in token
        # A browser's way: the token as a subprotocol; the server picks nova.v1, never the token.
        outcome = await ws_session(gw.ws, subprotocols=["nova.v1", f"bearer.{token}"])
        assert outcome.started and outcome.subprotocol == "nova.v1"
        async with connect(f"{gw.ws}/v0?token={token}") as seed:
            assert json.loads(await seed.recv())["type"] == "status"
        status, _, _ = await http("GET", gw.http + "/v1/models", headers=bearer(token))
        assert status == 200
        _, who, _ = await http("GET", gw.http + "/auth/whoami", headers=bearer(token))
        assert (who["key"], who["via"]) == ("alice", "token")
        assert who["expires_at"] == pytest.approx(minted["expires_at"], abs=2)
        # A token cannot mint tokens: a leaked one dies when it expires.
        status, body, _ = await http("POST", gw.http + "/auth/token", headers=bearer(token))
        assert status == 403 and "use the API key" in body["error"]


async def test_expired_forged_and_malformed_credentials_are_refused_with_a_reason(
    settings: Settings, tmp_path: Path
) -> None:
    async with keyed_stack(settings, tmp_path) as gw:
        expired = await mint(gw.http, gw.key, ttl_s=0.2)
        claims = jwt.decode(expired, options={"verify_signature": False})
        now = time.time()
        # Signed with another secret: the same claims, forged.
        forged = TokenSigner(b"not-the-gateway-secret-but-long-enough").issue(
            subject="alice", audience="session", ttl_s=60, claims={"kid": claims["kid"]}
        )
        # Right secret, wrong audience (a resume token shown as a session token).
        other_use = TokenSigner(SECRET.encode()).issue(
            subject="alice", audience="resume", ttl_s=60, claims={"kid": claims["kid"]}
        )
        unsigned = jwt.encode(
            {**claims, "exp": now + 60}, key=None, algorithm="none"
        )  # fmt: skip
        wrong_key = gw.key[:-6] + ("abcdef" if not gw.key.endswith("abcdef") else "ghijkl")
        await asyncio.sleep(0.3)
        cases = {
            expired: "token expired",
            forged: "signature",
            other_use: "not for this use",
            unsigned: "malformed",
            "garbage": "malformed",
            wrong_key: "unknown or revoked API key",
        }
        for credential, reason in cases.items():
            refused = await ws_refusal(gw.ws, bearer(credential))
            assert refused.status == 401 and reason in refused.body["error"], credential
            status, body, _ = await http("GET", gw.http + "/v1/models", headers=bearer(credential))
            assert status == 401 and reason in body["error"]["message"]
        status, body, _ = await http("GET", gw.http + "/metrics", headers={"Authorization": "x"})
        assert status == 401 and "Bearer" in body["error"]


async def test_removing_a_key_refuses_it_and_its_tokens(settings: Settings, tmp_path: Path) -> None:
    async with keyed_stack(settings, tmp_path) as gw:
        bob = gw.add_key("bob")  # added while the gateway runs: good at once
        token = await mint(gw.http, bob)
        assert (await ws_session(gw.ws, headers=bearer(token))).started
        gw.store.remove("bob")
        refused = await ws_refusal(gw.ws, bearer(bob))
        assert "unknown or revoked" in refused.body["error"]
        refused = await ws_refusal(gw.ws, bearer(token))
        assert "revoked" in refused.body["error"]
        assert (await ws_session(gw.ws, headers=bearer(gw.key))).started  # alice is untouched


async def test_an_open_loopback_gateway_closes_when_a_key_is_added(
    settings: Settings, tmp_path: Path
) -> None:
    async with keyed_stack(settings, tmp_path, keys=False) as gw:
        assert (await ws_session(gw.ws)).started  # no keys, loopback: open
        _, who, _ = await http("GET", gw.http + "/auth/whoami")
        assert who["via"] == "open"
        status, body, _ = await http("POST", gw.http + "/auth/token")
        assert status == 400 and "needs no credential" in body["error"]
        key = gw.add_key("first")
        assert (await ws_refusal(gw.ws)).status == 401
        assert (await ws_session(gw.ws, headers=bearer(key))).started


async def test_browser_origins_same_origin_and_the_allow_list(
    settings: Settings, tmp_path: Path
) -> None:
    allowed = "https://app.example.com"
    async with keyed_stack(settings, tmp_path, allowed_origins=(allowed,)) as gw:
        own = gw.http  # http://127.0.0.1:PORT, what a browser sends for the gateway's own page
        for origin in (own, allowed):
            outcome = await ws_session(gw.ws, headers={"Origin": origin, **bearer(gw.key)})
            assert outcome.started, origin
        # A key does not help another site's page: it is the user's browser, not the key's owner.
        refused = await ws_refusal(gw.ws, {"Origin": "https://evil.example", **bearer(gw.key)})
        assert refused.status == 403 and "evil.example" in refused.body["error"]
        # An allowed origin's scripts may ask for a token (a CORS preflight, then the POST).
        status, _, headers = await http(
            "OPTIONS", gw.http + "/auth/token", headers={"Origin": allowed}
        )
        assert status == 204 and "Authorization" in headers["Access-Control-Allow-Headers"]
        status, _, headers = await http(
            "POST", gw.http + "/auth/token", headers={"Origin": allowed, **bearer(gw.key)}
        )
        assert status == 200 and headers["Access-Control-Allow-Origin"] == allowed


async def test_an_open_gateway_still_refuses_other_sites_pages(
    settings: Settings, tmp_path: Path
) -> None:
    # Open on loopback is for this machine's own programs: a web page the user visits must not
    # reach it through their browser (WebSockets are not covered by CORS).
    async with keyed_stack(settings, tmp_path, keys=False) as gw:
        refused = await ws_refusal(gw.ws, {"Origin": "https://evil.example"})
        assert refused.status == 403
        assert (await ws_session(gw.ws, headers={"Origin": gw.http})).started


async def test_sessions_per_key_and_per_gateway(settings: Settings, tmp_path: Path) -> None:
    async with keyed_stack(settings, tmp_path, gateway_max_sessions=2) as gw:
        solo = gw.add_key("solo", max_sessions=1)
        async with connect(gw.ws, additional_headers=bearer(solo)) as first:
            second = await ws_session(gw.ws, headers=bearer(solo))
            assert not second.started and second.close_code == 4409
            assert "solo" in second.close_reason
            # An OpenAI upload is a session too: refused before its body is read.
            status, body, _ = await http(
                "POST", gw.http + "/v1/audio/transcriptions", headers=bearer(solo), body=b"x"
            )
            assert status == 429 and body["error"]["code"] == "too_many_sessions"
            async with connect(gw.ws, additional_headers=bearer(gw.key)):
                full = await ws_session(gw.ws, headers=bearer(gw.key))
                assert full.close_code == 1013 and "gateway full" in full.close_reason
            await first.close()
        await asyncio.sleep(0.2)  # the first connection's slot is given back as it ends
        again = await ws_session(gw.ws, headers=bearer(solo))
        assert again.started and any(isinstance(e, SessionStarted) for e in again.events)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by openssl as an operator would."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [require_tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_serves_https_and_wss_with_the_operators_certificate(
    settings: Settings, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    trusted = ssl.create_default_context(cafile=str(cert))
    async with keyed_stack(settings, tmp_path, tls_cert=str(cert), tls_key=str(key)) as gw:
        https = gw.http.replace("http://", "https://")
        status, _, _ = await http("GET", https + "/health", ssl_context=trusted)
        assert status == 200
        token = (await http("POST", https + "/auth/token", headers=bearer(gw.key),
                            ssl_context=trusted))[1]["token"]  # fmt: skip
        wss = gw.ws.replace("ws://", "wss://")
        outcome = await ws_session(wss, headers=bearer(token), ssl_context=trusted)
        assert outcome.started and outcome.close_code == 1000
        # Plain HTTP on the TLS port gets no answer, and a client that does not trust the
        # certificate refuses it.
        with pytest.raises(aiohttp.ClientError):
            await http("GET", gw.http + "/health")
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(wss, additional_headers=bearer(gw.key)):
                pass


async def test_a_keys_file_broken_while_running_lets_nobody_in(
    settings: Settings, tmp_path: Path
) -> None:
    async with keyed_stack(settings, tmp_path) as gw:
        assert (await ws_session(gw.ws, headers=bearer(gw.key))).started
        gw.store.path.write_text('{"version": 1, "keys": [')  # a hand edit gone wrong
        refused = await ws_refusal(gw.ws, bearer(gw.key))
        assert refused.status == 503 and "cannot read its API keys" in refused.body["error"]
        status, _, _ = await http("GET", gw.http + "/health")
        assert status == 200
