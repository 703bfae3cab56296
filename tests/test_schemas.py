"""The committed JSON Schemas must match the message structs they are generated from."""

from __future__ import annotations

from nova_common.schemas import SCHEMA_DIR, generate


def test_committed_schemas_match_the_structs() -> None:
    drifted = [
        name
        for name, text in generate().items()
        if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text() != text
    ]
    assert not drifted, f"schemas out of date: {drifted}; run `make schemas`"


def test_no_stale_schema_files() -> None:
    expected = set(generate())
    present = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert present == expected
