"""Fixtures for the store tests: a real redis-server per test session, and one
``backend`` fixture parametrized over every store (aiocache's acceptance habit).

The server is Debian's ``redis-server`` binary, started on a free loopback port in a
temporary directory with persistence off. Without the binary the Redis tests are
skipped with the reason, except in CI (``CI=true``), where a missing binary fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from sanic_edge_auth.secret import Secret
from sanic_edge_auth.store import MemoryStore, Store, StoreSettings
from sanic_edge_auth.store.redis import RedisStore
from tests.helpers import free_port

REDIS_BINARY = shutil.which("redis-server")


def require_redis_binary() -> str:
    if REDIS_BINARY is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the Redis tests")
        pytest.skip(message)
    return REDIS_BINARY


class RedisServer:
    """One redis-server process on loopback; stop/start keep the same port."""

    def __init__(self, binary: str, directory: Path, *, password: str | None = None) -> None:
        self.binary = binary
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        #: Extra command-line arguments (TLS files, sentinel mode).
        self.arguments: list[str] = []
        #: When set, the readiness check speaks TLS (a server with only a TLS port).
        self.tls: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.password:
            command += ["--requirepass", self.password]
        command += self.arguments
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as plain:
                    sock = (
                        self.tls.wrap_socket(plain, server_hostname="127.0.0.1")
                        if self.tls
                        else plain
                    )
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64)[:1] in (b"+", b"-"):  # PONG, or NOAUTH with a password
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start within 10 s")
            time.sleep(0.02)

    def kill(self) -> None:
        """Die at once, as a crashed or OOM-killed Redis would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """Stop answering without closing connections (a stalled server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class RedisClusterNodes:
    """Three redis-server processes in cluster mode on loopback, no replicas (the
    slots split three ways by ``redis-cli --cluster create``). A node killed and
    started again keeps its port and ``nodes.conf``, so it rejoins with its slots
    (and, without persistence, without its keys).

    ``replicas=1`` adds a replica per master (six nodes), for the failover test only:
    a killed master's replica takes over after ``node_timeout_ms`` and an election.
    """

    node_timeout_ms = 500

    def __init__(self, binary: str, directory: Path, *, replicas: int = 0) -> None:
        self.replicas = replicas
        self.nodes: list[RedisServer] = []
        for index in range(3 * (1 + replicas)):
            home = directory / f"node{index}"
            home.mkdir()
            node = RedisServer(binary, home)
            node.arguments = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--cluster-port", str(free_port()),
            ]  # fmt: skip
            if replicas:
                # A replica's first sync starts at once (not after the default 5 s
                # wait for more replicas), and may always stand for election.
                node.arguments += [
                    "--repl-diskless-sync-delay", "0",
                    "--cluster-replica-validity-factor", "0",
                ]  # fmt: skip
            self.nodes.append(node)

    @property
    def url(self) -> str:
        """The one node the client starts from (it discovers the other two)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        assert cli is not None, "redis-cli comes with redis-server (Debian: redis-tools)"
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        replicas = ["--cluster-replicas", str(self.replicas)]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, *replicas, "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        self.wait_until_ok()
        if self.replicas:
            self._wait_for_replicas()

    def _wait_for_replicas(self, seconds: float = 20) -> None:
        """Until each replica has its master's data (they attach after ``--cluster
        create`` returns)."""
        deadline = time.monotonic() + seconds
        while True:
            synced = 0
            for node in self.nodes:
                with redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=1) as client:
                    info = client.info("replication")
                synced += info.get("master_link_status") == "up"
            if synced == 3 * self.replicas:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replicas did not attach within {seconds} s")
            time.sleep(0.05)

    def wait_until_ok(self, seconds: float = 20) -> None:
        """Until every node says ``cluster_state:ok`` (slots agreed, all covered)."""
        self.wait_for_state(b"ok", self.nodes, seconds)

    def wait_for_state(self, state: bytes, nodes: list[RedisServer], seconds: float = 20) -> None:
        """Until each of ``nodes`` reports ``cluster_state:<state>``."""
        deadline = time.monotonic() + seconds
        while not all(self._state(node) == state for node in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster was not {state!r} within {seconds} s")
            time.sleep(0.05)

    @staticmethod
    def _state(node: RedisServer) -> bytes | None:
        try:
            with socket.create_connection(("127.0.0.1", node.port), timeout=0.5) as sock:
                sock.sendall(b"CLUSTER INFO\r\n")
                reply = sock.recv(4096)
        except OSError:
            return None
        for line in reply.splitlines():
            if line.startswith(b"cluster_state:"):
                return line.removeprefix(b"cluster_state:").strip()
        return None

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """A three-node Redis Cluster shared by the session's tests (own prefixes); a test
    that restarts a node waits for the cluster to be whole again before it ends."""
    cluster = RedisClusterNodes(require_redis_binary(), tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server shared by the session's tests (each test uses its own prefix)."""
    server = RedisServer(require_redis_binary(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server only this test uses (for killing, pausing, passwords)."""
    server = RedisServer(require_redis_binary(), tmp_path)
    yield server
    if server.process is not None and server.process.poll() is None:
        server.resume()
    server.kill()


def redis_settings(url: str, **overrides: object) -> StoreSettings:
    values: dict[str, object] = {
        "type": "redis",
        "url": Secret(url),
        "prefix": f"test:{uuid.uuid4().hex[:8]}:",
        "timeout": 0.5,
        "connect_timeout": 0.5,
    }
    values.update(overrides)
    return StoreSettings(**values)  # type: ignore[arg-type]


@dataclass
class Backend:
    """A store under test, and a way to let time pass for it."""

    name: str
    store: Store
    advance: Callable[[float], Awaitable[None]]
    make_peer: Callable[[], Awaitable[Store]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(
    params=[
        "memory",
        "redis",
        # With the other cluster tests: one cluster started per xdist worker.
        pytest.param("redis-cluster", marks=pytest.mark.xdist_group("cluster")),
    ]
)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Each store, with ``advance`` (the memory store's clock moves; Redis really waits)
    and ``make_peer`` (another worker's view of the same shared state)."""
    if request.param == "memory":
        clock = FakeClock()
        memory = MemoryStore(clock=clock)

        async def move(seconds: float) -> None:
            clock.now += seconds

        async def same_memory() -> Store:
            return memory  # one process: every "peer" shares this memory

        yield Backend("memory", memory, move, same_memory)
        await memory.aclose()
        return

    if request.param == "redis-cluster":
        cluster: RedisClusterNodes = request.getfixturevalue("redis_cluster")
        settings = redis_settings(cluster.url, cluster=True)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        settings = redis_settings(server.url)
    stores: list[RedisStore] = []

    async def peer() -> Store:
        # Another worker: its own client and connection pool, the same prefix.
        store = RedisStore.from_settings(settings)
        await store.startup()
        stores.append(store)
        return store

    first = await peer()

    async def wait(seconds: float) -> None:
        await asyncio.sleep(seconds)

    yield Backend("redis", first, wait, peer)
    for store in stores:
        await store.aclose()


def past_the_near_cache() -> None:
    """Let the near cache's staleness bound (``store.near_cache.max_staleness``,
    0.1 s) pass: within it a worker may still answer from what Redis said last,
    which is the bound the near cache promises; after it, every read goes to Redis."""
    time.sleep(0.15)
