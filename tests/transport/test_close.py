"""``close()`` ends every connection at once, and exceptions pin none.

Over real loopback sockets (FakeServer counts the client connections it
still has open). The garbage collector is switched off while each test runs,
so nothing here depends on it: the server must see every socket closed right
after ``close()``, whoever still holds responses or exceptions.
"""

import gc
import threading
import traceback

import pytest

from modelprov import exceptions as E
from modelprov.deadline import Deadline
from modelprov.testing import FakeServer
from modelprov.transport import RequestsTransport
from modelprov.transport import errors as terr
from modelprov.types import HTTPRequest

NONE = Deadline()
KEY = "sk-SENTINEL0123456789abcdef"
POST = HTTPRequest("POST", "/chat/completions", json={"model": "m"})
STREAM = HTTPRequest("POST", "/chat/completions", json={"model": "m", "stream": True}, stream=True)


@pytest.fixture
def no_gc():
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


def test_close_closes_pooled_checked_out_and_pinned_connections(server, no_gc):
    server.set_default("openai", "pooled")
    t = RequestsTransport(server.url + "/v1", provider="loop", pool_size=8)
    # several idle connections in the pool (concurrent calls)
    barrier = threading.Barrier(4)

    def call():
        barrier.wait(2)
        t.send(POST, NONE).json()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(5)
    # a stream someone still holds, half read (its connection is checked out)
    server.add_raw(chunks=[b"data: 1\n\n", b"data: 2\n\n"], headers={"Content-Type": "text/event-stream"}, stall_after=1)
    held = t.send(STREAM, NONE)
    assert next(held.iter_bytes()) == b"data: 1\n\n"
    # errors someone keeps (as batch() returns them)
    server.add_error(500, protocol="openai", message="boom")
    server.add_raw(body=b'{"cut": ', headers={"Content-Type": "application/json", "Content-Length": "100"}, truncate=True)
    kept = []
    for _ in range(2):
        try:
            t.send(POST, NONE).json()
        except E.ModelProvError as exc:
            kept.append(exc)
    assert [type(e) for e in kept] == [E.ServerError, E.ProviderConnectionError]
    assert server.open_connections >= 2
    assert t.open_connections >= 2
    t.close()
    assert server.wait_for_open_connections(0, timeout=1.0), server.open_connections
    assert t.open_connections == 0
    with pytest.raises(E.ProviderConnectionError, match="closed"):
        t.send(POST, NONE)
    assert held is not None and kept  # still referenced: close() did not need them gone


def test_a_failed_call_leaves_no_connection_open_while_its_error_is_kept(server, no_gc):
    server.add_raw(body=b'{"cut": ', headers={"Content-Type": "application/json", "Content-Length": "100"}, drop_after=1)
    t = RequestsTransport(server.url + "/v1", provider="loop")
    with pytest.raises(E.ProviderConnectionError) as info:
        t.send(POST, NONE).json()
    kept = info.value
    assert server.wait_for_open_connections(0, timeout=1.0)
    assert kept.__cause__ is not None
    t.close()


def test_wrapped_errors_are_detached_from_pools_responses_and_frames():
    import requests
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", 9)

    def fail(marker):
        local_pool = pool  # noqa: F841 - a frame local the scrub must clear
        raise urllib3.exceptions.MaxRetryError(pool, "/x?key=" + KEY, reason=ConnectionRefusedError(111, "refused"))

    try:
        try:
            fail("m")
        except urllib3.exceptions.MaxRetryError as inner:
            raise requests.ConnectionError(inner, response=object(), request=object()) from inner
    except requests.ConnectionError as outer:
        exc = outer
    terr.scrub_chain(exc)
    chain = list(terr._chain(exc))
    assert any(isinstance(e, urllib3.exceptions.MaxRetryError) for e in chain)
    for e in chain:
        for name in ("pool", "conn", "response", "request"):
            assert vars(e).get(name) is None, (e, name)
        tb = e.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_name == "fail":
                assert "local_pool" not in tb.tb_frame.f_locals
            tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert "in fail" in text and KEY not in text  # still printable, still redacted


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_a_bound_provider_closes_every_socket(server, no_gc, protocol):
    import importlib

    from modelprov.engine import bind
    from modelprov.types import ProviderConfig

    module, name = {
        "openai": ("modelprov.providers.openai_compat.openai", "OpenAIProvider"),
        "anthropic": ("modelprov.providers.anthropic.provider", "AnthropicProvider"),
        "ollama": ("modelprov.providers.ollama.provider", "OllamaProvider"),
    }[protocol]
    cls = getattr(importlib.import_module(module), name)
    config = ProviderConfig(name=protocol, api_key=KEY, base_url=server.base_url(protocol), read_timeout=10.0)
    provider = bind(cls(config), sleep=lambda s: None)
    first_text = {"openai": 3, "anthropic": 5, "ollama": 2}[protocol]  # units up to the second piece of text
    server.add_chat(protocol, "one two three four", stall_after=first_text)  # a stream the caller leaves half read
    stream = provider.stream("Hi", model="m")
    assert next(stream).text is not None
    server.add_error(400, protocol=protocol, message="bad request")  # an error the caller keeps
    with pytest.raises(E.InvalidRequestError) as info:
        provider.generate("Hi", model="m")
    kept = info.value
    assert server.open_connections == 2
    provider.close()
    assert server.wait_for_open_connections(0, timeout=1.0), server.open_connections
    assert stream is not None and kept is not None
