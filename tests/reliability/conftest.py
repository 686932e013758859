"""Shared fixtures for the reliability battery.

* ``server`` / ``server2``: a :class:`~modelprov.testing.FakeServer` each, closed after the test.
* ``make_client(protocol, server, **kw)``: a :class:`~modelprov.Client` for one protocol
  ("openai", "openrouter", "anthropic", "ollama") pointed at ``server``, with a sentinel key,
  no real sleeping and a fast retry policy (``retries=`` sets ``max_retries``); also returns
  the ``provider/model`` string to call.
* ``assert_all_closed(server)``: the server saw every client socket closed (within 1 s), with
  the garbage collector switched off (the ``no_gc`` fixture; the fault and breaker files use it
  for every test), so nothing depends on ``gc.collect()``; the same proof as
  ``tests/transport/test_close.py``.
* ``thread_guard`` (autouse): after the test, no new non-daemon thread and no new
  ``modelprov`` thread is left running, except the one process-wide deadline watchdog.
"""

import gc
import threading
import time

import pytest

from modelprov import Client, RetryPolicy
from modelprov.testing import FakeServer

PROTOCOLS = ("openai", "openrouter", "anthropic", "ollama")
KEY = "sk-RELIABILITY-SENTINEL-0123456789"
MODELS = {
    "openai": "openai/gpt-test",
    "openrouter": "openrouter/vendor/model-test",
    "anthropic": "anthropic/claude-test",
    "ollama": "ollama/llama-test",
}
#: Process-wide singleton threads that may legitimately start during a test and outlive it.
SINGLETON_THREADS = ("modelprov-deadline-watchdog",)


def no_sleep(seconds):
    pass


def fast_retry(retries=0, **kw):
    """A retry policy that never waits more than 2 ms of backoff (the client's sleep is a no-op anyway)."""
    kw.setdefault("initial_backoff", 0.001)
    kw.setdefault("max_backoff", 0.002)
    return RetryPolicy(max_retries=retries, **kw)


def provider_settings(protocol, base_url, **extra):
    settings = {"base_url": base_url}
    if protocol != "ollama":
        settings["api_key"] = KEY
    settings.update(extra)
    return settings


@pytest.fixture
def no_gc():
    """The garbage collector is off during the test: connections must close deterministically.

    Opt-in (``pytestmark = pytest.mark.usefixtures("no_gc")``): allocation-heavy tests (fuzzing) must keep it on."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _watched_threads():
    return {t for t in threading.enumerate() if t.is_alive()}


def leftover_threads(before, timeout=1.0):
    """Threads started since ``before`` that are non-daemon or modelprov's (singletons excepted)."""
    end = time.monotonic() + timeout
    while True:
        bad = [t for t in _watched_threads() - before
               if (not t.daemon or "modelprov" in t.name) and t.name not in SINGLETON_THREADS]
        if not bad or time.monotonic() >= end:
            return bad
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def thread_guard():
    """Pass criterion: no new non-daemon or modelprov thread (bar the watchdog singleton) outlives the test."""
    before = _watched_threads()
    yield
    bad = leftover_threads(before)
    assert not bad, "threads left running: %r" % [t.name for t in bad]
    watchdogs = [t for t in threading.enumerate() if t.name == "modelprov-deadline-watchdog"]
    assert len(watchdogs) <= 1, "more than one deadline watchdog: %r" % watchdogs


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


@pytest.fixture
def server2():
    with FakeServer() as srv:
        yield srv


@pytest.fixture
def make_client():
    """``make_client(protocol, server_or_url, retries=0, provider=None, **client_kw) -> (client, model)``.

    ``provider`` is a dict of extra provider settings (``read_timeout``, ``idle_timeout``...).
    Every client made is closed at teardown (``close()`` is idempotent).
    """
    made = []

    def make(protocol, target, retries=0, provider=None, **kw):
        base = target if isinstance(target, str) else target.base_url(protocol)
        kw.setdefault("sleep", no_sleep)
        kw.setdefault("retry", fast_retry(retries))
        extra = {"read_timeout": 5.0, "idle_timeout": 5.0}  # a safety net: no case may hang the suite
        extra.update(provider or {})
        client = Client(providers={protocol: provider_settings(protocol, base, **extra)}, **kw)
        made.append(client)
        return client, MODELS[protocol]

    yield make
    for client in made:
        client.close()


def assert_all_closed(*servers, timeout=1.0):
    """Pass criterion: each server sees zero open client connections within ``timeout`` (GC off)."""
    for srv in servers:
        assert srv.wait_for_open_connections(0, timeout=timeout), (
            "%r still has %d client connection(s) open after close()" % (srv, srv.open_connections))


class Timer:
    """``with Timer(limit) as t:`` then ``t.check()``: the block took less than ``limit`` seconds."""

    def __init__(self, limit):
        self.limit = limit
        self.elapsed = None

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.start
        assert self.elapsed < self.limit, "took %.2fs, limit %.2fs" % (self.elapsed, self.limit)
        return False


@pytest.fixture
def closed():
    """The :func:`assert_all_closed` helper as a fixture (test files do not import conftest)."""
    return assert_all_closed


@pytest.fixture
def timer():
    """The :class:`Timer` class as a fixture."""
    return Timer


class ResettingServer:
    """A loopback server that reads each request's head and then resets the connection (RST, no
    status line): "reset before the response". Counts the requests it saw; ``close()`` joins its thread."""

    def __init__(self):
        import socket

        self._socket = socket
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.05)
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ResettingServer", daemon=True)
        self._thread.start()

    def base_url(self, protocol):
        from modelprov.testing.protocols import base_path

        return self.url + base_path(protocol)

    def _run(self):
        import struct

        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            conn.settimeout(1.0)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    part = conn.recv(65536)
                    if not part:
                        break
                    data += part
            except OSError:
                pass
            if b"\r\n\r\n" in data:
                self.requests += 1
            conn.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(1.0)
        self.listener.close()


@pytest.fixture
def resetting_server():
    srv = ResettingServer()
    yield srv
    srv.close()
