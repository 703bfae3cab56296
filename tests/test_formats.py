"""How the client prints finals: plain text, JSON lines, SRT and WebVTT."""

from __future__ import annotations

import io
import json

import msgspec
import pytest

from nova_client.formats import FORMATS, FinalWriter, Format
from nova_common.messages import FinalEvent, FinalRecord, TranslationEvent
from nova_common.subtitles import timestamp


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
    # Every field but the empty `translations` and `words` (omitted), in FinalRecord's order.
    assert list(json.loads(lines[0])) == [
        name for name in FinalRecord.__struct_fields__ if name not in ("translations", "words")
    ]
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


# --------------------------------------------------------------------------- with translations


def translation(seq: int, language: str, text: str) -> TranslationEvent:
    return TranslationEvent(
        session_id="s", seq=seq, language=language, source_language="en", text=text,
        start=0.0, end=0.0, backend="apertium",
    )  # fmt: skip


# Finals, then their translations as the gateway sends them; "de" of seq 2 failed.
TRANSLATED: list[FinalEvent | TranslationEvent | tuple[int, str]] = [
    FINALS[0],
    translation(0, "de", "Hallo."),  # arrives before "es": the output keeps the asked order
    translation(0, "es", "Hola."),
    FINALS[1],  # empty: owed nothing
    FINALS[2],
    translation(2, "es", "General Kenobi."),
    (2, "de"),
]


def render_translated(fmt: Format) -> str:
    out = io.StringIO()
    writer = FinalWriter(out, fmt, source="talk.wav", targets=("es", "de"))
    for item in TRANSLATED:
        if isinstance(item, FinalEvent):
            writer.write(item)
        elif isinstance(item, TranslationEvent):
            writer.translation(item)
        else:
            writer.translation_failed(*item)
    writer.finish()
    return out.getvalue()


def test_text_puts_indented_translations_under_each_final() -> None:
    assert render_translated("text") == (
        "Hello there.\n  [es] Hola.\n  [de] Hallo.\nGeneral Kenobi.\n  [es] General Kenobi.\n"
    )


def test_jsonl_adds_the_translations_to_each_final() -> None:
    lines = render_translated("jsonl").splitlines()
    assert lines[0] == (
        '{"file":"talk.wav","seq":0,"start":0.5,"end":1.75,"text":"Hello there.","language":"en",'
        '"translations":{"es":"Hola.","de":"Hallo."}}'
    )
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [0, 1, 2]
    assert "translations" not in records[1]  # the empty final
    assert records[2]["translations"] == {"es": "General Kenobi."}  # "de" failed
    decoded = msgspec.json.decode(lines[0], type=FinalRecord)
    assert decoded.translations == {"es": "Hola.", "de": "Hallo."}


def test_srt_and_vtt_cues_carry_the_translations() -> None:
    cues = (
        "1\n{0} --> {1}\nHello there.\n[es] Hola.\n[de] Hallo.\n\n"
        "2\n{2} --> {3}\nGeneral Kenobi.\n[es] General Kenobi.\n\n"
    )
    stamps = ["00:00:00,500", "00:00:01,750", "01:01:01,250", "01:01:03,000"]
    assert render_translated("srt") == cues.format(*stamps)
    vtt = [stamp.replace(",", ".") for stamp in stamps]
    assert render_translated("vtt") == "WEBVTT\n\n" + cues.format(*vtt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_final_is_written_only_once_its_translations_are_in(fmt: Format) -> None:
    out = io.StringIO()
    writer = FinalWriter(out, fmt, source="talk.wav", targets=("es",))
    header = out.getvalue()
    writer.write(FINALS[0])
    assert out.getvalue() == header  # held for its Spanish
    writer.translation(translation(0, "es", "Hola."))
    written = out.getvalue()
    assert "Hello there." in written and "Hola." in written
    writer.finish()
    assert out.getvalue() == written


@pytest.mark.parametrize("fmt", FORMATS)
def test_finish_writes_finals_whose_translations_never_came(fmt: Format) -> None:
    out = io.StringIO()
    writer = FinalWriter(out, fmt, source="talk.wav", targets=("es",))
    for item in FINALS:
        writer.write(item)
    assert out.getvalue() == ("WEBVTT\n\n" if fmt == "vtt" else "")  # all held
    writer.finish()
    assert out.getvalue() == render(fmt, FINALS)  # as without translations, in order


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_targets_translations_change_nothing(fmt: Format) -> None:
    out = io.StringIO()
    writer = FinalWriter(out, fmt, source="talk.wav")
    writer.write(FINALS[0])
    writer.translation(translation(0, "es", "Hola."))
    writer.finish()
    assert out.getvalue() == render(fmt, FINALS[:1])
