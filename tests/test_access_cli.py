"""Access from the command line, as processes: `nova keys`, a gateway that will not listen beyond
loopback without keys, and `nova up` with a key that `nova transcribe` and `nova listen` must
present (--api-key or NOVA_API_KEY)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nova_common.nats_server import EmbeddedNatsServer, free_port
from tests.processes import RunningUp, nova_env, nova_up, run_nova
from tests.speech import normalise

pytestmark = pytest.mark.slow


def test_keys_add_ls_rm(tmp_path: Path) -> None:
    env = nova_env(tmp_path)
    added = run_nova("keys", "add", "alice", "--rate", "1.5", "--max-sessions", "2", env=env)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("nova_") and "shown only this once" in added.stderr
    stored = (tmp_path / "access" / "keys.json").read_text()
    assert key not in stored and key.split("_", 2)[2] not in stored  # hashed, never the key
    listed = run_nova("keys", "ls", env=env)
    assert listed.returncode == 0 and "alice" in listed.stdout
    assert "rate=1.5" in listed.stdout and key not in listed.stdout
    rows = json.loads(run_nova("keys", "ls", "--json", env=env).stdout)
    assert rows[0]["name"] == "alice" and rows[0]["limits"] == {"rate": 1.5, "max_sessions": 2}
    again = run_nova("keys", "add", "alice", env=env)
    assert again.returncode == 1 and "exists" in again.stderr and "Traceback" not in again.stderr
    assert run_nova("keys", "rm", "alice", env=env).returncode == 0
    gone = run_nova("keys", "rm", "alice", env=env)
    assert gone.returncode == 1 and "no key named 'alice'" in gone.stderr
    nameless = run_nova("keys", "add", env=env)
    assert nameless.returncode == 2 and "name the key" in nameless.stderr
    negative = run_nova("keys", "add", "bob", "--rate", "-1", env=env)
    assert negative.returncode == 2 and "negative" in negative.stderr


@pytest.mark.parametrize("command", ["gateway", "up"])
def test_listening_beyond_loopback_without_keys_refuses_to_start(
    command: str, nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    env = nova_env(tmp_path, NOVA_NATS_URL=nats_server.url, NOVA_NATS_SUBJECT_PREFIX="tnokeys")
    result = run_nova(command, "--host", "0.0.0.0", "--port", str(free_port()), env=env,
                      timeout=120)  # fmt: skip
    assert result.returncode == 1, result
    assert "refusing to listen on 0.0.0.0 without authentication" in result.stderr
    assert "nova keys add" in result.stderr and "Traceback" not in result.stderr


def test_a_certificate_that_is_not_there_is_one_line(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    env = nova_env(
        tmp_path,
        NOVA_NATS_URL=nats_server.url,
        NOVA_NATS_SUBJECT_PREFIX="tnotls",
        NOVA_ACCESS_TLS_CERT=str(tmp_path / "missing.pem"),
        NOVA_ACCESS_TLS_KEY=str(tmp_path / "missing.key"),
    )
    result = run_nova("gateway", "--port", str(free_port()), env=env, timeout=120)
    assert result.returncode == 1 and "TLS: no such file" in result.stderr, result
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- with a key


@pytest.fixture(scope="module")
def api_key(cli_data_dir: Path) -> str:
    added = run_nova("keys", "add", "cli", env=nova_env(cli_data_dir))
    assert added.returncode == 0, added.stderr
    return added.stdout.strip()


@pytest.fixture(scope="module")
def up(
    nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path, api_key: str
) -> Iterator[RunningUp]:
    with nova_up(nats_server.url, cli_data_dir, cli_dir / "logs") as running:
        assert "access: an API key or a session token required (1 key)" in running.process.stdout
        yield running


def client_env(**extra: str) -> dict[str, str]:
    return nova_env(Path(os.devnull), **extra)


def test_transcribe_needs_the_key_and_takes_it_by_flag_or_environment(
    up: RunningUp, api_key: str, two_sentences_wav: Path
) -> None:
    refused = run_nova("transcribe", two_sentences_wav, "--url", up.ws_url, env=client_env())
    assert refused.returncode == 1 and refused.stdout == ""
    assert "HTTP 401" in refused.stderr and "--api-key or NOVA_API_KEY" in refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    wrong = run_nova("transcribe", two_sentences_wav, "--url", up.ws_url,
                     "--api-key", api_key[:-3] + "xyz", env=client_env())  # fmt: skip
    assert wrong.returncode == 1 and "unknown or revoked API key" in wrong.stderr
    by_flag = run_nova("transcribe", two_sentences_wav, "--url", up.ws_url,
                       "--api-key", api_key, env=client_env())  # fmt: skip
    assert by_flag.returncode == 0, by_flag.stderr
    assert "good morning" in normalise(by_flag.stdout)
    by_env = run_nova("transcribe", two_sentences_wav, "--url", up.ws_url,
                      env=client_env(NOVA_API_KEY=api_key))  # fmt: skip
    assert by_env.returncode == 0 and by_env.stdout == by_flag.stdout


def test_listen_takes_the_key(up: RunningUp, api_key: str, two_sentences_wav: Path) -> None:
    refused = run_nova("listen", "--input", two_sentences_wav, "--url", up.ws_url,
                       env=client_env(), timeout=60)  # fmt: skip
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr
    heard = run_nova("listen", "--input", two_sentences_wav, "--url", up.ws_url,
                     "--format", "jsonl", "--api-key", api_key, env=client_env())  # fmt: skip
    assert heard.returncode == 0, heard.stderr
    texts = [json.loads(line)["text"] for line in heard.stdout.splitlines()]
    assert "office" in normalise(" ".join(texts))
