"""What to type for each event of a live session: the pure heart of `nova type`.

The editor keeps what Nova has typed into the focused window and, for every partial or final,
says which keystrokes take the screen from what it shows to what it should show: erase the
changed tail (BackSpaces, counted in characters), type the new one. It never erases further back
than what Nova itself typed in that window.

Decisions, where a dictating user's expectations had to be guessed:

* Partials: by default the whole text of the utterance so far is typed and corrected in place
  as it changes; with ``finals_only`` only its committed words (which later partials never
  change), then the final. A final may still differ from the partials; it is corrected the same
  way.
* A partial that could still become a voice command (its words are the start of a command
  phrase: "New") is held back, not typed and erased.
* The focus moving to another window — between utterances or in the middle of one — starts
  afresh there: what was typed stays where it was typed, Nova forgets it (it will not erase it,
  "scratch that" cannot reach it, and no spacing is added against it). An utterance in progress
  when the focus moved gets no more partials; at its final, the new window gets the words that
  the old one had not been given.
* No window to type into (``focus`` None): nothing is typed, and an utterance that ends then is
  dropped (counted in ``Stats.dropped``).
* A command's keystrokes are an utterance of their own for "scratch that", so "scratch that"
  after "new line" removes the line break. Each "scratch that" removes one more.
* An utterance whose final never comes (it failed, or the connection was lost and a new session
  began) keeps what was typed of it, as if that were its final.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Hashable
from dataclasses import dataclass, field

from nova_client.dictation.commands import Command, command_for, could_become_command
from nova_client.dictation.spacing import join
from nova_common.messages import FinalEvent, PartialEvent

Window = Hashable


@dataclass(frozen=True)
class Edit:
    """Press BackSpace ``erase`` times, then type ``text`` ("\\n" is the Return key)."""

    erase: int = 0
    text: str = ""


@dataclass
class Stats:
    utterances: int = 0  # finals typed (commands not counted)
    corrections: int = 0  # edits that erased text Nova had typed for an utterance to retype it
    backspaces: int = 0
    commands: int = 0
    dropped: int = 0  # finals that had no window to go to
    nothing_to_scratch: int = 0

    def line(self) -> str:
        extra = f", {self.commands} command{'s' * (self.commands != 1)}" if self.commands else ""
        if self.dropped:
            extra += f", {self.dropped} not typed (no window had the keyboard focus)"
        return (
            f"{self.utterances} utterance{'s' * (self.utterances != 1)} typed, "
            f"{self.corrections} in-place correction{'s' * (self.corrections != 1)}, "
            f"{self.backspaces} BackSpace{'s' * (self.backspaces != 1)} sent{extra}"
        )


@dataclass
class _Utterance:
    seq: int
    language: str
    # Nova's text in the window before this utterance: what it is spaced against.
    before: str
    shown: str = ""  # what is on screen of it, separator included
    moved: bool = False  # the focus left the window it began in
    # The words the window it began in was given, when the focus moved.
    typed_elsewhere: list[str] = field(default_factory=list)


_NOT_SEEN = object()  # no focus seen yet: the first one is not a move


def _norm_word(word: str) -> str:
    return "".join(c for c in word.casefold() if c.isalnum())


class Editor:
    def __init__(self, *, finals_only: bool = False) -> None:
        self.finals_only = finals_only
        self.stats = Stats()
        self._window: object = _NOT_SEEN
        # Nova's text in the focused window as it stands, and the lengths of its pieces
        # (utterances and commands, separators included) for "scratch that".
        self._typed = ""
        self._pieces: list[int] = []
        self._current: _Utterance | None = None

    @property
    def typed(self) -> str:
        """What Nova has typed in the focused window and not erased, as far as it knows."""
        return self._typed

    # ------------------------------------------------------------------ events

    def partial(self, event: PartialEvent, focus: Window | None) -> list[Edit]:
        self._focus(focus)
        utterance = self._utterance(event.seq, event.language)
        if utterance.moved or self._window is None:
            return []
        text = _clean(event.committed if self.finals_only else event.text)
        if could_become_command(text, event.language):
            return self._show(utterance, "")
        return self._show(utterance, join(utterance.before, text, event.language))

    def final(self, event: FinalEvent, focus: Window | None) -> list[Edit]:
        self._focus(focus)
        utterance = self._utterance(event.seq, event.language)
        self._current = None
        text = _clean(event.text)
        command = command_for(text, event.language)
        if self._window is None:
            if text:
                self.stats.dropped += 1
            return []
        if command is not None:
            edits = self._show(utterance, "")
            return edits + self._run(command)
        if utterance.moved:
            text = _rest(text, utterance.typed_elsewhere)
        edits = self._show(utterance, join(utterance.before, text, event.language))
        if utterance.shown:
            self._pieces.append(len(utterance.shown))
            self.stats.utterances += 1
        return edits

    def abandon(self, seq: int | None = None) -> None:
        """The final of the utterance in progress (``seq``, or whichever) will not come: what
        was typed of it stays, as if it were its final."""
        utterance = self._current
        if utterance is None or (seq is not None and seq != utterance.seq):
            return
        self._current = None
        if utterance.shown and not utterance.moved:
            self._pieces.append(len(utterance.shown))

    # ------------------------------------------------------------------ internals

    def _focus(self, focus: Window | None) -> None:
        if focus == self._window:
            return
        first = self._window is _NOT_SEEN
        self._window = focus
        self._typed = ""
        self._pieces = []
        utterance = self._current
        if utterance is not None and not first:
            if not utterance.moved:
                utterance.typed_elsewhere = utterance.shown.split()
            utterance.moved = True
            utterance.before = ""
            utterance.shown = ""

    def _utterance(self, seq: int, language: str) -> _Utterance:
        current = self._current
        if current is not None and current.seq == seq:
            return current
        if current is not None:
            self.abandon()  # a new utterance began without the old one's final
        self._current = _Utterance(seq=seq, language=language, before=self._typed)
        return self._current

    def _show(self, utterance: _Utterance, desired: str) -> list[Edit]:
        shown = utterance.shown
        common = _common_prefix(shown, desired)
        erase = len(shown) - common
        text = desired[common:]
        utterance.shown = desired
        self._typed = utterance.before + desired
        if not erase and not text:
            return []
        self.stats.backspaces += erase
        if erase and desired:
            self.stats.corrections += 1
        return [Edit(erase, text)]

    def _run(self, command: Command) -> list[Edit]:
        self.stats.commands += 1
        if command is Command.SCRATCH_THAT:
            if not self._pieces:
                self.stats.nothing_to_scratch += 1
                return []
            length = self._pieces.pop()
            self._typed = self._typed[:-length]
            self.stats.backspaces += length
            return [Edit(erase=length)]
        breaks = "\n" if command is Command.NEW_LINE else "\n\n"
        self._typed += breaks
        self._pieces.append(len(breaks))
        return [Edit(text=breaks)]


def _clean(text: str) -> str:
    # NFC: "é" is one character to type and one BackSpace to erase, not "e" and an accent.
    return unicodedata.normalize("NFC", text).strip()


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _rest(text: str, typed_elsewhere: list[str]) -> str:
    """The words of ``text`` after those already typed in another window."""
    words = text.split()
    n = 0
    for typed, word in zip(typed_elsewhere, words, strict=False):
        if _norm_word(typed) != _norm_word(word):
            break
        n += 1
    return " ".join(words[n:])
