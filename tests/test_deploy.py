"""What operators run from deploy/ must at least be accepted by the programs that read it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from nova_cli.nats_config import nkey_variable
from nova_common.nats_auth import ROLES
from nova_common.nats_server import find_nats_server
from nova_common.nats_users import new_seed, public_key
from nova_common.settings import load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_nats_server_config_is_valid() -> None:
    # The per-role users' public keys come from the server's environment, as in production.
    keys = {nkey_variable(role): public_key(new_seed()) for role in ROLES}
    result = subprocess.run(
        [str(find_nats_server()), "-t", "-c", str(DEPLOY / "nats-server.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **keys},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_settings_load() -> None:
    settings = load_settings(config_file=DEPLOY / "nova.example.toml", environ={})
    assert settings.gateway.port == 8765
    assert settings.stt.model == "base"
    assert settings.log_format == "json"
