"""Hypothesis fuzzing of both WebSocket protocols, ``/ws`` and the seed's ``/ws/v0``, against one
real gateway (a real nats-server behind it; no speech-to-text worker: what is fuzzed is the
gateway's handling of frames) over real websockets connections.

Each protocol is a ``RuleBasedStateMachine``: an example is a client that connects and sends
frames, one rule per kind of mistake real clients make (and valid audio in between, so that
sessions really start, segment, refuse, end and reconnect). Stateful rather than ``@given`` over
lists of frames because the protocol *is* a state machine: what a frame must get depends on
what came before (audio before ``start``, ``start`` twice, ``stop`` then audio, the seed's
session opening with its first audio and renewed by a new language), rules draw frames fit for
the state they find (audio in the session's own format), and a failure shrinks to the shortest
sequence of client actions, readable as a transcript. Hypothesis runs in a worker thread and
hands each step's I/O to the event loop that runs the gateway and the clients.

The oracle (tests/fuzz_wire.py, tests/fuzz_model.py): every frame gets the answer the README
documents within a bound — the reply, an error event with a documented code and a reason that
validates against ``schemas/``, or a close with a documented code and a reason; never a silent
hang, never 1011; nothing in the gateway's log that is an error or a traceback; and at the end
``/health`` answers and a fresh session still gets its audio to JetStream.

``NOVA_FUZZ_FRAMES`` (default 10,000) is the number of frames a run must send, split between
the two protocols; ``NOVA_FUZZ_SEED`` picks another (still reproducible) part of the input space
than CI's fixed one.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import nats
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.stateful import run_state_machine_as_test
from websockets.asyncio.client import connect

from nova_cli.stack import LocalStack
from nova_common.messages import AudioSegment
from nova_common.nats_server import EmbeddedNatsServer
from nova_common.settings import load_settings
from nova_common.subjects import Subjects
from tests.client import chunks
from tests.fuzz_machines import LIMIT, OPENED, FuzzMachine, Run, SeedFuzz, WsFuzz, speech
from tests.fuzz_model import SeedModel, WsModel
from tests.fuzz_strategies import Binary, Text
from tests.fuzz_wire import SEED, WS, GatewayLog, Tally, Wire
from tests.processes import TEST_STREAMS
from tests.speech import resample, silence

FRAMES = int(os.environ.get("NOVA_FUZZ_FRAMES", "10000"))
# The suite's 600 s is for the default run; a longer one gets ~20 ms a frame more (it takes ~2).
pytestmark = pytest.mark.timeout(600 + FRAMES // 50)
# CI is derandomized: a fixed seed, so a failure there reproduces anywhere and nobody's
# unrelated change turns it red by drawing new inputs. Exploring is a matter of choice.
SEED_BASE = int(os.environ.get("NOVA_FUZZ_SEED", "0"))
STEPS = 40
# Measured frames per example, to size a run (more examples follow if a run falls short).
FRAMES_PER_EXAMPLE = {"/ws": 90, "/ws/v0": 120}


# --------------------------------------------------------------------------- the gateway


@pytest.fixture(scope="module")
async def fuzzed(nats_server: EmbeddedNatsServer, data_dir: Path) -> AsyncIterator[LocalStack]:
    settings = load_settings(
        environ={},
        overrides={
            "data_dir": str(data_dir),
            "nats": {"url": nats_server.url, "subject_prefix": f"fz{uuid.uuid4().hex[:8]}"},
            "gateway": {
                "port": 0,
                "max_frame_bytes": LIMIT,
                # No STT worker: a stop's finals are owed for ever. Short waits keep it moving
                # (each owed final is then reported as finals_timeout, as documented).
                "final_timeout_s": 0.3,
                "shutdown_grace_s": 0.5,
            },
            "streams": {**TEST_STREAMS},
        },
    )
    async with LocalStack(settings, stt_workers=0) as stack:
        yield stack


@pytest.fixture
async def gateway_log() -> AsyncIterator[GatewayLog]:
    log = GatewayLog()
    with log.capturing(asyncio.get_running_loop()):
        yield log


# --------------------------------------------------------------------------- running


def fuzz(machine: type[FuzzMachine], run: Run, frames: int) -> None:
    """Examples of ``machine`` until at least ``frames`` frames were sent (in Hypothesis's
    thread). Each round has its own fixed seed: reproducible, and never the same examples."""
    per_example = FRAMES_PER_EXAMPLE[machine.path]
    round_ = 0
    while run.tally.frames < frames:
        missing = frames - run.tally.frames
        examples = max(math.ceil(missing / per_example * 1.1), 5)
        bound = type(f"{machine.__name__}Run", (machine,), {"run": run})
        seed(SEED_BASE * 1000 + round_)(bound)
        run_state_machine_as_test(
            bound,
            settings=settings(
                max_examples=examples,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,  # no examples kept between runs (.hypothesis/ is ignored)
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=[
                    HealthCheck.too_slow,
                    HealthCheck.data_too_large,
                    HealthCheck.filter_too_much,
                ],
                report_multiple_bugs=False,
            ),
        )
        round_ += 1


async def fuzz_protocol(machine: type[FuzzMachine], stack: LocalStack, log: GatewayLog) -> Tally:
    run = Run(asyncio.get_running_loop(), stack.ws_url)
    share = math.ceil(FRAMES / 2)
    started = time.monotonic()
    await asyncio.to_thread(fuzz, machine, run, share)
    print(
        f"{machine.path}: {run.tally.line()} in {time.monotonic() - started:.1f}s; "
        f"{len(log.events)} log events, {len(log.records)} log records"
    )
    assert run.tally.frames >= share, run.tally.line()
    assert not log.problems(), "\n".join(log.problems())
    return run.tally


async def test_fuzz_ws(fuzzed: LocalStack, gateway_log: GatewayLog) -> None:
    tally = await fuzz_protocol(WsFuzz, fuzzed, gateway_log)
    assert tally.answers["started"] and tally.answers["summary"], tally.line()
    await assert_gateway_healthy(fuzzed)
    assert await ws_session_reaches_jetstream(fuzzed) >= 1
    assert not gateway_log.problems(), "\n".join(gateway_log.problems())


async def test_fuzz_seed(fuzzed: LocalStack, gateway_log: GatewayLog) -> None:
    tally = await fuzz_protocol(SeedFuzz, fuzzed, gateway_log)
    assert tally.answers["status"], tally.line()
    await assert_gateway_healthy(fuzzed)
    await seed_session_reaches_jetstream(fuzzed)
    assert not gateway_log.problems(), "\n".join(gateway_log.problems())


SUMMARY = {"type": "summary", "session_id": "s", "finals": 1, "failed": 0, "audio_seconds": 1.5}


def test_the_schema_check_refuses_what_its_schema_does() -> None:
    """The oracle's own check: a check that passes anything would hide every bad event."""
    error = {"type": "error", "code": "bad_frame", "reason": "odd", "session_id": "s"}
    assert WS.schema.errors(error) == []
    assert WS.schema.errors({**error, "seq": None, "fatal": False}) == []
    for bad in (
        {k: v for k, v in error.items() if k != "reason"},
        {**error, "code": 7},
        {**error, "seq": "1"},
        {**error, "fatal": 1},
        {**error, "type": "oops"},
        {**SUMMARY, "finals": True},
        [error],
    ):
        assert WS.schema.errors(bad), bad
    assert WS.schema.errors(SUMMARY) == []
    assert (
        SEED.schema.errors({"type": "error", "message": "m", "code": "c", "client_id": "x"}) == []
    )
    assert SEED.schema.errors({"type": "error", "reason": "m", "code": "c", "client_id": "x"})


# --------------------------------------------------------------------------- still healthy


async def assert_gateway_healthy(stack: LocalStack) -> None:
    def get() -> int:
        with urllib.request.urlopen(stack.http_url + "/health", timeout=10) as response:
            return int(response.status)

    assert await asyncio.to_thread(get) == 200


async def _last_segment(stack: LocalStack, session_id: str, timeout: float = 10.0) -> AudioSegment:
    """The last utterance ``session_id`` published to the AUDIO stream (no worker takes it)."""
    subjects = Subjects(stack.settings.nats.subject_prefix)
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = await js.get_last_msg(subjects.audio_stream, subjects.audio(session_id))
                return msgspec.msgpack.decode(msg.data or b"", type=AudioSegment)
            except nats.js.errors.NotFoundError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no utterance of {session_id} in AUDIO") from None
                await asyncio.sleep(0.1)
    finally:
        await nc.drain()


async def _empty_the_queue(stack: LocalStack) -> None:
    """What the fuzz left in AUDIO (nobody transcribes it) may have filled the stream; a full
    stream refusing audio is right, and not what the check after it is about."""
    nc = await nats.connect(stack.nats_url)
    try:
        await nc.jetstream().purge_stream(Subjects(stack.settings.nats.subject_prefix).audio_stream)
    finally:
        await nc.drain()


async def ws_session_reaches_jetstream(stack: LocalStack) -> int:
    """A fresh, proper /ws session: started, speech in, summary, close 1000, and its
    utterances in JetStream. Returns how many utterances it published."""
    await _empty_the_queue(stack)
    audio = np.concatenate([silence(0.3), speech(), silence(1.0)])
    async with connect(stack.ws_url, max_size=None) as ws:
        wire = Wire(ws, WS, Tally())
        model = WsModel(LIMIT)
        start = Text(
            json.dumps({"type": "start", "sample_rate": 16000}),
            {"type": "start", "sample_rate": 16000},
        )
        await wire.send(start)
        started = await wire.check(start, model.answer(start))
        assert started is not None
        for chunk in chunks(audio, 16000):
            await wire.send(Binary(chunk))
            model.answer(Binary(chunk))
        stop = Text('{"type": "stop"}', {"type": "stop"})
        await wire.send(stop)
        summary = await wire.check(stop, model.answer(stop))
    assert summary is not None and summary["failed"] >= 1, summary  # no worker: finals owed
    segment = await _last_segment(stack, started["session_id"])
    assert segment.seq == summary["failed"] - 1 and segment.end <= summary["audio_seconds"]
    return int(summary["failed"])


async def seed_session_reaches_jetstream(stack: LocalStack) -> None:
    """A fresh seed client: greeted, status on request, speech at 48 kHz, then it leaves, and
    its utterance is in JetStream under its client_id."""
    await _empty_the_queue(stack)
    audio = np.concatenate([silence(0.3), speech(), silence(1.0)])
    url = stack.ws_url.removesuffix("/ws") + "/ws/v0"
    async with connect(url, max_size=None) as ws:
        wire, model = Wire(ws, SEED, Tally()), SeedModel(LIMIT)
        greeting = await wire.check(OPENED, model.status(renews=None))
        assert greeting is not None
        ask = Text('{"type": "get_status"}', {"type": "get_status"})
        await wire.send(ask)
        status = await wire.check(ask, model.answer(ask))
        assert status is not None and status["client_id"] == greeting["client_id"]
        for chunk in chunks(resample(audio, 16000, 48000), 48000):
            await wire.send(SeedFuzz._frame({"sampleRate": 48000}, chunk))
    segment = await _last_segment(stack, greeting["client_id"])
    assert segment.seq == 0 and segment.end > 1.0, segment
