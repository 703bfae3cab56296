"""Test-side helpers for a gateway that wants keys: a stack with a keys file, WebSocket and HTTP
calls that report how the gateway answered (status, close code, reason)."""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from nova_cli.stack import LocalStack
from nova_client.streaming import next_event
from nova_common.messages import (
    ErrorEvent,
    ServerEvent,
    SessionStarted,
    StartMessage,
    StopMessage,
    SummaryEvent,
    json_encoder,
)
from nova_common.settings import AccessSettings, Settings
from nova_gateway.auth.keys import KeyLimits, KeyStore
from nova_stt.transcriber import SpeechToText

SECRET = "a-test-secret-of-forty-characters-or-so!"


@dataclass
class KeyedStack:
    stack: LocalStack
    store: KeyStore
    key: str  # "alice", with the default limits

    @property
    def ws(self) -> str:
        return self.stack.ws_url

    @property
    def http(self) -> str:
        return self.stack.http_url

    def add_key(self, name: str, **limits: Any) -> str:
        return self.store.add(name, KeyLimits(**limits))


@contextlib.asynccontextmanager
async def keyed_stack(
    settings: Settings,
    tmp_path: Path,
    *,
    model: SpeechToText | None = None,
    keys: bool = True,
    **access: Any,
) -> AsyncIterator[KeyedStack]:
    """A stack whose gateway reads keys from ``tmp_path`` (one key, alice, unless ``keys`` is
    False); ``access`` are further AccessSettings fields."""
    chosen = AccessSettings(keys_file=str(tmp_path / "keys.json"), token_secret=SECRET, **access)
    store = KeyStore(tmp_path / "keys.json")
    key = store.add("alice", KeyLimits()) if keys else ""
    keyed = msgspec.structs.replace(settings, access=chosen)
    async with LocalStack(keyed, stt_workers=1 if model else 0, model=model) as stack:
        yield KeyedStack(stack, store, key)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@dataclass
class Refusal:
    status: int
    body: dict[str, Any]


async def ws_refusal(url: str, headers: Mapping[str, str] | None = None) -> Refusal:
    """The HTTP answer to a WebSocket handshake the gateway must refuse."""
    try:
        async with connect(url, additional_headers=headers, open_timeout=10):
            pass
    except InvalidStatus as exc:
        return Refusal(exc.response.status_code, json.loads(exc.response.body or b"{}"))
    raise AssertionError(f"the handshake to {url} was accepted")


@dataclass
class Outcome:
    """How a /ws session went: what came, and how it was closed."""

    events: list[ServerEvent]
    close_code: int | None
    close_reason: str
    subprotocol: str | None

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def started(self) -> bool:
        return bool(self.of(SessionStarted))

    @property
    def summary(self) -> SummaryEvent | None:
        found = self.of(SummaryEvent)
        return found[0] if found else None

    @property
    def errors(self) -> list[str]:
        return [e.code for e in self.of(ErrorEvent)]


async def ws_session(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    subprotocols: Sequence[str] | None = None,
    start: StartMessage | None = None,
    audio: Sequence[bytes] = (),
    ssl_context: ssl.SSLContext | None = None,
) -> Outcome:
    """Connect, start, send ``audio`` as fast as the socket takes it, stop, and read everything
    until the gateway closes."""
    events: list[ServerEvent] = []
    async with connect(
        url,
        additional_headers=headers,
        subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols else None,
        ssl=ssl_context,
        open_timeout=10,
        max_size=None,
    ) as ws:
        chosen = ws.subprotocol
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json_encoder.encode(start or StartMessage(language="en")).decode())
            for chunk in audio:
                await ws.send(chunk)
            await ws.send(json_encoder.encode(StopMessage()).decode())
        with contextlib.suppress(ConnectionClosed):
            while True:
                events.append(await next_event(ws))
        return Outcome(events, ws.close_code, ws.close_reason or "", chosen)


async def http(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, Any], Mapping[str, str]]:
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, url, headers=headers, data=body, ssl=ssl_context or True
        ) as response:
            raw = await response.read()
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                payload = {"text": raw.decode(errors="replace")}
            return response.status, payload, dict(response.headers)


async def mint(base: str, key: str, ttl_s: float | None = None) -> str:
    body = json.dumps({"ttl_s": ttl_s}).encode() if ttl_s is not None else None
    status, payload, _ = await http("POST", f"{base}/auth/token", headers=bearer(key), body=body)
    assert status == 200, payload
    return str(payload["token"])
