"""Per-role NATS users from the operator's side: the lists follow the prefix, keys and configs
on disk are private, credentials come from settings and never show, a refused connection says
why, the shipped deploy config starts a real nats-server that admits only Nova's roles, and
`nova up` runs its embedded server with a user per role.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from nova_cli.nats_config import env_authorization, nkey_variable, run_nats_config
from nova_common.nats_auth import (
    ROLES,
    Durables,
    Identity,
    Password,
    Role,
    inbox_prefix,
    render_authorization,
    role_permissions,
)
from nova_common.nats_conn import NatsUnavailable, connect
from nova_common.nats_server import EmbeddedNatsServer, find_nats_server, free_port
from nova_common.nats_users import NatsUsersError, ensure_users, public_key
from nova_common.settings import ConfigError, NatsSettings, load_settings
from nova_common.subjects import Subjects
from tests.nats_roles import AuthServer, permission_violations
from tests.processes import STOP_TIMEOUT, nova_env, nova_process, run_nova, wait_healthy

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_permission_follows_the_prefix() -> None:
    """Another tenant's prefix gets lists that name only its own subjects and streams."""
    subjects = Subjects("acme.eu-1")
    for role, perms in role_permissions(subjects, Durables()).items():
        for subject in perms.publish + perms.subscribe:
            assert "nova" not in subject.lower(), (role, subject)
            own = subject.startswith(("acme.eu-1.", f"{inbox_prefix(role)}."))
            assert own or "ACME_EU_1" in subject or role == "admin", (role, subject)
        assert f"{inbox_prefix(role)}.>" in perms.subscribe
        others = [f"{inbox_prefix(r)}." for r in ROLES if r != role]
        assert not any(s.startswith(tuple(others)) for s in perms.subscribe), role


def test_keys_and_config_on_disk_are_the_owners_alone(tmp_path: Path) -> None:
    users = ensure_users(tmp_path / "users", Subjects("t1"), Durables())
    assert mode(users.directory) == 0o700
    assert mode(users.config_file) == 0o600
    seeds = {role: users.seed_file(role).read_bytes() for role in ROLES}
    assert all(mode(users.seed_file(role)) == 0o600 for role in ROLES)
    config = users.config_file.read_text()
    for seed in seeds.values():
        assert seed.strip().decode() not in config  # the server knows public keys only
        assert public_key(seed) in config
    # Kept across starts: the operator's nats CLI keeps working with the admin seed.
    again = ensure_users(tmp_path / "users", Subjects("t1"), Durables())
    assert {role: again.seed_file(role).read_bytes() for role in ROLES} == seeds

    users.seed_file("mt").chmod(0o644)
    ensure_users(tmp_path / "users", Subjects("t1"), Durables())
    assert mode(users.seed_file("mt")) == 0o600

    users.seed_file("stt").write_text("not a seed\n")
    with pytest.raises(NatsUsersError, match=r"stt\.nk: not an nkey seed"):
        ensure_users(tmp_path / "users", Subjects("t1"), Durables())


def test_credentials_come_from_settings_and_never_show() -> None:
    settings = load_settings(environ={
        "NOVA_NATS_URL": "nats://nova:hunter2@nats.internal:4222",
        "NOVA_NATS_USER": "nova",
        "NOVA_NATS_PASSWORD": "hunter2",
        "NOVA_NATS_INBOX_PREFIX": "_INBOX_gateway",
    })  # fmt: skip
    assert settings.nats.password == "hunter2"
    assert settings.nats.inbox_prefix == "_INBOX_gateway"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.nats)
    assert "nats://nova:***@nats.internal:4222" in repr(settings.nats)
    seeded = load_settings(environ={"NOVA_NATS_NKEY_SEED": "/run/secrets/stt.nk"})
    assert seeded.nats.nkey_seed == "/run/secrets/stt.nk"
    with pytest.raises(ConfigError, match="not several"):
        load_settings(environ={"NOVA_NATS_NKEY_SEED": "/a", "NOVA_NATS_CREDS": "/b"})
    with pytest.raises(ConfigError, match="inbox_prefix"):
        load_settings(environ={"NOVA_NATS_INBOX_PREFIX": "_INBOX gateway"})


async def test_a_refused_connection_says_why(
    auth_server: AuthServer, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    anonymous = NatsSettings(url=auth_server.url, connect_wait_s=20)
    with pytest.raises(NatsUnavailable, match="refused this connection's credentials"):
        await connect(anonymous, name="nobody")
    assert time.monotonic() - started < 10  # told at once, not after connect_wait_s
    host = auth_server.url.removeprefix("nats://")
    wrong = NatsSettings(url=f"nats://nova:hunter2@{host}", connect_wait_s=20)
    with pytest.raises(NatsUnavailable) as refused:
        await connect(wrong, name="guess")
    assert "hunter2" not in str(refused.value) and "nova:***@" in str(refused.value)
    missing = NatsSettings(url=auth_server.url, nkey_seed=str(auth_server.users.directory / "x"))
    with pytest.raises(NatsUnavailable, match=r"nats.nkey_seed .*/x does not exist"):
        await connect(missing, name="typo")
    assert "hunter2" not in capsys.readouterr().out


async def test_password_users_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For operators who keep passwords rather than nkeys: the same lists, rendered with users
    and passwords (here from the server's environment), admit NOVA_NATS_USER/PASSWORD."""
    subjects = Subjects("t2")
    users: dict[Role, Identity] = {
        "gateway": Password(user="gw", env="GW_PASSWORD"),
        "admin": Password(user="root", password="s3cret-admin"),
    }
    block = render_authorization(users, role_permissions(subjects, Durables()))
    assert "s3cret-admin" in block and "$GW_PASSWORD" in block
    (tmp_path / "server.conf").write_text(block)
    monkeypatch.setenv("GW_PASSWORD", "s3cret-gateway")  # the server's process inherits it
    server = EmbeddedNatsServer(tmp_path / "nats", config_file=tmp_path / "server.conf").start()
    try:
        gateway = NatsSettings(url=server.url, user="gw", password="s3cret-gateway",
                               inbox_prefix=inbox_prefix("gateway"))  # fmt: skip
        nc = await connect(gateway, name="nova-gateway")
        await nc.publish(subjects.audio("s"), b"audio")
        await nc.flush()
        await nc.close()
        wrong = NatsSettings(url=server.url, user="gw", password="guess")
        with pytest.raises(NatsUnavailable, match="refused"):
            await connect(wrong, name="nova-gateway")
    finally:
        server.stop()
    assert permission_violations((tmp_path / "nats" / "nats-server.log").read_text()) == []


def test_the_shipped_users_block_is_what_nova_nats_config_prints() -> None:
    printed = io.StringIO()
    assert run_nats_config(load_settings(environ={}), prefix="nova", out=None, stdout=printed) == 0
    assert printed.getvalue() == (DEPLOY / "nats-users.conf").read_text(), (
        "deploy/nats-users.conf is stale: `nova nats-config --prefix nova > deploy/nats-users.conf`"
    )
    assert env_authorization(Subjects("nova"), Durables()) in printed.getvalue()


@contextlib.contextmanager
def shipped_nats_server(tmp_path: Path, keys: dict[str, str]) -> Iterator[str]:
    """deploy/nats-server.conf and its nats-users.conf as shipped, but for the store directory
    (nats-server refuses a second one from the command line) and the ports."""
    conf = tmp_path / "deploy"
    conf.mkdir()
    shipped = (DEPLOY / "nats-server.conf").read_text()
    assert "store_dir: /var/lib/nats" in shipped
    (conf / "nats-server.conf").write_text(
        shipped.replace("store_dir: /var/lib/nats", f'store_dir: "{tmp_path / "store"}"')
    )
    (conf / "nats-users.conf").write_text((DEPLOY / "nats-users.conf").read_text())
    port = free_port()
    log = tmp_path / "nats-server.log"
    command = [str(find_nats_server()), "-c", str(conf / "nats-server.conf"), "-a", "127.0.0.1",
               "-p", str(port), "-m", str(free_port()), "-l", str(log)]  # fmt: skip
    proc = subprocess.Popen(command, env={**os.environ, **keys}, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, log.read_text() if log.exists() else "no log"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert time.monotonic() < deadline, "the shipped config's server did not listen"
            time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_the_shipped_config_admits_only_novas_roles(tmp_path: Path) -> None:
    out = io.StringIO()
    run_nats_config(load_settings(environ={}), prefix="nova", out=tmp_path / "keys", stdout=out)
    lines = out.getvalue().splitlines()
    keys = dict(line.split("=", 1) for line in lines if line.startswith("NOVA_NKEY_"))
    assert sorted(keys) == sorted(nkey_variable(role) for role in ROLES)
    gateway_line = next(line for line in lines if line.startswith("gateway: "))
    seed = tmp_path / "keys" / "gateway.nk"
    assert f"NOVA_NATS_NKEY_SEED={seed}" in gateway_line
    assert "NOVA_NATS_INBOX_PREFIX=_INBOX_gateway NOVA_NATS_PROVISION=false" in gateway_line

    with shipped_nats_server(tmp_path, keys) as url:
        with pytest.raises(NatsUnavailable, match="refused"):
            await connect(NatsSettings(url=url), name="nobody")
        errors: list[str] = []
        refused = asyncio.Event()

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc).lower())
            refused.set()

        nc = await nats.connect(url, nkeys_seed=str(seed), inbox_prefix="_INBOX_gateway",
                                error_cb=on_error, max_reconnect_attempts=0)  # fmt: skip
        try:
            await nc.subscribe("nova.results.*")
            await nc.subscribe("nova.audio.*")
            await nc.flush()
            await asyncio.wait_for(refused.wait(), 10)
            await nc.flush()  # anything else refused would have come by now
            assert errors == ['nats: permissions violation for subscription to "nova.audio.*"']
        finally:
            await nc.close()


@pytest.mark.slow
def test_nova_up_runs_each_service_as_its_own_nats_user(
    cli_dir: Path, cli_data_dir: Path, prefix: str, two_sentences_wav: Path
) -> None:
    """`nova up`'s embedded server admits only the users it generated; the services each use
    their own, the operator gets in as admin, and the server refuses nobody anything."""
    blocker = socket.socket()  # keep `nova up` off 4222, as test_cli_services does
    with contextlib.suppress(OSError):
        blocker.bind(("127.0.0.1", 4222))
        blocker.listen()
    port = free_port()
    env = nova_env(cli_data_dir, NOVA_NATS_SUBJECT_PREFIX=prefix)
    users = cli_data_dir / "nats" / "users"
    try:
        with nova_process(["up", "--port", str(port)], env=env, log_dir=cli_dir / "logs",
                          name="up-users") as process:  # fmt: skip
            match = process.wait_for_stdout(r"NATS: (nats://127\.0\.0\.1:\d+)")
            process.wait_for_stdout(r"NATS users, one per role: ")
            wait_healthy(process, f"http://127.0.0.1:{port}")
            assert mode(users) == 0o700 and mode(users / "admin.nk") == 0o600
            result = run_nova("transcribe", two_sentences_wav, "--url", f"ws://127.0.0.1:{port}/ws",
                              "--translate-to", "es", "--format", "jsonl", env=env)  # fmt: skip
            assert result.returncode == 0, result.stderr
            records = [json.loads(line) for line in result.stdout.splitlines()]
            assert [r["seq"] for r in records] == [0, 1] and all(r["translations"] for r in records)

            nats_url = match.group(1)
            anonymous = run_nova("init", env={**env, "NOVA_NATS_URL": nats_url})
            assert anonymous.returncode == 1 and "refused" in anonymous.stderr, anonymous.stderr
            admin = {"NOVA_NATS_URL": nats_url, "NOVA_NATS_NKEY_SEED": str(users / "admin.nk"),
                     "NOVA_NATS_INBOX_PREFIX": "_INBOX_admin"}  # fmt: skip
            init = run_nova("init", env={**env, **admin})
            assert init.returncode == 0, init.stderr

            assert process.interrupt(timeout=STOP_TIMEOUT) == 0, process.describe()
            assert "Traceback" not in process.stderr, process.describe()
            assert "nats error" not in process.stderr, process.describe()
        server_log = (cli_data_dir / "nats" / "nats-server.log").read_text()
        assert permission_violations(server_log) == [], server_log[-3000:]
    finally:
        blocker.close()
