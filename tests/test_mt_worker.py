"""The MT worker on a real nats-server with a real (tiny, random-weight) CTranslate2 model:
requests from several sessions are batched per language pair, and every translation is
published to the session it belongs to, naming the seq it translates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from nova_cli.runtime import connect_and_provision
from nova_common.lifecycle import id_header
from nova_common.messages import (
    ResultMessage,
    Translation,
    TranslationFailed,
    TranslationRequest,
    msgpack_encoder,
)
from nova_common.settings import Settings
from nova_common.subjects import Subjects, new_session_id
from nova_mt.backend import TranslationBackend
from nova_mt.ct2 import Ct2Backend
from nova_mt.service import make_worker
from nova_mt.worker import MtWorker
from tests.tiny_mt_model import build_tiny_model
from tests.worker_helpers import eventually, next_result

SENTENCES = [
    "Good morning everyone.",
    "The weather is nice today.",
    "I would like a cup of coffee.",
    "Please send the report to my office.",
]


class Recording:
    """The real backend, with a record of every call made to it."""

    def __init__(self, backend: TranslationBackend) -> None:
        self._backend = backend
        self.name = backend.name
        self.neural = backend.neural
        self.multilingual = backend.multilingual
        self.calls: list[tuple[list[str], str, str]] = []
        self.fail_next: BaseException | None = None

    def supports(self, source: str, target: str) -> bool:
        return self._backend.supports(source, target)

    def translate_batch(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        self.calls.append((list(texts), source, target))
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        return self._backend.translate_batch(texts, source, target)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("mt") / "tiny-nllb")


@pytest.fixture
def mt_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(
        settings,
        mt=msgspec.structs.replace(
            settings.mt, fetch_timeout_s=0.3, heartbeat_interval_s=0.5, nak_delay_s=0.2
        ),
    )


@pytest.fixture
def backend(tiny_model: Path) -> Recording:
    return Recording(Ct2Backend(tiny_model, max_decoding_length=24))


@pytest.fixture
async def nc(mt_settings: Settings) -> AsyncIterator[Client]:
    client = await connect_and_provision(mt_settings, name="test", create=True)
    yield client
    await client.drain()


async def publish_request(nc: Client, subjects: Subjects, request: TranslationRequest) -> None:
    await nc.jetstream().publish(
        subjects.text(request.session_id),
        msgpack_encoder.encode(request),
        headers=id_header(request),
    )


def request(session_id: str, seq: int, text: str, *targets: str) -> TranslationRequest:
    return TranslationRequest(
        session_id=session_id,
        seq=seq,
        text=text,
        source_language="en",
        targets=targets,
        start=float(seq),
        end=float(seq) + 1.0,
    )


async def run_worker(settings: Settings, backends: list[TranslationBackend]) -> tuple[
    MtWorker, asyncio.Task[None], Client
]:  # fmt: skip
    worker_nc = await nats.connect(settings.nats.url)
    worker = make_worker(worker_nc, settings, backends, CollectorRegistry())
    return worker, asyncio.create_task(worker.run()), worker_nc


async def stop_worker(worker: MtWorker, task: asyncio.Task[None], worker_nc: Client) -> None:
    worker.stop()
    await task
    await worker_nc.drain()


async def text_stream_empty(nc: Client, subjects: Subjects) -> bool:
    return (await nc.jetstream().stream_info(subjects.text_stream)).state.messages == 0


async def test_four_sessions_are_translated_in_one_batched_call(
    mt_settings: Settings, nc: Client, backend: Recording
) -> None:
    subjects = Subjects(mt_settings.nats.subject_prefix)
    sessions = [new_session_id() for _ in SENTENCES]
    subs = [await nc.subscribe(subjects.results(sid)) for sid in sessions]
    # Queued before the worker starts, so its first fetch takes all four.
    for i, (sid, text) in enumerate(zip(sessions, SENTENCES, strict=True)):
        await publish_request(nc, subjects, request(sid, i + 3, text, "es"))

    worker, task, worker_nc = await run_worker(mt_settings, [backend])
    try:
        results: list[ResultMessage] = [await next_result(sub, timeout=30) for sub in subs]
    finally:
        await stop_worker(worker, task, worker_nc)

    assert len(backend.calls) == 1, backend.calls
    texts, source, target = backend.calls[0]
    assert sorted(texts) == sorted(SENTENCES) and (source, target) == ("en", "es")
    expected = backend.translate_batch(SENTENCES, "en", "es")  # the same batch, directly
    for i, (sid, result) in enumerate(zip(sessions, results, strict=True)):
        assert isinstance(result, Translation), result
        assert result.session_id == sid
        assert result.seq == i + 3
        assert (result.language, result.source_language) == ("es", "en")
        assert result.backend == "ct2:tiny-nllb"
        assert result.text and result.text == expected[SENTENCES.index(SENTENCES[i])]
    assert await text_stream_empty(nc, subjects)


async def test_pairs_are_grouped_and_an_unsupported_pair_fails_alone(
    mt_settings: Settings, nc: Client, backend: Recording
) -> None:
    subjects = Subjects(mt_settings.nats.subject_prefix)
    a, b = new_session_id(), new_session_id()
    sub_a, sub_b = await nc.subscribe(subjects.results(a)), await nc.subscribe(subjects.results(b))
    await publish_request(nc, subjects, request(a, 0, SENTENCES[0], "es", "de", "ja"))
    await publish_request(nc, subjects, request(b, 0, SENTENCES[1], "de", "en"))

    worker, task, worker_nc = await run_worker(mt_settings, [backend])
    try:
        got_a = [await next_result(sub_a, timeout=30) for _ in range(3)]
        got_b = [await next_result(sub_b, timeout=30) for _ in range(2)]
        await eventually(lambda: text_stream_empty(nc, subjects), "requests acked", timeout=10)
    finally:
        await stop_worker(worker, task, worker_nc)

    # One call per (source, target): en→es, and en→de for both sessions together.
    pairs = sorted((source, target, len(texts)) for texts, source, target in backend.calls)
    assert pairs == [("en", "de", 2), ("en", "es", 1)]
    by_language = {r.language: r for r in got_a if isinstance(r, Translation | TranslationFailed)}
    assert isinstance(by_language["es"], Translation) and isinstance(by_language["de"], Translation)
    failed = by_language["ja"]
    assert isinstance(failed, TranslationFailed) and failed.code == "translation_unavailable"
    assert "ja" in failed.reason and failed.seq == 0
    # en → en needs no backend.
    same = next(r for r in got_b if isinstance(r, Translation) and r.language == "en")
    assert same.text == SENTENCES[1] and same.backend == "identity"


async def test_a_failing_backend_is_retried_and_each_translation_arrives_once(
    mt_settings: Settings, nc: Client, backend: Recording
) -> None:
    subjects = Subjects(mt_settings.nats.subject_prefix)
    sid = new_session_id()
    sub = await nc.subscribe(subjects.results(sid))
    backend.fail_next = RuntimeError("model busy")
    await publish_request(nc, subjects, request(sid, 0, SENTENCES[2], "es"))

    worker, task, worker_nc = await run_worker(mt_settings, [backend])
    try:
        result = await next_result(sub, timeout=30)
        assert isinstance(result, Translation) and result.seq == 0
        await eventually(lambda: text_stream_empty(nc, subjects), "request acked", timeout=10)
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=1.0)  # nothing else: no duplicate
    finally:
        await stop_worker(worker, task, worker_nc)
    assert len(backend.calls) == 2  # the failure, then the redelivery


async def test_an_undecodable_request_is_dropped_and_the_worker_goes_on(
    mt_settings: Settings, nc: Client, backend: Recording
) -> None:
    subjects = Subjects(mt_settings.nats.subject_prefix)
    sid = new_session_id()
    sub = await nc.subscribe(subjects.results(sid))
    await nc.jetstream().publish(subjects.text(sid), b"\xc1 not msgpack")
    await publish_request(nc, subjects, request(sid, 1, SENTENCES[3], "fr"))

    worker, task, worker_nc = await run_worker(mt_settings, [backend])
    try:
        result = await next_result(sub, timeout=30)
        assert isinstance(result, Translation) and result.seq == 1
        await eventually(lambda: text_stream_empty(nc, subjects), "both settled", timeout=10)
        assert not task.done()
    finally:
        await stop_worker(worker, task, worker_nc)
