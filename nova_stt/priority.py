"""Which segments of a fetched batch to run, and in what order: finals first, and a partial
only while it is still worth showing, the one whose utterance has waited longest first.

Partials are best effort (DESIGN §1): one that waited longer than its budget, or that a newer
partial or the final of its utterance in the same batch supersedes, is dropped unrun, so partial
work never stands between a final and the model for long. (Windows come from a consumer of their
own, fetched only while no final waits; a batch of AUDIO holds partials only from a gateway of
before that.)
"""

from __future__ import annotations

from dataclasses import dataclass

from nova_common.messages import AudioSegment


@dataclass(frozen=True)
class BatchPlan:
    run: list[int]  # indexes into the batch, in the order to run them
    stale: list[int]  # partials that waited too long
    superseded: list[int]  # partials a newer partial or final of their utterance replaces


def plan_batch(
    segments: list[AudioSegment | None], *, now: float, partial_max_age_s: float
) -> BatchPlan:
    """``segments[i]`` is None for a message that could not be decoded (it is run, to fail)."""
    newest: dict[tuple[str, int], int] = {}  # (session, seq) → newest revision of a partial
    finals: dict[str, int] = {}  # session → highest final seq in the batch
    for segment in segments:
        if segment is None:
            continue
        if segment.kind == "final":
            finals[segment.session_id] = max(finals.get(segment.session_id, -1), segment.seq)
        else:
            key = (segment.session_id, segment.seq)
            newest[key] = max(newest.get(key, -1), segment.revision)
    first: list[int] = []
    later: list[int] = []
    stale: list[int] = []
    superseded: list[int] = []
    for i, segment in enumerate(segments):
        if segment is None or segment.kind == "final":
            first.append(i)
        elif (
            segment.seq <= finals.get(segment.session_id, -1)
            or segment.revision < newest[(segment.session_id, segment.seq)]
        ):
            superseded.append(i)
        elif segment.sent_at and now - segment.sent_at > partial_max_age_s:
            stale.append(i)
        else:
            later.append(i)
    # What a window buys is settled words for the longest-waiting speech: the utterance that
    # started earliest (in wall-clock time) has the oldest unfinal words.
    later.sort(key=lambda i: _spoken_from(segments[i]))
    return BatchPlan(run=first + later, stale=stale, superseded=superseded)


def _spoken_from(segment: AudioSegment | None) -> float:
    assert segment is not None
    return segment.sent_at - (segment.end - segment.start)
