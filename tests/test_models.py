"""Resolving a model reference: local directory, offline package (joined once), or hub name."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nova_stt.models import (
    HUB_NAMES,
    OFFLINE_PACKAGES,
    ModelNotAvailable,
    list_models,
    offline_package,
    resolve_model,
)


def base_parts() -> list[Path]:
    pkg = offline_package("base")
    assert pkg is not None and pkg.installed(), "the base model packages are a test dependency"
    return sorted(
        (p for d in pkg.part_dirs() for p in d.iterdir() if p.name.startswith("model.bin.part")),
        key=lambda p: p.name,
    )


@pytest.fixture(scope="module")
def joined_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory where base has been joined once (shared: the join writes ~140 MB)."""
    cache = tmp_path_factory.mktemp("models")
    resolve_model("base", cache)
    return cache


def test_base_is_joined_from_its_parts_into_the_cache(joined_cache: Path) -> None:
    parts = base_parts()
    assert len(parts) == 2

    location = Path(resolve_model("base", joined_cache))

    assert location == joined_cache / "whisper-base"
    model_bin = location / "model.bin"
    assert model_bin.stat().st_size == sum(p.stat().st_size for p in parts)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (location / name).is_file()
    # The join went through a temporary file that is gone now.
    assert not list(location.glob(".model.bin.*"))
    # The joined file starts with the first part and ends with the last.
    with model_bin.open("rb") as joined, parts[0].open("rb") as first:
        assert joined.read(4096) == first.read(4096)
    with model_bin.open("rb") as joined, parts[-1].open("rb") as last:
        joined.seek(-4096, 2)
        last.seek(-4096, 2)
        assert joined.read() == last.read()


def test_joining_is_done_once(joined_cache: Path) -> None:
    first = resolve_model("base", joined_cache)
    model_bin = Path(first) / "model.bin"
    before = model_bin.stat()
    time.sleep(0.01)  # so a rewrite would show up in the nanosecond mtime

    second = resolve_model("base", joined_cache)

    after = model_bin.stat()
    assert second == first
    assert after.st_mtime_ns == before.st_mtime_ns
    assert after.st_ino == before.st_ino


def test_truncated_join_is_redone(tmp_path: Path) -> None:
    """A model.bin of the wrong size (an interrupted copy from an older version) is replaced."""
    target = tmp_path / "whisper-base"
    target.mkdir()
    (target / "model.bin").write_bytes(b"truncated")
    location = Path(resolve_model("base", tmp_path))
    assert (location / "model.bin").stat().st_size == sum(p.stat().st_size for p in base_parts())


def test_single_part_package_is_used_in_place(tmp_path: Path) -> None:
    pkg = offline_package("tiny.en")
    assert pkg is not None and pkg.installed()
    location = Path(resolve_model("tiny.en", tmp_path))
    assert location == pkg.part_dirs()[0]
    assert (location / "model.bin").is_file()
    assert not any(tmp_path.iterdir())  # nothing copied


def test_model_directory_is_returned_as_is(tmp_path: Path) -> None:
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    (model_dir / "model.bin").write_bytes(b"\0")
    (model_dir / "config.json").write_text("{}")
    assert resolve_model(str(model_dir), tmp_path / "cache") == str(model_dir)


def test_directory_without_model_bin_is_not_available(tmp_path: Path) -> None:
    model_dir = tmp_path / "empty"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    with pytest.raises(ModelNotAvailable, match=r"no model\.bin"):
        resolve_model(str(model_dir), tmp_path / "cache")


def test_unknown_name_lists_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable) as info:
        resolve_model("whisper-gigantic", tmp_path)
    message = str(info.value)
    assert "'whisper-gigantic'" in message
    for name in ("base", "tiny.en", "small", "large-v3"):
        assert name in message


def test_hub_name_without_a_package_is_left_for_faster_whisper_to_download(tmp_path: Path) -> None:
    assert offline_package("small") is None
    assert resolve_model("small", tmp_path) == "small"


def test_a_previously_placed_model_in_the_cache_is_found(tmp_path: Path) -> None:
    cached = tmp_path / "whisper-my-finetune"
    cached.mkdir()
    (cached / "model.bin").write_bytes(b"\0")
    (cached / "config.json").write_text("{}")
    assert resolve_model("my-finetune", tmp_path) == str(cached)


def test_list_models_shows_the_offline_models_available(tmp_path: Path) -> None:
    rows = {row.name: row for row in list_models(tmp_path)}
    assert rows["base"].available
    assert rows["base"].location == str(tmp_path / "whisper-base")
    assert rows["tiny.en"].available
    # Hub-only names are listed but need the internet.
    assert not rows["small"].available
    assert rows["small"].source == "hub download"
    offline = {p.model for p in OFFLINE_PACKAGES}
    assert set(rows) >= set(HUB_NAMES) | offline


def test_list_models_includes_local_cache_directories(tmp_path: Path) -> None:
    cached = tmp_path / "whisper-custom"
    cached.mkdir()
    (cached / "model.bin").write_bytes(b"\0")
    (cached / "config.json").write_text("{}")
    (tmp_path / "whisper-broken").mkdir()  # no model.bin: not listed
    rows = {row.name: row for row in list_models(tmp_path)}
    assert rows["custom"].available and rows["custom"].location == str(cached)
    assert "broken" not in rows


def test_hub_model_that_cannot_be_downloaded_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    from nova_stt.transcriber import SpeechToText

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads its environment once, at import; it may already be imported.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))

    with pytest.raises(ModelNotAvailable) as info:
        SpeechToText("small", cache_dir=tmp_path / "models")
    message = str(info.value)
    assert "'small'" in message
    assert "could not be downloaded" in message
