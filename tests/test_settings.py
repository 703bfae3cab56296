"""Settings layering: defaults < TOML file < NOVA_* environment < command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from nova_common.settings import ConfigError, Settings, load_settings


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nova.toml"
    path.write_text(text)
    return path


def test_defaults_apply_when_no_source_sets_anything() -> None:
    settings = load_settings(environ={})
    assert settings.nats.url is None
    assert settings.nats.subject_prefix == "nova"
    assert settings.gateway.host == "127.0.0.1"
    assert settings.gateway.port == 8765
    assert settings.stt.model == "base"
    assert settings.stt.device == "cpu"
    assert settings.vad.end_silence_ms == 600
    assert settings.log_level == "info"
    assert settings.data_dir  # a per-user data directory from platformdirs
    assert settings.models_dir == Path(settings.data_dir) / "models"


def test_toml_file_sets_top_level_and_section_fields(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        """
log_level = "debug"
[gateway]
port = 9100
[stt]
model = "tiny.en"
beam_size = 1
""",
    )
    settings = load_settings(config_file=path, environ={})
    assert settings.log_level == "debug"
    assert settings.gateway.port == 9100
    assert settings.stt.model == "tiny.en"
    assert settings.stt.beam_size == 1
    # Fields the file does not mention keep their defaults.
    assert settings.gateway.host == "127.0.0.1"
    assert settings.stt.device == "cpu"


def test_config_file_can_be_named_by_nova_config(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[gateway]\nport = 9200\n")
    settings = load_settings(environ={"NOVA_CONFIG": str(path)})
    assert settings.gateway.port == 9200


def test_environment_variables_map_to_sections_and_are_coerced(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "NOVA_NATS_URL": "nats://example:4222",
            "NOVA_STT_MODEL": "tiny.en",
            "NOVA_GATEWAY_PORT": "9000",
            "NOVA_DATA_DIR": str(tmp_path),
        }
    )
    assert settings.nats.url == "nats://example:4222"
    assert settings.stt.model == "tiny.en"
    assert settings.gateway.port == 9000
    assert isinstance(settings.gateway.port, int)
    assert settings.data_dir == str(tmp_path)
    assert settings.models_dir == tmp_path / "models"


def test_unrelated_environment_variables_are_ignored() -> None:
    settings = load_settings(
        environ={"PATH": "/bin", "NOVA_NO_SUCH_THING": "x", "NOVA_STT_NO_SUCH_FIELD": "y"}
    )
    assert settings == load_settings(environ={})


def test_precedence_is_defaults_then_toml_then_env_then_overrides(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        """
[gateway]
port = 1111
host = "0.0.0.0"
[stt]
model = "from-toml"
device = "cuda"
beam_size = 3
""",
    )
    settings = load_settings(
        config_file=path,
        environ={"NOVA_GATEWAY_PORT": "2222", "NOVA_STT_MODEL": "from-env", "NOVA_STT_DEVICE": "x"},
        overrides={"stt": {"model": "from-flag"}, "log_level": "warning"},
    )
    assert settings.stt.model == "from-flag"  # override beats env and file
    assert settings.stt.device == "x"  # env beats file
    assert settings.gateway.port == 2222  # env beats file
    assert settings.gateway.host == "0.0.0.0"  # file beats default
    assert settings.stt.beam_size == 3  # file beats default
    assert settings.log_level == "warning"  # override beats default
    assert settings.stt.cpu_threads == 0  # nobody set it


def test_none_overrides_do_not_mask_lower_layers() -> None:
    """An unset command-line flag arrives as None and must not erase the environment's value."""
    settings = load_settings(environ={"NOVA_LOG_LEVEL": "debug"}, overrides={"log_level": None})
    assert settings.log_level == "debug"


def test_bad_environment_value_raises_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"NOVA_GATEWAY_PORT": "abc"})
    assert "gateway.port" in str(info.value)


def test_bad_toml_value_raises_config_error(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[stt]\nbeam_size = "many"\n')
    with pytest.raises(ConfigError, match=r"stt\.beam_size"):
        load_settings(config_file=path, environ={})


def test_missing_config_file_raises_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(config_file=missing, environ={})


def test_unreadable_config_file_raises_config_error(tmp_path: Path) -> None:
    # A directory cannot be read as a file whoever runs the test (root ignores permissions).
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(config_file=tmp_path, environ={})


def test_malformed_toml_raises_config_error(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[gateway\nport = 1\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_settings(config_file=path, environ={})


def test_settings_are_immutable() -> None:
    settings: Settings = load_settings(environ={})
    with pytest.raises(AttributeError):
        settings.gateway.port = 1  # type: ignore[misc]
