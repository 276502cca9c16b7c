"""A local Ray cluster of one-CPU nodes and a ``chroma run`` server, started for a benchmark or test, always stopped.

Each Ray node is its own ``ray start --block`` process (a raylet, its object store and
workers; the first also the GCS): the processes a real cluster runs, on one machine.
Stopping terminates exactly those processes (``ray start --block`` shuts its node down
on SIGTERM, and its children die with it), never ``ray stop``, which would stop every
Ray process of the user. Ray binds its GCS and raylets to this machine's address (it
will not run a cluster on loopback alone), so the cluster requires a token (Ray's token
authentication, a random token per process); the ports are picked free.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from rag.errors import HopragError

BIN = Path(sys.executable).parent
# Ray's token authentication: the same token for every cluster this process starts. A driver needs it in its
# environment before it imports ray (Ray reads its configuration once).
AUTH_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started it dies (no orphaned cluster after a crash)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _stop(proc: subprocess.Popen, timeout_s: float = 30) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _start(cmd: list[str], log: Path, env: Mapping[str, str], ready: str, timeout_s: float) -> subprocess.Popen:
    """Run ``cmd`` until its log says ``ready``; raise with the log's tail if it exits or times out."""
    out = open(log, "wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(env), preexec_fn=_die_with_parent)
    out.close()
    deadline = time.monotonic() + timeout_s
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            tail = log.read_text(errors="replace")[-1500:]
            raise HopragError(f"{cmd[0]} {cmd[1]} did not start (exit code {proc.poll()}): {tail}")
        time.sleep(0.2)
    return proc


@dataclass(frozen=True)
class Cluster:
    address: str  # the GCS address, HOST:PORT
    temp_dir: Path  # Ray's session files (sockets, logs); every raylet's command line names it
    env: dict[str, str]  # what a driver's environment needs to connect (the token)


@contextmanager
def ray_cluster(
    nodes: int, root: Path, *, cpus_per_node: int = 1, env: Mapping[str, str] | None = None, timeout_s: float = 120
) -> Iterator[Cluster]:
    """Start ``nodes`` Ray nodes of ``cpus_per_node`` CPUs (logs under ``root``); stop them afterwards.

    ``env`` is added to the nodes' environment (their workers inherit it).
    """
    root.mkdir(parents=True, exist_ok=True)
    # Ray's session dir (sockets, logs, spilled objects): short, a socket path has at most 107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="hoprag-ray-", dir="/tmp"))
    node_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **AUTH_ENV, **(env or {})}
    ray = str(BIN / "ray")
    port = free_port()
    common = [
        "--block", "--num-cpus", str(cpus_per_node), "--num-gpus", "0", "--disable-usage-stats",
        "--object-store-memory", str(256 * 2**20),
    ]
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, temp, ignore_errors=True)
        head = _start(
            [ray, "start", "--head", "--port", str(port), "--temp-dir", str(temp), "--include-dashboard", "false",
             "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()), *common],
            root / "node-0.log", node_env, "Ray runtime started", timeout_s,
        )
        stack.callback(_stop, head)
        address = _address(root / "node-0.log", port)
        for n in range(1, nodes):
            proc = _start(
                [ray, "start", "--address", address, "--dashboard-agent-listen-port", str(free_port()), *common],
                root / f"node-{n}.log", node_env, "Ray runtime started", timeout_s,
            )
            stack.callback(_stop, proc)
        _wait_nodes(address, nodes, timeout_s)
        yield Cluster(address, temp, dict(AUTH_ENV))


def _address(log: Path, port: int) -> str:
    """The GCS address the head printed (Ray replaces loopback with this machine's address)."""
    for line in log.read_text(errors="replace").splitlines():
        if "ray start --address=" in line:
            return line.split("--address=", 1)[1].split()[0].strip("'\"")
    return f"127.0.0.1:{port}"


def _wait_nodes(address: str, nodes: int, timeout_s: float) -> None:
    """Until ``ray status`` counts ``nodes`` active nodes."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = subprocess.run([str(BIN / "ray"), "status", "--address", address], capture_output=True, text=True,
                             env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **AUTH_ENV}).stdout
        active = out.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in out else ""
        if sum(1 for line in active.splitlines() if "node_" in line) >= nodes:
            return
        if time.monotonic() > deadline:
            raise HopragError(f"the local Ray cluster at {address} has not {nodes} nodes after {timeout_s:g} s: {out}")
        time.sleep(0.5)


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def chroma_server(root: Path, timeout_s: float = 90) -> Iterator[Server]:
    """A ``chroma run`` server on a free loopback port with its database under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "chroma.log", "wb")
    proc = subprocess.Popen(
        [str(BIN / "chroma"), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(root / "db")],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        preexec_fn=_die_with_parent,
    )
    log.close()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (root / "chroma.log").read_text(errors="replace")[-1500:]
                raise HopragError(f"chroma run did not start (exit code {proc.poll()}): {tail}")
            time.sleep(0.3)
        yield Server(url, proc.pid)
    finally:
        _stop(proc)
