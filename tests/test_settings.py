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


# --------------------------------------------------------------------------- [mt]


def test_mt_defaults() -> None:
    mt = load_settings(environ={}).mt
    assert mt.models == ()
    assert mt.apertium is True
    assert mt.english_via == "auto"
    assert mt.cache_size == 2048
    assert mt.durable == "mt"


def test_mt_section_from_toml(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        """
[mt]
models = ["nllb-200-distilled-600M", "/opt/models/opus-en-de"]
apertium = false
english_via = "text"
beam_size = 2
cache_size = 16
""",
    )
    mt = load_settings(config_file=path, environ={}).mt
    assert mt.models == ("nllb-200-distilled-600M", "/opt/models/opus-en-de")
    assert mt.apertium is False
    assert mt.english_via == "text"
    assert mt.beam_size == 2
    assert mt.cache_size == 16
    assert mt.device == "cpu"  # not mentioned: default


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a,b", ("a", "b")), (" a , ,b ,", ("a", "b")), ("only", ("only",)), ("", ())],
)
def test_mt_models_from_the_environment_are_comma_separated(
    value: str, expected: tuple[str, ...]
) -> None:
    assert load_settings(environ={"NOVA_MT_MODELS": value}).mt.models == expected


def test_mt_environment_beats_toml_for_a_list(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[mt]\nmodels = ["x", "y", "z"]\n')
    settings = load_settings(config_file=path, environ={"NOVA_MT_MODELS": "a"})
    assert settings.mt.models == ("a",)


def test_mt_scalars_from_the_environment_are_coerced() -> None:
    mt = load_settings(
        environ={
            "NOVA_MT_APERTIUM": "false",
            "NOVA_MT_CACHE_SIZE": "10",
            "NOVA_MT_ENGLISH_VIA": "whisper",
            "NOVA_MT_DEVICE": "cuda",
        }
    ).mt
    assert mt.apertium is False
    assert mt.cache_size == 10
    assert mt.english_via == "whisper"
    assert mt.device == "cuda"


def test_mt_english_via_must_be_a_known_mode() -> None:
    with pytest.raises(ConfigError, match=r"mt\.english_via"):
        load_settings(environ={"NOVA_MT_ENGLISH_VIA": "google"})


def test_mt_english_via_from_toml_must_be_a_known_mode(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[mt]\nenglish_via = "both"\n')
    with pytest.raises(ConfigError, match=r"mt\.english_via"):
        load_settings(config_file=path, environ={})


def test_unknown_mt_key_in_toml_raises_config_error(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[mt]\nmodel = "nllb"\n')  # "models" is the key
    with pytest.raises(ConfigError, match=r"`model`.*mt"):
        load_settings(config_file=path, environ={})


def test_mt_models_must_be_strings(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[mt]\nmodels = [1, 2]\n")
    with pytest.raises(ConfigError, match=r"mt\.models"):
        load_settings(config_file=path, environ={})


def test_mt_list_parsing_does_not_touch_other_sections() -> None:
    # Only tuple fields are split on commas; a URL with commas stays whole.
    settings = load_settings(environ={"NOVA_NATS_URL": "nats://a:4222,nats://b:4222"})
    assert settings.nats.url == "nats://a:4222,nats://b:4222"


def test_the_removed_openai_port_says_where_the_api_went(tmp_path: Path) -> None:
    path = tmp_path / "nova.toml"
    path.write_text("[gateway]\nport = 8765\nopenai_port = 8766\n")
    with pytest.raises(ConfigError, match=r"gateway\.openai_port no longer exists.*gateway\.port"):
        load_settings(config_file=path, environ={})
    with pytest.raises(ConfigError, match=r"NOVA_GATEWAY_OPENAI_PORT no longer exists.*/v1"):
        load_settings(environ={"NOVA_GATEWAY_OPENAI_PORT": "8766"})
