"""Real-browser tests: Debian's headless Chromium driven by Selenium, apps on loopback.

Why a real browser: cookie limits, ``HttpOnly``, ``SameSite`` and the Fetch Metadata
headers (``Sec-Fetch-Site``) are enforced or sent by the browser, so only a browser
can show our cookies and CSRF check work together.

The binaries come from the system (``apt-get install chromium chromium-driver``), at
``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` unless ``EDGE_AUTH_CHROMIUM`` /
``EDGE_AUTH_CHROMEDRIVER`` say otherwise. Selenium Manager never runs (so nothing is
downloaded): the driver path goes to ``Service(executable_path=...)`` and the
browser path to ``options.binary_location``, and the fixture fails if Selenium tries
to call it anyway. Without the binaries these tests are skipped with the reason,
except under ``CI=true``, where they fail: CI must run them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sanic import Sanic
from sanic.server.async_server import AsyncioServer

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = os.environ.get("EDGE_AUTH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EDGE_AUTH_CHROMEDRIVER", "/usr/bin/chromedriver")
HOST = "127.0.0.1"
_STARTUP_TIMEOUT = 30.0

ServeApp = Callable[[Sanic[Any, Any], int], str]


def _missing_parts() -> list[str]:
    missing = [
        path
        for path in (CHROMIUM, CHROMEDRIVER)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)) and not shutil.which(path)
    ]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    return missing


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


def _refuse_selenium_manager(*_args: object, **_kwargs: object) -> dict[str, str]:
    raise AssertionError("Selenium Manager must not run: it would download a driver")


@pytest.fixture(scope="session")
def _chromium() -> Iterator[WebDriver]:
    missing = _missing_parts()
    if missing:
        _unavailable(
            f"real-browser tests need {', '.join(missing)} "
            "(Debian: apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the sandbox cannot start as root (containers, CI)
        "--disable-dev-shm-usage",  # small /dev/shm in containers
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",  # no calls home: loopback only
        "--disable-component-update",
        "--disable-sync",
        "--metrics-recording-only",
        "--window-size=1024,768",
    ):
        options.add_argument(argument)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        patch.setattr(SeleniumManager, "binary_paths", _refuse_selenium_manager)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(15)
        driver.set_script_timeout(10)
        yield driver
    finally:
        driver.quit()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the items
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist (`make test`), every browser test goes to one worker: one Chromium
    for the run rather than one per worker (``_chromium`` is per worker process)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture
def browser(_chromium: WebDriver) -> WebDriver:
    """A headless Chromium with no cookies from earlier tests (one process per run)."""
    _chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    _chromium.get("about:blank")
    return _chromium


class _LiveServer:
    """One Sanic app served on loopback by a thread running its own event loop.

    The browser calls the app while the test thread is blocked in Selenium, so the
    app cannot share the test's loop the way sanic-testing's client does.
    """

    def __init__(self, app: Sanic[Any, Any], port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"live-{app.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(_STARTUP_TIMEOUT):
            raise RuntimeError(f"{self.app.name} did not start on {self.url}")
        if self._error is not None:
            raise RuntimeError(f"{self.app.name} failed to start") from self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(
                self.app.create_server(host=HOST, port=self.port, return_asyncio_server=True)
            )
            assert server is not None
            self._loop.run_until_complete(server.startup())
            self._loop.run_until_complete(server.before_start())
            self._loop.run_until_complete(server.after_start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._shut_down(server)

    def _shut_down(self, server: AsyncioServer) -> None:
        loop = self._loop
        loop.run_until_complete(server.before_stop())
        closing = server.close()  # stop listening
        for connection in list(server.connections):
            connection.close()  # the browser keeps connections alive: end them here
        if closing is not None:
            loop.run_until_complete(closing)
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(server.after_stop())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_STARTUP_TIMEOUT)


@pytest.fixture(scope="module")
def live_server() -> Iterator[ServeApp]:
    """``serve(app, port) -> base URL``: the app answers real browsers until module end."""
    servers: list[_LiveServer] = []

    def serve(app: Sanic[Any, Any], port: int) -> str:
        server = _LiveServer(app, port)
        server.start()
        servers.append(server)
        return server.url

    yield serve
    for server in reversed(servers):
        server.stop()
