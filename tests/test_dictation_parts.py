"""The small parts of `nova type` that need no X server: command phrases, spacing, the choice
of keystroke backend and what it runs, hotkey spellings, the --toggle pidfile, pausing, and the
typist's ordering (the real windows are in tests/test_type_desktop.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Hashable
from pathlib import Path

import pytest

from nova_client.dictation import control
from nova_client.dictation.commands import (
    Command,
    command_for,
    could_become_command,
    prompt_for,
)
from nova_client.dictation.editor import Edit, Editor
from nova_client.dictation.hotkey import HotkeyError, parse_hotkey
from nova_client.dictation.keymap import SpareKeycodes, key_pair, keysym_for
from nova_client.dictation.pause import FLUSH_SILENCE_S, PausableSource, Pause
from nova_client.dictation.spacing import join
from nova_client.dictation.typers import (
    TyperUnavailable,
    WtypeTyper,
    XdotoolTyper,
    YdotoolTyper,
    choose_typer,
)
from nova_client.dictation.typist import Typist, _superseded_dropped
from nova_common.messages import FinalEvent, PartialEvent, SessionStarted

# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("text", "language", "command"),
    [
        ("New line.", "en", Command.NEW_LINE),
        ("Newline", "en", Command.NEW_LINE),
        ("new paragraph!", "en", Command.NEW_PARAGRAPH),
        ("Scratch that.", "en", Command.SCRATCH_THAT),
        ("Scratch that.", "de", Command.SCRATCH_THAT),  # English works in every language
        ("Neue Zeile.", "de", Command.NEW_LINE),
        ("Neuer Absatz.", "de", Command.NEW_PARAGRAPH),
        ("Lösch das.", "de", Command.SCRATCH_THAT),
        ("Nueva línea.", "es", Command.NEW_LINE),
        ("nuevo parrafo", "es", Command.NEW_PARAGRAPH),
        ("¡Borra eso!", "es", Command.SCRATCH_THAT),
        ("Neue Zeile.", "en", None),  # German phrases only in German
        ("A new line of products.", "en", None),
        ("Scratch that itch.", "en", None),
        ("", "en", None),
    ],
)
def test_command_phrases(text: str, language: str, command: Command | None) -> None:
    assert command_for(text, language) is command


def test_only_the_start_of_a_phrase_is_held_back() -> None:
    assert could_become_command("New", "en")
    assert could_become_command("Scratch", "en")
    assert could_become_command("New line", "en")
    assert not could_become_command("New York", "en")
    assert not could_become_command("Hello", "en")
    assert not could_become_command("", "en")
    assert could_become_command("Neue", "de") and not could_become_command("Neue", "fr")


def test_the_prompt_names_the_commands_of_the_sessions_language_only() -> None:
    assert prompt_for("en") == "New paragraph. Scratch that. New line."
    assert "Neue Zeile." in prompt_for("de")
    assert prompt_for("auto") == "" and prompt_for("fr") == ""


# --------------------------------------------------------------------------- spacing


@pytest.mark.parametrize(
    ("before", "text", "language", "typed"),
    [
        ("", "Hello there.", "en", "Hello there."),
        ("Hello there.", "How are you?", "en", " How are you?"),
        ("Hello there.", "how are you?", "en", " How are you?"),
        ("Hello there", ", said he.", "en", ", said he."),
        ("Hello there", "... and then", "en", "... and then"),
        ("First line.\n", "second line.", "en", "Second line."),
        ("I went to the", "Store.", "en", " store."),
        ("I went to the", "I think.", "en", " I think."),
        ("We met the", "NASA team.", "en", " NASA team."),
        ("Wir gehen über die", "Brücke.", "de", " Brücke."),
        ('He said "yes."', "Then he left.", "en", " Then he left."),
        ("I was going to...", "Well.", "en", " Well."),
        ("Hola.", "¿dónde está?", "es", " ¿Dónde está?"),
        ("(see", "Below)", "en", " below)"),
        ("Open (", "Here", "en", "here"),
        ("It costs", "42 euros.", "en", " 42 euros."),
    ],
)
def test_joining_an_utterance_to_the_text_before(
    before: str, text: str, language: str, typed: str
) -> None:
    assert join(before, text, language) == typed


# --------------------------------------------------------------------------- backends


def found(*tools: str) -> object:
    return lambda name: f"/usr/bin/{name}" if name in tools else None


def test_auto_picks_xdotool_on_x11_and_a_wayland_tool_on_wayland() -> None:
    assert choose_typer("auto", {"DISPLAY": ":0"}, "linux", found("xdotool")) == "xdotool"  # type: ignore[arg-type]
    wayland = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}
    assert choose_typer("auto", wayland, "linux", found("xdotool", "wtype")) == "wtype"  # type: ignore[arg-type]
    assert choose_typer("auto", wayland, "linux", found("ydotool")) == "ydotool"  # type: ignore[arg-type]
    session = {"XDG_SESSION_TYPE": "wayland"}
    assert choose_typer("auto", session, "linux", found("wtype")) == "wtype"  # type: ignore[arg-type]
    assert choose_typer("auto", {}, "win32", found()) == "pynput"  # type: ignore[arg-type]
    assert choose_typer("auto", {}, "darwin", found()) == "pynput"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "environ", "tools", "message"),
    [
        ("auto", {}, ("xdotool",), "neither DISPLAY (X11) nor WAYLAND_DISPLAY"),
        ("auto", {"DISPLAY": ":0"}, (), "apt-get install xdotool"),
        ("xdotool", {}, ("xdotool",), "DISPLAY is not set"),
        ("auto", {"WAYLAND_DISPLAY": "w"}, ("xdotool",), "apt-get install wtype"),
        ("wtype", {"WAYLAND_DISPLAY": "w"}, (), "wtype is not installed"),
        ("pynput", {"DISPLAY": ":0"}, (), "Windows and macOS only"),
    ],
)
def test_no_backend_says_what_to_install_or_set(
    name: str, environ: dict[str, str], tools: tuple[str, ...], message: str
) -> None:
    with pytest.raises(TyperUnavailable, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose_typer(name, environ, "linux", found(*tools))  # type: ignore[arg-type]


def test_each_backend_erases_then_types_without_clearing_modifiers() -> None:
    edit = Edit(erase=2, text="ab\ncd")
    xdotool = XdotoolTyper(None, "xdotool", delay_ms=6).argv(edit)
    assert xdotool == ["xdotool", "key", "--delay", "6", "BackSpace", "BackSpace",
                       "type", "--delay", "6", "--", "ab\ncd"]  # fmt: skip
    assert "--clearmodifiers" not in xdotool
    assert WtypeTyper("wtype").runs(edit) == [
        ["wtype", "-k", "BackSpace", "-k", "BackSpace"],
        ["wtype", "--", "ab"], ["wtype", "-k", "Return"], ["wtype", "--", "cd"],
    ]  # fmt: skip
    assert YdotoolTyper("ydotool").runs(Edit(erase=1, text="-x\n")) == [
        ["ydotool", "key", "14:1", "14:0"], ["ydotool", "type", "--", "-x"],
        ["ydotool", "key", "28:1", "28:0"],
    ]  # fmt: skip


# --------------------------------------------------------------------------- hotkey


def test_hotkey_spellings() -> None:
    hotkey = parse_hotkey("Ctrl+Alt+space")
    assert str(hotkey) == "ctrl+alt+space"
    assert hotkey.pynput_format() == "<alt>+<ctrl>+<space>"
    assert parse_hotkey("super+d").pynput_format() == "<cmd>+d"
    assert str(parse_hotkey("F9")) == "F9"
    for bad in ("", "ctrl+", "hyper+x", "ctrl+alt"):
        with pytest.raises(HotkeyError):
            parse_hotkey(bad)


# --------------------------------------------------------------------------- --toggle


def test_toggle_with_none_running_says_so(tmp_path: Path) -> None:
    environ = {"XDG_RUNTIME_DIR": str(tmp_path), "DISPLAY": ":7"}
    with pytest.raises(control.ControlError, match="no nova type is running"):
        control.toggle_running(environ)
    # A stale pidfile (its process gone) is as good as none.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    control.pidfile(environ).write_text(f"{dead.pid}\n")
    with pytest.raises(control.ControlError, match="no nova type is running"):
        control.toggle_running(environ)


def test_toggle_signals_the_running_one_of_the_same_display_only(tmp_path: Path) -> None:
    # A stand-in named like `nova type` that reports SIGUSR1: what --toggle must reach.
    script = tmp_path / "stand_in.py"
    script.write_text(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGUSR1, lambda *_: (print('toggled', flush=True), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    process = subprocess.Popen(
        [sys.executable, str(script), "type"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        environ = {"XDG_RUNTIME_DIR": str(tmp_path), "DISPLAY": ":7"}
        control.pidfile(environ).write_text(f"{process.pid}\n")
        with pytest.raises(control.ControlError):
            control.toggle_running({**environ, "DISPLAY": ":8"})
        assert control.toggle_running(environ) == process.pid
        assert process.stdout.readline() == "toggled\n"
        assert process.wait(10) == 0
    finally:
        process.kill()
        process.wait()


def test_a_second_instance_on_one_display_is_refused(tmp_path: Path) -> None:
    environ = {"XDG_RUNTIME_DIR": str(tmp_path), "DISPLAY": ":7"}
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "type"])
    try:
        control.pidfile(environ).write_text(f"{sleeper.pid}\n")
        with pytest.raises(control.ControlError, match=f"already running .*pid {sleeper.pid}"):
            with control.instance(environ):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    with control.instance(environ) as path:
        assert path.read_text() == f"{os.getpid()}\n"
    assert not path.exists()
    assert hasattr(signal, "SIGUSR1")


# --------------------------------------------------------------------------- pausing


class Chunks:
    sample_rate = 16000
    channels = 1
    description = "test chunks"

    def __init__(self, count: int, pause: Pause, pause_at: int) -> None:
        self.count, self.pause, self.pause_at = count, pause, pause_at

    async def chunks(self) -> AsyncIterator[bytes]:
        for i in range(self.count):
            if i == self.pause_at:
                self.pause.toggle("test")
            yield b"\x01\x00" * 1600  # 0.1 s


async def test_a_pause_sends_a_second_of_silence_then_nothing() -> None:
    pause = Pause()
    source = PausableSource(Chunks(40, pause, pause_at=10), pause)
    sent = [chunk async for chunk in source.chunks()]
    assert sent[:10] == [b"\x01\x00" * 1600] * 10
    silent = sent[10:]
    assert all(chunk == bytes(3200) for chunk in silent)
    assert len(silent) == round(FLUSH_SILENCE_S / 0.1)


# --------------------------------------------------------------------------- the typist


def partial(seq: int, text: str) -> PartialEvent:
    return PartialEvent(session_id="s", seq=seq, revision=1, text=text, committed="",
                        language="en", start=0.0, end=1.0)  # fmt: skip


def final(seq: int, text: str) -> FinalEvent:
    return FinalEvent(session_id="s", seq=seq, text=text, language="en", start=0.0, end=1.0)


STARTED = SessionStarted(session_id="s", sample_rate=16000, channels=1, language="en",
                         task="transcribe")  # fmt: skip


def test_superseded_partials_are_skipped_across_sessions_apart() -> None:
    events = [partial(0, "a"), partial(0, "a b"), final(0, "A b."), partial(1, "c"),
              STARTED, partial(1, "new session")]  # fmt: skip
    assert _superseded_dropped(events) == [final(0, "A b."), partial(1, "c"), STARTED,
                                           partial(1, "new session")]  # fmt: skip


class RecordingTyper:
    """Stands in for the keyboard: what the typist sends, and a modifier held for a while."""

    name = "recording"

    def __init__(self, held_until: float) -> None:
        self.held_until = held_until
        self.edits: list[tuple[float, Edit]] = []

    def focused_window(self) -> Hashable | None:
        return "window"

    def modifiers_held(self) -> bool:
        return time.monotonic() < self.held_until

    async def apply(self, edit: Edit) -> None:
        self.edits.append((time.monotonic(), edit))

    def close(self) -> None:
        pass


async def test_the_typist_waits_for_modifiers_then_types_in_order() -> None:
    typer = RecordingTyper(held_until=time.monotonic() + 0.3)
    typist = Typist(Editor(), typer)
    running = asyncio.create_task(typist.run())
    for event in (partial(0, "Hello"), final(0, "Hello."), final(1, "World.")):
        typist.put(event)
    typist.close()
    await asyncio.wait_for(running, 5)
    assert typist.error is None
    assert [edit for _, edit in typer.edits] == [Edit(text="Hello."), Edit(text=" World.")]
    assert all(at >= typer.held_until for at, _ in typer.edits)


async def test_nothing_is_typed_into_nova_types_own_terminal() -> None:
    typer = RecordingTyper(held_until=0.0)
    warnings: list[str] = []
    typist = Typist(Editor(), typer, own_windows={"window"}, warn=warnings.append)
    running = asyncio.create_task(typist.run())
    typist.put(final(0, "Not into the shell."))
    typist.close()
    await asyncio.wait_for(running, 5)
    assert typer.edits == [] and len(warnings) == 1 and "own terminal" in warnings[0]


async def test_a_new_session_keeps_the_unfinished_utterance_and_numbers_afresh() -> None:
    typer = RecordingTyper(held_until=0.0)
    typist = Typist(Editor(), typer)
    running = asyncio.create_task(typist.run())
    for event in (final(0, "One."), partial(1, "Two and"), STARTED, partial(0, "Three"),
                  final(0, "Three.")):  # fmt: skip
        typist.put(event)
        await asyncio.sleep(0.01)  # one at a time, as they would arrive
    typist.close()
    await asyncio.wait_for(running, 5)
    assert typist.editor.typed == "One. Two and three."


# --------------------------------------------------------------------------- spare keycodes


def keymap(*rows: tuple[int, ...]) -> list[list[int]]:
    return [list(row) + [0] * (4 - len(row)) for row in rows]


def test_characters_the_layout_lacks_get_spare_keycodes_with_their_capitals() -> None:
    a, n_tilde, N_tilde = ord("a"), 0xF1, 0xD1
    rows = keymap((a, ord("A")), (), (), (ord("ü"), ord("Ü")), (), (ord(" "),))  # keycodes 8..13
    spare = SpareKeycodes()
    changes = spare.assign("aÜñÑ ć", rows, first=8)
    # ñ and Ñ share a key; ć gets one too; a, Ü and the space are on the layout already.
    assert changes == {9: (n_tilde, N_tilde), 10: (keysym_for("ć"), keysym_for("Ć"))}
    assert key_pair("ß") == (0xDF, 0xDF)  # "SS" is no one key's capital
    for code, pair in changes.items():
        rows[code - 8][:2] = pair
    assert spare.assign("ñć", rows, first=8) == {}  # mapped already: nothing to do
    # Out of spare keys: the least recently used of Nova's own is reused, never the layout's.
    spare.assign("ć", rows, first=8)
    assert spare.assign("€", rows, first=8) == {12: (keysym_for("€"), keysym_for("€"))}
    rows[12 - 8][:2] = [keysym_for("€")] * 2
    assert spare.assign("ø", rows, first=8) == {9: (0xF8, 0xD8)}
    rows[9 - 8][:2] = [0xF8, 0xD8]
    assert sorted(spare.release(rows, first=8)) == [9, 10, 12]


def test_a_new_layout_takes_the_spare_keycodes_back() -> None:
    rows = keymap((), ())
    spare = SpareKeycodes()
    assert spare.assign("ñ", rows, first=8) == {8: (0xF1, 0xD1)}
    # setxkbmap replaced the keymap: keycode 8 is empty again, so ñ is mapped afresh.
    assert spare.assign("ñ", keymap((), ()), first=8) == {8: (0xF1, 0xD1)}
    assert spare.release(keymap((ord("x"),), ()), first=8) == []
