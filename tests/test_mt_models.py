"""The translation model catalog: installed models, references, listing, pulling (offline)."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest

from nova_mt.models import (
    CATALOG,
    METADATA_FILE,
    MtModelNotAvailable,
    catalog_entry,
    installed_models,
    list_mt_models,
    model_info,
    pull_model,
    resolve_mt_model,
)
from tests.tiny_mt_model import build_tiny_model


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    build_tiny_model(root / "mt" / "tiny-nllb")
    return root


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_installed_models_finds_the_tiny_model(models_dir: Path) -> None:
    [model] = installed_models(models_dir)
    assert model.name == "tiny-nllb"
    assert model.path == models_dir / "mt" / "tiny-nllb"
    assert model.info.family == "nllb" and model.info.hub_id is None
    assert model.info.quantization == "int8"


def test_no_models_directory_means_no_models(tmp_path: Path) -> None:
    assert installed_models(tmp_path) == []


def test_resolve_by_installed_name_and_by_directory(models_dir: Path, tmp_path: Path) -> None:
    installed = models_dir / "mt" / "tiny-nllb"
    assert resolve_mt_model("tiny-nllb", models_dir) == installed
    assert resolve_mt_model(str(installed), tmp_path) == installed


def test_resolve_refuses_a_directory_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(MtModelNotAvailable, match=r"no model\.bin"):
        resolve_mt_model(str(tmp_path), tmp_path)


def test_resolve_unknown_reference_names_the_pull_command(models_dir: Path) -> None:
    with pytest.raises(MtModelNotAvailable, match="nova models pull nllb-200-distilled-600M"):
        resolve_mt_model("nllb-200-distilled-600M", models_dir)
    with pytest.raises(MtModelNotAvailable, match=r"installed: tiny-nllb.*nova models pull") as err:
        resolve_mt_model("no-such-model", models_dir)
    assert "opus-mt-en-es" in str(err.value)


def test_metadata_falls_back_to_the_tokenizer_class(models_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "by-hand"
    shutil.copytree(models_dir / "mt" / "tiny-nllb", copy)
    (copy / METADATA_FILE).unlink()
    info = model_info(copy)
    assert (info.name, info.family, info.hub_id) == ("by-hand", "nllb", None)
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "MarianTokenizer"  # a pair cannot be guessed
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(MtModelNotAvailable, match=METADATA_FILE):
        model_info(copy)


def test_catalog_has_the_expected_models() -> None:
    nllb = catalog_entry("nllb-200-distilled-600M")
    assert nllb is not None and (nllb.hub_id, nllb.family) == (
        "facebook/nllb-200-distilled-600M",
        "nllb",
    )
    m2m = catalog_entry("m2m100_418M")
    assert m2m is not None and (m2m.hub_id, m2m.family) == ("facebook/m2m100_418M", "m2m100")
    opus = catalog_entry("opus-mt-de-en")
    assert opus is not None
    assert (opus.hub_id, opus.family, opus.source, opus.target) == (
        "Helsinki-NLP/opus-mt-de-en",
        "marian",
        "de",
        "en",
    )
    assert catalog_entry("nllb-200-distilled-1.3B") is not None
    assert len({e.name for e in CATALOG}) == len(CATALOG)


def test_list_rows_show_installed_catalog_and_unusable_models(
    models_dir: Path, tmp_path: Path
) -> None:
    shutil.copytree(models_dir / "mt" / "tiny-nllb", tmp_path / "mt" / "tiny-nllb")
    unusable = tmp_path / "mt" / "mystery"
    unusable.mkdir()
    (unusable / "model.bin").write_bytes(b"")
    (unusable / "config.json").write_text("{}")
    (tmp_path / "mt" / ".opus-mt-en-es.partial").mkdir()  # a pull in progress is not listed
    rows = {row.name: row for row in list_mt_models(tmp_path)}
    tiny = rows["tiny-nllb"]
    assert tiny.available and tiny.location == str(tmp_path / "mt" / "tiny-nllb")
    assert tiny.source.startswith("nllb")
    assert not rows["mystery"].available and "unusable" in rows["mystery"].source
    for entry in CATALOG:
        row = rows[entry.name]
        assert not row.available
        assert row.location.startswith(f"nova models pull {entry.name}")
        assert entry.hub_id in row.source
    assert not any(name.startswith(".") for name in rows)


def test_pull_unknown_name_lists_the_catalog(tmp_path: Path) -> None:
    with pytest.raises(MtModelNotAvailable, match="unknown translation model") as err:
        pull_model("gpt-7", tmp_path, offline=True)
    for entry in CATALOG:
        assert entry.name in str(err.value)


def test_pull_without_internet_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An endpoint that refuses connections: no internet, on any machine.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    with pytest.raises(MtModelNotAvailable, match="no internet") as err:
        pull_model("nllb-200-distilled-600M", tmp_path)
    assert time.monotonic() - started < 3.0
    assert "facebook/nllb-200-distilled-600M" in str(err.value)
    assert not (tmp_path / "mt").exists()  # nothing half-made


def test_pull_gives_up_on_an_endpoint_that_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listening socket that never answers HTTP: the probe's own time limit ends it.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(MtModelNotAvailable, match="no internet"):
            pull_model("opus-mt-en-es", tmp_path, probe_timeout_s=0.5)
        assert time.monotonic() - started < 2.0


def test_pull_with_hf_hub_offline_fails_without_trying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Were the network tried, this endpoint would hang for the probe's full time.
    monkeypatch.setenv("HF_ENDPOINT", "http://10.255.255.1")
    started = time.monotonic()
    with pytest.raises(MtModelNotAvailable, match="HF_HUB_OFFLINE"):
        pull_model("nllb-200-distilled-600M", tmp_path)
    assert time.monotonic() - started < 2.0  # the probe alone would take 3 s
    with pytest.raises(MtModelNotAvailable, match="offline"):
        pull_model("m2m100_418M", tmp_path, offline=True)


def test_pull_of_an_installed_model_needs_no_network(models_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "mt" / "opus-mt-en-es"
    shutil.copytree(models_dir / "mt" / "tiny-nllb", target)
    assert pull_model("opus-mt-en-es", tmp_path, offline=True) == target
