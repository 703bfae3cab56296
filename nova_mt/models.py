"""Where CTranslate2 translation models live, which ones can be pulled, and pulling them.

An installed model is a directory ``<models_dir>/mt/<name>/`` holding CTranslate2's ``model.bin``
and ``config.json``, the Hugging Face tokenizer files, and ``nova-mt.json`` (which family, where it
came from, and the language pair of a one-pair Marian model). ``nova models pull <name>`` makes one
from the Hugging Face Hub; that needs internet and PyPI's torch (for CTranslate2's converter), so
it refuses at once, with the reason, where either is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

Family = Literal["nllb", "m2m100", "marian"]
METADATA_FILE = "nova-mt.json"
DEFAULT_HUB = "https://huggingface.co"
# What the tokenizers of the three families need at run time; copied next to model.bin.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "sentencepiece.bpe.model", "vocab.json", "source.spm", "target.spm",
)  # fmt: skip


class MtModelNotAvailable(RuntimeError):
    """A translation model cannot be found, read or pulled; the message says what to do."""


class MtModelInfo(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """The contents of ``nova-mt.json``."""

    name: str
    family: Family
    hub_id: str | None = None
    # The one pair of a Marian (OPUS-MT) model, Whisper codes; None for many-to-many models.
    source: str | None = None
    target: str | None = None
    quantization: str = "int8"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    hub_id: str
    family: Family
    description: str
    source: str | None = None
    target: str | None = None

    def info(self) -> MtModelInfo:
        return MtModelInfo(
            name=self.name,
            family=self.family,
            hub_id=self.hub_id,
            source=self.source,
            target=self.target,
        )


def _opus(source: str, target: str) -> CatalogEntry:
    return CatalogEntry(
        name=f"opus-mt-{source}-{target}",
        hub_id=f"Helsinki-NLP/opus-mt-{source}-{target}",
        family="marian",
        description=f"OPUS-MT {source}→{target} only, small and fast (~80 MB int8)",
        source=source,
        target=target,
    )


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry("nllb-200-distilled-600M", "facebook/nllb-200-distilled-600M", "nllb",
                 "NLLB-200 distilled, 200 languages (~620 MB int8); the default"),
    CatalogEntry("nllb-200-distilled-1.3B", "facebook/nllb-200-distilled-1.3B", "nllb",
                 "NLLB-200 distilled, 200 languages, better and slower (~1.4 GB int8)"),
    CatalogEntry("m2m100_418M", "facebook/m2m100_418M", "m2m100",
                 "M2M-100, 100 languages (~480 MB int8)"),
    CatalogEntry("m2m100_1.2B", "facebook/m2m100_1.2B", "m2m100",
                 "M2M-100, 100 languages, better and slower (~1.3 GB int8)"),
    _opus("en", "es"),
    _opus("es", "en"),
    _opus("en", "de"),
    _opus("de", "en"),
)  # fmt: skip


def catalog_entry(name: str) -> CatalogEntry | None:
    return next((e for e in CATALOG if e.name == name), None)


def mt_dir(models_dir: Path) -> Path:
    return models_dir / "mt"


def is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def write_metadata(path: Path, info: MtModelInfo) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(info)) + b"\n")


def model_info(model_dir: Path) -> MtModelInfo:
    """The metadata of a model directory: its ``nova-mt.json``, or, for a directory converted by
    hand, the family its tokenizer names (a Marian model's pair cannot be guessed)."""
    metadata = model_dir / METADATA_FILE
    if metadata.is_file():
        try:
            return msgspec.json.decode(metadata.read_bytes(), type=MtModelInfo)
        except msgspec.ValidationError as exc:
            raise MtModelNotAvailable(f"{metadata} is invalid: {exc}") from exc
    family = _family_from_tokenizer(model_dir)
    if family is None or family == "marian":
        raise MtModelNotAvailable(
            f"{model_dir} has no {METADATA_FILE} and its tokenizer does not say an NLLB or "
            "M2M-100 model: write one, e.g. "
            '{"name": "opus-mt-en-es", "family": "marian", "source": "en", "target": "es"}'
        )
    return MtModelInfo(name=model_dir.name, family=family, hub_id=None)


def _family_from_tokenizer(model_dir: Path) -> Family | None:
    try:
        config = json.loads((model_dir / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return None
    tokenizer_class = str(config.get("tokenizer_class", "")).lower()
    for prefix, family in (("nllb", "nllb"), ("m2m100", "m2m100"), ("marian", "marian")):
        if tokenizer_class.startswith(prefix):
            return family  # type: ignore[return-value]
    return None


@dataclass(frozen=True)
class InstalledModel:
    info: MtModelInfo
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def _scan(models_dir: Path) -> list[tuple[Path, MtModelInfo | MtModelNotAvailable]]:
    root = mt_dir(models_dir)
    if not root.is_dir():
        return []
    found: list[tuple[Path, MtModelInfo | MtModelNotAvailable]] = []
    for path in sorted(root.iterdir()):
        # Dot-directories are pulls in progress.
        if path.name.startswith(".") or not is_model_dir(path):
            continue
        try:
            found.append((path, model_info(path)))
        except MtModelNotAvailable as exc:
            found.append((path, exc))
    return found


def installed_models(models_dir: Path) -> list[InstalledModel]:
    """Every usable model under ``<models_dir>/mt``, by directory name."""
    return [
        InstalledModel(info, path)
        for path, info in _scan(models_dir)
        if isinstance(info, MtModelInfo)
    ]


def resolve_mt_model(reference: str, models_dir: Path) -> Path:
    """A CTranslate2 model directory for a reference: a directory path, or an installed name."""
    path = Path(reference).expanduser()
    installed = mt_dir(models_dir) / reference
    looks_like_path = "/" in reference or reference.startswith((".", "~"))
    if path.is_dir() and (looks_like_path or not is_model_dir(installed)):
        if not is_model_dir(path):
            raise MtModelNotAvailable(f"{path} is not a CTranslate2 model (no model.bin)")
        return path
    if not looks_like_path and is_model_dir(installed):
        return installed
    if catalog_entry(reference) is not None:
        raise MtModelNotAvailable(
            f"translation model {reference!r} is not installed: run `nova models pull "
            f"{reference}` (needs internet), or give a converted CTranslate2 model directory"
        )
    names = ", ".join(m.name for m in installed_models(models_dir)) or "none"
    raise MtModelNotAvailable(
        f"unknown translation model {reference!r}: give a CTranslate2 model directory or an "
        f"installed name (installed: {names}); to download one run `nova models pull <name>` "
        f"with <name> one of {', '.join(e.name for e in CATALOG)}"
    )


@dataclass(frozen=True)
class MtModelListing:
    """One row of ``nova models`` (the same fields as the speech models' rows)."""

    name: str
    source: str
    location: str
    available: bool


def list_mt_models(models_dir: Path) -> list[MtModelListing]:
    rows: list[MtModelListing] = []
    installed: set[str] = set()
    for path, info in _scan(models_dir):
        installed.add(path.name)
        if isinstance(info, MtModelInfo):
            origin = f" from {info.hub_id}" if info.hub_id else ""
            pair = f" {info.source}→{info.target}" if info.source and info.target else ""
            rows.append(MtModelListing(path.name, f"{info.family}{pair}{origin}", str(path), True))
        else:
            rows.append(MtModelListing(path.name, f"unusable: {info}", str(path), False))
    for entry in CATALOG:
        if entry.name not in installed:
            rows.append(
                MtModelListing(
                    entry.name,
                    f"{entry.hub_id}: {entry.description}",
                    f"nova models pull {entry.name} (needs internet)",
                    False,
                )
            )
    return rows


# --------------------------------------------------------------------------------- pulling


def pull_model(
    name: str, models_dir: Path, *, offline: bool | None = None, probe_timeout_s: float = 3.0
) -> Path:
    """Download ``name`` from the Hugging Face Hub, convert it to CTranslate2 (int8) and install
    it under ``<models_dir>/mt/<name>``; returns the directory. An installed model is returned
    as it is.

    ``offline``: True refuses to download, None (the default) refuses when HF_HUB_OFFLINE is set
    or the hub does not answer within ``probe_timeout_s``, False skips those checks.
    """
    entry = catalog_entry(name)
    if entry is None:
        raise MtModelNotAvailable(
            f"unknown translation model {name!r}: `nova models pull` knows "
            f"{', '.join(e.name for e in CATALOG)}"
        )
    target = mt_dir(models_dir) / entry.name
    if is_model_dir(target):
        return target
    reason = offline_reason(entry.hub_id, offline=offline, timeout_s=probe_timeout_s)
    if reason is not None:
        raise MtModelNotAvailable(
            f"cannot pull {name!r}: {reason}. Pulling downloads {entry.hub_id} from the Hugging "
            f"Face Hub, which needs internet; on an offline machine, pull it where there is "
            f"internet and copy the directory to {target}"
        )
    if (
        importlib.util.find_spec("torch") is None
        or importlib.util.find_spec("transformers") is None
    ):
        raise MtModelNotAvailable(
            "converting a Hugging Face model to CTranslate2 needs PyTorch and transformers: "
            "pip install 'nova-voice[convert]' (or pip install torch transformers sentencepiece)"
        )
    return _download_and_convert(entry, target)


def offline_reason(hub_id: str, *, offline: bool | None, timeout_s: float) -> str | None:
    """Why the hub cannot be used now, or None. Quick: never longer than ``timeout_s`` + a bit,
    even where name resolution hangs."""
    if offline is True:
        return "offline mode was asked for (no internet)"
    if offline is False:
        return None
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return "HF_HUB_OFFLINE is set (offline: no internet downloads)"
    endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_HUB).rstrip("/")
    url = f"{endpoint}/api/models/{hub_id}"
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            # urllib honours the proxy variables, as the hub client does.
            with urllib.request.urlopen(url, timeout=timeout_s):
                outcome.append(None)
        except Exception as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    # A thread, because a DNS lookup ignores the socket timeout and can hang for long.
    thread = threading.Thread(target=probe, name="nova-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    if not outcome:
        return f"no internet: {endpoint} did not answer within {timeout_s:g} s"
    if outcome[0] is not None:
        return f"no internet: cannot reach {endpoint} ({outcome[0]})"
    return None


def _download_and_convert(entry: CatalogEntry, target: Path) -> Path:
    from ctranslate2.converters import TransformersConverter
    from huggingface_hub import list_repo_files, snapshot_download

    files = list_repo_files(entry.hub_id)
    # One copy of the weights: safetensors where the repository has them.
    weights = "*.safetensors" if any(f.endswith(".safetensors") for f in files) else "*.bin"
    local = Path(
        snapshot_download(entry.hub_id, allow_patterns=["*.json", "*.model", "*.spm", weights])
    )
    copy_files = [f for f in TOKENIZER_FILES if (local / f).is_file()]
    target.parent.mkdir(parents=True, exist_ok=True)
    # Converted next to the target and renamed into place, so that a half-written model is never
    # seen as installed (dot-directories are skipped by the listing).
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{entry.name}."))
    try:
        converted = staging / "model"
        TransformersConverter(str(local), copy_files=copy_files).convert(
            str(converted), quantization="int8"
        )
        write_metadata(converted / METADATA_FILE, entry.info())
        if target.exists() and not is_model_dir(target):
            shutil.rmtree(target)  # the remains of something that was not a model
        try:
            os.replace(converted, target)
        except OSError:
            if not is_model_dir(target):  # another pull finishing first is fine
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
