"""Voice commands: an utterance that is nothing but a command phrase does something instead of
being typed. One table, one row per phrase and language; English phrases work in every language
(they are what most people who dictate know)."""

from __future__ import annotations

import re
import unicodedata
from enum import Enum


class Command(Enum):
    NEW_LINE = "new line"
    NEW_PARAGRAPH = "new paragraph"
    SCRATCH_THAT = "scratch that"


# (language, phrase, command). Whisper writes a phrase with any capitals and punctuation, and
# sometimes as one word ("Newline."): phrases are compared by their letters only.
PHRASES: tuple[tuple[str, str, Command], ...] = (
    ("en", "new line", Command.NEW_LINE),
    ("en", "next line", Command.NEW_LINE),
    ("en", "new paragraph", Command.NEW_PARAGRAPH),
    ("en", "scratch that", Command.SCRATCH_THAT),
    ("de", "neue Zeile", Command.NEW_LINE),
    ("de", "nächste Zeile", Command.NEW_LINE),
    ("de", "neuer Absatz", Command.NEW_PARAGRAPH),
    ("de", "streich das", Command.SCRATCH_THAT),
    ("de", "lösch das", Command.SCRATCH_THAT),
    ("es", "nueva línea", Command.NEW_LINE),
    ("es", "nuevo párrafo", Command.NEW_PARAGRAPH),
    ("es", "borra eso", Command.SCRATCH_THAT),
    ("es", "tacha eso", Command.SCRATCH_THAT),
)

_NOT_LETTER = re.compile(r"[\W_\d]+")


def phrase_key(text: str) -> str:
    """Letters only, without accents or case: "Nueva línea." and "nueva linea" are one key."""
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_LETTER.sub("", letters.casefold())


_KEYS: dict[str, dict[str, Command]] = {}
for _language, _phrase, _command in PHRASES:
    _KEYS.setdefault(_language, {})[phrase_key(_phrase)] = _command


def _keys_for(language: str) -> dict[str, Command]:
    return {**_KEYS["en"], **_KEYS.get(language, {})}


def command_for(text: str, language: str) -> Command | None:
    """The command ``text`` is, in the utterance's language (or English), or None."""
    return _keys_for(language).get(phrase_key(text))


def could_become_command(text: str, language: str) -> bool:
    """Whether an utterance that so far reads ``text`` may still turn out to be a command: then
    it is held back rather than typed and erased again."""
    key = phrase_key(text)
    return bool(key) and any(phrase.startswith(key) for phrase in _keys_for(language))


# The order of the prompt's phrases matters: with "New line. New paragraph. Scratch that.",
# a spoken "New line." sent Whisper into a loop of the rest (24 s of decoding, then dropped as
# repetitive); in this order every command and sentence tried came back as itself.
_PROMPT_ORDER = (Command.NEW_PARAGRAPH, Command.SCRATCH_THAT, Command.NEW_LINE)


def prompt_for(language: str) -> str:
    """Whisper's initial prompt for a session in ``language``: its command phrases, one each.

    Said on their own, short phrases are what Whisper hears worst (espeak's "Scratch that." came
    back as "Watch out!" and "Scratch my..."; with this prompt, as itself). Only for a language
    given in advance: a prompt in one language would sway the detection of another."""
    if language not in _KEYS:
        return ""
    first: dict[Command, str] = {}
    for phrase_language, phrase, command in PHRASES:
        if phrase_language == language:
            first.setdefault(command, phrase)
    phrases = [first[command] for command in _PROMPT_ORDER if command in first]
    return " ".join(f"{phrase[0].upper()}{phrase[1:]}." for phrase in phrases)
