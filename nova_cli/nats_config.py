"""`nova nats-config`: the per-role NATS users for a production nats-server.

Without ``--out`` it prints the ``authorization`` block that deploy/nats-users.conf ships,
each user's public nkey read from an environment variable of the server (``$NOVA_NKEY_<ROLE>``;
public keys, not secrets). With ``--out DIR`` it also makes a seed per role there (kept where
one exists), a config with the keys written in, and says which settings each service needs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

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
from nova_common.nats_users import ensure_users, public_key
from nova_common.settings import Settings
from nova_common.subjects import Subjects


def nkey_variable(role: Role) -> str:
    """The nats-server's environment variable holding ``role``'s public nkey."""
    return f"NOVA_NKEY_{role.upper()}"


def env_authorization(subjects: Subjects, durables: Durables) -> str:
    """The block deploy/nats-users.conf holds: every role's key from the environment."""
    identities: dict[Role, Identity] = {role: NKey(env=nkey_variable(role)) for role in ROLES}
    return render_authorization(identities, role_permissions(subjects, durables))


def _service_settings(role: Role, seed: Path) -> str:
    settings = f"NOVA_NATS_NKEY_SEED={seed} NOVA_NATS_INBOX_PREFIX={inbox_prefix(role)}"
    # Only the admin may create streams and consumers; the services must not try.
    return settings if role == "admin" else settings + " NOVA_NATS_PROVISION=false"


def run_nats_config(settings: Settings, *, prefix: str | None, out: Path | None,
                    stdout: TextIO = sys.stdout) -> int:  # fmt: skip
    subjects = Subjects(prefix or settings.nats.subject_prefix)
    durables = Durables.of(settings.stt, settings.mt)
    header = (
        f"# Nova Voice's NATS users for subject prefix {subjects.prefix!r}, one per role "
        "(`nova nats-config`).\n"
    )
    if out is None:
        stdout.write(header)
        stdout.write(
            "# Each user's public nkey comes from the server's environment: "
            + ", ".join(f"${nkey_variable(r)}" for r in ROLES)
            + ".\n# `nova nats-config --out DIR` makes the keys.\n"
        )
        stdout.write(env_authorization(subjects, durables))
        return 0
    users = ensure_users(out, subjects, durables)
    lines = [
        header.rstrip(),
        f"# seeds (secrets, mode 0600) and a server config with the keys in: {users.directory}",
        f"# nats-server: `include {users.config_file}`, or deploy/nats-users.conf with:",
    ]
    for role in ROLES:
        lines.append(f"{nkey_variable(role)}={public_key(users.seed_file(role).read_bytes())}")
    lines.append("# each service, with its own seed only:")
    for role in ROLES:
        lines.append(f"{role}: {_service_settings(role, users.seed_file(role))}")
    stdout.write("\n".join(lines) + "\n")
    return 0
