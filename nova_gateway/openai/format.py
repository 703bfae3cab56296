"""The OpenAI audio API's side of the wire: form fields in, response bodies and server-sent events
out. No I/O here; ``api.py`` serves it.

The response shapes mirror openai-python's ``types/audio`` (``Transcription``,
``TranscriptionVerbose``, ``TranscriptionTextDeltaEvent`` …). They live here rather than in
``nova_common.messages`` because they are OpenAI's contract, not Nova's: nothing else in Nova
speaks them, and their schema is OpenAI's to publish.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec

from nova_common.languages import UnsupportedLanguage, check_language
from nova_common.messages import FinalEvent, Task
from nova_common.subtitles import Cue, render

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json", "text", "srt", "verbose_json", "vtt")
Granularity = Literal["segment", "word"]
GRANULARITIES: dict[str, Granularity] = {"segment": "segment", "word": "word"}

CONTENT_TYPES: dict[ResponseFormat, str] = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
SSE_CONTENT_TYPE = "text/event-stream"

# Whisper's language names (openai-whisper's tokenizer.LANGUAGES), which OpenAI's verbose_json
# reports instead of codes; tests/test_openai_api.py checks it covers every Whisper code.
# fmt: off
LANGUAGE_NAMES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian", "mk": "macedonian",
    "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian", "ne": "nepali",
    "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan",
    "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati",
    "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese",
    "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala",
    "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}
# fmt: on

# ISO 639-1 spellings (what OpenAI documents) where Whisper uses an older code.
ISO_ALIASES = {"jv": "jw", "iw": "he"}


class OpenAIError(Exception):
    """An error answered with OpenAI's body: ``{"error": {"message", "type", "param", "code"}}``.

    ``retry`` becomes the ``x-should-retry`` header the openai clients obey: they would otherwise
    retry every 5xx twice, transcribing the whole file again for a failure that will recur."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.retry = retry

    @property
    def type(self) -> str:
        return "invalid_request_error" if self.status < 500 else "server_error"

    def body(self) -> ErrorBody:
        return ErrorBody(
            error=ErrorDetail(
                message=self.message, type=self.type, param=self.param, code=self.code
            )
        )


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


# --------------------------------------------------------------------------- response shapes


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    error: ErrorDetail


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Billing by audio duration, as whisper-1 reports it."""

    seconds: float
    type: Literal["duration"] = "duration"


class TranscriptionJson(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    usage: Usage


class SegmentJson(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class WordJson(msgspec.Struct, frozen=True, kw_only=True):
    word: str
    start: float
    end: float


class VerboseJson(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    task: Task
    language: str
    duration: float
    text: str
    usage: Usage
    segments: list[SegmentJson] | None = None
    words: list[WordJson] | None = None


class TextDelta(
    msgspec.Struct, frozen=True, kw_only=True, tag="transcript.text.delta", tag_field="type"
):
    delta: str


class TextDone(
    msgspec.Struct, frozen=True, kw_only=True, tag="transcript.text.done", tag_field="type"
):
    text: str


class StreamError(msgspec.Struct, frozen=True, kw_only=True, tag="error", tag_field="type"):
    """The openai clients raise ``APIError`` for any streamed event with an ``error`` object."""

    error: ErrorDetail


class ModelCard(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["model"] = "model"
    created: int = 0  # when the model was made is not known to the gateway
    owned_by: str = "nova-voice"


class ModelList(msgspec.Struct, frozen=True, kw_only=True):
    object: Literal["list"] = "list"
    data: list[ModelCard]


_encoder = msgspec.json.Encoder()


def encode(payload: msgspec.Struct) -> bytes:
    return _encoder.encode(payload)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class AudioRequest:
    """The form fields of one transcription or translation request, checked."""

    task: Task
    model: str
    language: str  # "auto" or a Whisper code
    prompt: str
    response_format: ResponseFormat
    granularities: frozenset[Granularity]
    stream: bool

    @property
    def words(self) -> bool:
        """Word times are asked of Whisper only where the response shows them."""
        return self.response_format == "verbose_json" and "word" in self.granularities

    @property
    def segments(self) -> bool:
        # OpenAI's verbose_json has segments unless only word times were asked for.
        return not self.granularities or "segment" in self.granularities


def _one(fields: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise bad_request(f"'{name}' was given {len(values)} times; give it once", param=name)
    return values[0]


def _bool(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0", ""):
        return False
    raise bad_request(f"'{name}' must be true or false, not {value!r}", param=name)


def parse_language(value: str | None) -> str:
    if value is None:
        return "auto"
    code = value.strip().lower()
    try:
        return check_language(ISO_ALIASES.get(code, code)) or "auto"
    except UnsupportedLanguage as exc:
        raise bad_request(str(exc), param="language", code=exc.code) from exc


def parse_request(fields: Mapping[str, Sequence[str]], task: Task) -> AudioRequest:
    """The request's options, or ``OpenAIError`` 400 naming the field at fault.

    Lenient where OpenAI is strict and nothing is lost: any ``model`` name is accepted (the STT
    workers' model answers), ``timestamp_granularities`` outside ``verbose_json`` are ignored, and
    fields Nova has no use for (``temperature``, ``include[]``, ``chunking_strategy`` …) too."""
    response_format = _one(fields, "response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise bad_request(
            f"response_format {response_format!r} is not supported; use one of "
            f"{', '.join(RESPONSE_FORMATS)}",
            param="response_format",
        )
    granularities: set[Granularity] = set()
    for name in ("timestamp_granularities[]", "timestamp_granularities"):
        for value in fields.get(name, ()):
            if value not in GRANULARITIES:
                raise bad_request(
                    f"timestamp granularity {value!r} is not supported; use 'segment' or 'word'",
                    param="timestamp_granularities",
                )
            granularities.add(GRANULARITIES[value])
    temperature = _one(fields, "temperature")
    if temperature is not None:
        try:
            if not 0.0 <= float(temperature) <= 1.0:
                raise ValueError
        except ValueError:
            raise bad_request(
                f"temperature must be a number between 0 and 1, not {temperature!r}",
                param="temperature",
            ) from None
    return AudioRequest(
        task=task,
        model=_one(fields, "model") or "",
        language=parse_language(_one(fields, "language")),
        prompt=_one(fields, "prompt") or "",
        response_format=response_format,
        granularities=frozenset(granularities),
        stream=_bool(_one(fields, "stream"), "stream"),
    )


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class Result:
    """A finished session's finals (in seq order, those with text) and its audio duration."""

    request: AudioRequest
    finals: Sequence[FinalEvent]
    duration: float

    @property
    def text(self) -> str:
        return join_text(final.text for final in self.finals)

    @property
    def language(self) -> str:
        """OpenAI names the language in English: the translation's, or what was spoken (the
        language asked for, else the one most finals were in)."""
        if self.request.task == "translate":
            return "english"
        code = self.request.language
        if code == "auto":
            spoken = collections.Counter(f.language for f in self.finals if f.language)
            if not spoken:
                return "unknown"  # nothing was said: no language to name
            code = spoken.most_common(1)[0][0]
        return LANGUAGE_NAMES.get(code, code)


def join_text(texts: collections.abc.Iterable[str]) -> str:
    return " ".join(text.strip() for text in texts if text.strip())


def delta(previous: int, text: str) -> str:
    """The streamed piece for a final: deltas joined are exactly the ``done`` text."""
    return text.strip() if previous == 0 else " " + text.strip()


def render_result(result: Result) -> tuple[bytes, str]:
    """The response body and its content type for the request's ``response_format``."""
    fmt = result.request.response_format
    usage = Usage(seconds=result.duration)
    body: bytes
    if fmt == "json":
        body = encode(TranscriptionJson(text=result.text, usage=usage))
    elif fmt == "text":
        body = (result.text + "\n").encode()
    elif fmt == "srt" or fmt == "vtt":
        cues = [Cue(final.start, final.end, [final.text.strip()]) for final in result.finals]
        body = render(cues, fmt).encode()
    else:
        body = encode(_verbose(result, usage))
    return body, CONTENT_TYPES[fmt]


def _verbose(result: Result, usage: Usage) -> VerboseJson:
    segments = None
    if result.request.segments:
        segments = [
            SegmentJson(
                id=i,
                # Whisper's seek is the 10 ms mel frame its window started at; a Nova final is
                # its own window, so its start frame is the honest equivalent.
                seek=round(final.start * 100),
                start=final.start,
                end=final.end,
                text=final.text.strip(),
                # What the STT worker does not report: no token ids; greedy/beam decoding at
                # temperature 0; and the quality figures as "passed", because the worker already
                # dropped segments that failed Whisper's log-prob, compression and no-speech
                # thresholds (SttSettings), so every segment here passed them.
                tokens=[],
                temperature=0.0,
                avg_logprob=0.0,
                compression_ratio=1.0,
                no_speech_prob=0.0,
            )
            for i, final in enumerate(result.finals)
        ]
    words = None
    if result.request.words:
        words = [
            WordJson(word=word.word.strip(), start=word.start, end=word.end)
            for final in result.finals
            for word in final.words
            if word.word.strip()
        ]
    return VerboseJson(
        task=result.request.task,
        language=result.language,
        duration=result.duration,
        text=result.text,
        usage=usage,
        segments=segments,
        words=words,
    )


def sse(event: TextDelta | TextDone | StreamError) -> bytes:
    """One server-sent event; errors also carry ``event: error`` for generic SSE readers."""
    name = b"event: error\n" if isinstance(event, StreamError) else b""
    return name + b"data: " + encode(event) + b"\n\n"
