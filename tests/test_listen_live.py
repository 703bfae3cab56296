"""`nova listen` for real against one `nova up` (module-scoped, on the session's nats-server):
live subtitles in a real tmux pane, piped text and JSON lines, the one-line failures, system
audio through a real PulseAudio null sink, and the overlay window under a real Xvfb, read back
with tesseract. Short clips and ``--language en`` throughout: the model is the slow part.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageGrab, ImageOps

from nova_common.nats_server import EmbeddedNatsServer, free_port
from tests.desktop import xvfb as x_server
from tests.processes import (
    NOVA,
    TWO_SENTENCES,
    NovaProcess,
    RunningUp,
    nova_env,
    nova_process,
    nova_up,
    run_nova,
    unused_port,
    wait_healthy,
    wait_until,
)
from tests.speech import librivox, normalise, read_wav, require_tool, wer, with_pauses, write_wav

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# Where the overlay's screenshots go, as for the browser tests.
ARTIFACTS = Path(os.environ.get("NOVA_TEST_ARTIFACTS") or REPO / "test-artifacts")
SGR = re.compile(r"\x1b\[[0-9;]*m")
WINDOW_TITLE = "Nova Voice subtitles"


@pytest.fixture(scope="module")
def up(nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path) -> Iterator[RunningUp]:
    with nova_up(nats_server.url, cli_data_dir, cli_dir / "logs", name="up-listen") as running:
        assert "translation: apertium" in running.process.stdout, running.process.describe()
        yield running


def client_env(**extra: str) -> dict[str, str]:
    return nova_env(Path(os.devnull), **extra)


def blocks(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Finals as the text view lays them out: a final's lines, then a ``  [es] …`` line per
    translation (continued on lines indented under it)."""
    out: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("  [es] "):
            out[-1][1].append(line[len("  [es] ") :])
        elif line.startswith(" " * len("  [es] ")) and out and out[-1][1]:
            out[-1][1][-1] += " " + line.strip()
        elif out and not out[-1][1]:
            out[-1] = (out[-1][0] + " " + line, [])
        else:
            out.append((line, []))
    return out


def assert_two_sentences_with_spanish(found: list[tuple[str, list[str]]], context: str) -> None:
    """Each final with its one Spanish line. The partials may settle "Good morning everyone!"
    as a sentence with a pause after it, and the gateway then cuts it there (by design, see
    nova_gateway/cuts.py): whether they do depends on when the windows are answered, so the
    finals are two or three, and together they are the two sentences."""
    assert len(found) in (2, 3) and all(len(spanish) == 1 for _, spanish in found), context
    heard = " ".join(text for text, _ in found)
    assert wer([" ".join(TWO_SENTENCES)], [heard]) <= 0.2, context
    spanish = " ".join(s for _, [s] in found).lower()
    assert "buenos días" in spanish and "informe" in spanish, context


# --------------------------------------------------------------------------- a real terminal


def test_live_subtitles_in_tmux(up: RunningUp, two_sentences_wav: Path, tmp_path: Path) -> None:
    """Partials redrawn in place (the unsure tail dim), then each final in the scrollback with
    its Spanish under it; a pane narrower than the sentences, so every line must be wrapped by
    the view: a line the terminal wrapped would break the redraw and leave rows behind."""
    tmux = require_tool("tmux")
    socket = tmp_path / "tmux.sock"
    width, height = 50, 16
    listen = shlex.join([
        str(NOVA), "listen", "--input", str(two_sentences_wav), "--url", up.ws_url,
        "--language", "en", "--translate-to", "es",
    ])  # fmt: skip
    # The pane outlives the command so that its last screen (and the exit status) can be read.
    command = f'{listen}; echo "nova exited $?"; sleep 600'
    base = [tmux, "-S", str(socket), "-f", "/dev/null"]
    subprocess.run(
        [*base, "new-session", "-d", "-x", str(width), "-y", str(height), command],
        env=client_env(), check=True, timeout=30,
    )  # fmt: skip
    snapshots: list[str] = []
    try:
        subprocess.run([*base, "set-option", "-g", "status", "off"], check=True, timeout=10)
        deadline = time.monotonic() + 120
        while not snapshots or "nova exited" not in snapshots[-1]:
            assert time.monotonic() < deadline, f"nova listen did not finish:\n{snapshots[-1:]}"
            pane = subprocess.run(
                [*base, "capture-pane", "-p", "-e"], capture_output=True, text=True, timeout=10
            ).stdout
            snapshots.append(pane)
            time.sleep(0.15)
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, timeout=10)

    last = [line for line in SGR.sub("", snapshots[-1]).splitlines() if line.strip()]
    assert last[-1] == "nova exited 0", last
    # Only the finals and their translations are left: no partial, status or placeholder rows.
    found = blocks(last[:-1])
    assert_two_sentences_with_spanish(found, "\n".join(last))
    assert not any("…" in line or "live" in line for line in last), last

    visible = [SGR.sub("", snap).splitlines() for snap in snapshots]
    assert max(len(line.rstrip()) for rows in visible for line in rows) < width
    first_final = next(
        i for i, rows in enumerate(visible) if any(r.startswith("  [es]") for r in rows)
    )
    # Before it: the utterance in progress, its words still dim (the first partial of an
    # utterance is all tail: nothing has been agreed on yet).
    partials = [
        line
        for snap in snapshots[:first_final]
        for line in snap.splitlines()
        if "\x1b[2m" in line and "morning" in SGR.sub("", line).lower()
    ]
    assert partials, "no partial was shown before the first final:\n" + "\n---\n".join(
        SGR.sub("", s) for s in snapshots[:first_final]
    )
    # Once a final is on screen its Spanish follows under it, with a dim placeholder meanwhile.
    assert any(
        any(r.strip() == "[es] …" for r in rows) or any("[es] Buenos" in r for r in rows)
        for rows in visible[first_final:]
    )


# --------------------------------------------------------------------------- pipes


def listen_popen(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(NOVA), "listen", *args], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
    )  # fmt: skip


def test_piped_text_and_jsonl(up: RunningUp, two_sentences_wav: Path) -> None:
    """Not a terminal: finals only, with their translations, as `nova transcribe` writes them.
    Both at once: each is paced at real time, so running them in turn would double the wait."""
    common = [
        "--input", str(two_sentences_wav), "--url", up.ws_url, "--language", "en",
        "--translate-to", "es",
    ]  # fmt: skip
    text = listen_popen(*common, env=client_env())
    jsonl = listen_popen(*common, "--format", "jsonl", env=client_env())
    text_out, text_err = text.communicate(timeout=120)
    jsonl_out, jsonl_err = jsonl.communicate(timeout=120)

    assert text.returncode == 0, text_err
    assert "\x1b" not in text_out, repr(text_out)  # no cursor movement into a pipe
    lines = text_out.splitlines()
    # Each final on one line, its Spanish on the next (two or three finals: see the assert).
    assert len(lines) in (4, 6) and all(line.startswith("  [es] ") for line in lines[1::2])
    assert_two_sentences_with_spanish(blocks(lines), text_out)

    assert jsonl.returncode == 0, jsonl_err
    records = [json.loads(line) for line in jsonl_out.splitlines()]
    assert [r["seq"] for r in records] == list(range(len(records))), jsonl_out
    assert len(records) in (2, 3), jsonl_out  # a cut after "Good morning everyone!" or not
    assert {r["file"] for r in records} == {str(two_sentences_wav)}
    assert all(set(r) >= {"start", "end", "text", "language", "translations"} for r in records)
    heard = " ".join(r["text"] for r in records)
    assert wer([" ".join(TWO_SENTENCES)], [heard]) <= 0.2, jsonl_out
    spanish = " ".join(r["translations"]["es"] for r in records).lower()
    assert "buenos días" in spanish and "informe" in spanish, records


def test_an_unreachable_gateway_is_one_line_and_exit_1(two_sentences_wav: Path) -> None:
    url = f"ws://127.0.0.1:{unused_port()}/ws"
    result = run_nova("listen", "--input", two_sentences_wav, "--url", url, env=client_env(),
                      timeout=30)  # fmt: skip
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert "cannot reach the Nova gateway" in result.stderr and "nova up" in result.stderr
    assert result.stdout == ""


def test_a_refused_session_is_one_line_and_exit_1(up: RunningUp, two_sentences_wav: Path) -> None:
    result = run_nova("listen", "--input", two_sentences_wav, "--url", up.ws_url,
                      "--language", "xx", env=client_env(), timeout=30)  # fmt: skip
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert "refused the session: unsupported_language" in result.stderr


def test_no_display_for_the_overlay_is_one_line_and_exit_4(two_sentences_wav: Path) -> None:
    env = {k: v for k, v in client_env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    url = f"ws://127.0.0.1:{unused_port()}/ws"
    result = run_nova("listen", "--overlay", "--input", two_sentences_wav, "--url", url,
                      env=env, timeout=30)  # fmt: skip
    assert result.returncode == 4, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert "cannot open the overlay window" in result.stderr


def test_options_that_contradict_each_other_are_exit_2(two_sentences_wav: Path) -> None:
    for args in (["--input", str(two_sentences_wav), "--system-audio"],
                 ["--device", "1", "--system-audio"]):  # fmt: skip
        result = run_nova("listen", *args, env=client_env(), timeout=30)
        assert result.returncode == 2, result
        assert result.stderr.count("\n") == 1, result.stderr


def test_no_sound_server_is_one_line_and_exit_3(tmp_path: Path) -> None:
    config = tmp_path / "client.conf"
    config.write_text("autospawn = no\n")  # or libpulse would start a sound server of its own
    env = client_env(
        XDG_RUNTIME_DIR=str(tmp_path),
        PULSE_SERVER=f"unix:{tmp_path}/nothing-here",
        PULSE_CLIENTCONFIG=str(config),
    )
    for args in (["--system-audio"], ["--list-devices"]):
        result = run_nova("listen", *args, env=env, timeout=30)
        assert result.returncode == 3, result
        assert result.stderr.count("\n") == 1, result.stderr
        assert "cannot reach a sound server" in result.stderr


def sessions_active(http_url: str) -> float:
    try:
        with urllib.request.urlopen(f"{http_url}/metrics", timeout=5) as response:
            metrics = response.read().decode()
    except OSError:
        return 0.0
    found = re.search(r"^nova_gateway_sessions_active (\S+)", metrics, re.M)
    return float(found.group(1)) if found else 0.0


def test_reconnects_when_the_gateway_goes_away(
    up: RunningUp, two_sentences_wav: Path, cli_dir: Path, tmp_path: Path
) -> None:
    """A gateway of its own (sharing `nova up`'s NATS and workers) is killed mid-sentence and
    started again on the same port: `nova listen` says so both times, sends what it captured
    meanwhile to the new session, and ends normally with its words."""
    port = free_port()
    http_url = f"http://127.0.0.1:{port}"
    logs = tmp_path / "logs"

    def gateway(name: str) -> NovaProcess:
        process = NovaProcess(["gateway", "--port", str(port)], env=up.env, log_dir=logs, name=name)
        wait_healthy(process, http_url)
        return process

    first = gateway("gateway-1")
    try:
        with nova_process(
            ["listen", "--input", str(two_sentences_wav), "--url", f"ws://127.0.0.1:{port}/ws",
             "--language", "en"],
            env=client_env(), log_dir=logs, name="listen-reconnect",
        ) as listen:  # fmt: skip
            wait_until(lambda: sessions_active(http_url) >= 1, timeout=30,
                       what="the listen session on the first gateway")  # fmt: skip
            time.sleep(1.0)  # into the first sentence
            first.kill()  # no goodbye: the connection just drops
            wait_until(lambda: "lost the gateway" in listen.stderr, timeout=30,
                       what=f"listen to notice\n{listen.describe()}")  # fmt: skip
            second = gateway("gateway-2")
            try:
                wait_until(lambda: "reconnected" in listen.stderr, timeout=60,
                           what=f"listen to reconnect\n{listen.describe()}")  # fmt: skip
                assert listen.proc.wait(120) == 0, listen.describe()
            finally:
                second.close()
    finally:
        first.kill()
    stderr = listen.stderr
    assert stderr.index("lost the gateway") < stderr.index("reconnected"), stderr
    assert "Traceback" not in stderr, stderr
    # The words of the first sentence sent to the lost gateway went with it; the rest, said
    # while disconnected and after, came through the new session.
    finals = [line for line in listen.stdout.splitlines() if line.strip()]
    assert finals and wer([TWO_SENTENCES[1]], [finals[-1]]) <= 0.2, listen.describe()


# --------------------------------------------------------------------------- PulseAudio


@dataclass
class Pulse:
    env: dict[str, str]
    sink: str


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[Pulse]:
    """A sound server of the test's own: runtime dir, socket and cookie under tmp_path, a null
    sink as the default output (as root pulseaudio warns, and runs)."""
    binary = require_tool("pulseaudio")
    pactl = require_tool("pactl")
    runtime = tmp_path / "pulse-runtime"
    home = tmp_path / "pulse-home"
    runtime.mkdir()
    home.mkdir()
    sink = "nova_test"
    env = client_env(
        XDG_RUNTIME_DIR=str(tmp_path),
        PULSE_RUNTIME_PATH=str(runtime),
        PULSE_SERVER=f"unix:{runtime}/native",
        HOME=str(home),
    )
    log = (tmp_path / "pulseaudio.log").open("wb")
    server = subprocess.Popen(
        [
            binary, "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "-n",
            "--load=module-native-protocol-unix", f"--load=module-null-sink sink_name={sink}",
            "--log-target=stderr",
        ],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )  # fmt: skip
    try:

        def ready() -> bool:
            assert server.poll() is None, (tmp_path / "pulseaudio.log").read_text()
            return subprocess.run([pactl, "info"], env=env, capture_output=True).returncode == 0

        wait_until(ready, timeout=30, what="pulseaudio to answer")
        subprocess.run([pactl, "set-default-sink", sink], env=env, check=True, timeout=10)
        yield Pulse(env, sink)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()


def test_list_devices_and_a_missing_device(pulse: Pulse) -> None:
    listed = run_nova("listen", "--list-devices", env=pulse.env, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert "system audio: Null Output" in listed.stdout, listed.stdout
    missing = run_nova("listen", "--device", "99", env=pulse.env, timeout=30)
    assert missing.returncode == 3, missing
    assert "no single microphone matches --device 99" in missing.stderr


@pytest.mark.desktop
def test_system_audio_from_a_null_sink(
    up: RunningUp, pulse: Pulse, cli_dir: Path, tmp_path: Path
) -> None:
    """What the machine plays comes out as subtitles: two LibriVox recordings played into the
    default sink with paplay, captured from its monitor; Ctrl-C then ends it with status 0."""
    recordings = {p.stem[-4:]: (p, text) for p, text in librivox()}
    chosen = [recordings["0880"], recordings["0930"]]
    clips = []
    for path, _ in chosen:
        audio, rate, _ = read_wav(path)
        assert rate == 16000
        clips.append(audio)
    wav = write_wav(tmp_path / "played.wav", with_pauses(clips), 16000)
    said = [text for _, text in chosen]

    with nova_process(
        ["listen", "--system-audio", "--url", up.ws_url, "--language", "en"],
        env=pulse.env, log_dir=tmp_path, name="listen-system-audio",
    ) as listen:  # fmt: skip
        pactl = require_tool("pactl")

        def recording() -> bool:
            assert listen.proc.poll() is None, listen.describe()
            outputs = subprocess.run(
                [pactl, "list", "short", "source-outputs"], env=pulse.env,
                capture_output=True, text=True, timeout=10,
            ).stdout  # fmt: skip
            return bool(outputs.strip())

        # Played before the capture is on, the first words would be lost.
        wait_until(recording, timeout=60, what="nova listen to record the sink's monitor")
        subprocess.run([require_tool("paplay"), "-d", pulse.sink, str(wav)], env=pulse.env,
                       check=True, timeout=60)  # fmt: skip

        def heard() -> list[str] | None:
            assert listen.proc.poll() is None, listen.describe()
            lines = [line for line in listen.stdout.splitlines() if line.strip()]
            return lines if wer([" ".join(said)], [" ".join(lines)]) <= 0.25 else None

        try:
            wait_until(heard, timeout=60, what="the played speech as finals")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{listen.describe()}") from None
        code = listen.interrupt(timeout=30)  # Ctrl-C, as a terminal sends it
        assert code == 0, listen.describe()
    score = wer([" ".join(said)], [" ".join(listen.stdout.split())])
    print(f"system audio WER {score:.3f}: {listen.stdout!r}")
    assert score <= 0.25, listen.describe()
    assert "Traceback" not in listen.stderr, listen.describe()


# --------------------------------------------------------------------------- the overlay


@pytest.fixture
def xvfb() -> Iterator[str]:
    """A real X server of the test's own (tests/desktop.py)."""
    with x_server() as display:
        yield display


def x(tool: str, *args: str, display: str) -> str:
    env = {**os.environ, "DISPLAY": display}
    return subprocess.run(
        [require_tool(tool), *args], env=env, capture_output=True, text=True, check=True,
        timeout=20,
    ).stdout  # fmt: skip


def stacking(display: str) -> list[tuple[str, str]]:
    """The root's mapped children, topmost first (xwininfo lists them top to bottom), as
    (id, name)."""
    shown = []
    for match in re.finditer(
        r"^\s+(0x[0-9a-f]+) (?:\"([^\"]*)\"|\(has no name\))", x("xwininfo", "-root", "-children",
        display=display), re.M,
    ):  # fmt: skip
        if "IsViewable" in x("xwininfo", "-id", match.group(1), display=display):
            shown.append((match.group(1), match.group(2) or ""))
    return shown


def geometry(window: str, display: str) -> tuple[int, int, int, int]:
    info = x("xwininfo", "-id", window, display=display)

    def field(name: str) -> int:
        found = re.search(rf"{name}:\s+(-?\d+)", info)
        assert found, info
        return int(found.group(1))

    return (field("Absolute upper-left X"), field("Absolute upper-left Y"), field("Width"),
            field("Height"))  # fmt: skip


def ocr(image: Image.Image, path: Path) -> str:
    """tesseract's reading of light text on a dark window: inverted and enlarged first."""
    prepared = ImageOps.invert(image.convert("L")).resize((image.width * 2, image.height * 2))
    prepared.save(path)
    return subprocess.run(
        [require_tool("tesseract"), str(path), "stdout", "-l", "eng+spa", "--psm", "6"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip


@pytest.mark.desktop
def test_overlay_window_under_xvfb(
    up: RunningUp, xvfb: str, two_sentences_wav: Path, tmp_path: Path
) -> None:
    """A frameless always-on-top window with the captions and their translation: above a
    window mapped after it, readable by OCR in both languages, draggable, and Escape ends
    `nova listen` with status 0 (the window stays up after the audio until then)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = client_env(DISPLAY=xvfb)
    with nova_process(
        ["listen", "--overlay", "--input", str(two_sentences_wav), "--url", up.ws_url,
         "--language", "en", "--translate-to", "es"],
        env=env, log_dir=tmp_path, name="listen-overlay",
    ) as listen:  # fmt: skip

        def mapped() -> str | None:
            assert listen.proc.poll() is None, listen.describe()
            return next((w for w, name in stacking(xvfb) if name == WINDOW_TITLE), None)

        window = wait_until(mapped, timeout=60, what="the overlay window")
        # Another window mapped later starts on top of it; the overlay must come back above.
        xterm = subprocess.Popen(
            [require_tool("xterm"), "-geometry", "200x60+0+0"], env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until(
                lambda: any(name == "xterm" for _, name in stacking(xvfb)),
                timeout=30, what="xterm to map",
            )  # fmt: skip

            def finished() -> bool:
                assert listen.proc.poll() is None, listen.describe()
                found = blocks(listen.stdout.splitlines())
                # The last sentence is in, and every final has its Spanish.
                return "office" in listen.stdout and listen.stdout.count("  [es] ") == len(found)

            wait_until(finished, timeout=90, what="both finals and their Spanish on stdout")
            assert_two_sentences_with_spanish(blocks(listen.stdout.splitlines()), listen.stdout)
            wait_until(lambda: stacking(xvfb)[0][0] == window, timeout=10,
                       what=f"the overlay on top: {stacking(xvfb)}")  # fmt: skip
            assert "Override Redirect State: yes" in x("xwininfo", "-id", window, display=xvfb)
            props = x("xprop", "-id", window, display=xvfb)
            assert "_NET_WM_STATE_ABOVE" in props and "_NET_WM_WINDOW_OPACITY" in props, props

            left, top, width, height = geometry(window, xvfb)
            expected = {"report", "office", "informe", "oficina"}
            seen = ""
            for _ in range(5):  # Tk redraws within a few pumps; allow for a slow one
                screen = ImageGrab.grab(xdisplay=xvfb)
                shot = screen.crop((left, top, left + width, top + height))
                seen = normalise(ocr(shot, tmp_path / "ocr.png"))
                if expected <= set(seen.split()):
                    break
                time.sleep(1)
            screen.save(ARTIFACTS / "listen-overlay-screen.png")
            shot.save(ARTIFACTS / "listen-overlay.png")
            assert expected <= set(seen.split()), f"OCR read {seen!r}"
            # Its pixels: mostly the dark background, with light text on it.
            pixels = np.asarray(shot.convert("L"))
            assert (pixels < 40).mean() > 0.6 and (pixels > 200).any()

            assert listen.proc.poll() is None, "the window should stay up after the audio"
            cx, cy = left + width // 2, top + height // 2
            x("xdotool", "mousemove", "--sync", str(cx), str(cy), "mousedown", "1",
              "mousemove", "--sync", str(cx - 60), str(cy - 150),
              "mousemove", "--sync", str(cx - 100), str(cy - 300), "mouseup", "1",
              display=xvfb)  # fmt: skip
            wait_until(lambda: geometry(window, xvfb)[:2] == (left - 100, top - 300),
                       timeout=10, what=f"the dragged window to move: {geometry(window, xvfb)}")  # fmt: skip
            # The press above gave it the keyboard: + makes the text (and the window) larger.
            x("xdotool", "key", "plus", display=xvfb)
            wait_until(lambda: geometry(window, xvfb)[3] > height, timeout=10,
                       what=f"larger text: {geometry(window, xvfb)}")  # fmt: skip
            x("xdotool", "key", "Escape", display=xvfb)
            code = listen.proc.wait(30)
            assert code == 0, listen.describe()
        finally:
            xterm.terminate()
            xterm.wait(10)
    assert "Traceback" not in listen.stderr, listen.describe()
