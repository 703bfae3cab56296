"""A JetStream cluster of nats-server processes on one machine, started from the shipped node
config (deploy/cluster/nats-server.conf): each node on free loopback ports with its own store
directory. For the tests: a node can be SIGKILLed and started again on the same ports and store.

The config takes everything that differs between nodes from the environment, so what runs
here is the file an operator runs on three hosts.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nova_common.nats_server import NatsServerError, find_nats_server, free_port

ROUTE_USER = "nova-route"


class ClusterError(NatsServerError):
    pass


def _own_session() -> None:
    """Runs in the child before exec: out of the terminal's process group (a Ctrl-C meant for
    the test run must not kill a node behind the test's back), and stopped by the kernel if
    its parent dies without stopping it."""
    os.setsid()
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class ClusterNode:
    name: str
    host: str
    client_port: int
    cluster_port: int
    http_port: int
    store_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    # Killed on purpose: its exit is no failure to report.
    down: bool = False

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"

    @property
    def log_file(self) -> Path:
        return self.store_dir.parent / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def monitor(self, path: str, timeout: float = 1.0) -> tuple[int, dict[str, Any]]:
        """GET ``path`` on the node's monitoring port: (HTTP status, JSON body); (0, {}) when
        nothing answers."""
        url = f"http://{self.host}:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:  # /healthz answers 503 while it catches up
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, {}
        except (OSError, ValueError):
            return 0, {}

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""


@dataclass
class NatsCluster:
    """``config_file``: the node config (deploy/cluster/nats-server.conf). ``environ``: what
    that config reads beyond the node's own addresses (the roles' public nkeys)."""

    config_file: Path
    base_dir: Path
    size: int = 3
    host: str = "127.0.0.1"
    environ: Mapping[str, str] = field(default_factory=dict)
    name_prefix: str = "nova-"
    nodes: list[ClusterNode] = field(default_factory=list)
    # The nodes present it to each other; fresh per cluster, never logged by nats-server.
    _route_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def __post_init__(self) -> None:
        if not self.config_file.is_file():
            raise ClusterError(f"no cluster node config at {self.config_file}")
        self.nodes = [
            ClusterNode(
                name=f"{self.name_prefix}{i}",
                host=self.host,
                client_port=free_port(self.host),
                cluster_port=free_port(self.host),
                http_port=free_port(self.host),
                store_dir=self.base_dir / f"{self.name_prefix}{i}" / "store",
            )
            for i in range(1, self.size + 1)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node, as ``nats.url`` takes them (comma-separated)."""
        return ",".join(self.urls)

    def node(self, name: str) -> ClusterNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in the cluster ({', '.join(n.name for n in self.nodes)})")

    def _node_environ(self, node: ClusterNode) -> dict[str, str]:
        routes = {
            f"NATS_ROUTE_{i}": (
                f"nats://{ROUTE_USER}:{self._route_password}@{other.host}:{other.cluster_port}"
            )
            for i, other in enumerate(self.nodes, 1)
        }
        return {
            **self.environ,
            **routes,
            "NATS_SERVER_NAME": node.name,
            "NATS_LISTEN": f"{node.host}:{node.client_port}",
            "NATS_HTTP": f"{node.host}:{node.http_port}",
            "NATS_CLUSTER_LISTEN": f"{node.host}:{node.cluster_port}",
            "NATS_STORE_DIR": str(node.store_dir),
            "NATS_CLUSTER_USER": ROUTE_USER,
            "NATS_CLUSTER_PASSWORD": self._route_password,
        }

    def _launch(self, node: ClusterNode) -> None:
        node.store_dir.mkdir(parents=True, exist_ok=True)
        command = [str(find_nats_server()), "-c", str(self.config_file), "-l", str(node.log_file)]
        # Only what the config reads: a node's behaviour must not depend on the caller's shell.
        with node.log_file.with_suffix(".stderr").open("wb") as stderr:
            node.proc = subprocess.Popen(
                command,
                env=self._node_environ(node),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=_own_session,
            )
        node.down = False

    def start(self, timeout: float = 30.0) -> NatsCluster:
        for node in self.nodes:
            self._launch(node)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def meta_leader(self) -> str | None:
        """The JetStream meta leader every running node agrees on, or None (no quorum yet, an
        election under way, a node that has not heard of it, or a leader no longer running)."""
        leaders = set()
        for node in self.nodes:
            if node.running:
                _, jsz = node.monitor("/jsz")
                leaders.add((jsz.get("meta_cluster") or {}).get("leader"))
        leader = leaders.pop() if len(leaders) == 1 else None
        # Just after a leader is killed the others still name it, until they miss its beats.
        if not leader or not any(n.name == leader and n.running for n in self.nodes):
            return None
        return str(leader)

    def _check_alive(self, node: ClusterNode) -> None:
        if node.proc is not None and not node.down and node.proc.poll() is not None:
            stderr = node.log_file.with_suffix(".stderr")
            said = stderr.read_text(errors="replace") if stderr.exists() else ""
            raise ClusterError(
                f"nats-server {node.name} exited with {node.proc.returncode}: "
                f"{said.strip() or node.log_tail()}"
            )

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Until the running nodes agree on a meta leader and each says it is healthy (its
        JetStream current with the cluster's); returns the leader's name."""
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes:
                self._check_alive(node)
            running = [node for node in self.nodes if node.running]
            leader = self.meta_leader()
            healthy = all(node.monitor("/healthz")[0] == 200 for node in running)
            if leader and healthy:
                return leader
            if time.monotonic() > deadline:
                said = {node.name: node.monitor("/healthz")[1] for node in running}
                raise ClusterError(
                    f"the cluster had no healthy JetStream meta leader within {timeout:.0f}s: "
                    f"{said}"
                )
            time.sleep(0.1)

    def kill(self, name: str) -> ClusterNode:
        """SIGKILL: no shutdown, no flush; what the node had not synced is lost with it."""
        node = self.node(name)
        if node.proc is None or not node.running:
            raise ClusterError(f"node {name} is not running")
        node.down = True
        node.proc.kill()
        node.proc.wait()
        return node

    def restart(self, name: str, timeout: float = 60.0) -> ClusterNode:
        """Start a stopped node again on its ports and store, and wait until it has caught up
        with the others (its /healthz is 200 only then)."""
        node = self.node(name)
        if node.running:
            raise ClusterError(f"node {name} is still running")
        self._launch(node)
        self.wait_ready(timeout)
        return node

    def stop(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            if node.running:
                assert node.proc is not None
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
