"""What a segment's outcome becomes on the bus: its transcript, or what its session hears when
it is given up. Pure functions of the segment and the model's result: no NATS, no model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from nova_common.fate import PermanentError
from nova_common.messages import (
    AudioSegment,
    SegmentEnd,
    SegmentFailed,
    Transcript,
    TranslationFailed,
    Word,
    segment_decoder,
)

if TYPE_CHECKING:
    from nova_stt.transcriber import SpeechResult


class HandOnFailed(Exception):
    """The transcript is out, but handing it on for translation failed: retried like any
    failure, and when given up the session hears that its translations will not come."""


def decoded(data: bytes) -> AudioSegment | None:
    try:
        return segment_decoder.decode(data)
    except msgspec.DecodeError:
        return None  # run anyway: the worker gives it up with ``undecodable``'s reason


def undecodable(data: bytes) -> PermanentError:
    try:
        segment_decoder.decode(data)
    except msgspec.DecodeError as err:
        return PermanentError(f"undecodable segment: {err}")
    return PermanentError("undecodable segment")


def transcript_of(segment: AudioSegment, result: SpeechResult, worker_id: str) -> Transcript:
    """What the model made of ``segment``, as the session receives it."""
    return Transcript(
        session_id=segment.session_id,
        seq=segment.seq,
        kind=segment.kind,
        revision=segment.revision,
        text=result.text,
        language=result.language,
        language_probability=result.language_probability,
        start=segment.start,
        end=segment.end,
        worker_id=worker_id,
        compute_s=result.compute_s,
        suppressed=result.suppressed,
        # Word times in session seconds, like every other time a client sees.
        words=tuple(
            Word(
                word=w.word,
                start=round(segment.start + w.start, 3),
                end=round(segment.start + w.end, 3),
                probability=round(w.probability, 3),
            )
            for w in result.words
        ),
        segment_ends=tuple(
            SegmentEnd(words=words, end=round(segment.start + at, 3))
            for words, at in result.segment_ends
        ),
        # The utterance's own detection: the gateway's session memory learns from it.
        language_scores=result.language_scores,
    )


def failures_of(
    segment: AudioSegment, exc: BaseException | None, worker_id: str
) -> list[SegmentFailed | TranslationFailed]:
    """What the session hears of a segment given up: the transcript that will not come, or
    (the transcript being out) the translations it is owed."""
    if not isinstance(exc, HandOnFailed):
        code = exc.code if isinstance(exc, PermanentError) else "stt_failed"
        return [
            SegmentFailed(
                session_id=segment.session_id,
                seq=segment.seq,
                kind=segment.kind,
                code=code,
                reason=str(exc),
                worker_id=worker_id,
            )
        ]
    # The final is with the client; the translations it is owed will not come.
    owed = (*segment.translate_to, "en") if segment.whisper_translate else segment.translate_to
    return [
        TranslationFailed(
            session_id=segment.session_id,
            seq=segment.seq,
            language=target,
            source_language=segment.language or "auto",
            code="translation_failed",
            reason=f"the transcript could not be handed on for translation: {exc}",
            worker_id=worker_id,
        )
        for target in owed
    ]
