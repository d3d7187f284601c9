"""One app, two real Sanic worker processes, one Redis: refresh, sessions, logout, the
login replay guard, and DPoP's nonces and replay guard hold across processes, and a
Redis outage is a 503 from the store (for sessions and DPoP) while bearer tokens
keep working."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from sanic_edge_auth.testing import DPoPKey, FakeIdentityProvider
from tests.helpers import free_port, local
from tests.store.conftest import RedisServer, past_the_near_cache

# What multiworker_app.py prints once per worker when it serves (it cannot be imported:
# it builds its app at import time).
READY = "multiworker: serving in"

# Under xdist (`make test`), one worker runs these one after another: each starts a
# gateway of two Sanic processes and some count on bursts landing on both of them,
# which two gateways at once on a 2-core machine would make slower and less certain.
pytestmark = pytest.mark.xdist_group("multiworker")

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-session-secret-that-is-long-enough-0123"


class Gateway:
    """The multi-worker app in its own process group; ``stop()`` ends every worker."""

    def __init__(self, config: dict[str, Any], port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "EDGE_TEST_CONFIG": json.dumps(config),
            "PORT": str(port),
        }
        # Output to a file, never an undrained pipe: a worker blocked on a full pipe
        # stops answering.
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/store/multiworker_app.py")],
            cwd=ROOT,
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.log()[-3000:])
            # Both workers, not just the first: one still starting would die later on a
            # store the test has since stopped, and take the app down with it.
            if self.log().count(READY) >= 2:
                return
            time.sleep(0.1)
        raise RuntimeError("the multi-worker gateway did not start:\n" + self.log()[-3000:])

    def log(self) -> str:
        self.output.seek(0)
        return self.output.read().decode(errors="replace")

    def stop(self) -> None:
        """End every process of the gateway at once. Not a graceful stop: no test here
        is about shutting down, and Sanic's takes a second or two per gateway on the
        suite's serial path (a SIGINT while a worker still starts can even hang it)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.output.close()

    def request(
        self, method: str, path: str, *, cookies: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request on a new connection (so the kernel may pick either worker)."""
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        with httpx.Client(base_url=self.base, timeout=30) as client:
            return client.request(method, path, headers=headers, **kwargs)

    def many(self, count: int, call: Callable[[], httpx.Response]) -> list[httpx.Response]:
        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(lambda _: call(), range(count)))

    def on_both(self, count: int, call: Callable[[], httpx.Response]) -> list[httpx.Response]:
        """Waves of ``count`` concurrent calls until both workers have answered.

        The kernel hands new connections to whichever worker accepts first, so one
        wave may land on one process only; an idempotent call can simply be repeated.
        """
        answered: list[httpx.Response] = []
        for _ in range(10):
            answered += self.many(count, call)
            if len(pids(answered)) == 2:
                break
        return answered

    def login(self, idp: FakeIdentityProvider) -> tuple[httpx.Response, dict[str, str]]:
        """A browser-like login; the callback answer and the cookies it left."""
        with httpx.Client(base_url=self.base, timeout=30) as browser:
            started = browser.get("/api/auth0/login")
            assert started.status_code == 302, started.text
            callback = browser.get(local(idp.follow_login(started.headers["location"])))
            return callback, dict(browser.cookies)


def pids(responses: list[httpx.Response]) -> set[str]:
    return {response.headers["x-worker-pid"] for response in responses}


def launch(
    idp: FakeIdentityProvider,
    redis_url: str,
    *,
    session: dict[str, Any] | None = None,
    dpop: dict[str, Any] | None = None,
    extra_paths: Sequence[dict[str, Any]] = (),
    prefix: str | None = None,
) -> Gateway:
    """A gateway of two workers for ``idp`` on the Redis at ``redis_url`` (a gateway
    given another's ``prefix`` is a second instance of the same app)."""
    port = free_port()
    paths = [
        *idp.gateway_config()["paths"],
        {
            "method": "POST",
            "path": "/api/auth0/backchannel",
            "integration": {"type": "auth0_backchannel_logout"},
        },
        {"method": "GET", "path": "/api/orders", "auth": True},
        *extra_paths,
    ]
    if session is None:
        paths = [p for p in paths if "backchannel" not in p["path"]]
    config = idp.gateway_config(
        paths=paths, redirect_uri=f"http://127.0.0.1:{port}/api/auth0/callback", timeout=5
    )
    config["store"] = {
        "type": "redis",
        "url": redis_url,
        "prefix": prefix or f"t{uuid.uuid4().hex}:",
    }
    if session is not None:
        config["session"] = {"secret": SECRET, **session}
    if dpop is not None:
        config["dpop"] = dpop
    return Gateway(config, port)


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., Gateway]]:
    """Gateways of this test's own (stopped after it)."""
    started: list[Gateway] = []

    def start(idp: FakeIdentityProvider, redis_url: str, **options: Any) -> Gateway:
        gateway = launch(idp, redis_url, **options)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="module")
def module_idp() -> Iterator[FakeIdentityProvider]:
    """One fake IdP for the tests that share gateways (each uses its own login)."""
    with FakeIdentityProvider() as idp:
        yield idp


@pytest.fixture(scope="module")
def shared_gateway(
    module_idp: FakeIdentityProvider, redis_server: RedisServer
) -> Iterator[Callable[..., Gateway]]:
    """A gateway per config, started once for the module's tests that need the same
    one: each start costs seconds of the suite's serial path (the multiworker group),
    and these tests only add sessions and logins of their own to it."""
    gateways: dict[str, Gateway] = {}

    def get(*, session: dict[str, Any] | None = None) -> Gateway:
        key = json.dumps(session, sort_keys=True)
        if key not in gateways:
            gateways[key] = launch(module_idp, redis_server.url, session=session)
        return gateways[key]

    yield get
    for gateway in gateways.values():
        gateway.stop()


def test_twenty_concurrent_refreshes_across_two_workers_make_one_idp_call(
    module_idp: FakeIdentityProvider,
    shared_gateway: Callable[..., Gateway],
) -> None:
    gateway = shared_gateway()
    for _attempt in range(5):  # until a burst lands on both workers (see on_both)
        callback, _ = gateway.login(module_idp)
        assert callback.status_code == 200, callback.text
        refresh_token = callback.json()["refresh_token"]
        before = module_idp.requests["token"]
        module_idp.latency = 0.3  # the winner's call is in flight while the others arrive

        def refresh(token: str = refresh_token) -> httpx.Response:
            return gateway.request("POST", "/api/auth0/refresh", headers={"X-Refresh-Token": token})

        responses = gateway.many(20, refresh)
        module_idp.latency = 0
        assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
        assert module_idp.requests["token"] - before == 1  # one call, however they landed
        if len(pids(responses)) == 2:
            break
    assert len(pids(responses)) == 2  # both worker processes took part
    assert len({r.json()["refresh_token"] for r in responses}) == 1
    assert len({r.json()["access_token"] for r in responses}) == 1
    # The new refresh token still works: no reuse detection fired at the IdP.
    new_token = responses[0].json()["refresh_token"]
    again = gateway.request("POST", "/api/auth0/refresh", headers={"X-Refresh-Token": new_token})
    assert again.status_code == 200, again.text


def test_an_expired_server_session_refreshes_once_across_workers(
    fake_idp: FakeIdentityProvider,
    redis_server: RedisServer,
    start_gateway: Callable[..., Gateway],
) -> None:
    gateway = start_gateway(
        fake_idp, redis_server.url, session={"store": "server", "refresh_before": 10}
    )
    for _attempt in range(5):  # until a burst lands on both workers (see on_both)
        fake_idp.access_token_lifetime = 5  # the login's token is about to expire...
        callback, cookies = gateway.login(fake_idp)
        assert callback.status_code == 302, callback.text
        before = fake_idp.requests["token"]
        fake_idp.access_token_lifetime = 3600  # ...the refreshed one is not
        fake_idp.latency = 0.3

        def orders(jar: dict[str, str] = cookies) -> httpx.Response:
            return gateway.request("GET", "/api/orders", cookies=jar)

        responses = gateway.many(20, orders)
        fake_idp.latency = 0
        assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
        assert fake_idp.requests["token"] - before == 1
        if len(pids(responses)) == 2:
            break
    assert len(pids(responses)) == 2
    assert len({r.json()["access_token_tail"] for r in responses}) == 1
    # The stored session now holds the new refresh token, which works.
    later = gateway.request("POST", "/api/auth0/refresh", cookies=cookies)
    assert later.status_code == 200, later.text
    assert later.json()["refreshed"] is True
    assert fake_idp.requests["token"] - before == 2


# Server sessions: the same checks run on the gateway of test_multiworker_sockets.py
# (one gateway start fewer on the suite's serial path).
@pytest.mark.parametrize("mode", ["cookie"])
def test_a_session_works_on_every_worker_and_logout_on_one_ends_it_on_all(
    module_idp: FakeIdentityProvider,
    shared_gateway: Callable[..., Gateway],
    mode: str,
) -> None:
    gateway = shared_gateway(session={"store": mode})
    callback, cookies = gateway.login(module_idp)
    assert callback.status_code == 302
    signed_in = gateway.on_both(8, lambda: gateway.request("GET", "/api/orders", cookies=cookies))
    assert {r.status_code for r in signed_in} == {200}
    assert len(pids(signed_in)) == 2
    logout = gateway.request("GET", "/api/auth0/logout", cookies=cookies)
    assert logout.status_code == 302
    after = gateway.on_both(8, lambda: gateway.request("GET", "/api/orders", cookies=cookies))
    assert {r.status_code for r in after} == {401}
    assert len(pids(after)) == 2
    assert {r.json()["error"] for r in after} == {"session_revoked"}


def test_back_channel_logout_received_by_one_worker_ends_the_session_on_all(
    module_idp: FakeIdentityProvider,
    shared_gateway: Callable[..., Gateway],
) -> None:
    gateway = shared_gateway(session={"store": "cookie"})
    _, cookies = gateway.login(module_idp)
    assert gateway.request("GET", "/api/orders", cookies=cookies).status_code == 200
    status = module_idp.send_backchannel_logout(
        gateway.base + "/api/auth0/backchannel", sid=module_idp.issued_sids[-1]
    )
    assert status == 200
    after = gateway.on_both(8, lambda: gateway.request("GET", "/api/orders", cookies=cookies))
    assert {r.status_code for r in after} == {401}
    assert len(pids(after)) == 2


def test_a_callback_replayed_to_another_worker_is_refused(
    module_idp: FakeIdentityProvider,
    shared_gateway: Callable[..., Gateway],
) -> None:
    gateway = shared_gateway()
    with httpx.Client(base_url=gateway.base, timeout=30) as browser:
        started = browser.get("/api/auth0/login")
        callback_path = local(module_idp.follow_login(started.headers["location"]))
        cookies = dict(browser.cookies)
    first = gateway.request("GET", callback_path, cookies=cookies)
    assert first.status_code == 200, first.text
    replays = gateway.on_both(8, lambda: gateway.request("GET", callback_path, cookies=cookies))
    assert {r.status_code for r in replays} == {400}
    assert {r.json()["error"] for r in replays} == {"login_state_invalid"}
    assert first.headers["x-worker-pid"] in pids(replays)
    assert len(pids(replays)) == 2  # the other process refused it too


def test_redis_down_is_a_store_503_for_sessions_bearer_keeps_working_and_it_recovers(
    fake_idp: FakeIdentityProvider,
    own_redis_server: RedisServer,
    start_gateway: Callable[..., Gateway],
) -> None:
    """Also DPoP's shared state (one gateway for both: each costs seconds to start):
    a nonce one worker handed out is accepted by the other, a proof is accepted once
    whichever worker each copy reaches, and with Redis down a DPoP request is the
    store's 503, never a 200."""
    own_redis_server.start()
    gateway = start_gateway(
        fake_idp,
        own_redis_server.url,
        session={"store": "cookie"},
        dpop={"nonce": True},  # keys derived from the session secret, as every worker's
    )
    _, cookies = gateway.login(fake_idp)
    assert gateway.request("GET", "/api/orders", cookies=cookies).status_code == 200
    bearer = {"Authorization": "Bearer " + fake_idp.mint_token(use="id")}
    assert gateway.request("GET", "/api/orders", headers=bearer).status_code == 200
    dpop_call, nonce = _dpop_across_workers(gateway, fake_idp)

    own_redis_server.kill()
    past_the_near_cache()
    down = gateway.many(8, lambda: gateway.request("GET", "/api/orders", cookies=cookies))
    assert {r.status_code for r in down} == {503}
    assert {r.json()["error"] for r in down} <= {"store_unavailable", "store_timeout"}
    stateless = gateway.many(8, lambda: gateway.request("GET", "/api/orders", headers=bearer))
    assert {r.status_code for r in stateless} == {200}
    dpop_down = gateway.many(4, lambda: dpop_call(nonce))
    assert {r.status_code for r in dpop_down} == {503}, [r.text for r in dpop_down]
    assert {r.json()["error"] for r in dpop_down} <= {"store_unavailable", "store_timeout"}

    own_redis_server.start()  # the same port: no restart of the app
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        back = gateway.many(8, lambda: gateway.request("GET", "/api/orders", cookies=cookies))
        if {r.status_code for r in back} == {200}:
            break
        time.sleep(0.5)
    assert {r.status_code for r in back} == {200}
    everywhere = gateway.on_both(8, lambda: gateway.request("GET", "/api/orders", cookies=cookies))
    assert {r.status_code for r in everywhere} == {200}
    assert len(pids(everywhere)) == 2


def _dpop_across_workers(
    gateway: Gateway, idp: FakeIdentityProvider
) -> tuple[Callable[[str | None], httpx.Response], str]:
    """Nonces and the replay guard across the two workers; returns a DPoP call (a
    fresh proof each time) and a nonce."""
    key = DPoPKey.generate()
    token = idp.client_credentials(dpop_key=key)["access_token"]
    url = gateway.base + "/api/orders"

    def call(nonce: str | None) -> httpx.Response:
        headers = key.headers("GET", url, token, nonce=nonce)
        return gateway.request("GET", "/api/orders", headers=headers)

    first = call(None)
    assert first.status_code == 401
    assert first.json()["error"] == "dpop_nonce_required"
    nonce = first.headers["dpop-nonce"]
    answered = gateway.on_both(6, lambda: call(nonce))  # that worker's nonce, on both
    assert {r.status_code for r in answered} == {200}, [r.text for r in answered]
    assert len(pids(answered)) == 2
    assert {r.json()["jkt"] for r in answered} == {key.thumbprint}
    # One proof sent ten times at once, until the copies reached both workers:
    # exactly one is accepted each time.
    for _attempt in range(10):
        headers = key.headers("GET", url, token, nonce=nonce)
        copies = gateway.many(
            10, lambda h=headers: gateway.request("GET", "/api/orders", headers=h)
        )
        assert sorted(r.status_code for r in copies) == [200] + [401] * 9
        refused = {r.json()["error"] for r in copies if r.status_code == 401}
        assert refused == {"dpop_proof_replayed"}
        if len(pids(copies)) == 2:
            break
    assert len(pids(copies)) == 2
    return call, nonce


def test_the_memory_store_under_two_workers_warns_once_naming_what_is_per_process(
    fake_idp: FakeIdentityProvider,
) -> None:
    port = free_port()
    config = fake_idp.gateway_config(
        paths=[{"method": "GET", "path": "/api/orders", "auth": True}],
        redirect_uri=f"http://127.0.0.1:{port}/cb",
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EDGE_TEST_CONFIG": json.dumps(config),
        "PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/store/multiworker_app.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/orders", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
    finally:
        time.sleep(1)  # let both workers finish starting: Sanic hangs on a stop mid-start
        os.killpg(process.pid, signal.SIGINT)
        try:
            output = process.communicate(timeout=15)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output = process.communicate(timeout=5)[0].decode()
    warnings = [line for line in output.splitlines() if "edge_auth.store.per_process" in line]
    assert len(warnings) == 1, output[-3000:]
    assert "workers=2" in warnings[0]
    assert "the login replay guard" in warnings[0]
