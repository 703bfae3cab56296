"""`nova type`'s one-line failures, run as a user runs the command: no display, no xdotool, a
bad hotkey, --toggle with nothing to toggle, and (under a real Xvfb) a gateway that is not
there. None of them needs the model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.desktop import x_env, xvfb
from tests.processes import NOVA, nova_env, unused_port
from tests.speech import speak, with_pauses, write_wav


def run_type(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NOVA), "type", *args], env=env, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = nova_env(tmp_path / "data", XDG_RUNTIME_DIR=str(tmp_path), **extra)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "WINDOWID"):
        env.pop(name, None)
    env.update(extra)
    return env


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "hello.wav", with_pauses([speak("Hello.")]), 16000)


def test_no_display_and_no_wayland(tmp_path: Path, wav: Path) -> None:
    result = run_type("--input", str(wav), env=bare_env(tmp_path))
    assert result.returncode == 4
    assert "neither DISPLAY (X11) nor WAYLAND_DISPLAY" in one_line(result)


def test_xdotool_missing_says_what_to_install(tmp_path: Path, wav: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    # A display name is enough: the missing tool is found out before any display is opened.
    result = run_type("--input", str(wav), env=bare_env(tmp_path, DISPLAY=":99", PATH=str(empty)))
    assert result.returncode == 4
    assert "apt-get install xdotool" in one_line(result)


def test_wayland_without_wtype_or_ydotool(tmp_path: Path, wav: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = bare_env(tmp_path, WAYLAND_DISPLAY="wayland-0", PATH=str(empty))
    result = run_type("--input", str(wav), env=env)
    assert result.returncode == 4
    assert "apt-get install wtype" in one_line(result)


def test_a_bad_hotkey_is_a_usage_error(tmp_path: Path, wav: Path) -> None:
    result = run_type("--input", str(wav), "--hotkey", "hyper+q", env=bare_env(tmp_path))
    assert result.returncode == 2
    assert "unknown modifier 'hyper'" in one_line(result)


def test_toggle_with_none_running(tmp_path: Path) -> None:
    result = run_type("--toggle", env=bare_env(tmp_path, DISPLAY=":99"))
    assert result.returncode == 4
    assert "no nova type is running" in one_line(result)


@pytest.mark.desktop
def test_an_unreachable_gateway_is_one_line_and_exit_status_1(tmp_path: Path, wav: Path) -> None:
    url = f"ws://127.0.0.1:{unused_port()}/ws"
    with xvfb() as display:
        result = run_type("--input", str(wav), "--url", url, "--language", "en",
                          env=x_env(display, base=bare_env(tmp_path)))  # fmt: skip
    assert result.returncode == 1, result.stderr
    failure = [line for line in result.stderr.splitlines() if "cannot reach" in line]
    assert len(failure) == 1 and url in failure[0] and "nova up" in failure[0], result.stderr
    assert "Traceback" not in result.stderr and "reconnecting" not in result.stderr
