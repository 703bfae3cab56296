"""The circuit breaker on a real nats-server with the real STT and MT workers and the real
gateway: the model's calls fail while a flag is set (the model is the input here; its calls
are the real model's otherwise), the breaker opens, the worker stops fetching and says so in
its heartbeat and in the gateway's /health/full, then it recovers and the work that waited is
done, nothing lost, nothing dead-lettered. (The breaker's states: test_breaker.)"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec
import nats
import pytest
from nats.aio.client import Client

from nova_cli.stack import LocalStack
from nova_common import dead_letters
from nova_common.breaker import BreakerState
from nova_common.lifecycle import id_header
from nova_common.messages import (
    Transcript,
    Translation,
    TranslationRequest,
    WorkerHeartbeat,
    heartbeat_decoder,
    msgpack_encoder,
)
from nova_common.settings import Settings
from nova_common.subjects import Subjects, new_session_id
from nova_mt.apertium import ApertiumBackend
from nova_stt.transcriber import SpeechResult, SpeechToText
from tests.speech import speak, wer
from tests.worker_helpers import (
    eventually,
    next_result,
    publish,
    segment,
    stream_messages,
    subjects_of,
)

pytestmark = pytest.mark.slow  # the STT worker holds the real Whisper model

SENTENCES = [
    "Please send the report to my office.",
    "I would like a cup of coffee.",
    "The children are playing in the garden.",
]
OPEN_S = 8.0
# Past the nak delay and the fetch timeouts (0.5 s STT, 1 s MT), so that what was in flight has settled.
SETTLE_S = 1.5
# Long enough that a worker still fetching would have fetched (redeliveries come after 0.3 s),
# short enough to end inside OPEN_S.
STILL_S = 3.0


class FailingModel:
    """The real Whisper model, whose calls raise while ``failing`` is set."""

    def __init__(self, model: SpeechToText) -> None:
        self._model = model
        self.failing = True
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def transcribe(self, *args: Any, **kwargs: Any) -> SpeechResult:
        self.calls += 1
        if self.failing:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self._model.transcribe(*args, **kwargs)


class FailingBackend:
    """Debian's real Apertium, whose calls raise while ``failing`` is set."""

    def __init__(self, backend: ApertiumBackend) -> None:
        self._backend = backend
        self.name = backend.name
        self.neural = backend.neural
        self.multilingual = backend.multilingual
        self.failing = True
        self.calls = 0

    def supports(self, source: str, target: str) -> bool:
        return self._backend.supports(source, target)

    def translate_batch(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        self.calls += 1
        if self.failing:
            raise OSError("apertium: broken pipe")
        return self._backend.translate_batch(texts, source, target)


def breaking(settings: Settings) -> Settings:
    """Two model failures open the breaker for OPEN_S; a failed message is back in 0.3 s."""
    breaker = {"breaker_failures": 2, "breaker_open_s": OPEN_S, "nak_delay_s": 0.3}
    return msgspec.structs.replace(
        settings,
        stt=msgspec.structs.replace(settings.stt, batch_size=4, **breaker),  # type: ignore[arg-type]
        mt=msgspec.structs.replace(settings.mt, heartbeat_interval_s=0.5, **breaker),  # type: ignore[arg-type]
    )


def full_health(http_url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{http_url}/health/full", timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


async def health_until(stack: LocalStack, wanted: Any, what: str) -> dict[str, Any]:
    """Poll /health/full until ``wanted(status, report)``; the last report."""
    seen: list[dict[str, Any]] = []

    async def check() -> bool:
        status, report = await asyncio.to_thread(full_health, stack.http_url)
        seen.append(report)
        return bool(wanted(status, report))

    await eventually(check, what, timeout=60.0)
    return seen[-1]


class Beats:
    """Every heartbeat of a role, as the gateway hears them."""

    def __init__(self) -> None:
        self.seen: list[WorkerHeartbeat] = []

    async def start(self, nc: Client, subjects: Subjects, role: str) -> None:
        async def on_beat(msg: Any) -> None:
            self.seen.append(heartbeat_decoder.decode(msg.data))

        await nc.subscribe(subjects.worker_heartbeats(role), cb=on_beat)

    async def heard(self, worker_id: str) -> None:
        async def closed() -> bool:
            return self.states(worker_id) == ["closed"]

        await eventually(closed, f"a heartbeat of {worker_id}", timeout=30.0)

    def states(self, worker_id: str) -> list[str]:
        """The breaker states the worker announced, repeats folded; a half-open trial that
        succeeds quickly may close it before a heartbeat goes out, so half-open is left out."""
        out: list[str] = []
        for beat in self.seen:
            state = beat.breaker
            if beat.worker_id == worker_id and state != "half_open" and out[-1:] != [state]:
                out.append(state)
        return out


async def nothing_dead_lettered(nc: Client, subjects: Subjects) -> None:
    js = nc.jetstream()
    assert [letter async for letter in dead_letters.all_of(js, subjects)] == []
    assert await stream_messages(js, subjects.dlq_stream) == 0


async def test_stt_breaker_opens_stops_fetching_reports_and_recovers(
    settings: Settings, whisper: SpeechToText
) -> None:
    settings = breaking(settings)
    subjects = subjects_of(settings)
    model = FailingModel(whisper)
    async with LocalStack(settings, stt_workers=0) as stack:
        nc = await nats.connect(stack.nats_url)
        try:
            js = nc.jetstream()
            beats = Beats()
            await beats.start(nc, subjects, "stt")
            sid = new_session_id()
            results = await nc.subscribe(subjects.results(sid))
            for seq, text in enumerate(SENTENCES):
                # The language given: the subject here is the breaker, not detection.
                pcm = speak(text).tobytes()
                await publish(js, subjects, segment(sid, seq, pcm, language="en"))
            # Queued before the worker starts, so that its first batch holds all three.
            worker = await stack.add_worker(model)  # type: ignore[arg-type]

            # Two failures open it; the third segment of the batch goes back untried.
            report = await health_until(
                stack, lambda status, r: status == 503 and r["breaker_open"], "the breaker to open"
            )
            assert report["breaker_open"] == [worker.worker_id], report
            assert report["stt_workers"] == [] and report["missing"] == ["stt worker"], report
            assert worker.gate.state is BreakerState.OPEN
            assert model.calls == 2
            assert beats.states(worker.worker_id) == ["closed", "open"]

            # It fetches nothing while open: every segment waits in the queue, none delivered.
            await asyncio.sleep(SETTLE_S)
            consumer = await js.consumer_info(subjects.audio_stream, settings.stt.durable)
            delivered = consumer.delivered.consumer_seq
            await asyncio.sleep(STILL_S)
            consumer = await js.consumer_info(subjects.audio_stream, settings.stt.durable)
            assert consumer.delivered.consumer_seq == delivered, consumer
            assert consumer.num_waiting == 0, consumer  # no pull request of its is waiting
            # Three delivered, two run: the third went back untried when the breaker opened.
            assert delivered == len(SENTENCES), consumer
            assert model.calls == 2
            assert await stream_messages(js, subjects.audio_stream) == len(SENTENCES)
            assert worker.gate.state is BreakerState.OPEN, "still inside breaker_open_s"

            model.failing = False  # the model works again; the half-open trial will show it
            transcripts: list[Transcript] = []
            started = time.monotonic()
            while len({t.seq for t in transcripts}) < len(SENTENCES):
                result = await next_result(results)
                assert isinstance(result, Transcript), result  # no failure was reported
                transcripts.append(result)
            assert time.monotonic() - started < 60.0

            async def drained() -> bool:
                consumer = await js.consumer_info(subjects.audio_stream, settings.stt.durable)
                return (
                    consumer.num_pending == 0
                    and consumer.num_ack_pending == 0
                    and await stream_messages(js, subjects.audio_stream) == 0
                )

            await eventually(drained, "every segment acked, AUDIO empty", timeout=30.0)
            report = await health_until(
                stack, lambda status, r: status == 200, "the worker to be ready again"
            )
            assert report["stt_workers"] == [worker.worker_id] and report["breaker_open"] == []
            assert worker.gate.state is BreakerState.CLOSED
            assert beats.states(worker.worker_id) == ["closed", "open", "closed"]

            with pytest.raises(nats.errors.TimeoutError):  # a duplicate would show up now
                await next_result(results, timeout=1.0)
            assert Counter(t.seq for t in transcripts) == {0: 1, 1: 1, 2: 1}
            by_seq = sorted(transcripts, key=lambda t: t.seq)
            assert wer(SENTENCES, [t.text for t in by_seq]) <= 0.2, [t.text for t in by_seq]
            assert worker.processed == len(SENTENCES)
            await nothing_dead_lettered(nc, subjects)
            assert not stack.failed.is_set()
        finally:
            await nc.drain()


async def test_mt_breaker_opens_on_backend_failures_and_recovers(settings: Settings) -> None:
    """The router turns a backend's exceptions into failed outcomes: those open the breaker
    too. Requests one at a time, so that each is a batch of its own."""
    settings = breaking(settings)
    settings = msgspec.structs.replace(
        settings, mt=msgspec.structs.replace(settings.mt, batch_size=1)
    )
    subjects = subjects_of(settings)
    apertium = ApertiumBackend.discover("apertium")
    assert apertium is not None and apertium.supports("en", "es"), "make test installs it"
    backend = FailingBackend(apertium)
    async with LocalStack(settings, stt_workers=0) as stack:
        worker = await stack.add_mt_worker([backend])  # type: ignore[list-item]
        nc = await nats.connect(stack.nats_url)
        try:
            js = nc.jetstream()
            beats = Beats()
            await beats.start(nc, subjects, "mt")
            await health_until(
                stack, lambda _, r: r["mt_workers"] == [worker.worker_id], "the MT worker"
            )
            await beats.heard(worker.worker_id)
            sid = new_session_id()
            results = await nc.subscribe(subjects.results(sid))
            texts = ["Good morning.", "Thank you for your help.", "The train is late again."]
            for seq, text in enumerate(texts):
                request = TranslationRequest(
                    session_id=sid, seq=seq, text=text, source_language="en", targets=("es",),
                    start=float(seq), end=seq + 1.0, sent_at=time.time(),
                )  # fmt: skip
                await js.publish(
                    subjects.text(sid), msgpack_encoder.encode(request), headers=id_header(request)
                )

            report = await health_until(
                stack, lambda _, r: r["breaker_open"], "the MT worker's breaker to open"
            )
            assert report["breaker_open"] == [worker.worker_id] and report["mt_workers"] == []
            calls = backend.calls
            assert calls == 2
            await asyncio.sleep(SETTLE_S)
            consumer = await js.consumer_info(subjects.text_stream, settings.mt.durable)
            delivered = consumer.delivered.consumer_seq
            await asyncio.sleep(STILL_S)
            consumer = await js.consumer_info(subjects.text_stream, settings.mt.durable)
            assert consumer.delivered.consumer_seq == delivered and backend.calls == calls
            assert consumer.num_waiting == 0, consumer
            assert await stream_messages(js, subjects.text_stream) == len(texts)

            backend.failing = False
            translations: list[Translation] = []
            while len({t.seq for t in translations}) < len(texts):
                result = await next_result(results, timeout=60.0)
                assert isinstance(result, Translation), result
                translations.append(result)
            assert {t.seq: t.language for t in translations} == {0: "es", 1: "es", 2: "es"}
            assert "gracias" in translations[[t.seq for t in translations].index(1)].text.lower()

            async def drained() -> bool:
                return await stream_messages(js, subjects.text_stream) == 0

            await eventually(drained, "every request acked, TEXT empty", timeout=30.0)
            await health_until(
                stack, lambda _, r: r["mt_workers"] == [worker.worker_id] and not r["breaker_open"],
                "the MT worker to be ready again",
            )  # fmt: skip
            assert beats.states(worker.worker_id) == ["closed", "open", "closed"]
            with pytest.raises(nats.errors.TimeoutError):
                await next_result(results, timeout=1.0)
            assert len(translations) == len(texts)
            await nothing_dead_lettered(nc, subjects)
        finally:
            await nc.drain()
