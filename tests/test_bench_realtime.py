"""bench/realtime.py and `nova bench`: the pure parts (word matching, stable and final lags
from a recorded event list, the README table refresh), and one short end-to-end run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.realtime_words import (
    RefWord,
    StreamRecord,
    end_of_speech_lags,
    first_partial_lags,
    reference_words,
    stable_times,
    word_lags,
)
from nova_cli.bench import BEGIN, END, ReadmeMarkersMissing, realtime_table, refresh_readme
from nova_common.messages import FinalEvent, PartialEvent, Word

REPO = Path(__file__).resolve().parents[1]


def partial(seq: int, text: str, committed: str, revision: int = 0) -> PartialEvent:
    return PartialEvent(
        session_id="s",
        seq=seq,
        revision=revision,
        text=text,
        committed=committed,
        language="en",
        start=0.0,
        end=1.0,
    )


def final(seq: int, text: str, words: tuple[Word, ...] = ()) -> FinalEvent:
    return FinalEvent(
        session_id="s", seq=seq, text=text, language="en", start=0.0, end=1.0, words=words
    )


def word(text: str, end: float) -> Word:
    return Word(word=text, start=end - 0.3, end=end, probability=0.9)


def test_reference_words_are_normalised_tokens_sharing_a_word_end() -> None:
    words = reference_words([(" Mr.", 0.5), (" ill-disposed,", 1.2), (" man.", 1.6)])
    assert words == [
        RefWord("mister", 0.5),
        RefWord("ill", 1.2),
        RefWord("disposed", 1.2),
        RefWord("man", 1.6),
    ]


def test_a_committed_word_is_stable_from_its_partial_a_revised_one_from_the_final() -> None:
    record = StreamRecord(t0=100.0)
    record.partials = [
        (101.0, partial(0, "he was knot", "")),
        (102.0, partial(0, "he was not an", "he was")),
        (103.0, partial(0, "he was not an ill", "he was knot")),  # committed, then revised
    ]
    record.finals = [(105.0, final(0, "He was not an ill disposed man."))]
    words, stable, arrivals = stable_times(record)
    assert words == ["he", "was", "not", "an", "ill", "disposed", "man"]
    # "he was" settled at 102 s; "knot" was committed at 103 s but the final wrote "not".
    assert stable == [102.0, 102.0, 105.0, 105.0, 105.0, 105.0, 105.0]
    assert arrivals == [105.0] * 7


def test_words_are_matched_by_alignment_not_by_index() -> None:
    # The stream drops "then" and adds "uh": every other word still finds its reference.
    reference = reference_words(
        [("had", 1.0), ("then", 1.2), ("leisure", 1.8), ("to", 2.0), ("consider", 2.6)]
    )
    record = StreamRecord(t0=10.0)
    record.partials = [(12.5, partial(0, "had uh leisure", "had uh leisure"))]
    record.finals = [(14.0, final(0, "Had uh leisure to consider."))]
    lags, missed = word_lags(record, reference)
    assert [w.word for w in lags] == ["had", "leisure", "to", "consider"]
    assert [w.stable_s for w in lags] == pytest.approx([1.5, 0.7, 2.0, 1.4])
    assert [w.final_s for w in lags] == pytest.approx([3.0, 2.2, 2.0, 1.4])
    assert missed == 1


def test_finals_of_several_utterances_line_up_in_seq_order() -> None:
    reference = reference_words([("one", 1.0), ("two", 2.0), ("three", 3.0), ("four", 4.0)])
    record = StreamRecord(t0=0.0)
    # The second utterance's partial comes before the first final; finals arrive out of order.
    record.partials = [(3.5, partial(1, "three four", "three"))]
    record.finals = [(6.0, final(1, "Three four.")), (5.0, final(0, "One two."))]
    lags, missed = word_lags(record, reference)
    assert missed == 0
    assert [w.stable_s for w in lags] == pytest.approx([4.0, 3.0, 0.5, 2.0])
    assert [w.final_s for w in lags] == pytest.approx([4.0, 3.0, 3.0, 2.0])


def test_end_of_speech_and_first_partial_lags() -> None:
    record = StreamRecord(t0=50.0)
    record.partials = [(51.0, partial(0, "one", "")), (51.5, partial(0, "one two", "one"))]
    record.partials += [(54.0, partial(1, "three", ""))]
    record.finals = [
        (53.0, final(0, "One two.", (word("One", 0.6), word("two", 1.9)))),
        (56.0, final(1, "Three.", (word("Three", 4.2),))),
        (56.5, final(2, "")),  # no words: no end of speech to count from
    ]
    assert end_of_speech_lags(record) == pytest.approx([1.1, 1.8])
    assert first_partial_lags(record, {0: 0.3, 1: 3.8, 2: 5.0}) == pytest.approx([0.7, 0.2])


def _report(stable_p95: float = 2.1) -> dict[str, Any]:
    def stats(p50: float, p95: float) -> dict[str, Any]:
        return {"p50": p50, "p95": p95, "max": p95, "n": 10}

    return {
        "config": {
            "command": ".venv/bin/python bench/realtime.py",
            "session_audio_s": 24.74,
            "language": "en",
            "stt_workers": 1,
        },
        "machine": {"model": "base", "compute_type": "int8", "beam_size": 5, "cpus_usable": 2},
        "targets": {
            "stable_lag_p95_s": {"1": 2.5},
            "final_lag_p95_s": {"1": 5.0},
            "wer_over_offline_points": {"1": 1.0},
        },
        "summary": {
            "streams_sustained": 1,
            "wer_offline": 0.014,
            "sequential": {"s_per_audio_s": 0.21, "wer": 0.014},
        },
        "runs": [
            {
                "streams": 1,
                "stable_lag_s": stats(1.2, stable_p95),
                "final_lag_s": stats(3.0, 6.5),
                "end_of_speech_to_final_s": stats(0.9, 1.4),
                "first_partial_s": {"p50": None, "p95": None, "max": None, "n": 0},
                "wer": {"mean": 0.028},
                "finals_complete": True,
            }
        ],
        "batched": [{"batch_size": 1, "s_per_audio_s": 0.19, "wer": 0.014}],
        "finished_at": "2026-12-01 10:00:00",
    }


def test_the_table_shows_figures_with_their_targets() -> None:
    table = realtime_table(_report())
    assert "| 1 | 1.2 s / 2.1 s (≤ 2.5) ✓ | 3.0 s / 6.5 s (≤ 5) ✗ | 0.9 s / 1.4 s |" in table
    assert "| – |" in table  # no partials: no first-partial figure
    assert "2.8 % ✗" in table  # 1.4 points over offline
    assert "`.venv/bin/python bench/realtime.py`" in table
    assert "**Streams sustained**" in table and "batch 1" in table


def test_the_readme_refresh_replaces_only_the_block_and_is_idempotent() -> None:
    readme = f"# Title\n\nbefore\n\n{BEGIN}\nold figures\n{END}\n\nafter\n"
    once = refresh_readme(readme, realtime_table(_report()))
    assert once.startswith("# Title\n\nbefore\n\n" + BEGIN + "\n")
    assert once.endswith(END + "\n\nafter\n") and "old figures" not in once
    assert refresh_readme(once, realtime_table(_report())) == once
    changed = refresh_readme(once, realtime_table(_report(stable_p95=3.4)))
    assert "3.4 s (≤ 2.5) ✗" in changed and changed.count(BEGIN) == 1


def test_a_readme_without_markers_is_refused() -> None:
    with pytest.raises(ReadmeMarkersMissing):
        refresh_readme("# no block here\n", "table")


def test_the_project_readme_has_the_block() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme.count(BEGIN) == 1 and readme.index(BEGIN) < readme.index(END)
    assert "`nova bench" in readme


@pytest.mark.slow
def test_nova_bench_measures_one_short_stream(tmp_path: Path) -> None:
    out = tmp_path / "realtime.json"
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{BEGIN}\n{END}\n")
    nova = Path(sys.executable).parent / "nova"
    done = subprocess.run(
        [
            str(nova),
            "bench",
            "--streams",
            "1",
            "--seconds",
            "11",
            "--out",
            str(out),
            "--readme",
            str(readme),
        ],
        capture_output=True,
        text=True,
        timeout=540,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    assert run["finals_complete"] and not run["errors"]
    assert run["words"]["matched"] > 0.8 * run["words"]["reference"] > 0
    for figure in ("stable_lag_s", "final_lag_s", "end_of_speech_to_final_s"):
        assert 0 < run[figure]["p50"] <= run[figure]["p95"] < 30, (figure, run[figure])
    assert run["stable_lag_s"]["p50"] <= run["final_lag_s"]["p50"]
    assert run["wer"]["mean"] < 0.2 and report["summary"]["wer_offline"] < 0.2
    assert report["summary"]["sequential"]["s_per_audio_s"] > 0
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "| 1 |" in readme.read_text()


def test_seconds_keeps_whole_recordings_so_the_references_hold() -> None:
    from bench.realtime import session_audio

    audio, truth, names = session_audio(11.0)
    assert len(names) == 2 and 10.0 < len(audio) / 16000 <= 11.0
    assert truth.startswith("and mister john dashwood") and truth.endswith("ill disposed young man")
    assert len(session_audio(1.0)[2]) == 1  # at least one recording, however short the limit
    whole, _, all_names = session_audio(None)
    assert len(all_names) == 5 and 24.0 < len(whole) / 16000 < 25.5  # no silence added


def test_nova_bench_passes_its_flags_to_the_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import nova_cli.bench as bench
    from nova_cli.main import _parser

    seen: dict[str, Any] = {}

    def fake_run_bench(args: list[str], *, run_all: bool, readme: Path | None) -> int:
        seen.update(args=args, run_all=run_all, readme=readme)
        return 0

    monkeypatch.setattr(bench, "run_bench", fake_run_bench)
    monkeypatch.chdir(tmp_path)
    argv = ["bench", "--streams", "1,4", "--seconds", "8", "--env", "NOVA_STT_BEAM_SIZE=1"]
    assert bench.run_from_args(_parser().parse_args([*argv, "--out", "r.json", "--all"])) == 0
    assert seen["args"] == [
        "--streams",
        "1,4",
        "--seconds",
        "8",
        "--out",
        "r.json",
        "--env",
        "NOVA_STT_BEAM_SIZE=1",
    ]
    assert seen["run_all"] and seen["readme"] == REPO / "README.md"
    bench.run_from_args(_parser().parse_args([*argv, "--no-readme"]))
    assert seen["readme"] is None
