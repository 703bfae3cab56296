"""The editor alone: events in, keystrokes out, against windows simulated as strings (the real
windows are in tests/test_type_desktop.py)."""

from __future__ import annotations

from collections.abc import Hashable

from nova_client.dictation.editor import Edit, Editor
from nova_common.messages import FinalEvent, PartialEvent


class Screen:
    """Windows as text buffers with the cursor at the end; a BackSpace too many is an error,
    since the editor must never erase what it did not type."""

    def __init__(self, **initial: str) -> None:
        self.windows: dict[Hashable, str] = dict(initial)
        self.protected = {name: len(text) for name, text in initial.items()}
        self.focus: Hashable = "A"
        self.backspaces = 0

    def apply(self, edits: list[Edit]) -> None:
        text = self.windows.get(self.focus, "")
        for edit in edits:
            assert edit.erase <= len(text) - self.protected.get(self.focus, 0), (
                f"erases {edit.erase} of {text!r}: more than Nova typed"
            )
            text = text[: len(text) - edit.erase] + edit.text
            self.backspaces += edit.erase
        self.windows[self.focus] = text

    def __getitem__(self, window: Hashable) -> str:
        return self.windows.get(window, "")


def partial(seq: int, text: str, committed: str = "", language: str = "en") -> PartialEvent:
    return PartialEvent(session_id="s", seq=seq, revision=1, text=text, committed=committed,
                        language=language, start=0.0, end=1.0)  # fmt: skip


def final(seq: int, text: str, language: str = "en") -> FinalEvent:
    return FinalEvent(session_id="s", seq=seq, text=text, language=language, start=0.0, end=1.0)


class Dictation:
    def __init__(self, *, finals_only: bool = False, **initial: str) -> None:
        self.editor = Editor(finals_only=finals_only)
        self.screen = Screen(**initial)
        self.edits: list[Edit] = []

    def __call__(self, *events: PartialEvent | FinalEvent) -> Dictation:
        for event in events:
            if isinstance(event, PartialEvent):
                edits = self.editor.partial(event, self.screen.focus)
            else:
                edits = self.editor.final(event, self.screen.focus)
            self.edits += edits
            self.screen.apply(edits)
        return self

    def say(self, seq: int, *partials: str, final_text: str | None = None) -> Dictation:
        """An utterance: its partials (all of the text uncommitted), then its final."""
        events: list[PartialEvent | FinalEvent] = [partial(seq, p) for p in partials]
        return self(*events, final(seq, final_text if final_text is not None else partials[-1]))

    @property
    def text(self) -> str:
        return self.screen["A"]


# --------------------------------------------------------------------------- in-place correction


def test_a_changed_tail_is_erased_and_retyped_no_further_than_it_differs() -> None:
    d = Dictation()(partial(0, "Good morning."))
    assert d.text == "Good morning."
    d(partial(0, "Good morning, every", committed="Good morning"))
    # "Good morning" stays; "." goes, ", every" comes: one BackSpace.
    assert d.edits[-1] == Edit(erase=1, text=", every")
    d(final(0, "Good morning, everyone."))
    assert d.edits[-1] == Edit(erase=0, text="one.")
    assert d.text == "Good morning, everyone."
    assert d.editor.stats.corrections == 1 and d.editor.stats.backspaces == 1
    assert d.editor.stats.utterances == 1


def test_backspaces_count_characters_not_bytes() -> None:
    d = Dictation()(partial(0, "Die Brücke über"), final(0, "Die Brücke ist schön."))
    # "über" (4 characters, 5 bytes in UTF-8) is erased with four BackSpaces.
    assert d.edits[-1] == Edit(erase=4, text="ist schön.")
    assert d.text == "Die Brücke ist schön."


def test_decomposed_accents_are_typed_as_one_character() -> None:
    d = Dictation()(partial(0, "Jose\u0301"), final(0, "José Luis."))
    assert d.text == "José Luis."
    assert d.screen.backspaces == 0


def test_a_final_that_differs_from_the_partials_is_corrected_the_same_way() -> None:
    d = Dictation().say(0, "I scream", "I scream for", final_text="Ice cream for all.")
    assert d.text == "Ice cream for all."
    assert d.edits[-1] == Edit(erase=len("I scream for") - 1, text="ce cream for all.")


def test_an_empty_final_takes_back_its_partials() -> None:
    d = Dictation().say(0, "Hello.")(partial(1, "Um"), final(1, ""))
    assert d.text == "Hello."
    assert d.editor.stats.utterances == 1


def test_finals_only_types_the_committed_words_then_the_final() -> None:
    d = Dictation(finals_only=True)
    d(partial(0, "Good morning every", committed=""))
    assert d.text == ""
    d(partial(0, "Good morning, everyone and", committed="Good morning, everyone"))
    assert d.text == "Good morning, everyone"
    d(final(0, "Good morning, everyone, and welcome."))
    assert d.text == "Good morning, everyone, and welcome."
    assert d.screen.backspaces == 0


# --------------------------------------------------------------------------- between utterances


def test_utterances_are_joined_as_a_person_types_them() -> None:
    d = Dictation().say(0, "Hello there.").say(1, "How are you?").say(2, ", said he.")
    assert d.text == "Hello there. How are you?, said he."


def test_a_continuing_utterance_loses_whispers_capital() -> None:
    d = Dictation().say(0, "I went to the").say(1, "Store and bought").say(2, "I think milk.")
    assert d.text == "I went to the store and bought I think milk."


def test_german_nouns_keep_their_capitals_when_a_sentence_continues() -> None:
    d = Dictation()(final(0, "Wir gehen über die", "de"), final(1, "Brücke und den Fluss.", "de"))
    assert d.text == "Wir gehen über die Brücke und den Fluss."


def test_the_first_utterance_in_a_window_is_typed_as_whisper_wrote_it() -> None:
    d = Dictation(A="Dear Sir")(final(0, "Thank you for the letter."))
    assert d.text == "Dear SirThank you for the letter."  # Nova cannot see what is there


# --------------------------------------------------------------------------- commands


def test_new_line_and_new_paragraph_press_return() -> None:
    d = Dictation().say(0, "First line.").say(1, "New line.").say(2, "second line.")
    d.say(3, "New paragraph.").say(4, "Third.")
    assert d.text == "First line.\nSecond line.\n\nThird."
    assert d.editor.stats.commands == 2 and d.editor.stats.utterances == 3


def test_a_partial_that_could_become_a_command_is_held_back() -> None:
    d = Dictation().say(0, "Hello.")
    d(partial(1, "New"), partial(1, "New line"))
    assert d.text == "Hello."  # nothing typed and erased again
    d(final(1, "New line."))
    assert d.text == "Hello.\n"
    assert d.screen.backspaces == 0


def test_a_held_back_partial_that_turns_out_not_to_be_a_command_is_typed() -> None:
    d = Dictation().say(0, "Hello.")(partial(1, "New"), partial(1, "New York is big"))
    assert d.text == "Hello. New York is big"
    d(final(1, "New York is big."))
    assert d.text == "Hello. New York is big."


def test_commands_in_other_spellings_and_languages() -> None:
    d = Dictation()(final(0, "Eins.", "de"), final(1, "Neue Zeile!", "de"))
    d(final(2, "Zwei.", "de"), final(3, "Newline", "de"), final(4, "Drei.", "de"))
    d(final(5, "Nueva linea.", "es"), final(6, "Cuatro.", "es"))
    assert d.text == "Eins.\nZwei.\nDrei.\nCuatro."


def test_scratch_that_removes_exactly_the_last_utterance_with_its_separator() -> None:
    d = Dictation().say(0, "Keep this.").say(1, "Drop this", final_text="Drop this one.")
    d.say(2, "Scratch", "Scratch that", final_text="Scratch that.")
    assert d.text == "Keep this."
    d.say(3, "And this.")
    assert d.text == "Keep this. And this."
    d.say(4, "Scratch that.").say(5, "Scratch that.")
    assert d.text == ""
    d.say(6, "Scratch that.")  # nothing of Nova's left: nothing else is touched
    assert d.text == "" and d.editor.stats.nothing_to_scratch == 1


def test_scratch_that_after_new_line_removes_the_line_break() -> None:
    d = Dictation().say(0, "One.").say(1, "New line.").say(2, "Scratch that.").say(3, "Two.")
    assert d.text == "One. Two."


def test_scratch_that_typed_as_words_first_is_erased_then_done() -> None:
    # "Scratch the" is no command prefix, so it was typed; the final turns out a command.
    d = Dictation().say(0, "Hello.").say(1, "Bad words.")
    d(partial(2, "Scratch the"), final(2, "Scratch that."))
    assert d.text == "Hello."


# --------------------------------------------------------------------------- the focus


def test_focus_moving_mid_utterance_leaks_no_partial_and_the_new_window_gets_the_rest() -> None:
    d = Dictation(B="Other: ").say(0, "In A.")
    d(partial(1, "This goes"))
    assert d.screen["A"] == "In A. This goes"
    d.screen.focus = "B"
    d(partial(1, "This goes to"), partial(1, "This goes to B"))
    assert d.screen["B"] == "Other: ", "no partial in the new window"
    d(final(1, "This goes to B."))
    assert d.screen["A"] == "In A. This goes", "what was typed stays where it was typed"
    assert d.screen["B"] == "Other: to B."
    # Scratch that cannot reach back into A, and B's own text is not Nova's.
    d.say(2, "Scratch that.")
    assert d.screen["B"] == "Other: "
    d.say(3, "Scratch that.")
    assert d.screen["B"] == "Other: " and d.screen["A"] == "In A. This goes"


def test_scratch_that_after_the_focus_left_and_came_back_touches_nothing() -> None:
    d = Dictation().say(0, "Typed in A.")
    d.screen.focus = "B"
    d.say(1, "In B.")
    d.screen.focus = "A"
    d.say(2, "Scratch that.").say(3, "Scratch that.")
    assert d.screen["A"] == "Typed in A." and d.screen["B"] == "In B."
    assert d.editor.stats.nothing_to_scratch == 2


def test_no_window_with_the_focus_types_nothing_and_counts_the_loss() -> None:
    d = Dictation()
    d.screen.focus = None  # type: ignore[assignment]
    d.say(0, "Lost words.")
    assert d.edits == [] and d.editor.stats.dropped == 1


def test_an_abandoned_utterance_keeps_what_was_typed_as_its_final() -> None:
    d = Dictation().say(0, "One.")(partial(1, "Two and"))
    d.editor.abandon()  # e.g. a new session after a reconnection
    d(partial(0, "Three"), final(0, "Three."))
    assert d.text == "One. Two and three."
    d.say(1, "Scratch that.")
    assert d.text == "One. Two and"
