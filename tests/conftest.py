"""Fixtures: one real nats-server per test session, a fresh subject/stream prefix per test,
the real Whisper base model loaded once, and an in-process Nova stack on free ports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.client import Client

from nova_cli.stack import LocalStack
from nova_common.nats_server import EmbeddedNatsServer
from nova_common.settings import Settings, load_settings
from nova_stt.service import load_model
from nova_stt.transcriber import SpeechToText

# Fixtures of the NATS permission tests (tests/nats_roles.py) and of the process tests
# (tests/processes.py), made available to every test module.
from tests.nats_roles import auth_server, provisioned  # noqa: F401
from tests.processes import (  # noqa: F401
    TEST_STREAMS,
    cli_data_dir,
    cli_dir,
    two_sentences_wav,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nova-data")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNatsServer]:
    with EmbeddedNatsServer(tmp_path_factory.mktemp("nats-store")) as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(nats_server: EmbeddedNatsServer, prefix: str, data_dir: Path) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "data_dir": str(data_dir),
            "nats": {"url": nats_server.url, "subject_prefix": prefix},
            "gateway": {"port": 0},
            "streams": {**TEST_STREAMS},
            "stt": {"durable": "stt", "fetch_timeout_s": 0.5, "heartbeat_interval_s": 0.5},
        },
    )


@pytest.fixture(scope="session")
def whisper(data_dir: Path) -> SpeechToText:
    """The real multilingual base model from the offline packages, loaded once."""
    return load_model(msgspec.structs.replace(load_settings(environ={}), data_dir=str(data_dir)))


@pytest.fixture
async def stack(settings: Settings, whisper: SpeechToText) -> AsyncIterator[LocalStack]:
    async with LocalStack(settings, stt_workers=1, model=whisper) as running:
        yield running


@pytest.fixture
async def nc(stack: LocalStack) -> AsyncIterator[Client]:
    """The test's own connection to the stack's NATS, standing in for a gateway."""
    client = await nats.connect(stack.nats_url)
    yield client
    await client.drain()
