"""Per-role NATS users on disk: an nkey per role, and the server's authorization config.

The server's config holds only public keys; each role's seed (its secret) is a file of its own,
mode 0600, handed to that role's service alone (``nats.nkey_seed``). Seeds are kept across
starts, so an operator's nats CLI set up with the admin seed keeps working; the config is
written afresh each time, since the permissions follow the prefix and consumer names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec
import nkeys

from nova_common.nats_auth import (
    ROLES,
    Durables,
    Identity,
    NKey,
    Role,
    inbox_prefix,
    render_authorization,
    role_permissions,
)
from nova_common.settings import NatsSettings, Settings
from nova_common.subjects import Subjects


class NatsUsersError(RuntimeError):
    pass


def new_seed() -> bytes:
    """A fresh user nkey seed (``SU…``)."""
    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))


def public_key(seed: bytes) -> str:
    """The public key (``U…``) of a user seed; a clear error for anything else."""
    try:
        key = nkeys.from_seed(bytearray(seed.strip()))
        public = bytes(key.public_key).decode()
    except (nkeys.NkeysError, ValueError) as exc:
        raise NatsUsersError(f"not an nkey seed: {exc}") from exc
    if not public.startswith("U"):
        raise NatsUsersError("not a user nkey seed (a user seed starts with 'SU')")
    return public


def write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only, from the first byte on (no window in which
    the file exists with wider permissions)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(fd, data)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class RoleUsers:
    """The users of one server, in ``directory``: ``<role>.nk`` seeds and ``auth.conf``."""

    directory: Path

    def seed_file(self, role: Role) -> Path:
        return self.directory / f"{role}.nk"

    @property
    def config_file(self) -> Path:
        return self.directory / "auth.conf"

    def nats_settings(self, role: Role, nats: NatsSettings) -> NatsSettings:
        """``nats`` as the service of ``role`` connects: its seed, its inbox, and JetStream
        provisioning only for the admin (the others have no rights to it)."""
        return msgspec.structs.replace(
            nats,
            user=None,
            password=None,
            creds=None,
            nkey_seed=str(self.seed_file(role)),
            inbox_prefix=inbox_prefix(role),
            provision=role == "admin",
        )

    def settings_for(self, role: Role, settings: Settings) -> Settings:
        return msgspec.structs.replace(settings, nats=self.nats_settings(role, settings.nats))


def ensure_users(directory: Path, subjects: Subjects, durables: Durables) -> RoleUsers:
    """Seeds for every role (kept if there), and a server config granting each its list."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    users = RoleUsers(directory)
    identities: dict[Role, Identity] = {}
    for role in ROLES:
        path = users.seed_file(role)
        if not path.exists():
            write_secret(path, new_seed() + b"\n")
        path.chmod(0o600)  # one copied in with wider permissions, too
        try:
            public = public_key(path.read_bytes())
        except NatsUsersError as exc:
            raise NatsUsersError(f"{path}: {exc}; remove it to have a new one made") from exc
        identities[role] = NKey(public_key=public)
    write_config(users.config_file, identities, subjects, durables)
    return users


def write_config(
    path: Path, identities: Mapping[Role, Identity], subjects: Subjects, durables: Durables
) -> None:
    block = render_authorization(identities, role_permissions(subjects, durables))
    write_secret(path, block.encode())


def embedded_users(settings: Settings) -> RoleUsers | None:
    """The users `nova up` starts its embedded nats-server with (None where
    ``nats.embedded_auth`` is off): under ``<data_dir>/nats/users``."""
    if not settings.nats.embedded_auth:
        return None
    return ensure_users(
        Path(settings.data_dir) / "nats" / "users",
        Subjects(settings.nats.subject_prefix),
        Durables.of(settings.stt, settings.mt),
    )
