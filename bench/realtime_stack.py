"""The stack bench/realtime.py measures: a real `nova up` as a user starts it (a subprocess),
against a nats-server of the bench's own on a free port, plus extra `nova stt` workers sharing
its consumer where more than one is asked for. `nova up` runs one STT worker; further ones are
separate processes because that is how Nova scales (README "Scaling out").

Settings reach the processes the way they reach any deployment: as ``NOVA_*`` environment
variables (``--stt-threads`` is ``NOVA_STT_CPU_THREADS``; ``--env`` passes any other).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from nova_common.nats_server import EmbeddedNatsServer, free_port
from tests.processes import NovaProcess, nova_env, nova_process, wait_healthy


@dataclass(frozen=True)
class RunningStack:
    port: int
    env: dict[str, str]
    processes: tuple[NovaProcess, ...]

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        """Resident memory of the stack's processes and their children, now (Linux /proc;
        0 elsewhere). The bench's own nats-server is not counted: `nova up` embeds one of its
        own in production, but here the bench owns it."""
        return sum(_rss(pid) for pid in _tree({p.proc.pid for p in self.processes}))


def _tree(roots: set[int]) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces: the parent pid is the 2nd field after ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found = set(roots)
    while True:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        if not more:
            return found
        found |= more


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def stack_env(
    data_dir: Path, nats_url: str, *, stt_threads: int | None, extra: Mapping[str, str]
) -> dict[str, str]:
    env = nova_env(
        data_dir, NOVA_NATS_URL=nats_url, NOVA_NATS_SUBJECT_PREFIX=f"b{uuid.uuid4().hex[:10]}"
    )
    env["NOVA_LOG_LEVEL"] = "warning"
    if stt_threads is not None:
        env["NOVA_STT_CPU_THREADS"] = str(stt_threads)
    env.update(extra)
    return env


@contextlib.contextmanager
def nova_stack(
    data_dir: Path,
    log_dir: Path,
    *,
    stt_workers: int = 1,
    stt_threads: int | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[RunningStack]:
    """`nova up` (gateway, one STT worker, one MT worker) and ``stt_workers - 1`` more
    `nova stt`, healthy with every STT worker heard, stopped with Ctrl-C (then killed)."""
    with contextlib.ExitStack() as stack:
        nats = stack.enter_context(EmbeddedNatsServer(data_dir / "nats", port=free_port()))
        env = stack_env(data_dir, nats.url, stt_threads=stt_threads, extra=extra_env or {})
        port = free_port()
        up = stack.enter_context(
            nova_process(["up", "--port", str(port)], env=env, log_dir=log_dir, name="up")
        )
        up.wait_for_stdout(r"Nova Voice is up")
        extra = [
            stack.enter_context(nova_process(["stt"], env=env, log_dir=log_dir, name=f"stt{i}"))
            for i in range(1, stt_workers)
        ]
        wait_healthy(up, f"http://127.0.0.1:{port}", workers=stt_workers)
        yield RunningStack(port, env, (up, *extra))
