"""The OpenAI-compatible API's request parsing and response rendering, on their own (no
server): fields and their errors, every response format, stream events."""

from __future__ import annotations

import json

import pytest

from nova_common.languages import WHISPER_LANGUAGES
from nova_common.messages import FinalEvent, Word
from nova_gateway.openai.format import (
    LANGUAGE_NAMES,
    OpenAIError,
    Result,
    TextDelta,
    TextDone,
    delta,
    parse_request,
    render_result,
    sse,
)

# --------------------------------------------------------------------------- parsing, rendering


def test_every_whisper_language_has_its_english_name() -> None:
    assert set(LANGUAGE_NAMES) == set(WHISPER_LANGUAGES)


def test_request_defaults_and_fields() -> None:
    request = parse_request({"model": ["whisper-1"], "file": []}, "transcribe")
    assert (request.response_format, request.language, request.stream) == ("json", "auto", False)
    assert not request.words and request.segments

    words = parse_request(
        {
            "response_format": ["verbose_json"],
            "timestamp_granularities[]": ["word"],
            "language": ["EN"],
            "stream": ["true"],
            "temperature": ["0.2"],
        },
        "translate",
    )
    assert (words.task, words.language, words.stream) == ("translate", "en", True)
    assert words.words and not words.segments  # OpenAI leaves segments out for word-only
    # Word times cost model time: only asked of Whisper when the response shows them.
    assert not parse_request({"timestamp_granularities[]": ["word"]}, "transcribe").words
    # ISO 639-1 spellings where Whisper kept older codes.
    assert parse_request({"language": ["jv"]}, "transcribe").language == "jw"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"response_format": ["diarized_json"]}, "response_format"),
        ({"timestamp_granularities[]": ["sentence"]}, "timestamp_granularities"),
        ({"language": ["xx"]}, "language"),
        ({"stream": ["maybe"]}, "stream"),
        ({"temperature": ["2"]}, "temperature"),
        ({"prompt": ["a", "b"]}, "prompt"),
    ],
)
def test_bad_fields_are_400_naming_the_field(fields: dict[str, list[str]], param: str) -> None:
    with pytest.raises(OpenAIError) as info:
        parse_request(fields, "transcribe")
    assert (info.value.status, info.value.param) == (400, param)
    assert info.value.body().error.type == "invalid_request_error"


def final(
    seq: int, text: str, start: float, end: float, words: tuple[Word, ...] = ()
) -> FinalEvent:
    return FinalEvent(
        session_id="s", seq=seq, text=text, language="de", start=start, end=end, words=words
    )


FINALS = [
    final(
        0,
        " Guten Morgen.",
        0.5,
        1.75,
        (
            Word(word=" Guten", start=0.5, end=0.9, probability=0.9),
            Word(word=" Morgen.", start=0.9, end=1.7, probability=0.8),
        ),
    ),
    final(1, "Tom & Jerry <3", 3.0, 4.25),
]


def rendered(fields: dict[str, list[str]], task: str = "transcribe") -> str:
    request = parse_request(fields, "translate" if task == "translate" else "transcribe")
    body, _ = render_result(Result(request, FINALS, duration=5.0))
    return body.decode()


def test_text_srt_and_vtt_bodies() -> None:
    assert rendered({"response_format": ["text"]}) == "Guten Morgen. Tom & Jerry <3\n"
    assert rendered({"response_format": ["srt"]}) == (
        "1\n00:00:00,500 --> 00:00:01,750\nGuten Morgen.\n\n"
        "2\n00:00:03,000 --> 00:00:04,250\nTom & Jerry <3\n\n"
    )
    assert rendered({"response_format": ["vtt"]}) == (
        "WEBVTT\n\n1\n00:00:00.500 --> 00:00:01.750\nGuten Morgen.\n\n"
        "2\n00:00:03.000 --> 00:00:04.250\nTom &amp; Jerry &lt;3\n\n"
    )


def test_verbose_json_names_the_language_and_lists_segments_and_words() -> None:
    body = json.loads(
        rendered(
            {"response_format": ["verbose_json"], "timestamp_granularities[]": ["word", "segment"]}
        )
    )
    assert (body["task"], body["language"], body["duration"]) == ("transcribe", "german", 5.0)
    assert body["usage"] == {"type": "duration", "seconds": 5.0}
    assert [s["text"] for s in body["segments"]] == ["Guten Morgen.", "Tom & Jerry <3"]
    assert [(s["id"], s["seek"], s["start"]) for s in body["segments"]] == [
        (0, 50, 0.5),
        (1, 300, 3.0),
    ]
    assert body["words"] == [
        {"word": "Guten", "start": 0.5, "end": 0.9},
        {"word": "Morgen.", "start": 0.9, "end": 1.7},
    ]
    translated = json.loads(rendered({"response_format": ["verbose_json"]}, "translate"))
    assert (translated["task"], translated["language"]) == ("translate", "english")
    assert "words" not in translated


def test_stream_events_join_to_the_done_text() -> None:
    pieces = [delta(i, f.text) for i, f in enumerate(FINALS)]
    assert "".join(pieces) == rendered({"response_format": ["text"]}).rstrip("\n")
    assert sse(TextDelta(delta=pieces[0])) == (
        b'data: {"type":"transcript.text.delta","delta":"Guten Morgen."}\n\n'
    )
    assert sse(TextDone(text="x")).startswith(b'data: {"type":"transcript.text.done"')
