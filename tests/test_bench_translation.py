"""The translation benchmark still runs and writes what the README quotes (small settings)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.translation import main


def test_translation_benchmark_writes_both_backends(tmp_path: Path) -> None:
    out = tmp_path / "translation.json"
    assert main(["--out", str(out), "--sentences", "8", "--batch-size", "8", "--repeat", "1"]) == 0
    report = json.loads(out.read_text())
    backends = [r["backend"] for r in report["results"]]
    assert backends == ["ct2:tiny-nllb", "apertium"]
    for result in report["results"]:
        assert result["sentences"] == 8
        assert result["batched_sentences_per_s"] > 0 and result["sequential_sentences_per_s"] > 0
