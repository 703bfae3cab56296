"""The xdotool typer alone, into real windows under Xvfb and two keyboard layouts: every
character lands as itself whether or not the layout has it (capitals included, which Debian's
xdotool gets wrong by itself), BackSpaces erase exactly as many characters, and no modifier is
left down. No model: these are the keystrokes `nova type` sends."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from nova_client.dictation.editor import Edit
from nova_client.dictation.typers import XdotoolTyper
from nova_client.dictation.x11 import X11Keyboard
from tests.desktop import TkTextWindow, XtermLine, held_keys, x_env, xvfb
from tests.speech import require_tool

pytestmark = pytest.mark.desktop

# (Greek with tonos, "έ", reaches Tk but not xterm's line: left out, Nova has no Greek rows.)
TRICKY = "Über Ärger, señor Ñandú: ¿Qué? Élan, Ćwierć, Δ, Straße — 50 € @ {x}"


def type_edits(display: str, edits: list[Edit]) -> None:
    keyboard = X11Keyboard(display)
    typer = XdotoolTyper(keyboard, require_tool("xdotool"), environ=x_env(display))

    async def send() -> None:
        for edit in edits:
            await typer.apply(edit)

    try:
        asyncio.run(send())
    finally:
        typer.close()


@pytest.mark.parametrize("layout", ["us", "de"])
def test_every_character_lands_as_itself_in_a_tk_window(layout: str, tmp_path: Path) -> None:
    with xvfb() as display:
        subprocess.run([require_tool("setxkbmap"), "-display", display, layout], check=True)
        window = TkTextWindow(display, tmp_path / "tk")
        try:
            window.focus()
            type_edits(display, [Edit(text=TRICKY + " wrong"), Edit(erase=5, text="right\nEnd")])
            time.sleep(0.3)
            state = window.state()
        finally:
            window.close()
        assert state["text"] == TRICKY + " right\nEnd"
        assert state["deleted_chars"] == 5
        assert held_keys(display) == []


def test_every_character_lands_as_itself_in_an_xterm_under_a_german_layout(
    tmp_path: Path,
) -> None:
    assert shutil.which("xterm"), "xterm is not installed; run `make test`"
    with xvfb() as display:
        subprocess.run([require_tool("setxkbmap"), "-display", display, "de"], check=True)
        terminal = XtermLine(display, tmp_path / "xterm")
        try:
            terminal.focus()
            type_edits(display, [Edit(text=TRICKY + " wrong"), Edit(erase=5, text="right")])
            line = terminal.finish()
        finally:
            terminal.close()
        assert line == (TRICKY + " right").encode("utf-8")
        assert held_keys(display) == []
