"""What operators run from deploy/ must at least be accepted by the programs that read it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nova_common.nats_server import find_nats_server
from nova_common.settings import load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_nats_server_config_is_valid() -> None:
    result = subprocess.run(
        [str(find_nats_server()), "-t", "-c", str(DEPLOY / "nats-server.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_settings_load() -> None:
    settings = load_settings(config_file=DEPLOY / "nova.example.toml", environ={})
    assert settings.gateway.port == 8765
    assert settings.stt.model == "base"
    assert settings.log_format == "json"
