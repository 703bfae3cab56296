"""Everything on the gateway's one port: the page, the WebSocket protocols, the OpenAI API,
keepalive pings; a real gateway on a real nats-server, driven by aiohttp's and websockets'
clients (health, metrics and subtitles: test_health.py, test_subtitles.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest
from websockets.asyncio.client import connect

from nova_cli.stack import LocalStack
from nova_common.settings import Settings
from tests.client import chunks
from tests.speech import silence, speak

PING_S = 0.5


FINALS_WAIT_S = 3.0


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[LocalStack]:
    """Gateway and streams, no worker; quick keepalive pings, a short wait for finals."""
    settings = msgspec.structs.replace(
        settings,
        gateway=msgspec.structs.replace(
            settings.gateway, ping_interval_s=PING_S, final_timeout_s=FINALS_WAIT_S
        ),
    )
    async with LocalStack(settings, stt_workers=0) as running:
        yield running


async def test_the_page_and_its_static_files_are_served(gateway: LocalStack) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.http_url}/") as page:
            assert page.status == 200
            assert page.content_type == "text/html"
            assert "<title>Nova Voice</title>" in await page.text()
        async with http.get(f"{gateway.http_url}/static/index.html") as same:
            assert same.status == 200
        async with http.get(f"{gateway.http_url}/static/../server.py") as escape:
            assert escape.status in (403, 404)


async def test_plain_http_to_a_websocket_path_is_told_what_it_is(gateway: LocalStack) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/ws", "/ws/v0"):
            async with http.get(f"{gateway.http_url}{path}") as reply:
                assert reply.status == 426
                assert "WebSocket" in (await reply.json())["error"]


async def test_websocket_and_openai_api_share_the_port(gateway: LocalStack) -> None:
    async with connect(gateway.ws_url) as ws:
        await ws.send(json.dumps({"type": "start"}))
        started = json.loads(await ws.recv())
        assert started["type"] == "started"
        async with aiohttp.ClientSession() as http:
            # While the WebSocket session is open, on the same port: the OpenAI API.
            async with http.get(f"{gateway.http_url}/v1/models") as models:
                assert models.status == 200
                assert (await models.json())["object"] == "list"
            async with http.get(f"{gateway.http_url}/v1/no-such-thing") as missing:
                assert missing.status == 404
                assert "message" in (await missing.json())["error"]  # OpenAI's error shape


async def test_keepalive_pings_flow_and_a_silent_client_is_dropped(gateway: LocalStack) -> None:
    ws_url = gateway.ws_url
    # websockets answers pings in the background: the connection outlives several intervals.
    async with connect(ws_url) as alive:
        await asyncio.sleep(PING_S * 4)
        await alive.send(json.dumps({"type": "start"}))
        assert json.loads(await asyncio.wait_for(alive.recv(), 10))["type"] == "started"
    async with aiohttp.ClientSession() as http:
        # Never answering: the gateway pings, waits half an interval for the pong, and closes.
        async with http.ws_connect(ws_url, autoping=False) as silent:
            first = await silent.receive(timeout=10)
            assert first.type is aiohttp.WSMsgType.PING
            while (msg := await silent.receive(timeout=10)).type is aiohttp.WSMsgType.PING:
                pass
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg


async def test_the_clients_pings_are_answered_while_a_session_finishes(
    gateway: LocalStack,
) -> None:
    """After ``stop`` the gateway waits for the finals (here: no worker, so until the finals
    timeout) and reads no frames; a client's keepalive must not time out meanwhile."""
    async with connect(gateway.ws_url, ping_interval=0.3, ping_timeout=0.6) as ws:
        await ws.send(json.dumps({"type": "start"}))
        for chunk in chunks(speak("Good morning, everyone."), 16000) + chunks(silence(1.0), 16000):
            await ws.send(chunk)
        await ws.send(json.dumps({"type": "stop"}))
        events = []
        async for frame in ws:  # ends with the gateway's close, after the summary
            events.append(json.loads(frame))
        types = [e["type"] for e in events]
        assert types[-1] == "summary", types
        assert any(e.get("code") == "finals_timeout" for e in events), events
        assert ws.close_code == 1000
