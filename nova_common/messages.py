"""Every message shape in Nova Voice, defined once.

Inter-service payloads (gateway → STT → gateway) travel as msgpack; client-facing ones (the
WebSocket protocol) as JSON. ``schemas/`` holds JSON Schemas generated from these structs.
"""

from __future__ import annotations

from typing import Literal

import msgspec

SegmentKind = Literal["final", "partial"]
Task = Literal["transcribe", "translate"]

# --------------------------------------------------------------------------- inter-service


class AudioSegment(msgspec.Struct, frozen=True, kw_only=True):
    """One self-contained utterance (or partial window) for the STT stage, PCM16 16 kHz mono."""

    session_id: str
    seq: int
    kind: SegmentKind = "final"
    start: float
    end: float
    pcm: bytes
    sample_rate: int = 16000
    language: str | None = None
    task: Task = "transcribe"
    translate_to: tuple[str, ...] = ()
    # Wall-clock time the gateway published it, for queueing-delay metrics.
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


ResultMessage = Transcript | SegmentFailed


class WorkerHeartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """Published by every worker on ``<prefix>.workers.<role>`` so gateways know who is ready."""

    worker_id: str
    role: str
    model: str
    device: str
    processed: int
    in_flight: int
    sent_at: float


# --------------------------------------------------------------------------- client → gateway


class StartMessage(msgspec.Struct, frozen=True, kw_only=True, tag="start", tag_field="type"):
    """Opens a session; binary PCM16 frames may follow."""

    language: str = "auto"
    task: Task = "transcribe"
    sample_rate: int = 16000
    channels: int = 1
    encoding: Literal["pcm_s16le"] = "pcm_s16le"


class StopMessage(msgspec.Struct, frozen=True, kw_only=True, tag="stop", tag_field="type"):
    """No more audio: flush the last utterance and send a summary once every final is in."""


ClientMessage = StartMessage | StopMessage

# --------------------------------------------------------------------------- gateway → client


class SessionStarted(msgspec.Struct, frozen=True, kw_only=True, tag="started", tag_field="type"):
    session_id: str
    sample_rate: int
    channels: int
    language: str
    task: Task


class FinalEvent(msgspec.Struct, frozen=True, kw_only=True, tag="final", tag_field="type"):
    session_id: str
    seq: int
    text: str
    language: str
    start: float
    end: float
    is_final: bool = True
    revision: int = 0


class ErrorEvent(msgspec.Struct, frozen=True, kw_only=True, tag="error", tag_field="type"):
    """A problem the client should know about; ``fatal`` means the gateway closes next."""

    code: str
    reason: str
    session_id: str | None = None
    seq: int | None = None
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


ServerEvent = SessionStarted | FinalEvent | ErrorEvent | NoticeEvent | SummaryEvent

# --------------------------------------------------------------------------- HTTP and CLI output


class HealthReport(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /health/full``: ready only when NATS, the streams and an STT worker are there."""

    ready: bool
    missing: list[str]
    nats: bool
    stt_workers: list[str]


class FinalRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One line of ``nova transcribe --format jsonl``."""

    file: str
    seq: int
    start: float
    end: float
    text: str
    language: str


# Encoders are thread-safe and cheap to reuse.
msgpack_encoder = msgspec.msgpack.Encoder()
json_encoder = msgspec.json.Encoder()
segment_decoder = msgspec.msgpack.Decoder(AudioSegment)
result_decoder: msgspec.msgpack.Decoder[ResultMessage] = msgspec.msgpack.Decoder(ResultMessage)
heartbeat_decoder = msgspec.msgpack.Decoder(WorkerHeartbeat)
client_message_decoder: msgspec.json.Decoder[ClientMessage] = msgspec.json.Decoder(ClientMessage)
server_event_decoder: msgspec.json.Decoder[ServerEvent] = msgspec.json.Decoder(ServerEvent)
