"""Connection pools follow demand: no "pool is full, discarding connection" churn, surplus closed after idling.

The queue itself is tested with fake connections and an injected clock; the pool
over real loopback sockets (FakeServer) with streamed responses held open, so
hundreds of connections are checked out at once deterministically, and with a
concurrent burst through the async bridge.
"""

import asyncio
import logging
import queue
import time

import pytest

from modelprov import Client
from modelprov.async_bridge import AsyncBridge
from modelprov.deadline import Deadline
from modelprov.testing import FakeServer
from modelprov.transport import _compat
from modelprov.transport._compat import POOL_IDLE_SECONDS, ElasticQueue, trim_idle_pools
from modelprov.transport.requests_transport import RequestsTransport
from modelprov.types import HTTPRequest

KEY = "sk-pool-test-0123456789"


class FakeConn:
    def __init__(self, name):
        self.name, self.closed = name, False

    def close(self):
        self.closed = True


# ------------------------------------------------------------------ the queue
def test_queue_is_never_full_and_hands_back_the_most_recent_first():
    q = ElasticQueue(2)
    for _ in range(2):
        q.put(None)  # urllib3 fills a new pool with maxsize placeholders
    conns = [FakeConn(i) for i in range(5)]
    for c in conns:
        q.put(c, block=False)  # a plain LifoQueue(2) raises queue.Full here
    assert (q.qsize(), q.full(), q.keep, q.surplus) == (7, False, 2, 5)
    assert [q.get(block=False) for _ in range(5)] == conns[::-1]
    assert q.get(block=False) is None and q.get(block=False) is None
    with pytest.raises(queue.Empty):  # urllib3 opens a new connection on Empty
        q.get(block=False)


def test_trim_closes_only_the_surplus_that_idled_long_enough():
    now = [1000.0]
    q = ElasticQueue(2)
    q.clock = lambda: now[0]
    conns = [FakeConn(i) for i in range(6)]
    for i, c in enumerate(conns):
        now[0] = 1000.0 + i  # conns[0] came back first, conns[5] last
        q.put(c)
    assert q.trim(now=1000.0 + POOL_IDLE_SECONDS - 0.5) == 0  # nothing idle long enough yet
    assert q.trim(now=1002.0 + POOL_IDLE_SECONDS) == 3  # conns 0-2 idled POOL_IDLE_SECONDS or more
    assert [c.closed for c in conns] == [True, True, True, False, False, False]
    assert q.trim(now=1e9) == 1 and conns[3].closed  # never below keep, however long they idle
    assert q.qsize() == 2 and not conns[4].closed and not conns[5].closed
    assert q.trim(now=1e9, idle=0) == 0


def test_trim_drops_placeholders_without_closing_anything():
    q = ElasticQueue(1)
    q.clock = lambda: 0.0
    q.put(None)
    q.put(None)
    assert q.trim(now=POOL_IDLE_SECONDS) == 1 and q.qsize() == 1


# ------------------------------------------------------------ over sockets
@pytest.fixture
def server():
    with FakeServer() as srv:
        srv.set_default("openai", "hello")
        yield srv


@pytest.fixture
def discards(caplog):
    caplog.set_level(logging.WARNING, logger="urllib3")
    yield lambda: [r for r in caplog.records if "discarding connection" in r.getMessage()]


def open_streams(transport, n):
    request = HTTPRequest("POST", "/chat/completions", json={"model": "m", "stream": True,
                          "messages": [{"role": "user", "content": "hi"}]}, stream=True)  # fmt: skip
    return [transport.send(request, Deadline(timeout=10)) for _ in range(n)]


def finish(responses):
    for resp in responses:
        assert b"hello" in b"".join(resp.iter_bytes())
        resp.close()


def the_pool(transport):
    """The one urllib3 pool the transport's requests went through."""
    pools = list(transport.adapter._mp_pools.values())  # the adapter's per-origin cache (see net.Adapter)
    assert len(pools) == 1
    return pools[0]


def test_300_connections_at_once_all_go_back_to_a_pool_of_4_and_are_reused(server, discards):
    n = 300
    transport = RequestsTransport(server.base_url("openai"), provider="openai", pool_size=4)
    try:
        held = open_streams(transport, n)  # each holds its connection: n checked out at once
        assert server.accepted == n
        finish(held)
        assert discards() == []
        pool = the_pool(transport)
        assert pool.pool.qsize() == n and pool.pool.surplus == n - 4
        finish(open_streams(transport, n))  # the next burst reuses every one of them
        assert server.accepted == n and discards() == []
        assert server.wait_for_open_connections(n)

        assert pool.pool.trim(now=time.monotonic() + POOL_IDLE_SECONDS) == n - 4  # the idle surplus closes
        assert server.wait_for_open_connections(4, timeout=5) and pool.pool.qsize() == 4
        finish(open_streams(transport, 4))
        assert server.accepted == n  # the 4 kept are still good
    finally:
        transport.close()


def test_the_reaper_runs_only_while_a_pool_holds_a_surplus(server):
    transport = RequestsTransport(server.base_url("openai"), provider="openai", pool_size=2)
    try:
        finish(open_streams(transport, 6))
        pool = the_pool(transport)
        idle = pool.pool
        assert idle.watched and idle in _compat._WATCHED and idle.surplus == 4
        reaper = _compat._reaper
        assert reaper is not None and reaper.name == "modelprov-pool-reaper" and reaper.daemon
    finally:
        transport.close()  # closes the pool, draining it: the reaper is woken and finds no surplus left
    assert pool.pool is None and idle.qsize() == 0
    trim_idle_pools(now=time.monotonic() + 2 * POOL_IDLE_SECONDS)  # other tests' leftovers, if any
    _compat._WAKE.set()  # in case the reaper looked before that trim
    reaper.join(10)
    assert not reaper.is_alive() and not idle.watched and _compat._reaper is None


def test_a_concurrent_burst_through_the_bridge_logs_no_pool_full_warning(server, discards):
    n = 300
    server.set_default("openai", "hello", delay=0.05)  # a short real wait so that calls overlap
    client = Client(providers={"openai": {"api_key": KEY, "base_url": server.base_url("openai"), "pool_size": 4}})
    bridge = AsyncBridge(max_workers=n, thread_name_prefix="poolburst")
    try:

        async def burst():
            return await asyncio.gather(*(bridge.run(client.complete, "openai/m", "hi") for _ in range(n)))

        assert [r.text for r in asyncio.run(burst())] == ["hello"] * n
        assert bridge.stats().peak_workers > 4
        assert server.accepted > 4 and discards() == []
        assert server.open_connections == server.accepted  # every connection opened is kept, none closed
    finally:
        client.close()
        bridge.shutdown()
