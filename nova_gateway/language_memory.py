"""What language a session speaks, from the evidence of its finals so far.

With ``language: auto`` each utterance used to be detected alone, and a short or unclear one
flipped to a wrong language (Whisper base hears a 2 s espeak Czech sentence as Slovak, Latin
or Japanese). The session keeps a belief instead: each final's own detection scores
(``Transcript.language_scores``, before any prior), weighted by the utterance's duration,
accumulate; older evidence fades with the speech that follows, so that a
real switch of language takes over after a few utterances. The gateway sends ``prior()`` with
every segment (``AudioSegment.language_prior``) and the STT worker weighs it against the
utterance's own detection (``nova_stt.language_decision.decide``).

Pure and in memory: no NATS, no clock.
"""

from __future__ import annotations

from nova_common.messages import LanguageWeight, Transcript

# Evidence halves with every this many seconds of later speech: a session that switches
# language is believed in its new one after a few utterances of clear speech.
HALF_LIFE_S = 15.0
# Seconds of "no idea" mixed into the belief: after one 2 s utterance the belief is weak
# (2 / (2 + 4)), after half a minute of speech strong (~0.9).
UNINFORMED_S = 4.0
MAX_LANGUAGES = 5  # what the prior names; the rest is too small to decide anything
MIN_WEIGHT = 0.01
# The belief is each language's share of the evidence raised to this power, renormalised: the
# language heard most often leads clearly even when Whisper's attractors for unclear speech
# (Latin, Thai, Japanese, English) collect a share too. Tuned with FULL_TRUST_S and
# PRIOR_FLOOR in nova_stt.language_decision on the detections of bench/session_language.py:
# words labelled right, mean over cs/de/es/pl/fr/it, 0.52 with the plain shares, 0.55 squared.
SHARPEN = 2.0


class SessionLanguage:
    """Accumulates a session's language evidence from its finals, in order of arrival."""

    def __init__(
        self, *, half_life_s: float = HALF_LIFE_S, uninformed_s: float = UNINFORMED_S
    ) -> None:
        self._half_life_s = half_life_s
        self._uninformed_s = uninformed_s
        self._evidence: dict[str, float] = {}  # language -> confident speech seconds

    def observe(self, transcript: Transcript) -> None:
        """Count one final's detection. Partials, finals with the language given (no scores)
        and finals with no text (silence, noise: their detection means nothing) count not."""
        scores = transcript.language_scores
        if transcript.kind != "final" or not scores or not transcript.text.strip():
            return
        duration = max(transcript.end - transcript.start, 0.0)
        fade = 0.5 ** (duration / self._half_life_s)
        for language in self._evidence:
            self._evidence[language] *= fade
        # Not weighted by the detection's confidence as well: Whisper is as confident in its
        # wrong answers on unclear speech (Thai 0.94 for a German "Guten Morgen") as in its right
        # ones; the first version, weighted so, labelled 0.49 of the words right, this one 0.55.
        for s in scores:
            self._evidence[s.language] = self._evidence.get(s.language, 0.0) + duration * s.weight

    def prior(self) -> tuple[LanguageWeight, ...]:
        """The belief to send with the next segment: weights sum to at most 1, the rest being
        what is not known yet; empty before any evidence."""
        total = sum(self._evidence.values())
        if total <= 0:
            return ()
        strength = total / (total + self._uninformed_s)
        sharpened = {k: v**SHARPEN for k, v in self._evidence.items()}
        scale = strength / sum(sharpened.values())
        ranked = sorted(sharpened.items(), key=lambda kv: -kv[1])[:MAX_LANGUAGES]
        return tuple(
            LanguageWeight(language=language, weight=round(evidence * scale, 4))
            for language, evidence in ranked
            if evidence * scale >= MIN_WEIGHT
        )

    def reset(self) -> None:
        """Forget the session's language (the client said it starts over)."""
        self._evidence.clear()
