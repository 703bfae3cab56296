"""The lock files hold every dependency pyproject names, and this environment was installed from
them: a fresh machine gets the versions the suite passed with, not whatever is newest that day."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
RUN_LOCK = REPO / "requirements" / "run.txt"
TEST_LOCK = REPO / "requirements" / "test.txt"
# The extras each lock covers (make lock); `convert` (PyTorch) is installed by hand, unlocked.
RUN_EXTRAS = ("models",)
TEST_EXTRAS = ("models", "test")

# "name==version ; marker \" — the first line of each locked package.
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]*?))?\s*\\?$")


def locked(path: Path) -> dict[str, list[tuple[Version, Marker | None]]]:
    pins: dict[str, list[tuple[Version, Marker | None]]] = {}
    for line in path.read_text().splitlines():
        if match := _PIN.match(line):
            name, version, marker = match.groups()
            pins.setdefault(canonicalize_name(name), []).append(
                (Version(version), Marker(marker) if marker else None)
            )
    return pins


def applies(marker: Marker | None) -> bool:
    return marker is None or marker.evaluate()


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    project = PYPROJECT["project"]
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    names += PYPROJECT["build-system"]["requires"]  # installed from the lock too (no isolation)
    return [Requirement(name) for name in names]


@pytest.mark.parametrize(
    ("lock", "extras"), [(RUN_LOCK, RUN_EXTRAS), (TEST_LOCK, TEST_EXTRAS)], ids=["run", "test"]
)
def test_the_lock_holds_every_declared_dependency(lock: Path, extras: tuple[str, ...]) -> None:
    pins = locked(lock)
    missing = [str(r) for r in declared(extras) if canonicalize_name(r.name) not in pins]
    assert not missing, f"{lock.name} lacks {missing}: run `make lock`"
    unsatisfied = [
        f"{r} (locked {version})"
        for r in declared(extras)
        for version, _ in pins[canonicalize_name(r.name)]
        if not r.specifier.contains(version, prereleases=True)
    ]
    assert not unsatisfied, f"{lock.name} pins versions pyproject excludes: {unsatisfied}"


def test_run_and_test_locks_agree() -> None:
    """`make run` after `make test` (or the other way round) changes no version."""

    def versions(pins: list[tuple[Version, Marker | None]]) -> set[Version]:
        return {version for version, _ in pins}  # markers may differ: the test set needs more

    run, test = locked(RUN_LOCK), locked(TEST_LOCK)
    differ = {
        name: (versions(pins), versions(test.get(name, [])))
        for name, pins in run.items()
        if versions(pins) != versions(test.get(name, []))
    }
    assert not differ, differ


def test_this_environment_was_installed_from_the_lock() -> None:
    wrong = {}
    for name, pins in locked(TEST_LOCK).items():
        wanted = [version for version, marker in pins if applies(marker)]
        if not wanted:
            continue  # another platform's or Python's dependency
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            wrong[name] = (wanted[0], None)
            continue
        if installed not in wanted:
            wrong[name] = (wanted[0], installed)
    assert not wrong, f"installed versions differ from requirements/test.txt: {wrong}"


def test_a_dependency_missing_from_the_lock_is_noticed(tmp_path: Path) -> None:
    """The check above can fail: a lock without numpy does not hold what pyproject names."""
    lock = tmp_path / "test.txt"
    lock.write_text(
        "\n".join(
            line for line in TEST_LOCK.read_text().splitlines() if not line.startswith("numpy==")
        )
    )
    with pytest.raises(AssertionError, match="numpy"):
        test_the_lock_holds_every_declared_dependency(lock, TEST_EXTRAS)


def test_every_package_of_the_source_tree_is_built_into_the_wheel() -> None:
    """setuptools builds only the packages pyproject lists: one left out works in the editable
    install the tests use and is missing from a wheel or an image."""
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("nova_common", "nova_gateway", "nova_stt", "nova_mt", "nova_client", "nova_cli")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == found
