"""No text that nobody said: the checks between Whisper's output and a transcript.

Whisper was trained on subtitles, so silence, noise and music make it write things such as
"Thank you for watching", credits of subtitle communities, or loops of one token. Defences, in
the order they apply:

1. A speech gate before the model: Silero VAD (shipped with faster-whisper, ~1 ms per second of
   audio) must find speech in the utterance the gateway's cheaper webrtcvad cut; noise and music
   that fooled webrtcvad cost nothing more.
2. Per segment, Whisper's own failure signals, which faster-whisper reports but still returns when
   every temperature fallback failed: no-speech probability with low confidence, low average
   log-probability, a high compression ratio (repetition).
3. A per-language list of Whisper's known hallucination phrases: credits ("Subtitles by the
   Amara.org community") always, sign-offs ("Thanks for watching") when the evidence is weak.
4. An n-gram repetition breaker for loops inside otherwise kept text.

Pure functions over plain values: no model, no NATS; ``transcriber`` applies them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from nova_common.audio import SAMPLE_RATE


@dataclass(frozen=True)
class FilterSettings:
    speech_gate: bool = True
    min_speech_s: float = 0.2
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    # A known sign-off counts as a hallucination only with weak evidence of speech: Whisper
    # thought it more likely silence than not, or needed a temperature fallback. (Not lower:
    # a clean espeak "Yes." scored 0.20, a quiet real "Thank you." 0.21.)
    weak_no_speech_prob: float = 0.5
    # Loops longer than this are cut to it: "ha ha ha ha" is speech, twenty of them are not.
    max_repeats: int = 4


@dataclass(frozen=True)
class SegmentEvidence:
    """What faster-whisper reports for one decoded segment."""

    text: str
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float
    temperature: float


def speech_spans(audio: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample indexes of the speech Silero VAD finds in float32 16 kHz audio."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    # No padding: the default 400 ms around each span would make any blip count as speech.
    spans = get_speech_timestamps(audio, VadOptions(min_speech_duration_ms=100, speech_pad_ms=0))
    return [(span["start"], span["end"]) for span in spans]


def speech_seconds(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Seconds of speech Silero VAD finds in float32 audio."""
    return sum(end - start for start, end in speech_spans(audio)) / sample_rate


# fmt: off
#: Names from the credits Whisper learned from subtitle files: nobody says these.
_CREDIT_NAMES = ("amara org", "castingwords", "dimatorzok")
#: How such credits begin; real speech may begin so too ("subtitles by clicking…"), so these
#: count only as a whole short segment with weak evidence, like sign-offs.
_CREDIT_OPENINGS = ("subtitles by", "untertitel im auftrag", "untertitelung im auftrag",
                    "sous titres realises", "sous titrage", "subtitulos realizados",
                    "sottotitoli creati", "legendas pela comunidade", "ondertiteld door",
                    "субтитры сделал", "субтитры создавал", "字幕由")
#: Sign-offs and fillers Whisper produces for silence and noise; real people say them too.
_SIGN_OFFS: dict[str, tuple[str, ...]] = {
    "en": ("thank you for watching", "thanks for watching", "thank you so much for watching",
           "thank you very much for watching", "please subscribe", "like and subscribe",
           "subscribe to my channel", "thank you", "thank you very much", "thanks", "you", "bye",
           "bye bye", "see you next time", "see you in the next video", "i ll see you next time"),
    "de": ("vielen dank fürs zuschauen", "danke fürs zuschauen", "bis zum nächsten mal",
           "danke", "vielen dank", "tschüss", "abonniert den kanal"),
    "es": ("gracias por ver el video", "gracias por ver", "suscríbete", "suscríbete al canal",
           "gracias", "muchas gracias", "hasta la próxima", "nos vemos en el próximo video"),
    "fr": ("merci d avoir regardé", "merci d avoir regardé cette vidéo", "abonnez vous", "merci",
           "merci beaucoup", "à bientôt"),
    "it": ("grazie per la visione", "grazie per aver guardato", "iscriviti al canale", "grazie"),
    "pt": ("obrigado por assistir", "inscreva se no canal", "obrigado", "obrigada"),
    "nl": ("bedankt voor het kijken", "bedankt", "dank je wel"),
    "ru": ("продолжение следует", "спасибо за просмотр", "подписывайтесь на канал", "спасибо"),
    "ja": ("ご視聴ありがとうございました", "ありがとうございました", "チャンネル登録お願いします"),
    "ko": ("시청해주셔서 감사합니다", "구독과 좋아요 부탁드립니다", "감사합니다"),
    "zh": ("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目", "谢谢观看", "感谢观看", "谢谢大家"),
}
# fmt: on


def normalise(text: str) -> str:
    """Lower case, accents kept, punctuation to spaces, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text.lower())
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return " ".join(text.split())


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def has_words(text: str) -> bool:
    """Letters or digits at all ("... ..." and "♪" are not words)."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


def is_credit(text: str) -> bool:
    """Names a subtitling credit: always a hallucination."""
    plain = _strip_accents(normalise(text))
    return any(name in plain for name in _CREDIT_NAMES)


def is_sign_off(text: str, language: str) -> bool:
    """A whole segment that is a known sign-off, or opens like a subtitling credit."""
    normal = normalise(text)
    if normal in _SIGN_OFFS.get(language, ()):
        return True
    plain = _strip_accents(normal)
    return len(plain.split()) <= 8 and plain.startswith(
        tuple(_strip_accents(opening) for opening in _CREDIT_OPENINGS)
    )


_WORD = re.compile(r"\S+")


def break_repetitions(text: str, max_repeats: int = 4) -> str:
    """Cut loops: an n-gram (1–6 words) repeated more than ``max_repeats`` times in a row is
    kept ``max_repeats`` times. Text without a loop comes back unchanged, spacing included."""
    words = _WORD.findall(text)
    if len(words) <= max_repeats:
        return text
    cut = False
    out: list[str] = []
    i = 0
    while i < len(words):
        loop = _loop_at(words, i, max_repeats)
        if loop is None:
            out.append(words[i])
            i += 1
        else:
            n, repeats = loop
            out += words[i : i + n] * max_repeats
            i += n * repeats
            cut = True
    return " ".join(out) if cut else text


def _loop_at(words: list[str], i: int, max_repeats: int) -> tuple[int, int] | None:
    """(n, repeats) of the shortest n-gram starting at ``i`` that repeats too often."""
    for n in range(1, 7):
        gram = words[i : i + n]
        if len(gram) < n:
            return None
        repeats = 1
        while words[i + repeats * n : i + (repeats + 1) * n] == gram:
            repeats += 1
        if repeats > max_repeats:
            return n, repeats
    return None


def segment_verdict(
    segment: SegmentEvidence, language: str, settings: FilterSettings
) -> str | None:
    """Why this segment is not speech (a reason for the metrics), or None to keep it."""
    if not has_words(segment.text):
        return "no_words"
    if (
        segment.no_speech_prob > settings.no_speech_threshold
        and segment.avg_logprob < settings.log_prob_threshold
    ):
        return "no_speech"
    if segment.compression_ratio > settings.compression_ratio_threshold:
        return "repetitive"
    if segment.avg_logprob < settings.log_prob_threshold:
        return "low_confidence"
    if is_credit(segment.text):
        return "known_phrase"
    weak = segment.temperature > 0 or segment.no_speech_prob >= settings.weak_no_speech_prob
    if weak and is_sign_off(segment.text, language):
        return "known_phrase"
    return None
