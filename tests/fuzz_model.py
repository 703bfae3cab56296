"""What the gateway must answer to each frame, written from the README's two protocol sections
(not from the gateway's code): the oracle of tests/test_fuzz_frames.py.

A model keeps the little a client knows of its connection (started or not, the session's
format, the seed's languages) and turns each frame into the ``Answer`` it is owed.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from nova_common.languages import WHISPER_LANGUAGE_SET
from tests.fuzz_strategies import ARBITRARY, MANGLED, BadUtf8, Binary, Frame, Text, json_view

MIN_RATE, MAX_RATE, MAX_CHANNELS, MAX_TARGETS = 8000, 192000, 8, 8
# Past this multiple of the frame limit the frame is not read: the connection closes (1009).
HARD_LIMIT_FACTOR = 4
_AUTO = ("", "auto")


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Silent:
    """No answer: valid audio."""


@dataclass(frozen=True)
class Unread:
    """Sent after the connection's end: the gateway never reads it."""


@dataclass(frozen=True)
class Error:
    """An error event with one of ``codes`` (several: the frame has several faults)."""

    codes: frozenset[str]


@dataclass(frozen=True)
class Event:
    """A reply of ``type`` whose ``fields`` have these values; ``renews`` (seed's ``status``):
    True when the ``client_id`` must be a new one, False when it must be the same."""

    type: str
    fields: dict[str, Any] = field(default_factory=dict)
    renews: bool | None = None


@dataclass(frozen=True)
class Summary:
    """``stop``: the summary (with the session's audio seconds), then close 1000."""

    audio_seconds: float


@dataclass(frozen=True)
class Closed:
    """The gateway closes the connection with ``code`` and a reason."""

    code: int


Answer = Silent | Unread | Error | Event | Summary | Closed


def error(*codes: str) -> Error:
    return Error(frozenset(codes))


# --------------------------------------------------------------------------- JSON checks


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _one_of(*values: str) -> Any:
    return lambda v: isinstance(v, str) and v in values


START_TYPES: dict[str, Any] = {
    "language": lambda v: isinstance(v, str),
    "task": _one_of("transcribe", "translate"),
    "sample_rate": _int,
    "channels": _int,
    "encoding": _one_of("pcm_s16le"),
    "translate_to": _str_list,
    "languages": _str_list,
    "partials": lambda v: isinstance(v, bool),
    "profile": _one_of("subtitles", "typing"),
    "word_timestamps": lambda v: isinstance(v, bool),
    "prompt": lambda v: isinstance(v, str),
}

_INVALID = object()


def language(code: str) -> Any:
    """Whisper's code (lower case), None for detection, or ``_INVALID``."""
    normalised = code.strip().lower()
    if normalised in _AUTO:
        return None
    return normalised if normalised in WHISPER_LANGUAGE_SET else _INVALID


def target(code: str) -> Any:
    """A translation target: a language, never detection."""
    normalised = language(code)
    return _INVALID if normalised is None else normalised


def _targets(codes: list[str]) -> tuple[str, ...] | None:
    """Normalised and de-duplicated in the client's order; None when refused."""
    if len(codes) > MAX_TARGETS:
        return None
    normalised = [target(c) for c in codes]
    if any(n is _INVALID for n in normalised):
        return None
    return tuple(dict.fromkeys(normalised))


def _view(frame: Text) -> Any:
    if frame.message is MANGLED or frame.message is ARBITRARY:
        return frame.message
    return json_view(frame.message)


def _text_fault(frame: Text, limit: int, kinds: tuple[str, ...]) -> Error | None:
    """What is wrong with a text frame before its message is looked at."""
    if len(frame.text.encode()) > limit:
        return error("frame_too_large")
    view = _view(frame)
    if view is MANGLED:
        return error("invalid_json")
    if view is ARBITRARY:
        return error("invalid_json", "invalid_message")
    if not isinstance(view, dict) or not isinstance(view.get("type"), str):
        return error("invalid_message")
    if view["type"] not in kinds:
        return error("unknown_message_type")
    return None


def _size(frame: Frame) -> int:
    if isinstance(frame, Text):
        return len(frame.text.encode())
    return len(frame.data)


def _connection_end(frame: Frame, limit: int) -> Closed | None:
    if isinstance(frame, BadUtf8):
        return Closed(1007)
    if _size(frame) > HARD_LIMIT_FACTOR * limit:
        return Closed(1009)
    return None


# --------------------------------------------------------------------------- /ws


@dataclass
class WsModel:
    limit: int
    started: bool = False
    ended: bool = False
    rate: int = 16000
    channels: int = 1
    targets: tuple[str, ...] = ()
    samples: int = 0  # sample frames the session took in, refused ones (silence) included

    def answer(self, frame: Frame) -> Answer:
        if self.ended:
            return Unread()
        end = _connection_end(frame, self.limit)
        if end is not None:
            self.ended = True
            return end
        if isinstance(frame, Binary):
            return self._audio(frame.data)
        assert isinstance(frame, Text)
        fault = _text_fault(frame, self.limit, ("start", "update", "stop"))
        if fault is not None:
            return fault
        message = _view(frame)
        if message["type"] == "start":
            return self._start(message)
        if message["type"] == "update":
            return self._update(message)
        if not self.started:
            return error("not_started")
        self.ended = True
        return Summary(self.samples / self.rate)

    def _audio(self, data: bytes) -> Answer:
        if not self.started:
            return error("not_started")
        # Refused audio counts as silence: the session's clock keeps the client's recording's.
        frame_bytes = 2 * self.channels
        self.samples += len(data) // frame_bytes
        if len(data) > self.limit:
            return error("frame_too_large")
        if len(data) % frame_bytes:
            return error("bad_frame")
        return Silent()

    def _start(self, m: dict[str, Any]) -> Answer:
        if any(k in m and not ok(m[k]) for k, ok in START_TYPES.items()):
            return error("invalid_message")
        if self.started:
            return error("already_started")
        rate, channels = m.get("sample_rate", 16000), m.get("channels", 1)
        problems = set()
        if not MIN_RATE <= rate <= MAX_RATE:
            problems.add("unsupported_sample_rate")
        if not 1 <= channels <= MAX_CHANNELS:
            problems.add("unsupported_channels")
        fixed = language(m.get("language", "auto"))
        targets = _targets(m.get("translate_to", []))
        allowed = _targets(m.get("languages", []))
        if fixed is _INVALID or targets is None or allowed is None or (allowed and fixed):
            problems.add("unsupported_language")
        if problems:
            return Error(frozenset(problems))
        assert targets is not None and allowed is not None
        self.started, self.rate, self.channels, self.targets = True, rate, channels, targets
        return Event(
            "started",
            {
                "sample_rate": rate,
                "channels": channels,
                "language": fixed or "auto",
                "task": m.get("task", "transcribe"),
                "translate_to": list(targets),
                "languages": list(allowed),
                "partials": m.get("partials", True),
                "profile": m.get("profile", "subtitles"),
                "word_timestamps": m.get("word_timestamps", False),
            },
        )

    def _update(self, m: dict[str, Any]) -> Answer:
        codes = m.get("translate_to")
        if codes is not None and not _str_list(codes):
            return error("invalid_message")
        if not self.started:
            return error("not_started")
        if codes is not None:
            targets = _targets(codes)
            if targets is None:
                return error("unsupported_language")
            self.targets = targets
        return Event("updated", {"translate_to": list(self.targets)})


# --------------------------------------------------------------------------- /ws/v0

LENGTH_PREFIX = struct.Struct("<I")


def _region_free(code: str) -> str:
    """``en-US`` → ``en``."""
    return code.strip().replace("_", "-").split("-")[0]


@dataclass
class SeedModel:
    limit: int
    source: str | None = None
    target: str | None = None
    session_open: bool = False  # a session opens with the first audio
    ended: bool = False

    def status(self, renews: bool | None = False) -> Event:
        source = self.source or "auto"
        return Event(
            "status",
            {
                "source_language": source,
                "target_language": self.target or source,
                "translation_enabled": self.target is not None,
            },
            renews,
        )

    def answer(self, frame: Frame) -> Answer:
        if self.ended:
            return Unread()
        end = _connection_end(frame, self.limit)
        if end is not None:
            self.ended = True
            return end
        if isinstance(frame, Binary):
            return self._audio(frame)
        assert isinstance(frame, Text)
        fault = _text_fault(frame, self.limit, ("set_langs", "get_status", "start_over"))
        if fault is not None:
            return fault
        message = _view(frame)
        if message["type"] == "get_status":
            return self.status()
        if message["type"] == "start_over":  # the running session ends, the next is new
            renews, self.session_open = self.session_open, False
            return self.status(renews)
        return self._set_langs(message)

    def _set_langs(self, m: dict[str, Any]) -> Answer:
        src, tgt = m.get("source_language"), m.get("target_language")
        if not all(v is None or isinstance(v, str) for v in (src, tgt)):
            return error("invalid_message")
        source, target_ = self.source, self.target  # a field left out keeps its value
        if src is not None:
            source = language(_region_free(src))
        if source is _INVALID:
            return error("unsupported_language")
        if tgt is not None:
            code = tgt.strip()
            # The target the source is (or "auto" twice): no translation.
            same = code.lower() in ("", source or "auto")
            target_ = None if same else target(_region_free(code))
        if target_ is _INVALID:
            return error("unsupported_language")
        renews = self.session_open and source != self.source  # a new language: a new session
        self.source, self.target = source, None if target_ == source else target_
        self.session_open = self.session_open and not renews
        return self.status(renews)

    def _audio(self, frame: Binary) -> Answer:
        data = frame.data
        if len(data) < LENGTH_PREFIX.size:
            return error("bad_frame")
        (length,) = LENGTH_PREFIX.unpack_from(data)
        body = data[LENGTH_PREFIX.size :]
        if length > len(body):
            return error("bad_frame")
        header = _header(body[:length], frame)
        if header is None:
            return error("bad_header")
        rate, channels = header["sampleRate"], header.get("channels", 1)
        problems = set()
        if not MIN_RATE <= rate <= MAX_RATE:
            problems.add("unsupported_sample_rate")
        if not 1 <= channels <= MAX_CHANNELS:
            problems.add("unsupported_channels")
        if problems:
            return Error(frozenset(problems))
        if header.get("bitsPerSample", 16) != 16:
            return error("unsupported_encoding")
        pcm = body[length:]
        if not pcm:
            return Silent()
        self.session_open = True  # even when the frame's audio is refused: it opened one
        if len(data) > self.limit:
            return error("frame_too_large")
        if len(pcm) % (2 * channels):
            return error("bad_frame")
        return Silent()


def _header(raw: bytes, frame: Binary) -> dict[str, Any] | None:
    """The seed's audio header in ``raw``, or None where it is none."""
    value: Any
    built = frame.header_bytes
    if frame.header is not None:  # raw begins where the built header does (the prefix may lie)
        if not raw.startswith(built) or raw[len(built) :].strip(b" \t\r\n"):
            return None  # cut short, or running on into the audio
        value = json_view(frame.header)
    else:
        try:
            value = json.loads(raw.decode(), parse_constant=_refuse, parse_float=_finite)
        except (ValueError, RecursionError):
            return None
    if not isinstance(value, dict) or not _int(value.get("sampleRate")):
        return None
    if not all(_int(value[k]) for k in ("channels", "bitsPerSample") if k in value):
        return None
    return value


def _refuse(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return number
