"""A session that remembers its language: short Polish sentences, which Whisper base alone
labels Japanese, Czech, Latin, Hungarian or English half the time, are labelled Polish when the
session's memory (nova_gateway.language_memory) decides them — fed each final in order, as the
gateway does. bench/session_language.py measures the same on 20-sentence sessions."""

from __future__ import annotations

import pytest

from bench.session_language import labelled_right, run_session, utterances
from nova_stt.transcriber import SpeechToText

pytestmark = pytest.mark.slow


def test_the_session_decides_short_sentences(whisper: SpeechToText) -> None:
    session = utterances("pl", 8)
    alone = run_session(whisper, session, remember=False)
    remembered = run_session(whisper, session, remember=True)
    right_alone = labelled_right(session, alone, "pl")
    right = labelled_right(session, remembered, "pl")
    print(f"words labelled Polish: alone {right_alone:.2f}, with the session {right:.2f}")
    assert right >= 0.8 and right >= right_alone + 0.2, [h.language for h in remembered]
    # Every final reports what it alone sounded like: the memory's evidence. (Not compared
    # between the two runs: base int8 on CPU gave the same audio Polish 0.66 in one run and
    # Japanese 0.28 / Polish 0.16 in another within one process.)
    assert all(h.scores for h in remembered)
