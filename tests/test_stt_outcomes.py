"""What the STT worker puts on the bus for a segment: pure functions, no NATS, no model."""

from __future__ import annotations

from nova_common.fate import PermanentError
from nova_common.messages import AudioSegment, SegmentFailed, TranslationFailed
from nova_stt.decode import TimedWord
from nova_stt.outcomes import HandOnFailed, decoded, failures_of, transcript_of, undecodable
from nova_stt.transcriber import SpeechResult


def _segment(**fields: object) -> AudioSegment:
    return AudioSegment(session_id="s1", seq=3, start=12.0, end=14.5, pcm=b"\0\0" * 8, **fields)  # type: ignore[arg-type]


def test_word_times_and_segment_ends_are_in_session_seconds() -> None:
    result = SpeechResult(
        text="Hello there.",
        language="en",
        language_probability=0.9,
        compute_s=0.4,
        words=(TimedWord("Hello", 0.1, 0.5, 0.91234), TimedWord("there.", 0.6, 1.0, 0.8)),
        segment_ends=((2, 1.04),),
    )
    transcript = transcript_of(_segment(), result, "w1")
    assert [(w.start, w.end, w.probability) for w in transcript.words] == [
        (12.1, 12.5, 0.912),
        (12.6, 13.0, 0.8),
    ]
    assert [(e.words, e.end) for e in transcript.segment_ends] == [(2, 13.04)]
    assert (transcript.seq, transcript.worker_id, transcript.text) == (3, "w1", "Hello there.")


def test_a_segment_given_up_is_reported_with_its_reason() -> None:
    [failed] = failures_of(_segment(), PermanentError("segment sample rate 8000"), "w1")
    assert isinstance(failed, SegmentFailed)
    assert (failed.seq, failed.code, failed.reason) == (
        3,
        "bad_segment",
        "segment sample rate 8000",
    )
    [crashed] = failures_of(_segment(), RuntimeError("boom"), "w1")
    assert isinstance(crashed, SegmentFailed) and crashed.code == "stt_failed"


def test_a_transcript_that_could_not_be_handed_on_owes_each_translation() -> None:
    segment = _segment(translate_to=("de", "fr"), whisper_translate=True)
    owed = failures_of(segment, HandOnFailed(OSError("TEXT is full")), "w1")
    assert all(isinstance(f, TranslationFailed) for f in owed)
    assert [f.language for f in owed] == ["de", "fr", "en"]


def test_an_undecodable_message_says_why() -> None:
    assert decoded(b"\x00not msgpack") is None
    assert str(undecodable(b"\x00not msgpack")).startswith("undecodable segment")
