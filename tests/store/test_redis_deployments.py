"""Redis as deployed: TLS (rediss:// with a CA file) and Sentinel, on real servers."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.asyncio import Redis

from sanic_edge_auth.errors import ConfigValidationError
from sanic_edge_auth.store import SentinelSettings, StoreSettings, TLSSettings, open_store
from tests.helpers import free_port
from tests.store.conftest import RedisServer, redis_settings, require_redis_binary


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def tls_redis(own_redis_server: RedisServer, tmp_path: Path) -> tuple[RedisServer, str]:
    """A redis-server that speaks only TLS, with a certificate from a test CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("edge-auth test CA", ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate("127.0.0.1", server_key, ca.subject, ca_key)
    pem = serialization.Encoding.PEM
    ca_file = _write(tmp_path / "ca.pem", ca.public_bytes(pem))
    cert_file = _write(tmp_path / "server.pem", server_cert.public_bytes(pem))
    key_file = _write(
        tmp_path / "server.key",
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    server = own_redis_server
    tls_port = server.port
    server.arguments = [
        "--port", "0",
        "--tls-port", str(tls_port),
        "--tls-cert-file", cert_file,
        "--tls-key-file", key_file,
        "--tls-ca-cert-file", ca_file,
        "--tls-auth-clients", "no",
    ]  # fmt: skip
    # "--port 0" after the fixture's "--port": the last one wins, no plain port.
    server.tls = ssl.create_default_context(cafile=ca_file)
    server.start()
    return server, ca_file


async def test_rediss_with_a_ca_file(tls_redis: tuple[RedisServer, str]) -> None:
    server, ca_file = tls_redis
    url = f"rediss://127.0.0.1:{server.port}/0"
    store = await open_store(redis_settings(url, tls=TLSSettings(ca_file=ca_file)))
    try:
        await store.set("session", b"over tls", 60)
        assert await store.get("session") == b"over tls"
    finally:
        await store.aclose()


async def test_rediss_with_an_unknown_ca_is_a_config_error(
    tls_redis: tuple[RedisServer, str],
) -> None:
    server, _ = tls_redis
    url = f"rediss://:hunter2@127.0.0.1:{server.port}/0"
    with pytest.raises(ConfigValidationError) as failure:
        await open_store(redis_settings(url))  # system CAs do not know the test CA
    assert failure.value.keys == ("store.url",)
    assert f"rediss://127.0.0.1:{server.port}/0" in str(failure.value)
    assert "hunter2" not in str(failure.value)


@pytest.fixture
def sentinel(own_redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A master and one Sentinel monitoring it as ``mymaster``; yields both ports."""
    own_redis_server.start()
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {own_redis_server.port} 1\n"
    )
    process = subprocess.Popen(
        [require_redis_binary(), str(config), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis sentinel did not start")
            time.sleep(0.02)
        yield own_redis_server.port, port
    finally:
        process.kill()
        process.wait(10)


async def test_sentinel_finds_the_master(sentinel: tuple[int, int]) -> None:
    master_port, sentinel_port = sentinel
    settings = StoreSettings(
        type="redis",
        prefix="sentinel-test:",
        sentinel=SentinelSettings(hosts=(("127.0.0.1", sentinel_port),), service_name="mymaster"),
    )
    store = await open_store(settings)
    master = Redis(host="127.0.0.1", port=master_port)
    try:
        await store.set("session", b"via sentinel", 60)
        assert await master.get("sentinel-test:session") == b"via sentinel"
    finally:
        await master.aclose()
        await store.aclose()


async def test_an_unknown_sentinel_service_is_a_config_error(sentinel: tuple[int, int]) -> None:
    _, sentinel_port = sentinel
    settings = StoreSettings(
        type="redis",
        sentinel=SentinelSettings(hosts=(("127.0.0.1", sentinel_port),), service_name="nope"),
        connect_timeout=0.5,
        timeout=0.5,
    )
    with pytest.raises(ConfigValidationError) as failure:
        await open_store(settings)
    assert failure.value.keys == ("store.sentinel",)
    assert "'nope'" in str(failure.value)
