"""The overhead and STT-worker benchmarks' pure parts: statistics, per-final overhead, py-spy
profile summaries, the session audio; and the null model answering the real SttWorker's calls."""

from __future__ import annotations

import numpy as np
import pytest

from bench.null_worker import NullSpeechToText
from bench.overhead_parts import (
    RATE,
    FinalTiming,
    StreamClock,
    merge_profiles,
    model_waits,
    overhead_report,
    pcm_chunks,
    profile_summary,
    profile_text,
    raise_open_files,
    stats,
    utterances_session,
)
from bench.stt_workers import parse_config, round_orders


def test_stats_and_empty() -> None:
    s = stats([1.0, 2.0, 3.0, 4.0])
    assert s["n"] == 4 and s["p50"] == 2.5 and s["max"] == 4.0
    assert stats([])["p99"] is None


def test_sent_at_is_the_chunk_holding_the_time() -> None:
    clock = StreamClock()
    for i in range(1, 4):  # 0.1 s chunks sent at 100.1, 100.2, 100.3
        clock.on_sent(0.1 * i, 100.0 + 0.1 * i)
    assert clock.t0 == pytest.approx(100.0)
    assert clock.sent_at(0.15) == pytest.approx(100.2)
    assert clock.sent_at(0.2) == pytest.approx(100.2)  # exactly at a chunk's end
    assert clock.sent_at(9.0) == pytest.approx(100.3)  # past the end: the last chunk


def test_model_waits_count_only_time_behind_other_utterances() -> None:
    timings = [
        # Worker w: the first runs at once; the second was queued at 10.5 while the first ran
        # until 11.0; the third came after the worker was free.
        FinalTiming(arrived=11.01, end=0, compute_s=1.0, segment_at=10.0, result_at=11.0,
                    worker_id="w"),
        FinalTiming(arrived=12.01, end=0, compute_s=1.0, segment_at=10.5, result_at=12.0,
                    worker_id="w"),
        FinalTiming(arrived=14.01, end=0, compute_s=1.0, segment_at=13.0, result_at=14.0,
                    worker_id="w"),
        # Another worker's results are no wait for w's segments.
        FinalTiming(arrived=13.51, end=0, compute_s=0.5, segment_at=13.0, result_at=13.5,
                    worker_id="v"),
    ]  # fmt: skip
    assert model_waits(timings) == pytest.approx([0.0, 0.5, 0.0, 0.0])


def test_overhead_report_subtracts_model_time_and_capture_granularity() -> None:
    clock = StreamClock()
    clock.on_sent(1.0, 101.0)  # session t0 = 100.0
    clock.on_sent(2.0, 102.0)
    # Utterance ends at 1.5 s (inside the second chunk, sent at 102.0); model 0.5 s; arrives
    # 10 ms after the model is done.
    timing = FinalTiming(arrived=102.51, end=1.5, compute_s=0.5, segment_at=102.002,
                         result_at=102.505, worker_id="w")  # fmt: skip
    report = overhead_report([timing], [clock])
    assert report["finals"] == 1
    assert report["overhead_from_chunk_sent_ms"]["p50"] == pytest.approx(10.0)
    assert report["overhead_from_utterance_end_ms"]["p50"] == pytest.approx(510.0)
    assert report["overhead_without_model_queue_ms"]["p50"] == pytest.approx(10.0)
    parts = report["breakdown_ms"]
    assert parts["chunk_sent_to_segment_on_nats"]["p50"] == pytest.approx(2.0)
    assert parts["segment_on_nats_to_transcript_on_nats_less_model"]["p50"] == pytest.approx(3.0)
    assert parts["transcript_on_nats_to_client"]["p50"] == pytest.approx(5.0)


def test_profile_summary_own_and_total_per_function() -> None:
    collapsed = [
        "run (asyncio/runners.py:44);feed (nova_gateway/session.py:10);push "
        "(nova_gateway/segmenter.py:70) 6",
        "run (asyncio/runners.py:44);feed (nova_gateway/session.py:12) 2",
        "run (asyncio/runners.py:44);select (selectors.py:468) 2",
        "not a sample line",
    ]
    summary = profile_summary(collapsed)
    assert summary["samples"] == 10
    rows = {r["function"]: r for r in summary["by_total"]}
    assert rows["run (asyncio/runners.py)"]["total_pct"] == 100.0
    assert rows["feed (nova_gateway/session.py)"] == {
        "function": "feed (nova_gateway/session.py)", "own_pct": 20.0, "total_pct": 80.0,
    }  # fmt: skip
    assert summary["by_own"][0]["function"] == "push (nova_gateway/segmenter.py)"
    text = profile_text("title", summary)
    assert "60.0   60.0  push (nova_gateway/segmenter.py)" in text
    assert profile_summary([])["samples"] == 0


def test_session_audio_and_chunks() -> None:
    word = np.ones(RATE // 2, dtype=np.int16)
    audio = utterances_session([word, word], 0.5, lead_s=0.25, repeat=3)
    assert len(audio) == RATE // 4 + 6 * RATE
    chunks = pcm_chunks(audio, 100)
    assert sum(len(c) for c in chunks) == 2 * len(audio)
    assert len(chunks[0]) == 2 * RATE // 10


def test_raise_open_files_never_lowers() -> None:
    assert raise_open_files(1) >= 1


def test_null_model_answers_like_the_real_one() -> None:
    model = NullSpeechToText()
    result = model.transcribe(b"\x00\x00", language=None, task="transcribe", prompt="")
    assert result.text and result.language == "en" and result.compute_s == 0.0
    assert model.partial(b"", language="de", task="transcribe").language == "de"


def test_worker_configurations() -> None:
    assert parse_config("2x1") == (2, 1)
    with pytest.raises(ValueError):
        parse_config("0x2")
    assert round_orders(["a", "b"], 3) == [["a", "b"], ["b", "a"], ["a", "b"]]


def test_merge_profiles_replaces_sections_by_title() -> None:
    old = "# header\n\n== a\nold a\n\n== b\nold b\n"
    merged = merge_profiles(old, ["== b\nnew b\n", "== c\nnew c\n"])
    assert merged == "== a\nold a\n\n== b\nnew b\n== c\nnew c\n"
    assert merge_profiles("", ["== a\nx\n"]) == "== a\nx\n"
