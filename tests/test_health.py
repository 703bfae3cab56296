"""The gateway's HTTP endpoints on its one port: /health, /health/full, /metrics."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from nova_cli.runtime import connect_and_provision
from nova_cli.stack import LocalStack
from nova_common.settings import Settings

HTTP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _get(url: str) -> Reply:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
            return Reply(resp.status, resp.headers.get("Content-Type", ""), resp.read())
    except urllib.error.HTTPError as err:  # 4xx/5xx still carry a body we want to check
        with err:
            return Reply(err.code, err.headers.get("Content-Type", ""), err.read())


async def get(url: str) -> Reply:
    # urllib blocks; keep the event loop (and with it the gateway under test) running.
    return await asyncio.to_thread(_get, url)


@pytest.fixture
async def no_workers(settings: Settings) -> AsyncIterator[LocalStack]:
    """Gateway and streams, but no STT worker (and so no model to load)."""
    async with LocalStack(settings, stt_workers=0) as running:
        yield running


async def test_health_is_ok(no_workers: LocalStack) -> None:
    reply = await get(f"{no_workers.http_url}/health")
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert reply.json() == {"status": "ok"}


async def test_full_health_without_a_worker_is_503(no_workers: LocalStack) -> None:
    reply = await get(f"{no_workers.http_url}/health/full")
    assert reply.status == 503
    report = reply.json()
    assert report["ready"] is False
    assert report["nats"] is True
    assert "stt worker" in report["missing"]
    # Streams and the consumer were provisioned: the worker is the only thing missing.
    assert report["missing"] == ["stt worker"]
    assert report["stt_workers"] == []


@pytest.mark.slow  # the stack's worker holds the real Whisper model
async def test_full_health_lists_the_worker(stack: LocalStack) -> None:
    worker_ids = [w.worker_id for w in stack.workers]
    # The gateway learns of workers from heartbeats (every 0.5 s in the test settings): poll.
    deadline = time.monotonic() + 15.0
    while True:
        reply = await get(f"{stack.http_url}/health/full")
        if reply.status == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert reply.status == 200, reply.body
    report = reply.json()
    assert report["ready"] is True
    assert report["missing"] == []
    assert report["stt_workers"] == worker_ids


def sample_values(text: str) -> dict[str, float]:
    """Parse the exposition text the way Prometheus does; a malformed body fails here."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


async def test_metrics_are_prometheus_text(no_workers: LocalStack) -> None:
    before = await get(f"{no_workers.http_url}/metrics")
    assert before.status == 200
    assert before.content_type.startswith("text/plain")
    assert "nova_gateway_sessions" in before.body.decode()
    assert sample_values(before.body.decode())["nova_gateway_sessions_total"] == 0

    # One empty session (start, stop: no audio, so no worker needed) must be counted.
    async with connect(no_workers.ws_url) as ws:
        await ws.send(json.dumps({"type": "start"}))
        await ws.send(json.dumps({"type": "stop"}))
        async for _ in ws:  # started, summary, then the gateway closes
            pass
    # The handler's bookkeeping may finish a moment after the client saw the close: poll.
    deadline = time.monotonic() + 10.0
    while True:
        after = sample_values((await get(f"{no_workers.http_url}/metrics")).body.decode())
        if after["nova_gateway_sessions_active"] == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert after["nova_gateway_sessions_total"] == 1
    assert after["nova_gateway_sessions_active"] == 0


async def test_unknown_path_is_404(no_workers: LocalStack) -> None:
    reply = await get(f"{no_workers.http_url}/no/such/thing")
    assert reply.status == 404
    assert "/no/such/thing" in reply.json()["error"]


async def test_query_string_is_ignored(no_workers: LocalStack) -> None:
    reply = await get(f"{no_workers.http_url}/health?probe=k8s")
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}


async def test_without_provisioning_missing_streams_are_reported(settings: Settings) -> None:
    """A gateway told not to provision (no admin rights) says what `nova init` has to create."""
    unprovisioned = msgspec.structs.replace(
        settings, nats=msgspec.structs.replace(settings.nats, provision=False)
    )
    async with LocalStack(unprovisioned, stt_workers=0) as running:
        report = (await get(f"{running.http_url}/health/full")).json()
        prefix = settings.nats.subject_prefix.upper()
        assert f"stream {prefix}_AUDIO" in report["missing"]
        assert f"consumer {prefix}_AUDIO/stt" in report["missing"]

        nc = await connect_and_provision(unprovisioned, name="test-init", create=True)
        await nc.drain()
        report = (await get(f"{running.http_url}/health/full")).json()
        assert report["missing"] == ["stt worker"]
