"""The `nova` console script, run as subprocesses the way a user runs it.

`nova up` (against the session's nats-server, and with its own embedded one), `nova transcribe`
in every output format and its failure modes, a scaled-out gateway with two `nova stt` workers,
and the small commands (`models`, `init`, `--help`). Every process is stopped in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import av
import nats
import numpy as np
import pytest

from nova_client.decode import pcm_chunks, probe
from nova_client.streaming import GatewayError, stream_audio
from nova_common.messages import StartMessage, Transcript, result_decoder
from nova_common.nats_server import EmbeddedNatsServer, free_port
from nova_common.subjects import Subjects
from tests.speech import read_wav, resample, silence, speak, wer, write_wav

pytestmark = pytest.mark.slow

NOVA = Path(sys.executable).parent / "nova"
T = TypeVar("T")

# Generous: two cores shared with other test runs; nothing here asserts on speed.
START_TIMEOUT = 240.0
RUN_TIMEOUT = 300.0
STOP_TIMEOUT = 30.0

TWO_SENTENCES = [
    "Good morning, everyone, and welcome to the meeting.",
    "Please send the report to my office.",
]
EIGHT_SENTENCES = [
    "The sun is shining today.",
    "Please close the door.",
    "I like green apples.",
    "The train is late again.",
    "We will meet at noon.",
    "My brother plays the piano.",
    "It is cold outside.",
    "Thank you for your help.",
]


# --------------------------------------------------------------------------- helpers


def nova_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any NOVA_* settings of its own, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVA_")}
    env["NOVA_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_nova(
    *args: str | Path, env: dict[str, str], timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NOVA), *map(str, args)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def wait_until(
    condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.25
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class NovaProcess:
    """A long-running `nova …` child with its output in files (no pipe can fill up and block it).

    It runs in its own session, so a last-resort kill of its process group also takes the
    nats-server that `nova up` may have started.
    """

    def __init__(self, args: list[str], *, env: dict[str, str], log_dir: Path, name: str) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(NOVA), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        return (
            f"--- {self.name} (exit {self.proc.poll()}) stdout:\n{self.stdout[-3000:]}\n"
            f"--- {self.name} stderr:\n{self.stderr[-6000:]}"
        )

    def wait_for_stdout(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            match = re.search(pattern, self.stdout)
            if match is None and self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited before printing {pattern!r}\n{self.describe()}"
                )
            return match

        try:
            return wait_until(found, timeout=timeout, what=f"{self.name} to print {pattern!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def interrupt(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Ctrl-C as a terminal sends it: to the whole process group, children included.
        The exit status, or None if it did not exit within ``timeout``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Last resort: SIGKILL the process group (the child and anything it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None and self.interrupt() is None:
            self.kill()


@contextlib.contextmanager
def nova_process(
    args: list[str], *, env: dict[str, str], log_dir: Path, name: str
) -> Iterator[NovaProcess]:
    process = NovaProcess(args, env=env, log_dir=log_dir, name=name)
    try:
        yield process
    finally:
        process.close()


def http_get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return 0, {}


def wait_healthy(process: NovaProcess, http_url: str, *, workers: int = 1) -> dict[str, Any]:
    """Poll /health/full until it answers 200 with at least ``workers`` STT workers."""

    def ready() -> dict[str, Any] | None:
        if process.proc.poll() is not None:
            raise AssertionError(f"{process.name} exited\n{process.describe()}")
        status, report = http_get(f"{http_url}/health/full")
        if status == 200 and len(report.get("stt_workers", [])) >= workers:
            return report
        return None

    try:
        return wait_until(
            ready, timeout=START_TIMEOUT, what=f"{http_url}/health/full", interval=0.5
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; last answer {http_get(http_url + '/health/full')}\n{process.describe()}"
        ) from None


def in_fresh_loop(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on its own loop in its own thread, apart from pytest-asyncio's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, fn()).result(timeout=120)


def with_pauses(parts: list[np.ndarray], pause: float = 1.2) -> np.ndarray:
    pieces: list[np.ndarray] = [silence(0.5)]
    for part in parts:
        pieces += [part, silence(pause)]
    return np.concatenate(pieces)


def unused_port() -> int:
    """A port nothing listens on (bound then released; good enough for a refused connection)."""
    return free_port()


TIME_SRT = r"\d{2}:\d{2}:\d{2},\d{3}"
TIME_VTT = r"\d{2}:\d{2}:\d{2}\.\d{3}"


def seconds(stamp: str) -> float:
    h, m, rest = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(rest)


def parse_cues(body: str, time_re: str) -> list[tuple[str, float, float, str]]:
    """(number, start, end, text) per cue; asserts the layout of each block."""
    cues = []
    for block in body.strip().split("\n\n"):
        lines = block.split("\n")
        assert len(lines) >= 3, block
        number, span, text = lines[0], lines[1], "\n".join(lines[2:])
        match = re.fullmatch(rf"({time_re}) --> ({time_re})", span)
        assert match, span
        cues.append((number, seconds(match.group(1)), seconds(match.group(2)), text))
    return cues


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nova-cli")


@pytest.fixture(scope="module")
def cli_data_dir(cli_dir: Path) -> Path:
    """One NOVA_DATA_DIR for the module: the base model is joined into it once."""
    path = cli_dir / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def two_sentences_wav(cli_dir: Path) -> Path:
    return write_wav(cli_dir / "two.wav", with_pauses([speak(s) for s in TWO_SENTENCES]), 16000)


@dataclass
class RunningUp:
    process: NovaProcess
    port: int
    prefix: str

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def up(nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path) -> Iterator[RunningUp]:
    """`nova up --port P` against the session's nats-server (so it leaves port 4222 alone).

    Module-scoped, so it cannot take the per-test ``prefix`` fixture: it makes its own.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = nova_env(cli_data_dir, NOVA_NATS_URL=nats_server.url, NOVA_NATS_SUBJECT_PREFIX=prefix)
    with nova_process(
        ["up", "--port", str(port)], env=env, log_dir=cli_dir / "logs", name="up"
    ) as process:
        process.wait_for_stdout(r"Nova Voice is up: ws://127\.0\.0\.1:(\d+)/ws")
        running = RunningUp(process, port, prefix)
        assert f"ws://127.0.0.1:{port}/ws" in process.stdout
        assert f"NATS: {nats_server.url}" in process.stdout
        wait_healthy(process, running.http_url)
        yield running


def transcribe(
    up: RunningUp, *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_nova("transcribe", *args, "--url", up.ws_url, env=env or nova_env(Path(os.devnull)))


# --------------------------------------------------------------------------- nova up + transcribe


def test_transcribe_text(up: RunningUp, two_sentences_wav: Path) -> None:
    result = transcribe(up, two_sentences_wav)  # --format text is the default
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert wer(TWO_SENTENCES, lines) <= 0.25, lines


def test_transcribe_realtime_is_paced_like_a_microphone(
    up: RunningUp, two_sentences_wav: Path
) -> None:
    audio, rate, _ = read_wav(two_sentences_wav)
    duration = len(audio) / rate
    began = time.monotonic()
    result = transcribe(up, two_sentences_wav, "--realtime")
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2, result.stdout
    # A paced stream cannot end before the audio has played (a lower bound: noise only adds).
    assert elapsed >= duration * 0.95, (elapsed, duration)


def test_transcribe_jsonl(up: RunningUp, two_sentences_wav: Path) -> None:
    result = transcribe(up, two_sentences_wav, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["seq"] for r in records] == [0, 1], records
    for record in records:
        assert {"seq", "start", "end", "text", "language"} <= record.keys()
        assert 0 <= record["start"] < record["end"], record
        assert record["language"] == "en", record
        assert record["file"] == str(two_sentences_wav)
    assert records[0]["end"] <= records[1]["start"], records
    assert wer(TWO_SENTENCES, [r["text"] for r in records]) <= 0.25, records


def test_transcribe_srt(up: RunningUp, two_sentences_wav: Path) -> None:
    result = transcribe(up, two_sentences_wav, "--format", "srt")
    assert result.returncode == 0, result.stderr
    assert re.match(rf"1\n00:00:00,\d{{3}} --> {TIME_SRT}\n", result.stdout), result.stdout
    cues = parse_cues(result.stdout, TIME_SRT)
    assert [c[0] for c in cues] == ["1", "2"], result.stdout
    assert all(start < end for _, start, end, _ in cues), cues
    assert cues[0][2] <= cues[1][1], cues
    assert wer(TWO_SENTENCES, [c[3] for c in cues]) <= 0.25, cues


def test_transcribe_vtt(up: RunningUp, two_sentences_wav: Path) -> None:
    result = transcribe(up, two_sentences_wav, "--format", "vtt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("WEBVTT\n\n"), result.stdout
    cues = parse_cues(result.stdout.removeprefix("WEBVTT\n\n"), TIME_VTT)
    assert [c[0] for c in cues] == ["1", "2"], result.stdout
    assert all(start < end for _, start, end, _ in cues), cues
    assert wer(TWO_SENTENCES, [c[3] for c in cues]) <= 0.25, cues


def test_transcribe_several_files_into_output_dir(
    up: RunningUp, two_sentences_wav: Path, tmp_path: Path
) -> None:
    other = tmp_path / "second.wav"
    other.write_bytes(two_sentences_wav.read_bytes())
    refused = transcribe(up, two_sentences_wav, other, "--format", "srt")
    assert refused.returncode == 2 and "--output-dir" in refused.stderr, refused

    out_dir = tmp_path / "subs"
    result = transcribe(up, two_sentences_wav, other, "--format", "srt", "--output-dir", out_dir)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["second.srt", "two.srt"]
    for path in out_dir.iterdir():
        assert [c[0] for c in parse_cues(path.read_text(), TIME_SRT)] == ["1", "2"]


def test_transcribe_missing_file(up: RunningUp, tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    result = transcribe(up, missing)
    assert result.returncode != 0
    assert "no such file" in result.stderr and str(missing) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""


def test_transcribe_missing_file_does_not_stop_the_others(
    up: RunningUp, two_sentences_wav: Path, tmp_path: Path
) -> None:
    result = transcribe(up, tmp_path / "nope.wav", two_sentences_wav)
    assert result.returncode == 1
    assert "no such file" in result.stderr, result.stderr
    assert len(result.stdout.splitlines()) == 2, result.stdout


def test_transcribe_a_4khz_file(up: RunningUp, two_sentences_wav: Path, tmp_path: Path) -> None:
    """The gateway takes 8000–192000 Hz; the client resamples a slower file to 16 kHz itself."""
    audio, rate, _ = read_wav(two_sentences_wav)
    slow = write_wav(tmp_path / "slow.wav", resample(audio, rate, 4000), 4000)
    result = transcribe(up, slow)
    assert result.returncode == 0, result.stderr
    assert "sample_rate" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert wer(TWO_SENTENCES, lines) <= 0.5, lines


def test_transcribe_refused_session_does_not_stop_the_others(
    up: RunningUp, two_sentences_wav: Path, tmp_path: Path
) -> None:
    """A session the gateway refuses fails its file; the next file still gets its own try."""
    other = tmp_path / "second.wav"
    other.write_bytes(two_sentences_wav.read_bytes())
    result = transcribe(up, two_sentences_wav, other, "--language", "xx")
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    refusals = [line for line in result.stderr.splitlines() if "refused the session" in line]
    assert len(refusals) == 2, result.stderr
    assert str(two_sentences_wav) in refusals[0] and str(other) in refusals[1], refusals
    assert all("unsupported_language" in line for line in refusals), refusals
    assert result.stdout == ""


def test_transcribe_not_audio(up: RunningUp, tmp_path: Path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("this is not audio\n" * 20)
    result = transcribe(up, text_file)
    assert result.returncode != 0
    assert str(text_file) in result.stderr and "cannot read audio" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_transcribe_unreachable_gateway(two_sentences_wav: Path) -> None:
    url = f"ws://127.0.0.1:{unused_port()}/ws"
    result = run_nova(
        "transcribe", two_sentences_wav, "--url", url, env=nova_env(Path(os.devnull)), timeout=120
    )
    assert result.returncode != 0
    assert "cannot reach" in result.stderr and url in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def write_adts(source: Path, target: Path) -> Path:
    """AAC in ADTS: FFmpeg only estimates its duration (from the bitrate), and too short."""
    with av.open(str(source)) as inp, av.open(str(target), "w", format="adts") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=16000)
        for frame in inp.decode(audio=0):
            for piece in resampler.resample(frame):
                piece.pts = None
                out.mux(stream.encode(piece))
        out.mux(stream.encode(None))
    return target


def test_transcribe_progress_bar_on_a_terminal(
    up: RunningUp, two_sentences_wav: Path, tmp_path: Path
) -> None:
    """With stderr on a terminal the progress bar is drawn; a file whose container under-states
    its duration (ADTS AAC) must not break it."""
    for path in (two_sentences_wav, write_adts(two_sentences_wav, tmp_path / "two.aac")):
        master, slave = pty.openpty()
        # A fresh pty is 0 columns wide, and tqdm draws nothing into that.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        chunks: list[bytes] = []

        def drain(fd: int = master, sink: list[bytes] = chunks) -> None:
            with contextlib.suppress(OSError):  # EIO once the child closes the terminal
                while data := os.read(fd, 4096):
                    sink.append(data)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            proc = subprocess.Popen(
                [str(NOVA), "transcribe", str(path), "--url", up.ws_url],
                env=nova_env(Path(os.devnull)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=slave,
                start_new_session=True,
            )
            os.close(slave)
            try:
                stdout, _ = proc.communicate(timeout=RUN_TIMEOUT)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            reader.join(10)
        finally:
            os.close(master)
        terminal = b"".join(chunks).decode("utf-8", "replace")
        assert proc.returncode == 0, (path, terminal)
        assert "Traceback" not in terminal, terminal
        assert "audio sent" in terminal, terminal
        lines = stdout.decode().splitlines()
        assert len(lines) == 2, (path, stdout, terminal)


def test_client_callback_failure_ends_the_session(up: RunningUp, two_sentences_wav: Path) -> None:
    """A raising callback in the sender must end `stream_audio`, not leave it waiting forever."""

    def on_sent(seconds: float) -> None:
        if seconds > 1.0:
            raise RuntimeError("progress display broke")

    async def go() -> str:
        info = probe(two_sentences_wav)
        start = StartMessage(sample_rate=info.sample_rate, channels=info.channels)
        chunks = pcm_chunks(two_sentences_wav, info)
        with pytest.raises(GatewayError) as caught:
            await asyncio.wait_for(stream_audio(up.ws_url, start, chunks, on_sent=on_sent), 60)
        return str(caught.value)

    message = in_fresh_loop(go)
    assert "progress display broke" in message, message


# --------------------------------------------------------------------------- embedded NATS


def test_up_with_embedded_nats_then_ctrl_c(
    cli_dir: Path, cli_data_dir: Path, prefix: str, two_sentences_wav: Path
) -> None:
    """Without NOVA_NATS_URL `nova up` starts its own nats-server, data under NOVA_DATA_DIR/nats.

    Port 4222 is held here for the duration, so the server takes a free port instead: the test
    never collides with a real nats-server and never leaves one that others might connect to.
    """
    blocker = socket.socket()
    with contextlib.suppress(OSError):  # already taken by someone else: just as good
        blocker.bind(("127.0.0.1", 4222))
        blocker.listen()
    port = free_port()
    env = nova_env(cli_data_dir, NOVA_NATS_SUBJECT_PREFIX=prefix)
    try:
        with nova_process(
            ["up", "--port", str(port)], env=env, log_dir=cli_dir / "logs", name="up-embedded"
        ) as process:
            process.wait_for_stdout(r"Nova Voice is up")
            match = process.wait_for_stdout(r"NATS: nats://127\.0\.0\.1:(\d+)")
            nats_port = int(match.group(1))
            assert nats_port != 4222
            assert (cli_data_dir / "nats" / "jetstream").is_dir()
            assert (cli_data_dir / "nats" / "nats-server.log").is_file()
            http_url = f"http://127.0.0.1:{port}"
            wait_healthy(process, http_url)

            result = run_nova(
                "transcribe", two_sentences_wav, "--url", f"ws://127.0.0.1:{port}/ws", env=env
            )
            assert result.returncode == 0, result.stderr
            assert len(result.stdout.splitlines()) == 2, result.stdout

            code = process.interrupt(timeout=STOP_TIMEOUT)
            assert code == 0, f"exit {code}\n{process.describe()}"
            assert "stopped cleanly" in process.stderr, process.describe()
            assert "Traceback" not in process.stderr, process.describe()
            # The embedded server must outlive the Ctrl-C until the services have drained.
            assert "nats disconnected" not in process.stderr, process.describe()
            assert "unexpected EOF" not in process.stderr, process.describe()

            def nats_gone() -> bool:
                with socket.socket() as probe:
                    return probe.connect_ex(("127.0.0.1", nats_port)) != 0

            wait_until(nats_gone, timeout=STOP_TIMEOUT, what="the embedded nats-server to stop")
    finally:
        blocker.close()


# --------------------------------------------------------------------------- scale-out


async def final_transcripts(url: str, stream: str) -> list[Transcript]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            result = result_decoder.decode(msg.data)
            if isinstance(result, Transcript) and result.kind == "final":
                found.append(result)
        return found
    finally:
        await nc.close()


def test_gateway_and_two_stt_workers_share_the_work(
    nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path, prefix: str, tmp_path: Path
) -> None:
    env = nova_env(cli_data_dir, NOVA_NATS_URL=nats_server.url, NOVA_NATS_SUBJECT_PREFIX=prefix)
    logs = cli_dir / "logs" / prefix
    wav = write_wav(tmp_path / "eight.wav", with_pauses([speak(s) for s in EIGHT_SENTENCES]), 16000)
    port = free_port()
    with contextlib.ExitStack() as stack:
        gateway = stack.enter_context(
            nova_process(["gateway", "--port", str(port)], env=env, log_dir=logs, name="gateway")
        )
        gateway.wait_for_stdout(rf"listening on ws://127\.0\.0\.1:{port}/ws")
        worker_ids = []
        # One after the other: the first joins the model into the data dir if no test has yet.
        for name in ("stt-1", "stt-2"):
            worker = stack.enter_context(
                nova_process(["stt", "--batch-size", "1"], env=env, log_dir=logs, name=name)
            )
            worker_ids.append(worker.wait_for_stdout(r"nova stt worker (\S+) ready").group(1))
        assert len(set(worker_ids)) == 2, worker_ids
        report = wait_healthy(gateway, f"http://127.0.0.1:{port}", workers=2)
        assert sorted(report["stt_workers"]) == sorted(worker_ids), report

        result = run_nova(
            "transcribe", wav, "--format", "jsonl", "--url", f"ws://127.0.0.1:{port}/ws", env=env
        )
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        seqs = [r["seq"] for r in records]
        assert sorted(seqs) == list(range(8)), records  # each exactly once
        assert (
            wer(EIGHT_SENTENCES, [r["text"] for r in sorted(records, key=lambda r: r["seq"])])
            <= 0.25
        ), records

        transcripts = in_fresh_loop(
            lambda: final_transcripts(nats_server.url, Subjects(prefix).results_stream)
        )
        assert sorted({t.seq for t in transcripts}) == list(range(8)), transcripts
        by_worker = {w: sorted(t.seq for t in transcripts if t.worker_id == w) for w in worker_ids}
        assert all(by_worker.values()), f"one worker did nothing: {by_worker}"
        assert {t.worker_id for t in transcripts} <= set(worker_ids), transcripts


# --------------------------------------------------------------------------- small commands


def test_models(cli_data_dir: Path) -> None:
    env = nova_env(cli_data_dir)
    result = run_nova("models", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in ("base", "tiny.en"):
        assert any(re.match(rf"\s*✓ {re.escape(name)}\s", line) for line in lines), result.stdout

    as_json = run_nova("models", "--json", env=env, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    rows = {row["name"]: row for row in json.loads(as_json.stdout)}
    assert rows["base"]["available"] is True and rows["tiny.en"]["available"] is True, rows


async def stream_and_consumer(url: str, subjects: Subjects) -> tuple[list[str], str | None]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        names = []
        for stream in (subjects.audio_stream, subjects.results_stream, subjects.text_stream):
            names.append((await js.stream_info(stream)).config.name or "")
        consumer = await js.consumer_info(subjects.audio_stream, "stt")
        return names, consumer.name
    finally:
        await nc.close()


def test_init_creates_the_streams(
    nats_server: EmbeddedNatsServer, cli_data_dir: Path, prefix: str
) -> None:
    env = nova_env(cli_data_dir, NOVA_NATS_URL=nats_server.url, NOVA_NATS_SUBJECT_PREFIX=prefix)
    result = run_nova("init", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert prefix in result.stdout
    subjects = Subjects(prefix)
    streams, consumer = in_fresh_loop(lambda: stream_and_consumer(nats_server.url, subjects))
    assert streams == [subjects.audio_stream, subjects.results_stream, subjects.text_stream]
    assert streams[0] == f"{prefix.upper()}_AUDIO"
    assert consumer == "stt"
    # Idempotent: a second run changes nothing and succeeds.
    again = run_nova("init", env=env, timeout=120)
    assert again.returncode == 0, again.stderr


def test_gateway_port_in_use_is_a_clear_error(
    nats_server: EmbeddedNatsServer, cli_data_dir: Path, prefix: str
) -> None:
    env = nova_env(cli_data_dir, NOVA_NATS_URL=nats_server.url, NOVA_NATS_SUBJECT_PREFIX=prefix)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_nova("gateway", "--port", str(port), env=env, timeout=120)
    assert result.returncode == 1, result
    assert "address already in use" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_help() -> None:
    env = nova_env(Path(os.devnull))
    top = run_nova("--help", env=env, timeout=120)
    assert top.returncode == 0, top.stderr
    for command in ("up", "gateway", "stt", "init", "models", "transcribe"):
        assert command in top.stdout
    result = run_nova("transcribe", "--help", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: nova transcribe")
    for option in ("--url", "--format", "--language", "--output-dir", "--realtime"):
        assert option in result.stdout


def test_init_without_nats_is_a_clear_error(cli_data_dir: Path) -> None:
    url = f"nats://127.0.0.1:{unused_port()}"
    # A short wait keeps the test quick; the default (10 s) is for services starting with NATS.
    env = nova_env(cli_data_dir, NOVA_NATS_URL=url, NOVA_NATS_CONNECT_WAIT_S="2")
    result = run_nova("init", env=env, timeout=120)
    assert result.returncode != 0
    assert "cannot connect to NATS" in result.stderr and url in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
