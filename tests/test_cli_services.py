"""The `nova` services as subprocesses: `nova up` with its own embedded nats-server and Ctrl-C,
a scaled-out gateway with two `nova stt` workers, and the small commands (`models`, `init`,
`--help`). Every process is stopped in a ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from pathlib import Path

import nats
import pytest

from nova_common.messages import Transcript, result_decoder
from nova_common.nats_server import EmbeddedNatsServer, free_port
from nova_common.subjects import Subjects
from tests.processes import (
    STOP_TIMEOUT,
    in_fresh_loop,
    nova_env,
    nova_process,
    run_nova,
    unused_port,
    wait_healthy,
    wait_until,
    with_pauses,
)
from tests.speech import speak, wer, write_wav

pytestmark = pytest.mark.slow

EIGHT_SENTENCES = [
    "The sun is shining today.",
    "Please close the door.",
    "I like green apples.",
    "The train is late again.",
    "We will meet at noon.",
    "My brother plays the piano.",
    "It is cold outside.",
    "Thank you for your help.",
]


# --------------------------------------------------------------------------- embedded NATS


def test_up_with_embedded_nats_then_ctrl_c(
    cli_dir: Path, cli_data_dir: Path, prefix: str, two_sentences_wav: Path
) -> None:
    """Without NOVA_NATS_URL `nova up` starts its own nats-server, data under NOVA_DATA_DIR/nats.

    Port 4222 is held here for the duration, so the server takes a free port instead: the test
    never collides with a real nats-server and never leaves one that others might connect to.
    """
    blocker = socket.socket()
    with contextlib.suppress(OSError):  # already taken by someone else: just as good
        blocker.bind(("127.0.0.1", 4222))
        blocker.listen()
    port = free_port()
    env = nova_env(cli_data_dir, NOVA_NATS_SUBJECT_PREFIX=prefix)
    try:
        with nova_process(
            ["up", "--port", str(port)], env=env, log_dir=cli_dir / "logs", name="up-embedded"
        ) as process:
            process.wait_for_stdout(r"Nova Voice is up")
            match = process.wait_for_stdout(r"NATS: nats://127\.0\.0\.1:(\d+)")
            nats_port = int(match.group(1))
            assert nats_port != 4222
            assert (cli_data_dir / "nats" / "jetstream").is_dir()
            assert (cli_data_dir / "nats" / "nats-server.log").is_file()
            http_url = f"http://127.0.0.1:{port}"
            wait_healthy(process, http_url)

            result = run_nova(
                "transcribe", two_sentences_wav, "--url", f"ws://127.0.0.1:{port}/ws", env=env
            )
            assert result.returncode == 0, result.stderr
            assert len(result.stdout.splitlines()) == 2, result.stdout

            # `nova up` runs a translation worker too (Apertium, installed by `make test`).
            assert "translation: apertium" in process.stdout, process.stdout
            translated = run_nova(
                "transcribe", two_sentences_wav, "--url", f"ws://127.0.0.1:{port}/ws",
                "--translate-to", "es", "--format", "jsonl", env=env,
            )  # fmt: skip
            assert translated.returncode == 0, translated.stderr
            records = [json.loads(line) for line in translated.stdout.splitlines()]
            assert [r["seq"] for r in records] == [0, 1], translated.stdout
            spanish = " ".join(r["translations"]["es"] for r in records).lower()
            assert "buenos días" in spanish and "informe" in spanish, records

            code = process.interrupt(timeout=STOP_TIMEOUT)
            assert code == 0, f"exit {code}\n{process.describe()}"
            assert "stopped cleanly" in process.stderr, process.describe()
            assert "Traceback" not in process.stderr, process.describe()
            # The embedded server must outlive the Ctrl-C until the services have drained.
            assert "nats disconnected" not in process.stderr, process.describe()
            assert "unexpected EOF" not in process.stderr, process.describe()

            def nats_gone() -> bool:
                with socket.socket() as probe:
                    return probe.connect_ex(("127.0.0.1", nats_port)) != 0

            wait_until(nats_gone, timeout=STOP_TIMEOUT, what="the embedded nats-server to stop")
    finally:
        blocker.close()


# --------------------------------------------------------------------------- scale-out


async def final_transcripts(url: str, stream: str) -> list[Transcript]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            result = result_decoder.decode(msg.data)
            if isinstance(result, Transcript) and result.kind == "final":
                found.append(result)
        return found
    finally:
        await nc.close()


def test_gateway_and_two_stt_workers_share_the_work(
    nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path, prefix: str, tmp_path: Path
) -> None:
    env = nova_env(cli_data_dir, NOVA_NATS_URL=nats_server.url, NOVA_NATS_SUBJECT_PREFIX=prefix)
    logs = cli_dir / "logs" / prefix
    wav = write_wav(tmp_path / "eight.wav", with_pauses([speak(s) for s in EIGHT_SENTENCES]), 16000)
    port = free_port()
    with contextlib.ExitStack() as stack:
        gateway = stack.enter_context(
            nova_process(["gateway", "--port", str(port)], env=env, log_dir=logs, name="gateway")
        )
        gateway.wait_for_stdout(rf"listening on ws://127\.0\.0\.1:{port}/ws")
        worker_ids = []
        # One after the other: the first joins the model into the data dir if no test has yet.
        for name in ("stt-1", "stt-2"):
            worker = stack.enter_context(
                nova_process(["stt", "--batch-size", "1"], env=env, log_dir=logs, name=name)
            )
            worker_ids.append(worker.wait_for_stdout(r"nova stt worker (\S+) ready").group(1))
        assert len(set(worker_ids)) == 2, worker_ids
        report = wait_healthy(gateway, f"http://127.0.0.1:{port}", workers=2)
        assert sorted(report["stt_workers"]) == sorted(worker_ids), report

        result = run_nova(
            "transcribe", wav, "--format", "jsonl", "--url", f"ws://127.0.0.1:{port}/ws", env=env
        )
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        seqs = [r["seq"] for r in records]
        assert sorted(seqs) == list(range(8)), records  # each exactly once
        assert (
            wer(EIGHT_SENTENCES, [r["text"] for r in sorted(records, key=lambda r: r["seq"])])
            <= 0.25
        ), records

        transcripts = in_fresh_loop(
            lambda: final_transcripts(nats_server.url, Subjects(prefix).results_stream)
        )
        assert sorted({t.seq for t in transcripts}) == list(range(8)), transcripts
        by_worker = {w: sorted(t.seq for t in transcripts if t.worker_id == w) for w in worker_ids}
        assert all(by_worker.values()), f"one worker did nothing: {by_worker}"
        assert {t.worker_id for t in transcripts} <= set(worker_ids), transcripts


# --------------------------------------------------------------------------- small commands


def test_models(cli_data_dir: Path) -> None:
    env = nova_env(cli_data_dir)
    result = run_nova("models", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in ("base", "tiny.en"):
        assert any(re.match(rf"\s*✓ {re.escape(name)}\s", line) for line in lines), result.stdout

    as_json = run_nova("models", "--json", env=env, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    rows = {row["name"]: row for row in json.loads(as_json.stdout)}
    assert rows["base"]["available"] is True and rows["tiny.en"]["available"] is True, rows
    # Translation models: the catalog, none installed in a fresh data dir.
    nllb = rows["nllb-200-distilled-600M"]
    assert (nllb["kind"], nllb["available"]) == ("mt", False), nllb
    assert "nova models pull" in nllb["location"]
    assert "translation models" in result.stdout and "apertium" in result.stdout


def test_models_pull_without_internet_fails_at_once(cli_data_dir: Path) -> None:
    # HF_HUB_OFFLINE makes the outcome the same on a machine that does have internet.
    env = nova_env(cli_data_dir, HF_HUB_OFFLINE="1")
    started = time.monotonic()
    result = run_nova("models", "pull", "nllb-200-distilled-600M", env=env, timeout=120)
    assert result.returncode == 1, result
    assert "cannot pull 'nllb-200-distilled-600M'" in result.stderr, result.stderr
    assert "internet" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert time.monotonic() - started < 30
    unknown = run_nova("models", "pull", "no-such-model", env=env, timeout=120)
    assert unknown.returncode == 1 and "nllb-200-distilled-600M" in unknown.stderr, unknown


async def stream_and_consumer(url: str, subjects: Subjects) -> tuple[list[str], str | None]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        names = []
        for stream in (subjects.audio_stream, subjects.results_stream, subjects.text_stream):
            names.append((await js.stream_info(stream)).config.name or "")
        consumer = await js.consumer_info(subjects.audio_stream, "stt")
        mt = await js.consumer_info(subjects.text_stream, "mt")
        return names, f"{consumer.name},{mt.name}"
    finally:
        await nc.close()


def test_init_creates_the_streams(
    nats_server: EmbeddedNatsServer, cli_data_dir: Path, prefix: str
) -> None:
    env = nova_env(cli_data_dir, NOVA_NATS_URL=nats_server.url, NOVA_NATS_SUBJECT_PREFIX=prefix)
    result = run_nova("init", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert prefix in result.stdout
    subjects = Subjects(prefix)
    streams, consumer = in_fresh_loop(lambda: stream_and_consumer(nats_server.url, subjects))
    assert streams == [subjects.audio_stream, subjects.results_stream, subjects.text_stream]
    assert streams[0] == f"{prefix.upper()}_AUDIO"
    assert consumer == "stt,mt"
    # Idempotent: a second run changes nothing and succeeds.
    again = run_nova("init", env=env, timeout=120)
    assert again.returncode == 0, again.stderr


def test_gateway_port_in_use_is_a_clear_error(
    nats_server: EmbeddedNatsServer, cli_data_dir: Path, prefix: str
) -> None:
    env = nova_env(cli_data_dir, NOVA_NATS_URL=nats_server.url, NOVA_NATS_SUBJECT_PREFIX=prefix)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_nova("gateway", "--port", str(port), env=env, timeout=120)
    assert result.returncode == 1, result
    assert "address already in use" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_help() -> None:
    env = nova_env(Path(os.devnull))
    top = run_nova("--help", env=env, timeout=120)
    assert top.returncode == 0, top.stderr
    for command in ("up", "gateway", "stt", "mt", "init", "models", "transcribe"):
        assert command in top.stdout
    result = run_nova("transcribe", "--help", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: nova transcribe")
    for option in (
        "--url",
        "--format",
        "--language",
        "--output-dir",
        "--realtime",
        "--translate-to",
    ):
        assert option in result.stdout


def test_init_without_nats_is_a_clear_error(cli_data_dir: Path) -> None:
    url = f"nats://127.0.0.1:{unused_port()}"
    # A short wait keeps the test quick; the default (10 s) is for services starting with NATS.
    env = nova_env(cli_data_dir, NOVA_NATS_URL=url, NOVA_NATS_CONNECT_WAIT_S="2")
    result = run_nova("init", env=env, timeout=120)
    assert result.returncode != 0
    assert "cannot connect to NATS" in result.stderr and url in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
