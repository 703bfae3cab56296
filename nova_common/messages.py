"""Every message shape in Nova Voice, defined once.

Inter-service payloads (gateway → STT → gateway) travel as msgpack; client-facing ones (the
WebSocket protocol) as JSON. ``schemas/`` holds JSON Schemas generated from these structs.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from nova_common.audio import SAMPLE_RATE

SegmentKind = Literal["final", "partial"]
Task = Literal["transcribe", "translate"]
# `typing`: short end-of-speech silence, frequent partials; `subtitles`: steadier partials and
# each text event laid out as caption lines.
Profile = Literal["subtitles", "typing"]


class Word(msgspec.Struct, frozen=True, kw_only=True):
    """One recognised word with its times in session seconds (when word times are asked for)."""

    word: str
    start: float
    end: float
    probability: float


# --------------------------------------------------------------------------- inter-service


class LanguageWeight(msgspec.Struct, frozen=True, kw_only=True):
    """One language's share of a belief about what is spoken (Whisper code, 0..1)."""

    language: str
    weight: float


class SegmentEnd(msgspec.Struct, frozen=True, kw_only=True):
    """Where Whisper ended a segment of a partial's text (a sentence or clause, by its own
    timestamps): after the first ``words`` words of the text, at ``end`` in session seconds."""

    words: int
    end: float


class AudioSegment(msgspec.Struct, frozen=True, kw_only=True):
    """One self-contained utterance (or partial window) for the STT stage, PCM16 16 kHz mono."""

    session_id: str
    seq: int
    kind: SegmentKind = "final"
    start: float
    end: float
    pcm: bytes
    sample_rate: int = SAMPLE_RATE
    language: str | None = None
    task: Task = "transcribe"
    # Target languages for the MT stage (Whisper codes); the STT worker forwards the transcript.
    translate_to: tuple[str, ...] = ()
    # With language None: detect only among these (Whisper codes); empty means any.
    allowed_languages: tuple[str, ...] = ()
    # Also translate the speech to English with Whisper's own translate task, in the STT worker.
    whisper_translate: bool = False
    # Wall-clock time the gateway published it, for queueing-delay metrics.
    sent_at: float = 0.0
    # Partial windows of one utterance share its seq; a later revision supersedes an earlier one.
    revision: int = 0
    word_timestamps: bool = False
    # Vocabulary or context for Whisper (its initial prompt), e.g. names it should spell right.
    prompt: str = ""
    # With language None: what the session's earlier utterances were heard as, so a short or
    # unclear utterance is decided by the session, not alone (empty: no evidence yet).
    language_prior: tuple[LanguageWeight, ...] = ()


class TranslationRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A final transcript some session wants in other languages (TEXT stream, for MT workers)."""

    session_id: str
    seq: int
    text: str
    source_language: str
    targets: tuple[str, ...]
    start: float
    end: float
    sent_at: float = 0.0


class Transcript(msgspec.Struct, frozen=True, kw_only=True, tag="transcript", tag_field="type"):
    """What an STT worker made of one segment."""

    session_id: str
    seq: int
    kind: SegmentKind = "final"
    text: str
    language: str
    language_probability: float
    start: float
    end: float
    worker_id: str
    compute_s: float
    # Text dropped as not speech (nova_stt.filters reasons), e.g. ("no_speech_vad",).
    suppressed: tuple[str, ...] = ()
    revision: int = 0
    words: tuple[Word, ...] = ()
    # What this utterance alone sounded like (detection before any session prior), most
    # probable first; empty when the language was given.
    language_scores: tuple[LanguageWeight, ...] = ()
    # Partials only: Whisper's own segment ends in the text, where an utterance may be cut.
    segment_ends: tuple[SegmentEnd, ...] = ()


class SegmentFailed(
    msgspec.Struct, frozen=True, kw_only=True, tag="segment_failed", tag_field="type"
):
    """A segment that can never be transcribed; the gateway tells the client and moves on."""

    session_id: str
    seq: int
    kind: SegmentKind = "final"
    code: str
    reason: str
    worker_id: str


class Translation(msgspec.Struct, frozen=True, kw_only=True, tag="translation", tag_field="type"):
    """One final in one target language; ``seq`` names the final it translates."""

    session_id: str
    seq: int
    language: str  # the target
    source_language: str
    text: str
    backend: str  # e.g. "apertium", "ct2:nllb-200-distilled-600M", "whisper"
    worker_id: str
    compute_s: float = 0.0


class TranslationFailed(
    msgspec.Struct, frozen=True, kw_only=True, tag="translation_failed", tag_field="type"
):
    """A translation that will not come (no backend for the pair, or it kept failing); the
    transcript itself was delivered."""

    session_id: str
    seq: int
    language: str
    source_language: str
    code: str
    reason: str
    worker_id: str


ResultMessage = Transcript | SegmentFailed | Translation | TranslationFailed


class WorkerHeartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """Published by every worker on ``<prefix>.workers.<role>`` so gateways know who is ready."""

    worker_id: str
    role: str
    model: str
    device: str
    processed: int
    in_flight: int
    sent_at: float
    # MT workers: the translation backends they run, e.g. ("ct2:nllb-200-distilled-600M",
    # "apertium"), and whether one is a many-language model (NLLB, M2M-100): the gateway then
    # routes speech → English to text MT instead of Whisper.
    backends: tuple[str, ...] = ()
    multilingual_mt: bool = False
    # The worker's circuit breaker (nova_common/breaker.py): "open" while its model keeps
    # failing and it takes no work; gateways do not count it ready. Older workers send none.
    breaker: Literal["closed", "open", "half_open"] = "closed"


# --------------------------------------------------------------------------- client → gateway


class StartMessage(msgspec.Struct, frozen=True, kw_only=True, tag="start", tag_field="type"):
    """Opens a session; binary PCM16 frames may follow."""

    language: str = "auto"
    task: Task = "transcribe"
    sample_rate: int = SAMPLE_RATE
    channels: int = 1
    encoding: Literal["pcm_s16le"] = "pcm_s16le"
    # Languages (Whisper codes) each final should also be translated into.
    translate_to: tuple[str, ...] = ()
    # With language "auto": detect per utterance, but only among these (e.g. ["en", "de"]).
    languages: tuple[str, ...] = ()
    # Live partial results while an utterance is in progress.
    partials: bool = True
    profile: Profile = "subtitles"
    # Word-level times on finals (costs a little model time).
    word_timestamps: bool = False
    prompt: str = ""


class UpdateMessage(msgspec.Struct, frozen=True, kw_only=True, tag="update", tag_field="type"):
    """Changes a running session; applies to utterances that end from now on."""

    translate_to: tuple[str, ...] | None = None


class StopMessage(msgspec.Struct, frozen=True, kw_only=True, tag="stop", tag_field="type"):
    """No more audio: flush the last utterance and send a summary once every final is in."""


ClientMessage = StartMessage | UpdateMessage | StopMessage

# --------------------------------------------------------------------------- gateway → client


class SessionStarted(msgspec.Struct, frozen=True, kw_only=True, tag="started", tag_field="type"):
    session_id: str
    sample_rate: int
    channels: int
    language: str
    task: Task
    translate_to: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    partials: bool = True
    profile: Profile = "subtitles"
    word_timestamps: bool = False


class SessionUpdated(msgspec.Struct, frozen=True, kw_only=True, tag="updated", tag_field="type"):
    """The answer to ``update``: the session's settings now in effect."""

    session_id: str
    translate_to: tuple[str, ...]


class PartialEvent(msgspec.Struct, frozen=True, kw_only=True, tag="partial", tag_field="type"):
    """The utterance ``seq`` so far. ``committed`` is a prefix of ``text`` that later partials
    of this utterance never change (two hypotheses in a row agreed on it); the rest may still
    change. The utterance's final replaces its partials. It may come before the finals of
    earlier utterances (not in the ``typing`` profile); finals always come in ``seq`` order."""

    session_id: str
    seq: int
    revision: int
    text: str
    committed: str
    language: str
    start: float
    end: float
    is_final: bool = False
    # Profile `subtitles`: the caption as shown, at most two lines.
    lines: tuple[str, ...] = ()


class FinalEvent(msgspec.Struct, frozen=True, kw_only=True, tag="final", tag_field="type"):
    session_id: str
    seq: int
    text: str
    language: str
    start: float
    end: float
    is_final: bool = True
    revision: int = 0
    words: tuple[Word, ...] = ()
    lines: tuple[str, ...] = ()


class TranslationEvent(
    msgspec.Struct, frozen=True, kw_only=True, tag="translation", tag_field="type"
):
    """A final's text in one target language; always sent after the final it translates."""

    session_id: str
    seq: int
    language: str
    source_language: str
    text: str
    start: float
    end: float
    backend: str


class ErrorEvent(msgspec.Struct, frozen=True, kw_only=True, tag="error", tag_field="type"):
    """A problem the client should know about; ``fatal`` means the gateway closes next."""

    code: str
    reason: str
    session_id: str | None = None
    seq: int | None = None
    # For a translation that failed: its target language (the final itself was delivered).
    language: str | None = None
    fatal: bool = False


class NoticeEvent(msgspec.Struct, frozen=True, kw_only=True, tag="notice", tag_field="type"):
    """Something worth telling the user that is not an error, e.g. no STT worker is running
    yet (audio is queued and will be transcribed when one starts)."""

    code: str
    reason: str
    session_id: str | None = None


class SummaryEvent(msgspec.Struct, frozen=True, kw_only=True, tag="summary", tag_field="type"):
    """The last event of a session: every final has been delivered (or reported failed)."""

    session_id: str
    finals: int
    failed: int
    audio_seconds: float
    translations: int = 0
    translations_failed: int = 0


ServerEvent = (
    SessionStarted
    | SessionUpdated
    | PartialEvent
    | FinalEvent
    | TranslationEvent
    | ErrorEvent
    | NoticeEvent
    | SummaryEvent
)

# --------------------------------------------------------------------------- the seed's protocol
# What the original Nova Voice desktop client speaks on /ws/v0 (github.com/buiilding/Nova-Voice,
# backend/docs/API_REFERENCE.md); nova_gateway/seed/ translates it. Field names are the seed's.


class SeedAudioHeader(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The JSON between a binary frame's u32 LE length prefix and its PCM16 samples."""

    sample_rate: int
    channels: int = 1
    bits_per_sample: int = 16


class SeedSetLangs(msgspec.Struct, frozen=True, kw_only=True, tag="set_langs", tag_field="type"):
    """A field left out keeps its current value, as in the seed."""

    source_language: str | None = None
    target_language: str | None = None


class SeedGetStatus(msgspec.Struct, frozen=True, tag="get_status", tag_field="type"):
    """Asks for a ``status`` reply."""


class SeedStartOver(msgspec.Struct, frozen=True, tag="start_over", tag_field="type"):
    """Drop the utterance in progress and begin afresh."""


SeedClientMessage = SeedSetLangs | SeedGetStatus | SeedStartOver


class SeedStatus(msgspec.Struct, frozen=True, kw_only=True, tag="status", tag_field="type"):
    client_id: str
    source_language: str
    target_language: str
    translation_enabled: bool


class SeedRealtime(msgspec.Struct, frozen=True, kw_only=True, tag="realtime", tag_field="type"):
    """A partial (``is_final`` false) or the final text of an utterance with its translation."""

    text: str
    translation: str
    is_final: bool
    client_id: str
    timestamp: float
    # Not in the seed's reference, but its client logs it: the utterance's seq.
    segment_id: int


class SeedUtteranceEnd(
    msgspec.Struct, frozen=True, kw_only=True, tag="utterance_end", tag_field="type"
):
    client_id: str
    timestamp: float


class SeedError(msgspec.Struct, frozen=True, kw_only=True, tag="error", tag_field="type"):
    """The seed's client shows ``message``; ``code`` is Nova's, for programs."""

    message: str
    code: str
    client_id: str


SeedEvent = SeedStatus | SeedRealtime | SeedUtteranceEnd | SeedError

# --------------------------------------------------------------------------- HTTP and CLI output


class HealthReport(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /health/full``: ready only when NATS, the streams and an STT worker are there."""

    ready: bool
    missing: list[str]
    nats: bool
    stt_workers: list[str]
    mt_workers: list[str] = []
    # Workers alive but taking no work, their model's circuit breaker open (not counted above).
    breaker_open: list[str] = []


class FinalRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of ``nova transcribe --format jsonl``."""

    file: str
    seq: int
    start: float
    end: float
    text: str
    language: str
    # Target language → translated text, when ``--translate-to`` asked for any.
    translations: dict[str, str] = {}
    # Word times in seconds of the file, with ``--words``.
    words: tuple[Word, ...] = ()


# Encoders are thread-safe and cheap to reuse.
msgpack_encoder = msgspec.msgpack.Encoder()
json_encoder = msgspec.json.Encoder()
segment_decoder = msgspec.msgpack.Decoder(AudioSegment)
translation_request_decoder = msgspec.msgpack.Decoder(TranslationRequest)
result_decoder: msgspec.msgpack.Decoder[ResultMessage] = msgspec.msgpack.Decoder(ResultMessage)
heartbeat_decoder = msgspec.msgpack.Decoder(WorkerHeartbeat)
client_message_decoder: msgspec.json.Decoder[ClientMessage] = msgspec.json.Decoder(ClientMessage)
server_event_decoder: msgspec.json.Decoder[ServerEvent] = msgspec.json.Decoder(ServerEvent)
