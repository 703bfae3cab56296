"""The token-signing secret: from settings, or kept in the data dir (made on first start).

Every gateway that should accept another's tokens (session and resume tokens) needs the same
secret: gateways sharing a data dir share the file; on other machines set
``access.token_secret`` (NOVA_ACCESS_TOKEN_SECRET) to the same value everywhere.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from nova_gateway.auth.tokens import MIN_SECRET_BYTES


class SecretError(ValueError):
    """The secret cannot be had; the message says what to fix."""


def secret_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "access" / "token_secret"


def token_secret(configured: str | None, data_dir: str | Path) -> bytes:
    if configured is not None:
        secret = configured.encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise SecretError(
                f"access.token_secret is {len(secret)} bytes; it must be at least "
                f"{MIN_SECRET_BYTES} (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        return secret
    return _kept_secret(secret_path(data_dir))


def _kept_secret(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            # O_EXCL: two gateways starting together on one data dir end up with one secret.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
        secret = path.read_text().strip().encode()
    except OSError as exc:
        raise SecretError(f"cannot keep the token secret in {path}: {exc}") from exc
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(f"the token secret in {path} is too short: remove the file to renew it")
    return secret
