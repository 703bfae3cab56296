"""Which language an utterance is in: its own detection, the session's allowed list, and what
the session's earlier utterances were heard as.

Whisper's language ID on a 1–2 s clip is poor (a short Czech sentence comes back as Slovak,
Polish or Russian), while a session rarely changes language. So the utterance's detection is
weighed against the session's prior by how much audio it rests on: a short utterance's
detection counts for little and the prior decides; a long one counts fully, and a strong
detection of a new language outweighs even a confident prior (a real switch wins).

Pure functions over plain values: no model. ``transcriber`` calls ``decide``; the gateway's
``nova_gateway.language_memory`` builds the prior from the detections reported back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from nova_common.messages import LanguageWeight

# An utterance this long (seconds) counts with its full log-probabilities; a shorter one in
# proportion. Tuned on the detections of bench/session_language.py (espeak-ng sessions of
# 2–3 s sentences; words labelled right, mean of six languages): 4 s 0.54, 8 s 0.55, 16 s 0.55
# — 8 s, so that a clear 5 s utterance of a new language still beats a confident prior
# (0.6 * log(0.99 / 0.001) > log(0.93 / 0.03)).
FULL_TRUST_S = 8.0
# Added to every language's prior weight: a language the session never heard stays possible,
# at a cost of log((p + FLOOR) / FLOOR) nats against one it heard with weight p.
PRIOR_FLOOR = 0.03
# Scores kept with a transcript for the session's memory: the right language is often only
# 5th–8th in a short utterance's detection, and still the one that adds up over a session.
REPORTED_SCORES = 8
MIN_REPORTED = 0.01
_EPSILON = 1e-6  # detection probabilities of 0 are rounding, not certainty


@dataclass(frozen=True)
class Decision:
    language: str
    # The chosen language's share: of the allowed languages' probability with no prior, of the
    # combined belief with one.
    probability: float


def restricted(
    probabilities: Sequence[tuple[str, float]], allowed: Sequence[str]
) -> list[tuple[str, float]]:
    """Detection among ``allowed`` only (all when empty), renormalised, most probable first."""
    scores = [(c, p) for c, p in probabilities if not allowed or c in allowed]
    total = sum(p for _, p in scores)
    if total <= 0:
        return []
    return sorted(((c, p / total) for c, p in scores), key=lambda cp: -cp[1])


def reported(probabilities: Sequence[tuple[str, float]]) -> tuple[LanguageWeight, ...]:
    """The few scores worth sending back with a transcript (``Transcript.language_scores``)."""
    ranked = sorted(probabilities, key=lambda cp: -cp[1])[:REPORTED_SCORES]
    return tuple(
        LanguageWeight(language=c, weight=round(float(p), 4))
        for c, p in ranked
        if p >= MIN_REPORTED
    )


def utterance_trust(duration_s: float) -> float:
    """How much of its own detection an utterance of ``duration_s`` seconds is believed."""
    return min(max(duration_s, 0.0) / FULL_TRUST_S, 1.0)


def decide(
    probabilities: Sequence[tuple[str, float]],
    *,
    allowed: Sequence[str] = (),
    prior: Sequence[LanguageWeight] = (),
    duration_s: float,
) -> Decision:
    """The language of one utterance.

    ``probabilities``: Whisper's detection on this utterance (code, p). ``prior``: the session's
    belief, weights summing to at most 1 (the rest is "no idea yet"); empty: decide on the
    detection alone, as Whisper does. ``allowed``: never anything else.
    """
    scores = restricted(probabilities, allowed)
    if not scores:
        return Decision(allowed[0] if allowed else "en", 0.0)
    belief = {p.language: p.weight for p in prior if not allowed or p.language in allowed}
    if not belief:
        return Decision(*scores[0])
    trust = utterance_trust(duration_s)
    # Log-linear pooling: the detection's log-probabilities scaled by trust, plus the log of the
    # prior. Languages outside the detection's list (there are none with Whisper) are left out.
    log_posterior = {
        code: trust * math.log(p + _EPSILON) + math.log(belief.get(code, 0.0) + PRIOR_FLOOR)
        for code, p in scores
    }
    top = max(log_posterior.values())
    weights = {code: math.exp(v - top) for code, v in log_posterior.items()}
    best = max(weights, key=lambda code: weights[code])
    return Decision(best, weights[best] / sum(weights.values()))
