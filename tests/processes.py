"""The subprocess harness for the `nova` console script: run it the way a user does, wait on
its output and health, and always stop it. Plus the module-scoped fixtures the CLI test modules
share (import them explicitly: they are not in conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from nova_common.nats_server import free_port
from tests.speech import speak, with_pauses, write_wav

NOVA = Path(sys.executable).parent / "nova"
T = TypeVar("T")

# Generous: two cores shared with other test runs; nothing here asserts on speed.
START_TIMEOUT = 240.0
RUN_TIMEOUT = 300.0
STOP_TIMEOUT = 30.0

# Every test gets its own streams on the shared nats-server, and JetStream reserves an AUDIO
# stream's max_bytes up front: the production 1 GiB would exhaust the server's storage after a
# few dozen tests ("insufficient storage resources").
TEST_AUDIO_MAX_BYTES = 32 << 20
# The DLQ reserves its max_bytes the same way (1 GiB in production).
TEST_DLQ_MAX_BYTES = 8 << 20
# The stream settings every test's settings take (spread into their "streams" overrides).
TEST_STREAMS: dict[str, int] = {
    "audio_max_bytes": TEST_AUDIO_MAX_BYTES,
    "dlq_max_bytes": TEST_DLQ_MAX_BYTES,
}

TWO_SENTENCES = [
    "Good morning, everyone, and welcome to the meeting.",
    "Please send the report to my office.",
]


# --------------------------------------------------------------------------- helpers


def nova_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any NOVA_* settings of its own, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVA_")}
    env["NOVA_DATA_DIR"] = str(data_dir)
    env["NOVA_STREAMS_AUDIO_MAX_BYTES"] = str(TEST_AUDIO_MAX_BYTES)
    env["NOVA_STREAMS_DLQ_MAX_BYTES"] = str(TEST_DLQ_MAX_BYTES)
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
    condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.25
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


@dataclass
class RunningUp:
    """A `nova up` a test started, as a user starts it."""

    process: NovaProcess
    port: int
    prefix: str
    # Its NATS and subject prefix: a second gateway started with it shares its workers.
    env: dict[str, str]

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def nova_up(nats_url: str, data_dir: Path, log_dir: Path, name: str = "up") -> Iterator[RunningUp]:
    """`nova up --port P` against the test session's nats-server (so it leaves port 4222
    alone) with a subject prefix of its own, once it is healthy. Module fixtures use it, so
    it cannot take the per-test ``prefix`` fixture: it makes its own."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = nova_env(data_dir, NOVA_NATS_URL=nats_url, NOVA_NATS_SUBJECT_PREFIX=prefix)
    with nova_process(["up", "--port", str(port)], env=env, log_dir=log_dir, name=name) as process:
        process.wait_for_stdout(r"Nova Voice is up")
        running = RunningUp(process, port, prefix, env)
        wait_healthy(process, running.http_url)
        yield running


def in_fresh_loop(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on its own loop in its own thread, apart from pytest-asyncio's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, fn()).result(timeout=120)


def unused_port() -> int:
    """A port nothing listens on (bound then released; good enough for a refused connection)."""
    return free_port()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nova-cli")


@pytest.fixture(scope="module")
def cli_data_dir(cli_dir: Path) -> Path:
    """One NOVA_DATA_DIR per test module: the base model is joined into it once."""
    path = cli_dir / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def two_sentences_wav(cli_dir: Path) -> Path:
    return write_wav(cli_dir / "two.wav", with_pauses([speak(s) for s in TWO_SENTENCES]), 16000)
