"""``GET /sessions/<sid>/subtitles.{srt,vtt}``: a session's finals as subtitles, while it runs
and for as long as RESULTS keeps them (``streams.results_max_age_s``).

Read from the RESULTS stream rather than from this gateway's memory, so any gateway behind a
load balancer can answer for any session. The session id (128 random bits) is the capability.
"""

from __future__ import annotations

from nova_common.messages import ResultMessage, Transcript, Translation
from nova_common.subtitles import Cue, SubtitleFormat, render


def subtitles(
    results: list[ResultMessage], fmt: SubtitleFormat, *, language: str | None = None
) -> str:
    """Cues for the session's finals in seq order (the first of repeated results wins); with
    ``language``, the translations into it instead of the transcripts."""
    finals: dict[int, Transcript] = {}
    translated: dict[int, str] = {}
    for result in results:
        if isinstance(result, Transcript) and result.kind == "final":
            finals.setdefault(result.seq, result)
        elif isinstance(result, Translation) and result.language == language:
            translated.setdefault(result.seq, result.text)
    cues = []
    for seq in sorted(finals):
        final = finals[seq]
        text = final.text if language is None else translated.get(seq, "")
        if text:
            cues.append(Cue(final.start, final.end, [text]))
    return render(cues, fmt)
