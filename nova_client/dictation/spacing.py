"""How an utterance joins the text before it, as a person would type it: one space between
sentences, none before punctuation or after a line break, a capital after a sentence end or a
line break.

Whisper writes every utterance as a sentence of its own: a capital first, usually a full stop
last. Its punctuation is kept — when it ends an utterance with a full stop, the next one starts
a sentence. Only when the text before ends without a sentence end (Whisper heard the speaker
carry on: a comma, or no punctuation at all) is the next utterance's capital taken back, and only
on an ordinary capitalised word: "I" and acronyms keep theirs, and languages that capitalise
nouns (German) are left as Whisper wrote them. A proper noun that continues a sentence is
lowered too; that is the price of the rule.

At the start of a window (nothing typed there by Nova yet) the utterance is typed as Whisper
wrote it, with no space before it: Nova cannot see what is left of the cursor.
"""

from __future__ import annotations

SENTENCE_ENDS = ".!?。！？"
# Closing marks that may follow a sentence end: `He said "yes."` ends a sentence.
_CLOSERS = "\"')]}»”’"
# What attaches to the word before it.
_NO_SPACE_BEFORE = ",.;:!?…%)]}»”’。、，！？"
# What the next word attaches to.
_NO_SPACE_AFTER = "([{«“‘¿¡\n\t "
# Languages whose nouns are capitalised: a capital mid-sentence is no sign of a sentence start.
_KEEPS_CAPITALS = frozenset({"de", "lb"})
# Words that keep their capital anywhere.
_ALWAYS_CAPITALISED: dict[str, frozenset[str]] = {
    "en": frozenset({"I", "I'm", "I'll", "I've", "I'd"}),
}


def join(before: str, text: str, language: str) -> str:
    """``text`` (one utterance) as it is typed after ``before`` (Nova's text so far in this
    window: "" at its start), with the separator it needs in front."""
    text = text.strip()
    if not text or not before:
        return text
    last = before[-1]
    separator = "" if last in _NO_SPACE_AFTER or text[0] in _NO_SPACE_BEFORE else " "
    ending = _sentence_ending(before)
    if last == "\n" or ending == "end":
        text = _capitalise(text)
    elif ending == "open":
        text = _continue(text, language)
    return separator + text


def _sentence_ending(before: str) -> str:
    """ "end" after a sentence end, "open" in mid-sentence, "unsure" after an ellipsis (the
    speaker trailed off: either may follow, so Whisper's own choice stands)."""
    trimmed = before.rstrip(" \t").rstrip(_CLOSERS)
    if trimmed.endswith(("...", "…")):
        return "unsure"
    return "end" if trimmed.endswith(tuple(SENTENCE_ENDS)) else "open"


def _capitalise(text: str) -> str:
    for i, char in enumerate(text):
        if char.isalpha():
            return text[:i] + char.upper() + text[i + 1 :]
        if char not in "\"'([{«“‘¿¡":
            return text  # a number or a symbol first: nothing to capitalise
    return text


def _continue(text: str, language: str) -> str:
    if language in _KEEPS_CAPITALS:
        return text
    first, _, rest = text.partition(" ")
    word = first.rstrip(",.;:!?…\"')]}»”’")
    protected = _ALWAYS_CAPITALISED.get(language, frozenset())
    if not word or word in protected or not word[0].isupper():
        return text
    if word[1:] != word[1:].lower():
        return text  # an acronym or a name like "McDonald": not a sentence capital
    return first[0].lower() + first[1:] + (" " + rest if rest else "")
