"""The call's deadline holds at the socket: a trickling server cannot stretch it.

A server that sends one byte every 50 ms never lets a socket read time out,
so only the wall-clock deadline stops it: the watchdog shuts the socket down
at the deadline and the transport raises ``ProviderTimeoutError`` (headers,
JSON bodies and streams alike), leaves the pool usable, and costs one heap
entry per call that is gone when the call ends. Real-time tests (about one
second each) are marked ``slow``.
"""

import threading
import time

import pytest

from modelprov import exceptions as E
from modelprov.deadline import Deadline
from modelprov.testing import FakeServer
from modelprov.transport import RequestsTransport
from modelprov.transport.exchange import ABORTED, DONE, EXPIRED, ConnectionRegistry, Exchange
from modelprov.transport.watchdog import Watchdog
from modelprov.types import HTTPRequest

POST = HTTPRequest("POST", "/chat/completions", json={"model": "m"})
STREAM = HTTPRequest("POST", "/chat/completions", json={"model": "m", "stream": True}, stream=True)
JSON = {"Content-Type": "application/json"}
SSE = {"Content-Type": "text/event-stream"}
BODY_5S = b'{"text": "' + b"x" * 90 + b'"}'  # 100 bytes, one every 50 ms: 5 s
EVENTS_5S = [b"data: %02d\n\n" % i for i in range(10)]  # 100 bytes of events, trickled: 5 s


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def dog(monkeypatch):
    """A watchdog of this test's own (the process-wide one may serve transports other tests left open)."""
    mine = Watchdog()
    monkeypatch.setattr("modelprov.transport.requests_transport.watchdog", lambda: mine)
    yield mine
    mine.release()


def transport(srv, **kw):
    kw.setdefault("provider", "loop")
    kw.setdefault("read_timeout", 30.0)  # far longer than any test: only the deadline can end them
    return RequestsTransport(srv.url + "/v1", **kw)


def timed(fn):
    start = time.monotonic()
    try:
        fn()
    except E.ModelProvError as exc:
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


def read_stream(t, deadline):
    return b"".join(t.send(STREAM, deadline).iter_bytes())


CASES = {
    "headers": (dict(body=b'{"ok": true}', headers=JSON, trickle=0.05, trickle_headers=True), POST, "waiting for"),
    "json-body": (dict(body=BODY_5S, headers=JSON, trickle=0.05), POST, "reading the response body"),
    "stream-body": (dict(chunks=EVENTS_5S, headers=SSE, trickle=0.05), STREAM, "streaming from"),
    "stream-close-delimited": (dict(chunks=EVENTS_5S, headers=SSE, trickle=0.05, chunked=False), STREAM, "streaming from"),
    "stream-chunk-delay": (dict(chunks=EVENTS_5S * 10, headers=SSE, chunk_delay=0.05), STREAM, "streaming from"),
    "stream-headers-straddle": (dict(chunks=EVENTS_5S, headers=SSE, trickle=0.05, trickle_headers=True), STREAM, "waiting for"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_trickling_server_cannot_stretch_the_deadline(server, dog, case):
    reply, request, during = CASES[case]
    server.add_raw(**reply)
    t = transport(server)

    def call():
        response = t.send(request, Deadline(1.0))
        if request.stream:
            for _ in response.iter_bytes():
                pass
        else:
            response.json()

    exc, took = timed(call)
    assert isinstance(exc, E.ProviderTimeoutError), exc
    assert 0.95 <= took < 1.25, took
    assert "deadline of 1s passed while " + during in str(exc) and exc.provider == "loop"
    # the interrupted connection is gone; the pool still works and the watchdog holds nothing
    server.set_default("openai", "after")
    assert t.send(POST, Deadline(5.0)).json()["choices"][0]["message"]["content"] == "after"
    assert server.wait_for_open_connections(1)
    assert dog.pending() == 0
    t.close()


@pytest.mark.slow
def test_urllib3_1_26_and_2_both_interrupt_a_read_pending_in_another_thread(server):
    # the stream's reader blocks in another thread; the deadline still ends it there
    server.add_raw(chunks=[b"data: 1\n\n"], headers=SSE, stall_after=1)
    t = transport(server)
    response = t.send(STREAM, Deadline(0.5))
    outcome = []

    def reader():
        try:
            outcome.extend(response.iter_bytes())
        except E.ProviderTimeoutError as exc:
            outcome.append(exc)

    start = time.monotonic()
    thread = threading.Thread(target=reader)
    thread.start()
    thread.join(2.0)
    assert not thread.is_alive() and time.monotonic() - start < 1.0
    assert outcome[0] == b"data: 1\n\n" and isinstance(outcome[-1], E.ProviderTimeoutError)
    t.close()


def test_a_passed_deadline_sends_nothing(server):
    now = [0.0]
    deadline = Deadline(1.0, clock=lambda: now[0])
    now[0] = 1.5
    t = transport(server)
    with pytest.raises(E.ProviderTimeoutError, match="deadline of 1s passed"):
        t.send(POST, deadline)
    assert server.requests == []
    t.close()


def test_calls_that_finish_in_time_leave_nothing_scheduled(server, dog):
    server.set_default("openai", "quick")
    t = transport(server)
    for _ in range(20):
        assert t.send(POST, Deadline(30.0)).json()["object"] == "chat.completion"
    with t.send(STREAM, Deadline(30.0)) as response:
        assert dog.pending() == 1  # a stream holds its entry until released
        b"".join(response.iter_bytes())
    assert dog.pending() == 0
    assert server.accepted == 1  # no connection was sacrificed
    t.close()


def test_no_deadline_schedules_nothing(server, dog):
    server.set_default("openai", "quick")
    t = transport(server)
    t.send(POST, Deadline()).json()
    assert t._watchdog is None and dog.pending() == 0
    t.close()


def test_the_watchdog_thread_stops_with_the_last_transport(server, dog):
    server.set_default("openai", "quick")
    first, second = transport(server), transport(server)
    first.send(POST, Deadline(10.0)).json()
    second.send(POST, Deadline(10.0)).json()
    assert dog.running
    first.close()
    assert dog.running
    second.close()
    assert not dog.running and dog._thread is None


# -------------------------------------------------------------- the watchdog
def test_watchdog_runs_callbacks_in_order_and_skips_cancelled_ones():
    dog = Watchdog()
    dog.retain()
    ran = []
    done = threading.Event()
    base = time.monotonic()
    dog.schedule(base + 0.06, lambda: ran.append("late") or done.set())
    cancelled = dog.schedule(base + 0.02, lambda: ran.append("cancelled"))
    dog.schedule(base + 0.04, lambda: ran.append("early"))
    dog.cancel(cancelled)
    assert done.wait(2.0)
    assert ran == ["early", "late"]
    dog.release()
    assert not dog.running


def test_a_restarted_watchdog_runs_one_thread():
    dog = Watchdog()
    far = time.monotonic() + 3600
    dog.retain()
    dog.schedule(far, lambda: None)
    old = dog._thread
    dog.release()
    dog.retain()
    dog.schedule(far, lambda: None)  # restarted at once
    new = dog._thread
    old.join(1.0)
    assert new is not old and not old.is_alive() and new.is_alive()
    dog.release()
    assert not new.is_alive()


def test_watchdog_compacts_cancelled_entries():
    dog = Watchdog()
    dog.retain()
    far = time.monotonic() + 3600
    entries = [dog.schedule(far + i, lambda: None) for i in range(2000)]
    for entry in entries[:1990]:
        dog.cancel(entry)
    assert dog.pending() == 10 and len(dog._heap) < 1000  # rebuilt instead of growing
    dog.release()


# -------------------------------------------------------------- the exchange
class FakeSocket:
    def __init__(self):
        self.shut = False

    def shutdown(self, how):
        self.shut = True


class FakeConnection:
    mp_exchange = mp_shut = mp_registry = mp_sock = None

    def __init__(self):
        self.sock = FakeSocket()


def test_an_expired_exchange_shuts_its_connection_only_while_it_owns_it(monkeypatch):
    import socket

    monkeypatch.setattr("modelprov.transport.exchange.shutdown_socket", lambda sock: sock.shutdown(socket.SHUT_RDWR))
    registry = ConnectionRegistry()
    conn = FakeConnection()
    first = Exchange(registry)
    assert first.attach(conn) is False and len(registry) == 1
    assert first.finish() == DONE
    first.expire()  # too late: nothing happens
    assert not conn.sock.shut and first.state == DONE

    second = Exchange(registry)
    second.attach(conn)
    second.expire()
    assert conn.sock.shut and second.expired and conn.mp_shut is conn.sock
    assert Exchange(registry).attach(conn) is True  # the next send on it reconnects first
    third = Exchange(registry)
    third.abort()
    assert third.state == ABORTED


def test_an_exchange_that_moved_on_is_not_shut():
    conn = FakeConnection()
    old, new = Exchange(), Exchange()
    old.attach(conn)
    new.attach(conn)  # the connection carries another request now
    old.expire()
    assert old.state == EXPIRED and not conn.sock.shut


# ------------------------------------------------------- through the Client
@pytest.mark.slow
@pytest.mark.parametrize("case", ["json-body", "stream-body", "stream-headers-straddle"])
def test_client_timeout_holds_against_a_trickling_server(server, case):
    from modelprov import Client

    faults = {"json-body": dict(trickle=0.05), "stream-body": dict(trickle=0.05),
              "stream-headers-straddle": dict(trickle=0.05, trickle_headers=True)}[case]  # fmt: skip
    server.add_chat("openai", "a long answer " * 10, **faults)
    client = Client(timeout=1.0, providers={"openai": {"api_key": "sk-test-0123456789", "base_url": server.base_url("openai")}})
    try:
        if case == "json-body":
            exc, took = timed(lambda: client.complete("openai/m", "Hi"))
        else:
            exc, took = timed(lambda: list(client.stream("openai/m", "Hi")))
    finally:
        client.close()
    assert isinstance(exc, E.ProviderTimeoutError), exc  # never a ValidationError or a connection error
    assert 0.95 <= took < 1.25, took
    assert server.wait_for_open_connections(0, timeout=1.0)
