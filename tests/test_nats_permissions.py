"""Per-role NATS users against the real nats-server, with the config Nova generates for a fresh
prefix: what each role is refused is asserted from the server's own permission errors, what it
may do is done. Then a whole file goes through a stack whose gateway, STT and MT workers each
connect as their own role's user, and the server refuses nothing.
"""

from __future__ import annotations

import asyncio

import aiohttp
import msgspec
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from prometheus_client import CollectorRegistry

from nova_cli.stack import LocalStack
from nova_client.streaming import stream_audio
from nova_common import provision
from nova_common.lifecycle import id_header
from nova_common.messages import (
    StartMessage,
    Transcript,
    TranslationFailed,
    TranslationRequest,
    msgpack_encoder,
    result_decoder,
)
from nova_common.nats_conn import connect
from nova_common.settings import Settings
from nova_common.subjects import Subjects, new_session_id
from nova_gateway.replay import audio_pending, read_results
from nova_mt.apertium import ApertiumBackend
from nova_mt.service import make_worker as make_mt_worker
from nova_stt.transcriber import SpeechToText
from tests.client import chunks
from tests.nats_roles import AuthServer, as_role
from tests.speech import speak, wer, with_pauses
from tests.worker_helpers import eventually

# A refused request gets no answer at all: keep the wait for it short.
DENIED_WAIT_S = 1.0


def subjects_of(settings: Settings) -> Subjects:
    return Subjects(settings.nats.subject_prefix)


def transcript(session_id: str, seq: int, text: str) -> Transcript:
    return Transcript(session_id=session_id, seq=seq, text=text, language="en",
                      language_probability=1.0, start=0.0, end=1.0, worker_id="test",
                      compute_s=0.0)  # fmt: skip


async def test_the_gateway_cannot_subscribe_to_audio(
    provisioned: Settings, auth_server: AuthServer
) -> None:
    subjects = subjects_of(provisioned)
    session = new_session_id()
    async with as_role(auth_server, "gateway") as gateway:
        sub = await gateway.nc.subscribe(subjects.audio_all)
        await gateway.nc.flush()
        ack = await gateway.nc.jetstream().publish(subjects.audio(session), b"speech")
        assert ack.stream == subjects.audio_stream  # the audio went in...
        with pytest.raises(TimeoutError):  # ...and the gateway never sees it on the bus
            await sub.next_msg(timeout=DENIED_WAIT_S)
        assert gateway.refused("subscription", subjects.audio_all), gateway.errors


async def test_the_gateway_cannot_read_audio_through_jetstream(
    provisioned: Settings, auth_server: AuthServer
) -> None:
    """No consumer of its own on AUDIO (durable or not), no message by sequence, and no fetch
    from the workers' consumer, which would take their work away."""
    subjects = subjects_of(provisioned)
    stream = subjects.audio_stream
    session = new_session_id()
    async with as_role(auth_server, "gateway") as gateway:
        js = gateway.nc.jetstream(timeout=DENIED_WAIT_S)
        await js.publish(subjects.audio(session), b"speech")
        with pytest.raises(TimeoutError):
            await js.add_consumer(stream, ConsumerConfig(durable_name="peek",
                                                         ack_policy=AckPolicy.NONE))  # fmt: skip
        assert gateway.refused("publish", f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.peek"), (
            gateway.errors
        )
        with pytest.raises(TimeoutError):
            await js.pull_subscribe(subjects.audio(session), stream=stream)
        with pytest.raises(TimeoutError):
            await js.get_msg(stream, 1)
        assert gateway.refused("publish", f"$JS.API.STREAM.MSG.GET.{stream}"), gateway.errors
        with pytest.raises(TimeoutError):
            await js.get_msg(stream, 1, direct=True)
        workers = await js.pull_subscribe_bind(provisioned.stt.durable, stream=stream)
        with pytest.raises(TimeoutError):
            await workers.fetch(1, timeout=DENIED_WAIT_S)
        assert gateway.refused(
            "publish", f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{provisioned.stt.durable}"
        ), gateway.errors
    async with as_role(auth_server, "admin") as admin:
        ajs = admin.nc.jetstream()
        assert [c.name for c in await ajs.consumers_info(stream)] == [provisioned.stt.durable]
        info = await ajs.consumer_info(stream, provisioned.stt.durable)
        assert info.num_pending == 1 and info.delivered.stream_seq == 0  # still the workers'


async def test_the_gateway_publishes_audio_and_reads_results(
    provisioned: Settings, auth_server: AuthServer
) -> None:
    subjects = subjects_of(provisioned)
    session = new_session_id()
    result = transcript(session, 0, "hello there")
    async with as_role(auth_server, "gateway") as gateway, as_role(auth_server, "stt") as stt:
        js = gateway.nc.jetstream()
        live = await gateway.nc.subscribe(subjects.results(session))
        partials = await gateway.nc.subscribe(subjects.partials(session))
        await js.publish(subjects.audio(session), b"speech")
        await js.publish(subjects.windows(session), b"window")
        assert await audio_pending(js, subjects, session) == 1
        await stt.nc.jetstream().publish(subjects.results(session), msgpack_encoder.encode(result))
        await stt.nc.publish(subjects.partials(session), b"partial")
        assert result_decoder.decode((await live.next_msg(timeout=10)).data) == result
        assert (await partials.next_msg(timeout=10)).data == b"partial"
        # Replay and subtitles read RESULTS through a consumer of the gateway's own.
        assert await read_results(js, subjects, session, complete=True) == [result]
        # The readiness check asks after every stream and consumer.
        topology = provision.topology(subjects, provisioned.streams, provisioned.stt,
                                      provisioned.mt)  # fmt: skip
        assert await provision.missing(js, topology) == []
        assert gateway.errors == [] and stt.errors == []
    assert auth_server.violations() == []


async def test_workers_cannot_publish_outside_their_subjects(
    provisioned: Settings, auth_server: AuthServer
) -> None:
    subjects = subjects_of(provisioned)
    session = new_session_id()
    async with as_role(auth_server, "stt") as stt, as_role(auth_server, "mt") as mt:
        await stt.nc.publish(subjects.audio(session), b"forged audio")
        await mt.nc.publish(subjects.text(session), b"forged text")
        await mt.nc.publish(subjects.partials(session), b"forged partial")
        await stt.nc.publish(subjects.worker_heartbeats("mt"), b"forged heartbeat")
        # Nor read what is not theirs: other sessions' results, the gateway's replies.
        await stt.nc.subscribe(subjects.results_all)
        await mt.nc.subscribe("_INBOX_gateway.>")
        await stt.nc.flush()
        await mt.nc.flush()

        async def answered() -> bool:
            return len(stt.errors) >= 3 and len(mt.errors) >= 3

        await eventually(answered, "the server's permission errors", timeout=10)
        assert stt.refused("publish", subjects.audio(session)), stt.errors
        assert stt.refused("publish", subjects.worker_heartbeats("mt")), stt.errors
        assert stt.refused("subscription", subjects.results_all), stt.errors
        assert mt.refused("publish", subjects.text(session)), mt.errors
        assert mt.refused("publish", subjects.partials(session)), mt.errors
        assert mt.refused("subscription", "_INBOX_gateway.>"), mt.errors
        # What each may publish goes through.
        await stt.nc.jetstream().publish(subjects.text(session), b"transcript")
        await mt.nc.jetstream().publish(subjects.results(session), b"translation")
    async with as_role(auth_server, "admin") as admin:
        js = admin.nc.jetstream()
        assert (await js.stream_info(subjects.audio_stream)).state.messages == 0
        assert (await js.stream_info(subjects.text_stream)).state.messages == 1


async def test_a_worker_without_admin_rights_leaves_a_lost_consumer_to_the_admin(
    provisioned: Settings, auth_server: AuthServer
) -> None:
    """With ``nats.provision`` off (as its user must run) the MT worker neither provisions nor
    re-creates its vanished consumer: it waits, and works once `nova init` has made it again."""
    fast = msgspec.structs.replace(
        provisioned.mt,
        fetch_timeout_s=0.2,
        rebind_after_idle=1,
        rebind_after_errors=1,
        heartbeat_interval_s=0.5,
    )
    mt_settings = auth_server.users.settings_for(
        "mt", msgspec.structs.replace(provisioned, mt=fast)
    )
    assert mt_settings.nats.provision is False
    subjects = subjects_of(provisioned)
    admin_nc = await connect(auth_server.users.nats_settings("admin", provisioned.nats), name="a")
    admin = admin_nc.jetstream()
    worker_nc = await connect(mt_settings.nats, name="nova-mt")
    # No backends: every request is answered with a failure, which is enough to see it work.
    worker = make_mt_worker(worker_nc, mt_settings, [], CollectorRegistry())
    running = asyncio.create_task(worker.run())
    try:
        await admin.delete_consumer(subjects.text_stream, fast.durable)
        await asyncio.sleep(2.0)  # several idle fetches and re-binds
        assert worker.consumers_recreated == 0
        assert fast.durable not in [
            c.name for c in await admin.consumers_info(subjects.text_stream)
        ]

        await provision.provision(admin, provision.topology(subjects, provisioned.streams,
                                                           provisioned.stt, fast))  # fmt: skip
        session = new_session_id()
        results = await admin_nc.subscribe(subjects.results(session))
        request = TranslationRequest(session_id=session, seq=0, text="Good morning.",
                                     source_language="en", targets=("es",), start=0, end=1)  # fmt: skip
        await admin.publish(subjects.text(session), msgpack_encoder.encode(request),
                            headers=id_header(request))  # fmt: skip
        answer = result_decoder.decode((await results.next_msg(timeout=30)).data)
        assert isinstance(answer, TranslationFailed) and answer.seq == 0, answer
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
        await worker_nc.drain()
        await admin_nc.drain()
    assert auth_server.violations() == []


@pytest.mark.slow
async def test_a_file_through_a_stack_whose_services_each_have_their_own_user(
    provisioned: Settings, auth_server: AuthServer, whisper: SpeechToText
) -> None:
    english = ["Good morning, everyone.", "Please close the door."]
    apertium = ApertiumBackend.discover("apertium")
    assert apertium is not None and ("en", "es") in apertium.pairs, "make test installs it"
    stack = LocalStack(provisioned, stt_workers=1, model=whisper, mt_workers=1,
                       backends=[apertium], users=auth_server.users)  # fmt: skip
    async with stack:
        audio = with_pauses([speak(s) for s in english])
        start = StartMessage(language="en", translate_to=("es",))
        result = await stream_audio(stack.ws_url, start, chunks(audio, 16000))
        async with aiohttp.ClientSession() as http:
            subtitles = await http.get(
                f"{stack.http_url}/sessions/{result.session_id}/subtitles.srt"
            )
            srt = await subtitles.text()
            health = await http.get(f"{stack.http_url}/health/full")
            report = await health.json()
        roles = {c.get("name"): auth_server.role_of(c) for c in auth_server.connections()}

    assert result.errors == [] and result.translation_errors == [], result
    assert [f.seq for f in result.finals] == [0, 1]
    assert wer(english, [f.text for f in result.finals]) <= 0.2, result.finals
    assert sorted(t.seq for t in result.translations) == [0, 1], result.translations
    assert subtitles.status == 200 and "door" in srt.lower(), srt
    assert health.status == 200 and report["ready"], report
    # Each service connected as its own role, and the server refused none of them anything.
    assert roles == {"nova-gateway": "gateway", "nova-stt": "stt", "nova-mt": "mt"}, roles
    assert auth_server.violations() == []
