"""A real 3-node JetStream cluster, started from the shipped deploy/cluster config on loopback:
Nova's streams provisioned with replicas 3 really are on three nodes, and a live session loses
nothing when the node leading the AUDIO stream is SIGKILLed in the middle of it.

One cluster for the module; its users are the shipped ones (deploy/nats-users.conf, for
prefix 'nova'), so every service connects as its own role, as in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ClusterInfo

from nova_cli.nats_config import nkey_variable
from nova_cli.runtime import connect_and_provision
from nova_cli.stack import LocalStack
from nova_client.streaming import SessionResult, stream_audio
from nova_common.messages import StartMessage
from nova_common.nats_auth import ROLES, Durables
from nova_common.nats_cluster import ClusterError, NatsCluster
from nova_common.nats_conn import NatsUnavailable, connect, server_urls
from nova_common.nats_server import EmbeddedNatsServer
from nova_common.nats_users import RoleUsers, ensure_users, public_key
from nova_common.provision import topology
from nova_common.settings import Settings, load_settings
from nova_common.subjects import Subjects
from nova_stt.transcriber import SpeechToText
from tests.client import chunks
from tests.processes import TEST_STREAMS
from tests.speech import speak, wer, with_pauses

REPO = Path(__file__).resolve().parent.parent
NODE_CONFIG = REPO / "deploy" / "cluster" / "nats-server.conf"
PREFIX = "nova"  # what the shipped users' permissions are made for

SENTENCES = [
    "Good morning, everyone, and welcome to the meeting.",
    "Please send the report to my office.",
    "I would like a cup of coffee.",
    "The weather is very nice today.",
    "We will meet again next week.",
]


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> RoleUsers:
    return ensure_users(tmp_path_factory.mktemp("cluster-users"), Subjects(PREFIX), Durables())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, users: RoleUsers) -> Iterator[NatsCluster]:
    keys = {nkey_variable(role): public_key(users.seed_file(role).read_bytes()) for role in ROLES}
    with NatsCluster(NODE_CONFIG, tmp_path_factory.mktemp("cluster"), environ=keys) as running:
        yield running


@pytest.fixture
def cluster_settings(cluster: NatsCluster, data_dir: Path) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "data_dir": str(data_dir),
            "nats": {"url": cluster.url, "subject_prefix": PREFIX},
            "gateway": {"port": 0},
            # A delivery whose ack died with a node comes back after 6 s, not 30.
            "streams": {"replicas": 3, **TEST_STREAMS, "ack_wait_s": 6.0},
            "stt": {"fetch_timeout_s": 0.5, "heartbeat_interval_s": 0.5},
        },
    )


@pytest.fixture
async def admin(cluster_settings: Settings, users: RoleUsers) -> AsyncIterator[Client]:
    """The test's own eyes on the cluster: the admin role, which may read stream info."""
    nc = await connect(users.nats_settings("admin", cluster_settings.nats), name="test-cluster")
    yield nc
    await nc.drain()


def replicas_of(cluster_info: ClusterInfo | None) -> tuple[str | None, list[tuple[str, bool]]]:
    assert cluster_info is not None, "no cluster info: not a clustered stream"
    peers = [(p.name or "", bool(p.current)) for p in cluster_info.replicas or []]
    return cluster_info.leader, peers


@pytest.mark.slow  # three nats-servers
async def test_streams_provisioned_with_replicas_3_are_on_all_three_nodes(
    cluster: NatsCluster, cluster_settings: Settings, users: RoleUsers, admin: Client
) -> None:
    s = cluster_settings
    # As in production: the services may not provision, the admin does (LocalStack, users=).
    async with LocalStack(s, stt_workers=0, users=users):
        pass
    js = admin.jetstream()
    topo = topology(Subjects(PREFIX), s.streams, s.stt, s.mt)
    nodes = {node.name for node in cluster.nodes}
    # Every node fsyncs every write, as the shipped config says.
    assert [node.monitor("/jsz")[1]["config"]["sync_always"] for node in cluster.nodes] == [
        True
    ] * 3
    for config in topo.streams:
        assert config.name is not None
        info = await js.stream_info(config.name)
        assert info.config.num_replicas == 3, config.name
        leader, peers = replicas_of(info.cluster)
        assert {leader, *(name for name, _ in peers)} == nodes, (config.name, info.cluster)
        assert all(current for _, current in peers), (config.name, peers)
    for stream, consumer in topo.consumers:
        assert consumer.durable_name is not None
        cinfo = await js.consumer_info(stream, consumer.durable_name)
        leader, peers = replicas_of(cinfo.cluster)  # a consumer follows its stream's replicas
        assert {leader, *(name for name, _ in peers)} == nodes, (consumer.durable_name, peers)


def test_nats_url_names_the_nodes_comma_separated() -> None:
    assert server_urls("nats://a:4222, nats://b:4222,nats://c:4222") == [
        "nats://a:4222",
        "nats://b:4222",
        "nats://c:4222",
    ]
    assert server_urls("nats://a:4222") == ["nats://a:4222"]
    with pytest.raises(NatsUnavailable, match="names no server"):
        server_urls(" , ")


def test_a_node_config_variable_left_unset_is_named(tmp_path: Path) -> None:
    # The nodes' own addresses come from the launcher; the roles' nkeys are missing here.
    with pytest.raises(ClusterError, match=r"exited with 1: .*NOVA_NKEY_GATEWAY"):
        NatsCluster(NODE_CONFIG, tmp_path, environ={}).start(timeout=10)


async def test_replicas_3_on_a_single_server_is_refused_with_what_to_do(
    nats_server: EmbeddedNatsServer, prefix: str
) -> None:
    settings = load_settings(
        environ={},
        overrides={"nats": {"url": nats_server.url, "subject_prefix": prefix},
                   "streams": {"replicas": 3}},
    )  # fmt: skip
    with pytest.raises(NatsUnavailable, match="replicas = 3 needs a JetStream cluster"):
        await connect_and_provision(settings, name="test-r3")


@dataclass
class Kill:
    node: str = ""
    sent_s: float = 0.0  # how much of the recording had been sent when it died
    also: tuple[str, ...] = ()  # what else the node led
    reelected_s: float = 0.0  # until AUDIO had a leader again


async def kill_audio_leader(
    cluster: NatsCluster, js: JetStreamContext, subjects: Subjects, consumer: str, sent: list[float]
) -> Kill:
    """SIGKILL the node leading the AUDIO stream: the one whose loss takes the stream that
    holds the utterances not yet transcribed through an election (the hardest of the three;
    a random node is often a mere follower, whose loss changes nothing the test can see)."""
    audio = await js.stream_info(subjects.audio_stream)
    node = audio.cluster.leader if audio.cluster else None
    assert node, audio.cluster
    consumer_info = await js.consumer_info(subjects.audio_stream, consumer)
    results = await js.stream_info(subjects.results_stream)
    leaders = {
        "the meta group": cluster.meta_leader(),
        "the stt consumer": consumer_info.cluster.leader if consumer_info.cluster else None,
        "RESULTS": results.cluster.leader if results.cluster else None,
    }
    also = tuple(what for what, leader in leaders.items() if leader == node)
    cluster.kill(node)
    kill = Kill(node=node, sent_s=sent[-1] if sent else 0.0, also=also)
    began = time.monotonic()
    while True:
        try:
            info = await asyncio.wait_for(js.stream_info(subjects.audio_stream), 1.0)
            if info.cluster and info.cluster.leader not in (None, node):
                break
        except Exception:  # an election under way answers with errors, or not at all
            pass
        assert time.monotonic() - began < 30, "AUDIO found no new leader within 30 s"
        await asyncio.sleep(0.2)
    kill.reelected_s = time.monotonic() - began
    return kill


@pytest.mark.slow  # three nats-servers and the real Whisper model
async def test_a_node_killed_mid_stream_loses_nothing(
    cluster: NatsCluster,
    cluster_settings: Settings,
    users: RoleUsers,
    admin: Client,
    whisper: SpeechToText,
) -> None:
    s = cluster_settings
    subjects = Subjects(PREFIX)
    js = admin.jetstream()
    audio = with_pauses([speak(sentence) for sentence in SENTENCES])
    seconds = len(audio) / 16000
    # The language given and no partials: where utterances end then depends on the audio
    # alone, so the undisturbed run's finals are what the disturbed one must give, word for word.
    start = StartMessage(language="en", partials=False)
    async with LocalStack(s, stt_workers=1, model=whisper, users=users) as stack:
        undisturbed = await stream_audio(stack.ws_url, start, chunks(audio, 16000))

        sent: list[float] = []
        first_final = asyncio.Event()
        began = time.monotonic()

        async def kill_after_the_first_final() -> Kill:
            await first_final.wait()
            return await kill_audio_leader(cluster, js, subjects, s.stt.durable, sent)

        killing = asyncio.create_task(kill_after_the_first_final())
        try:
            disturbed: SessionResult = await asyncio.wait_for(
                stream_audio(
                    stack.ws_url,
                    start,
                    chunks(audio, 16000),
                    realtime=True,
                    on_final=lambda final: first_final.set(),
                    on_sent=sent.append,
                ),
                timeout=90,
            )
            kill = await asyncio.wait_for(killing, 30)
        finally:
            killing.cancel()
        took = time.monotonic() - began

        # The stream, as the services left it: every utterance taken and acknowledged.
        consumer = await js.consumer_info(subjects.audio_stream, s.stt.durable)
        results = await js.stream_info(
            subjects.results_stream, subjects_filter=subjects.results(disturbed.session_id)
        )

    n = len(SENTENCES)
    assert [f.seq for f in undisturbed.finals] == list(range(n)), undisturbed
    assert wer(SENTENCES, [f.text for f in undisturbed.finals]) <= 0.2, undisturbed.finals
    assert kill.sent_s < seconds - 5, f"the node died after the recording had been sent: {kill}"

    assert disturbed.errors == [], disturbed.errors
    assert [f.seq for f in disturbed.finals] == list(range(n))  # every final, once, in order
    assert [f.text for f in disturbed.finals] == [f.text for f in undisturbed.finals]
    assert disturbed.summary is not None and disturbed.summary.finals == n
    # Once on the bus too: a re-transcribed utterance's result carries the same message id.
    stored = sum((results.state.subjects or {}).values())
    assert stored == n, results.state.subjects
    assert (consumer.num_pending, consumer.num_ack_pending) == (0, 0), consumer
    # Both runs' utterances, and any delivered again after its ack died with the node.
    redone = consumer.delivered.consumer_seq - consumer.delivered.stream_seq

    # The killed node comes back on its store and catches up with what it missed.
    await asyncio.to_thread(cluster.restart, kill.node)
    after = await js.stream_info(subjects.audio_stream)
    leader, peers = replicas_of(after.cluster)
    assert {leader, *(name for name, _ in peers)} == {node.name for node in cluster.nodes}
    assert all(current for _, current in peers), peers

    print(
        f"\ncluster: SIGKILLed {kill.node} (AUDIO leader"
        f"{', also ' + ', '.join(kill.also) if kill.also else ''}) with {kill.sent_s:.1f} s "
        f"of {seconds:.1f} s sent; AUDIO re-elected in {kill.reelected_s:.1f} s; "
        f"utterances {n}, finals {len(disturbed.finals)}, lost 0, duplicated 0, RESULTS "
        f"messages {stored}; deliveries redone {redone}; session {took:.1f} s for "
        f"{seconds:.1f} s of speech"
    )
