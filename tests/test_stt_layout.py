"""`nova up`'s STT workers and threads by the cores (bench/stt_workers.py measured 2 cores)."""

from __future__ import annotations

import pytest

from nova_cli.services import stt_layout, usable_cores
from nova_common.settings import SttSettings, load_settings


@pytest.mark.parametrize(("cores", "layout"), [(1, (1, 1)), (2, (2, 1)), (4, (2, 2)), (16, (2, 8))])
def test_by_the_cores(cores: int, layout: tuple[int, int]) -> None:
    assert stt_layout(SttSettings(), cores) == layout


def test_settings_that_are_set_win() -> None:
    assert stt_layout(SttSettings(workers=1), 2) == (1, 2)
    assert stt_layout(SttSettings(cpu_threads=2), 2) == (2, 2)
    assert stt_layout(SttSettings(workers=3, cpu_threads=1), 2) == (3, 1)
    settings = load_settings(environ={"NOVA_STT_WORKERS": "1"})
    assert settings.stt.workers == 1


def test_usable_cores() -> None:
    assert usable_cores() >= 1
