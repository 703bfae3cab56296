"""Hypothesis strategies for what real clients get wrong on ``/ws`` and ``/ws/v0``.

Each strategy yields a frame together with what it is meant to be (the JSON value a text frame
encodes, or ``MANGLED`` when the text is not JSON by construction), so that ``fuzz_model`` can
say what the gateway must answer without parsing with the code under test. Numbers too large
for any decoder and nesting too deep for one are written as literals (``Raw``, ``Nested``):
JSON values that cannot be built as Python objects and dumped.
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from nova_common.languages import WHISPER_LANGUAGES

# A text frame is not JSON by construction (truncated, garbage before or after it).
MANGLED: Any = type("Mangled", (), {"__repr__": lambda self: "MANGLED"})()
# The frame's text is arbitrary: any answer for a text frame that is not a message will do.
ARBITRARY: Any = type("Arbitrary", (), {"__repr__": lambda self: "ARBITRARY"})()

# Nesting this shallow any decoder reads; this deep none should (and a frame still holds it).
SHALLOW_MAX = 32
DEEP_MIN, DEEP_MAX = 20_000, 30_000
# Integers of up to this many digits are numbers; from HUGE_DIGITS on no decoder takes them
# (Python refuses to read more than 4,300 digits).
BIG_DIGITS, HUGE_DIGITS = 1_000, 5_000

START_FIELDS = (
    "language", "task", "sample_rate", "channels", "encoding", "translate_to", "languages",
    "partials", "profile", "word_timestamps", "prompt",
)  # fmt: skip
SEED_HEADER_FIELDS = ("sampleRate", "channels", "bitsPerSample")
MESSAGE_TYPES = ("start", "update", "stop", "set_langs", "get_status", "start_over")


@dataclass(frozen=True)
class Raw:
    """A JSON literal written as is; ``value`` is what it reads as, or ``MANGLED``."""

    text: str
    value: Any


@dataclass(frozen=True)
class Nested:
    """``[[[…]]]``, ``depth`` deep."""

    depth: int


def _short(data: str | bytes) -> str:
    return f"{data[:60]!r}{'…' if len(data) > 60 else ''} ({len(data)})"


@dataclass(frozen=True)
class Text:
    """A text frame and the JSON value it encodes (``MANGLED``, ``ARBITRARY``)."""

    text: str
    message: Any
    pieces: int = 1  # sent as a message of this many fragments

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # Hypothesis's report: keep it short
        p.text(f"Text({_short(self.text)}, pieces={self.pieces})")


@dataclass(frozen=True)
class BadUtf8:
    """A text frame whose bytes are not UTF-8."""

    data: bytes


@dataclass(frozen=True)
class Binary:
    """A binary frame; for the seed's protocol, ``header`` is the JSON value its header bytes
    were encoded from (None: the bytes are not built from one)."""

    data: bytes
    header: Any = None
    header_bytes: bytes = b""
    pieces: int = 1

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(f"Binary({_short(self.data)}, pieces={self.pieces})")


Frame = Text | BadUtf8 | Binary


def to_json(value: Any) -> str:
    """Compact JSON, with ``Raw`` literals and ``Nested`` arrays written out."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Nested):
        return "[" * value.depth + "]" * value.depth
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def json_view(value: Any) -> Any:
    """What a JSON decoder must make of ``value``'s encoding; ``MANGLED`` if it cannot read it."""
    if isinstance(value, Raw):
        return value.value
    if isinstance(value, Nested):
        if value.depth > SHALLOW_MAX:
            return MANGLED
        nested: list[Any] = []
        for _ in range(value.depth - 1):
            nested = [nested]
        return nested
    if isinstance(value, dict | list):
        items = value.values() if isinstance(value, dict) else value
        views = [json_view(v) for v in items]
        if any(v is MANGLED for v in views):
            return MANGLED
        return dict(zip(value, views, strict=True)) if isinstance(value, dict) else views
    return value


# --------------------------------------------------------------------------- JSON values


def weighted(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int = 4) -> Any:
    """``common`` ``odds`` times as often as ``rare`` (``one_of`` drops a repeated strategy)."""
    return st.sampled_from([False] * odds + [True]).flatmap(lambda r: rare if r else common)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def _digits(n: int) -> str:
    return "1" + "0" * (n - 1)


# Numbers a real client sends by mistake: beyond 64 bits, beyond a float, thousands of digits.
big_numbers = st.one_of(
    st.integers(min_value=20, max_value=BIG_DIGITS).flatmap(
        lambda n: st.sampled_from(
            [Raw(_digits(n), 10 ** (n - 1)), Raw("-" + _digits(n), -(10 ** (n - 1)))]
        )
    ),
    st.integers(min_value=HUGE_DIGITS, max_value=HUGE_DIGITS + 2_000).map(
        lambda n: Raw("9" * n, MANGLED)
    ),
    st.sampled_from([Raw("1e400", MANGLED), Raw("-1e999", MANGLED), Raw("1.5e300", 1.5e300)]),
    st.integers(min_value=2**63, max_value=2**80),
)
deep = st.one_of(
    st.integers(min_value=1, max_value=SHALLOW_MAX).map(Nested),
    st.integers(min_value=DEEP_MIN, max_value=DEEP_MAX).map(Nested),
)
odd_values = weighted(st.one_of(scalars, st.lists(scalars, max_size=3)), big_numbers | deep, 2)

# --------------------------------------------------------------------------- languages

_valid_codes = st.sampled_from(WHISPER_LANGUAGES)
language_codes = st.one_of(
    _valid_codes,
    _valid_codes.map(str.upper),
    _valid_codes.map(lambda c: f" {c}\t"),
    _valid_codes.map(lambda c: f"{c}-{c.upper()}"),  # en-EN: a region, the seed's habit
    _valid_codes.map(lambda c: f"{c}_x"),
    st.sampled_from(["auto", "AUTO", "", " ", "xx", "english", "zz", "e", "deu", "es-419"]),
    st.sampled_from(["\u0000", "en\u200b", "ÉN", "İ", "ß"]),
    st.text(max_size=5),
)
language_lists = st.lists(language_codes, max_size=10)


def _maybe(values: st.SearchStrategy[Any], wrong: st.SearchStrategy[Any] = odd_values) -> Any:
    """A field's value: mostly a plausible one, sometimes anything at all (rarely enough that
    many a message has one fault, whose error code is then the one expected)."""
    return weighted(values, wrong)


sample_rates = st.one_of(
    st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000]),
    st.sampled_from([7999, 8001, 44099, 191999, 192001, 0, -1, -16000, 1]),
    st.integers(min_value=8000, max_value=192000),
    st.integers(min_value=-(2**40), max_value=2**40),
)
channel_counts = st.one_of(
    st.integers(min_value=1, max_value=8), st.sampled_from([0, 9, -1, 255, 2**64])
)


def _extras(
    known: tuple[str, ...], values: st.SearchStrategy[Any] = odd_values
) -> st.SearchStrategy[dict[str, Any]]:
    """Fields no version of the protocol has (a typo, a newer client)."""
    keys = st.text(max_size=10).filter(lambda k: k not in known and k != "type")
    return st.dictionaries(keys, values, max_size=2)


def _message(kind: str, fields: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, **fields, **extras}


start_messages = st.builds(
    lambda f, e: _message("start", f, e),
    st.fixed_dictionaries(
        {},
        optional={
            "language": _maybe(language_codes),
            "task": _maybe(st.sampled_from(["transcribe", "translate", "Transcribe", "dance", ""])),
            "sample_rate": _maybe(sample_rates),
            "channels": _maybe(channel_counts),
            "encoding": _maybe(st.sampled_from(["pcm_s16le", "opus", "PCM_S16LE", "pcm_f32le"])),
            "translate_to": _maybe(language_lists),
            "languages": _maybe(language_lists),
            "partials": _maybe(st.booleans()),
            "profile": _maybe(st.sampled_from(["subtitles", "typing", "Typing", "karaoke"])),
            "word_timestamps": _maybe(st.booleans()),
            "prompt": _maybe(st.text(max_size=40)),
        },
    ),
    _extras(START_FIELDS),
)
update_messages = st.builds(
    lambda f, e: _message("update", f, e),
    st.fixed_dictionaries({}, optional={"translate_to": _maybe(st.none() | language_lists)}),
    _extras(("translate_to",)),
)
stop_messages = st.builds(lambda e: _message("stop", {}, e), _extras(()))
set_langs_messages = st.builds(
    lambda f, e: _message("set_langs", f, e),
    st.fixed_dictionaries(
        {},
        optional={
            "source_language": _maybe(st.none() | language_codes),
            "target_language": _maybe(st.none() | language_codes),
        },
    ),
    _extras(("source_language", "target_language")),
)
get_status_messages = st.builds(lambda e: _message("get_status", {}, e), _extras(()))
start_over_messages = st.builds(lambda e: _message("start_over", {}, e), _extras(()))

# Objects that are no message: no type, a type that is not a string, a type nobody knows.
_types = st.one_of(
    st.text(max_size=12).filter(lambda t: t not in MESSAGE_TYPES),
    st.sampled_from(["START", " start", "Stop", "hello", "", "start\u0000"]),
    scalars.filter(lambda v: not isinstance(v, str)),
)
not_messages = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict) or "type" not in v),
    st.builds(
        lambda t, rest: {**rest, "type": t},
        _types,
        st.dictionaries(st.text(max_size=8), scalars, max_size=3),
    ),
    deep,
    st.builds(lambda d: {"type": "start", "x": d}, deep),
    st.builds(lambda d: {"type": "hello", "x": d}, deep),
    st.builds(lambda n: {"type": "start", "sample_rate": n}, big_numbers),
)

# --------------------------------------------------------------------------- text frames

_GARBAGE_AFTER = ["x", "}", "]", ",", "{}", '{"type":"stop"}', "\u0000", "\u00a0", "'"]
_GARBAGE_BEFORE = ["x", ",", "]", "\u00a0", "'", "\u0000"]
_WHITESPACE = st.text(alphabet=" \t\r\n", max_size=3)


@st.composite
def _text_frame(draw: st.DrawFn, messages: st.SearchStrategy[Any]) -> Text:
    message = draw(messages)
    text = to_json(message)
    how = draw(st.sampled_from(["intact"] * 5 + ["truncated", "after", "before"]))
    if how == "truncated" and isinstance(message, dict):
        return Text(text[: draw(st.integers(0, len(text) - 1))], MANGLED)
    if how == "after":
        return Text(text + draw(st.sampled_from(_GARBAGE_AFTER)), MANGLED)
    if how == "before":
        return Text(draw(st.sampled_from(_GARBAGE_BEFORE)) + text, MANGLED)
    return Text(draw(_WHITESPACE) + text + draw(_WHITESPACE), message)


def text_frames(messages: st.SearchStrategy[Any]) -> st.SearchStrategy[Text]:
    """``messages`` as text frames: intact (padded with JSON whitespace), or mangled the way a
    buggy client or a cut connection mangles them."""
    return _text_frame(messages)


# Any text at all. Which of them a decoder reads as JSON is not for the test to decide (NaN, a
# lone surrogate escape): only that none is a message.
arbitrary_texts = (
    st.one_of(
        st.text(max_size=60),
        st.sampled_from(["", " ", "null", "NaN", "Infinity", "{", "}", "[]", "{}", "1e400"]),
    )
    .filter(lambda t: "type" not in t and "\\u" not in t)
    .map(lambda t: Text(t, ARBITRARY))
)

bad_utf8 = st.sampled_from(
    [
        b"\xff",
        b'{"type":"st\xffart"}',
        b"\xc3\x28",
        b"\xed\xa0\x80",
        b"\xf8\x88\x80\x80\x80",
        b'"\x80"',
    ]
).map(BadUtf8)

# --------------------------------------------------------------------------- audio


@dataclass(frozen=True)
class Sound:
    """Audio that is valid for the session's format: how it sounds, and for how long."""

    kind: str  # silence, noise, tone, loud, speech, bytes
    ms: int
    seed: int


sounds = st.builds(
    Sound,
    st.sampled_from(["silence", "noise", "tone", "loud", "speech", "speech", "bytes"]),
    st.one_of(st.integers(0, 120), st.sampled_from([0, 1, 10, 20, 50, 100]), st.integers(0, 1_000)),
    st.integers(0, 2**32 - 1),
)


def random_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


# The seed's audio header: mostly right, with the mistakes a client makes.
_seed_headers = st.builds(
    lambda f, e: {**f, **e},
    st.fixed_dictionaries(
        {"sampleRate": _maybe(sample_rates, odd_values | st.sampled_from(["16000", 16000.0]))},
        optional={
            "channels": _maybe(channel_counts),
            "bitsPerSample": _maybe(st.sampled_from([16, 16, 8, 24, 32, 0])),
            "sample_rate": sample_rates,  # the /ws spelling: not the seed's
        },
    ),
    # Not a number no decoder can read: a decoder for the header's own fields may skip over a
    # field it does not know without reading it (msgspec does), and either is right.
    _extras(SEED_HEADER_FIELDS, weighted(st.one_of(scalars, st.lists(scalars, max_size=3)), deep)),
)
seed_headers = weighted(
    _seed_headers,
    st.one_of(json_values, deep, st.builds(lambda d: {"sampleRate": 16000, "x": d}, deep)),
    3,
)

LENGTH = struct.Struct("<I")  # the seed's header length prefix
# How far a client's length prefix is off (None: it is right).
length_lies = weighted(st.none(), st.integers(-8, 8) | st.integers(0, 2**32 - 1), 3)

# Sessions that start: the formats a real client picks, and some odd ones.
valid_starts = st.builds(
    lambda rate, channels, language, targets, profile, partials: {
        "type": "start",
        "sample_rate": rate,
        "channels": channels,
        "language": language,
        "translate_to": targets,
        "profile": profile,
        "partials": partials,
    },
    st.one_of(
        st.sampled_from([8000, 16000, 44100, 48000, 96000, 192000]), st.integers(8000, 192000)
    ),
    st.integers(1, 8),
    st.sampled_from(["auto", "en", "de"]),
    st.lists(st.sampled_from(["es", "fr", "de"]), max_size=2, unique=True),
    st.sampled_from(["subtitles", "typing"]),
    st.booleans(),
)


@st.composite
def _seed_audio(draw: st.DrawFn) -> tuple[int, int, Sound, dict[str, Any]]:
    """A valid seed audio frame's format and header; the rate may change from frame to frame."""
    rate = draw(
        st.one_of(st.sampled_from([16000, 44100, 48000, 8000, 96000]), st.integers(8000, 192000))
    )
    channels = draw(st.sampled_from([1, 1, 1, 2, 6, 8]))
    header: dict[str, Any] = {"sampleRate": rate}
    if channels != 1 or draw(st.booleans()):
        header["channels"] = channels
    if draw(st.booleans()):
        header["bitsPerSample"] = 16
    return rate, channels, draw(sounds), header


seed_audio = _seed_audio()
