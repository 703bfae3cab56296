"""What the NATS permission tests share: a real nats-server admitting only Nova's per-role
users (generated for the test's own prefix), with its monitoring port open so a test can ask
the server which user each connection authenticated as, and connections as one role that
collect the server's permission errors. Import the fixtures explicitly."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest
from nats.aio.client import Client

from nova_cli.runtime import connect_and_provision
from nova_common.nats_auth import ROLES, Durables, Role, inbox_prefix
from nova_common.nats_server import EmbeddedNatsServer, free_port
from nova_common.nats_users import RoleUsers, ensure_users, public_key
from nova_common.settings import Settings
from nova_common.subjects import Subjects


def permission_violations(server_log: str) -> list[str]:
    """The server's own record of every permission it refused ("Publish Violation",
    "Subscription Violation"; not a refused login, "Authorization Violation")."""
    kinds = ("Publish Violation", "Subscription Violation")
    return [line for line in server_log.splitlines() if any(k in line for k in kinds)]


@dataclass
class AuthServer:
    server: EmbeddedNatsServer
    users: RoleUsers
    monitor_port: int

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def log(self) -> str:
        path = self.server.store_dir / "nats-server.log"
        return path.read_text() if path.exists() else ""

    def violations(self) -> list[str]:
        return permission_violations(self.log)

    def connections(self) -> list[dict[str, Any]]:
        """Open client connections with the user each one authenticated as (/connz)."""
        url = f"http://127.0.0.1:{self.monitor_port}/connz?auth=true"
        with urllib.request.urlopen(url, timeout=10) as response:
            return list(json.loads(response.read()).get("connections") or [])

    def role_of(self, connection: dict[str, Any]) -> Role | None:
        user = connection.get("authorized_user")
        for role in ROLES:
            if user == public_key(self.users.seed_file(role).read_bytes()):
                return role
        return None


@pytest.fixture
def auth_server(tmp_path: Path, settings: Settings) -> Iterator[AuthServer]:
    """A nats-server of the test's own that admits only the role users for its prefix."""
    subjects = Subjects(settings.nats.subject_prefix)
    users = ensure_users(tmp_path / "users", subjects, Durables.of(settings.stt, settings.mt))
    monitor_port = free_port()
    config = tmp_path / "server.conf"
    # An include is relative to the including file, even when written as an absolute path.
    config.write_text(f'include "users/auth.conf"\nhttp: "127.0.0.1:{monitor_port}"\n')
    with EmbeddedNatsServer(tmp_path / "nats", config_file=config) as server:
        yield AuthServer(server, users, monitor_port)


@pytest.fixture
async def provisioned(settings: Settings, auth_server: AuthServer) -> Settings:
    """The test's settings pointing at ``auth_server``, its streams made by the admin user."""
    on_server = msgspec.structs.replace(
        settings, nats=msgspec.structs.replace(settings.nats, url=auth_server.url)
    )
    admin = auth_server.users.settings_for("admin", on_server)
    nc = await connect_and_provision(admin, name="nova-admin", create=True)
    await nc.drain()
    return on_server


@dataclass
class RoleClient:
    nc: Client
    errors: list[str] = field(default_factory=list)

    def refused(self, action: str, subject: str) -> bool:
        """Whether the server refused ``action`` ("publish", "subscription") on ``subject``
        (nats-py lower-cases the server's -ERR line)."""
        wanted = f'permissions violation for {action} to "{subject}"'.lower()
        return any(wanted in error.lower() for error in self.errors)


@contextlib.asynccontextmanager
async def as_role(server: AuthServer, role: Role) -> AsyncIterator[RoleClient]:
    """A connection with ``role``'s seed and inbox prefix, collecting the server's errors."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        server.url,
        name=f"test-{role}",
        nkeys_seed=str(server.users.seed_file(role)),
        inbox_prefix=inbox_prefix(role),
        error_cb=on_error,
        max_reconnect_attempts=0,
    )
    client = RoleClient(nc, errors)
    try:
        yield client
    finally:
        await nc.close()
