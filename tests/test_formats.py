"""How the client prints finals: plain text, JSON lines, SRT and WebVTT."""

from __future__ import annotations

import io
import json

import msgspec
import pytest

from nova_client.formats import FORMATS, FinalWriter, Format, timestamp
from nova_common.messages import FinalEvent, FinalRecord


def final(seq: int, text: str, start: float, end: float) -> FinalEvent:
    return FinalEvent(session_id="s", seq=seq, text=text, language="en", start=start, end=end)


@pytest.mark.parametrize(
    ("seconds", "sep", "expected"),
    [
        (0.0, ",", "00:00:00,000"),
        (1.5, ",", "00:00:01,500"),
        (1.5, ".", "00:00:01.500"),
        (61.007, ",", "00:01:01,007"),
        (3723.456, ".", "01:02:03.456"),
        (36000.0, ",", "10:00:00,000"),
        (59.9996, ".", "00:01:00.000"),  # rounding carries into the next unit
        (-0.2, ",", "00:00:00,000"),  # clamped, never negative
    ],
)
def test_timestamp(seconds: float, sep: str, expected: str) -> None:
    assert timestamp(seconds, sep) == expected


def render(fmt: Format, finals: list[FinalEvent]) -> str:
    out = io.StringIO()
    writer = FinalWriter(out, fmt, source="talk.wav")
    for item in finals:
        writer.write(item)
    return out.getvalue()


FINALS = [
    final(0, "Hello there.", 0.5, 1.75),
    final(1, "", 2.0, 2.5),  # an utterance Whisper heard nothing in
    final(2, "General Kenobi.", 3661.25, 3663.0),
]


def test_text_prints_one_line_per_final() -> None:
    assert render("text", FINALS) == "Hello there.\nGeneral Kenobi.\n"


def test_jsonl_prints_every_final_including_empty_ones() -> None:
    lines = render("jsonl", FINALS).splitlines()
    records = [json.loads(line) for line in lines]
    assert records == [
        {"file": "talk.wav", "seq": 0, "start": 0.5, "end": 1.75, "text": "Hello there.",
         "language": "en"},
        {"file": "talk.wav", "seq": 1, "start": 2.0, "end": 2.5, "text": "", "language": "en"},
        {"file": "talk.wav", "seq": 2, "start": 3661.25, "end": 3663.0, "text": "General Kenobi.",
         "language": "en"},
    ]  # fmt: skip


def test_jsonl_keeps_non_ascii_text_readable() -> None:
    out = render("jsonl", [final(0, "Grüß Gott", 0.0, 1.0)])
    assert "Grüß Gott" in out


def test_jsonl_lines_are_msgspec_encoded_final_records() -> None:
    """Each line is exactly FinalRecord through msgspec.json: its fields, in its order."""
    lines = render("jsonl", [*FINALS, final(3, "日本語の字幕", 4.0, 5.5)]).splitlines()
    records = [msgspec.json.decode(line, type=FinalRecord) for line in lines]
    assert records[3] == FinalRecord(
        file="talk.wav", seq=3, start=4.0, end=5.5, text="日本語の字幕", language="en"
    )
    assert lines == [msgspec.json.encode(record).decode() for record in records]
    assert lines[0] == (
        '{"file":"talk.wav","seq":0,"start":0.5,"end":1.75,"text":"Hello there.","language":"en"}'
    )
    assert list(json.loads(lines[0])) == list(FinalRecord.__struct_fields__)
    assert "\\u" not in lines[3] and "日本語の字幕" in lines[3]


def test_srt_cues_are_numbered_from_one_with_comma_timestamps() -> None:
    assert render("srt", FINALS) == (
        "1\n00:00:00,500 --> 00:00:01,750\nHello there.\n\n"
        "2\n01:01:01,250 --> 01:01:03,000\nGeneral Kenobi.\n\n"
    )


def test_vtt_has_a_header_and_dot_timestamps() -> None:
    assert render("vtt", FINALS) == (
        "WEBVTT\n\n"
        "1\n00:00:00.500 --> 00:00:01.750\nHello there.\n\n"
        "2\n01:01:01.250 --> 01:01:03.000\nGeneral Kenobi.\n\n"
    )


def test_vtt_header_is_written_even_with_no_finals() -> None:
    assert render("vtt", []) == "WEBVTT\n\n"


@pytest.mark.parametrize("fmt", ["text", "srt"])
def test_nothing_is_written_for_no_finals(fmt: Format) -> None:
    assert render(fmt, []) == ""


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_empty_finals_are_skipped_in_human_formats(fmt: Format) -> None:
    only_empty = render(fmt, [final(0, "", 0.0, 1.0)])
    assert only_empty == ("WEBVTT\n\n" if fmt == "vtt" else "")


def test_formats_lists_every_format() -> None:
    assert set(FORMATS) == {"text", "jsonl", "srt", "vtt"}
    for fmt in FORMATS:
        render(fmt, FINALS)  # each one is handled
