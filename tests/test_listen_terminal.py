"""The terminal view's layout and its redraws: lines that fit the width (wide characters, long
words, translation indents), a live area shorter than the screen, and what a terminal shows
after a run of redraws, through a real terminal emulator (pyte)."""

from __future__ import annotations

import io

import pyte
import pytest

from nova_client.listen.captions import Captions
from nova_client.listen.layout import Span, columns, plain, words_of, wrap
from nova_client.listen.terminal import PARTIAL_ROWS, TerminalView, ansi, live_area
from nova_common.messages import FinalEvent, PartialEvent, SessionStarted, TranslationEvent


class Screen:
    """A VT100 (pyte's) of ``width`` columns with its scrollback, LF as a tty's onlcr makes it
    (CR LF): what a terminal shows after the view's output."""

    def __init__(self, width: int, height: int = 20) -> None:
        self.width = width
        self._screen = pyte.HistoryScreen(width, height, history=10_000)
        self._screen.set_mode(pyte.modes.LNM)
        self._stream = pyte.Stream(self._screen)

    def feed(self, data: str) -> None:
        self._stream.feed(data)

    def text(self) -> list[str]:
        scrolled = [
            "".join(row[col].data for col in range(self.width)).rstrip()
            for row in self._screen.history.top
        ]
        lines = scrolled + [line.rstrip() for line in self._screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def reaches_last_column(self) -> bool:
        """Whether any row is full: the view keeps off the last column, so that no terminal
        ever wraps its lines on its own."""
        return any(columns(line) >= self.width for line in self.text())


def started(targets: tuple[str, ...] = ("es",)) -> SessionStarted:
    return SessionStarted(session_id="s", sample_rate=16000, channels=1, language="en",
                          task="transcribe", translate_to=targets)  # fmt: skip


def partial(seq: int, text: str, committed: str = "", revision: int = 1) -> PartialEvent:
    return PartialEvent(session_id="s", seq=seq, revision=revision, text=text,
                        committed=committed, language="en", start=0.0, end=1.0)  # fmt: skip


def final(seq: int, text: str) -> FinalEvent:
    return FinalEvent(session_id="s", seq=seq, text=text, language="en", start=0.0, end=1.0)


def translation(seq: int, text: str) -> TranslationEvent:
    return TranslationEvent(session_id="s", seq=seq, language="es", source_language="en",
                            text=text, start=0.0, end=1.0, backend="apertium")  # fmt: skip


# --------------------------------------------------------------------------- wrapping


@pytest.mark.parametrize("width", [8, 13, 20, 41])
def test_wrapped_lines_fit_their_width_and_keep_every_word(width: int) -> None:
    text = "Good morning, everyone, and welcome to the meeting of the extraordinarily long words."
    lines = wrap(words_of(text, "final"), width)
    assert all(columns(plain(line)) <= width for line in lines)
    assert "".join(plain(line).replace(" ", "") for line in lines) == text.replace(" ", "")


def test_wide_characters_take_two_columns_and_text_without_spaces_is_broken() -> None:
    lines = wrap(words_of("你好世界这是一个很长的句子没有空格", "final"), 11)
    assert [columns(plain(line)) for line in lines] == [10, 10, 10, 4]


def test_combining_marks_take_no_column() -> None:
    assert columns("cafe\u0301") == 4


def test_continuation_lines_are_indented_under_the_first_lines_prefix() -> None:
    lines = wrap(
        words_of("Buenos días, todo el mundo, y bienvenido a la reunión.", "translation"),
        24,
        first=Span("  [es] ", "translation"),
        indent=" " * 7,
    )
    shown = [plain(line) for line in lines]
    assert shown[0].startswith("  [es] Buenos")
    assert all(line.startswith(" " * 7) and line[7] != " " for line in shown[1:])
    assert all(columns(line) <= 24 for line in shown)


# --------------------------------------------------------------------------- the live area


def live_captions() -> Captions:
    captions = Captions()
    for event in (
        started(),
        final(0, "Good morning, everyone, and welcome to the meeting."),
        partial(1, "please send the report to my office right now", committed="please send"),
    ):
        captions.apply(event, 0.0)
    return captions


@pytest.mark.parametrize("width", [21, 30, 48, 120])
def test_no_live_line_reaches_the_last_column(width: int) -> None:
    lines = live_area(live_captions(), "● live · a very long status line " * 4, width, 30)
    assert all(columns(plain(line)) < width for line in lines)


def test_the_live_area_shows_the_waiting_final_its_placeholder_the_partial_and_the_status() -> None:
    lines = [plain(line) for line in live_area(live_captions(), "● live", 120, 30)]
    assert lines == [
        "Good morning, everyone, and welcome to the meeting.",
        "  [es] …",
        "please send the report to my office right now",
        "● live",
    ]


def test_an_earlier_utterances_words_stay_above_the_partial_until_its_final() -> None:
    captions = live_captions()
    captions.apply(partial(2, "right now", committed="right"), 0.0)  # final 1 still owed
    lines = [plain(line) for line in live_area(captions, "● live", 120, 30)]
    assert lines == [
        "Good morning, everyone, and welcome to the meeting.",
        "  [es] …",
        "please send the report to my office right now",
        "right now",
        "● live",
    ]
    captions.apply(final(1, "Please send the report to my office."), 0.0)
    lines = [plain(line) for line in live_area(captions, "● live", 120, 30)]
    assert lines[2:] == ["Please send the report to my office.", "  [es] …", "right now", "● live"]


def test_the_tail_is_dim_and_committed_words_are_not() -> None:
    captions = Captions()
    captions.apply(started(), 0.0)
    captions.apply(partial(0, "one two three", committed="one two"), 0.0)
    [line] = live_area(captions, "", 80, 10)
    assert ansi(line) == "one two\x1b[2m three\x1b[0m"


def test_the_partial_keeps_only_its_latest_rows_and_the_area_fits_the_screen() -> None:
    captions = Captions()
    captions.apply(started(targets=()), 0.0)
    captions.apply(partial(0, " ".join(f"word{i}" for i in range(60))), 0.0)
    lines = live_area(captions, "", 30, 40)
    assert len(lines) == PARTIAL_ROWS and plain(lines[-1]).endswith("word59")
    for i in range(12):
        captions.apply(final(i, f"Sentence number {i} is waiting."), 0.0)
    captions.waiting[0].targets = ("es",)  # the oldest holds the others back
    assert len(live_area(captions, "status", 30, 8)) == 7


# --------------------------------------------------------------------------- redraws


def test_redraws_leave_only_the_finals_and_the_current_live_area() -> None:
    out, err = io.StringIO(), io.StringIO()
    width = 40
    view = TerminalView(out, err, size=lambda: (width, 20))
    screen = Screen(width)
    captions = Captions()

    def step(event: object, now: float, status: str = "● live") -> list[str]:
        captions.apply(event, now)  # type: ignore[arg-type]
        view.show(captions, status, now)
        screen.feed(out.getvalue())
        out.seek(0)
        out.truncate()
        return screen.text()

    step(started(), 0.0, "connecting…")
    assert step(partial(0, "good morning every", revision=1), 0.5) == [
        "good morning every",
        "● live",
    ]
    step(partial(0, "good morning everyone and welcome to the", "good morning", 2), 1.0)
    assert step(final(0, "Good morning, everyone, and welcome to the meeting."), 1.5) == [
        "Good morning, everyone, and welcome to",
        "the meeting.",
        "  [es] …",
        "● live",
    ]
    step(partial(1, "please send"), 2.0)
    assert step(translation(0, "Buenos días, todo el mundo, y bienvenido a la reunión."), 2.1) == [
        "Good morning, everyone, and welcome to",
        "the meeting.",
        "  [es] Buenos días, todo el mundo, y",
        "       bienvenido a la reunión.",
        "please send",
        "● live",
    ]
    step(final(1, "Please send the report."), 3.0)
    view.message("nova listen: lost the gateway (code 1006); reconnecting")
    screen.feed(out.getvalue())
    out.seek(0)
    out.truncate()
    assert err.getvalue() == "nova listen: lost the gateway (code 1006); reconnecting\n"
    view.close(captions)  # the session is over: the final still waiting goes out without Spanish
    screen.feed(out.getvalue())
    assert screen.text() == [
        "Good morning, everyone, and welcome to",
        "the meeting.",
        "  [es] Buenos días, todo el mundo, y",
        "       bienvenido a la reunión.",
        "Please send the report.",
    ]
    assert not screen.reaches_last_column()
    assert out.getvalue().endswith("\x1b[?25h")  # the cursor is back


def test_a_lost_sessions_unfinished_words_go_to_the_scrollback_dim() -> None:
    out = io.StringIO()
    view = TerminalView(out, io.StringIO(), size=lambda: (60, 20))
    captions = Captions()
    captions.apply(started(), 0.0)
    captions.apply(partial(3, "words whose audio went", committed="words whose"), 0.0)
    view.show(captions, "", 0.0)
    captions.apply(started(), 1.0)  # reconnected: a new session
    out.seek(0)
    out.truncate()
    view.show(captions, "", 1.0)
    assert "\x1b[2mwords whose audio went …\x1b[0m\n" in out.getvalue()


def test_a_late_translation_says_which_final_it_belongs_to() -> None:
    out = io.StringIO()
    view = TerminalView(out, io.StringIO(), size=lambda: (100, 20))
    screen = Screen(100)
    captions = Captions(wait_s=2.0)
    captions.apply(started(), 0.0)
    captions.apply(final(0, "One two three four five six seven eight."), 0.0)
    view.show(captions, "", 2.5)
    captions.apply(translation(0, "Uno dos tres cuatro cinco seis siete ocho."), 3.0)
    view.show(captions, "", 3.0)
    screen.feed(out.getvalue())
    assert screen.text() == [
        "One two three four five six seven eight.",
        "  [es] Uno dos tres cuatro cinco seis siete ocho. (for “One two three four five six…”)",
    ]
