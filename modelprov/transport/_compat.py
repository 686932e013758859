"""Every use of a requests / urllib3 / http.client internal, in one place.

Each item below says why it is needed and which versions were checked
(read in their source and run by the test suite): urllib3 1.26.20 and 2.8.0
(the ``py39-urllib3v1`` tox env and the default one), requests 2.34.2,
CPython's ``http.client`` 3.9-3.13. If a release changes one of them, the
feature degrades to urllib3's own (slower) path instead of breaking: every
accessor returns ``None`` when what it expects is not there.

1. :class:`HTTPConnection` / :class:`HTTPSConnection` and their pools
   (subclassing urllib3's, installed through ``PoolManager.pool_classes_by_scheme``
   and ``HTTPConnectionPool.ConnectionCls``, both public attributes):

   * ``request()`` is where a connection learns which send it carries
     (:func:`.exchange.current`), so the deadline watchdog and ``abort()`` can
     shut its socket down while urllib3 is still reading the headers. Needed:
     urllib3 offers no hook between picking the connection and reading the
     response. ``request(method, url, body, headers, **kw)`` has this shape in
     1.26 and 2.x. ``connect()`` keeps the socket (``mp_sock``) because
     http.client sets ``sock`` to ``None`` when a response will close the
     connection, while the response still reads from it.
   * one write for a small body: http.client writes the header block and the
     body with two ``send()`` calls; holding the body back from ``request()``
     and appending it to the header block in ``send()`` saves a syscall and a
     TCP segment per call. Relies on http.client calling
     ``endheaders(message_body)`` then ``send(header_block)`` (3.9-3.13).
     Kept because the ``benchmarks/bench_transport.py`` loop measured it: two
     writes cost 2.2% more client CPU per JSON POST (6-7 us of ~230 us; median
     of 40 interleaved runs, three times), which with the adapter's fast paths
     (:class:`.net.Adapter`) keeps the transport's ratio to requests where it was.

2. :func:`bulk_chunked_source`: the http.client response and its buffered
   socket reader under a urllib3 response (``HTTPResponse._original_response``,
   ``._fp``, ``._decoder``; ``http.client.HTTPResponse._method``), for the bulk
   chunked reader of :mod:`.chunked`. Kept because the stream benchmark
   measured urllib3's ``read_chunked`` at 1.33x (OpenAI SSE) and 1.57x (Ollama
   NDJSON) the client CPU per stream chunk of the bulk reader (provider.stream,
   500 one-event chunks, median of 16 interleaved runs); without it the
   stream targets of ``benchmarks/run.py`` (<= 0.8x requests) fail.

3. :func:`read1_of`: on urllib3 1.26 (no ``HTTPResponse.read1``) the
   ``read1`` of the http.client response (``HTTPResponse._fp``), so a
   Content-Length or close-delimited stream yields each event as it arrives
   instead of waiting for a full read buffer. A correctness need (promptness),
   not a speed one; 2.x has the public ``read1``.

4. :func:`pool_is_closed`: whether a urllib3 ``HTTPConnectionPool`` was closed,
   read from its ``pool`` attribute (the queue of idle connections, which
   ``close()`` sets to ``None``; undocumented, same in 1.26.x and 2.x). Needed
   by the adapter's per-origin pool cache (:class:`.net.Adapter`): urllib3 has
   no public "closed" flag, and a pool evicted from the ``PoolManager`` or
   closed with the adapter must not be reused. If the attribute is missing the
   pool counts as closed: the cache then asks requests for the pool every time
   (its own, slower path) instead of reusing a dead one.

5. :class:`ElasticQueue`: our pools' ``QueueCls`` (a public class attribute of
   ``HTTPConnectionPool`` in 1.26 and 2.x, ``LifoQueue`` by default), so a pool
   follows the calls in flight. urllib3 sizes the queue of idle connections
   at ``maxsize`` (``pool_size``) and, when more calls than that run at once,
   closes every connection that comes back to a full queue ("Connection pool
   is full, discarding connection"): with 2,000 calls in flight and 256
   places, 1,744 connections are opened and closed per burst. This queue is
   never full; it relies on urllib3 calling ``put(conn, block=False)`` /
   ``get(block=..., timeout=...)`` only, filling it with ``maxsize`` ``None``
   placeholders at creation, and opening a new connection on ``queue.Empty``
   (1.26 and 2.x), and on ``queue.Queue``'s documented subclass hooks
   (``_init``, ``_qsize``, ``_put``, ``_get``). Connections beyond
   ``maxsize`` that stay idle for :data:`POOL_IDLE_SECONDS` are closed by one
   daemon thread (``modelprov-pool-reaper``) that runs only while some pool
   holds such a surplus. Nothing here changes when a pool holds at most
   ``maxsize`` connections, except a clock read per connection returned.
"""

import collections
import http.client
import os
import queue
import threading
import time
import weakref
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from urllib3 import connection as _u3conn
from urllib3 import connectionpool as _u3pool

from .exchange import current

__all__ = [
    "POOL_IDLE_SECONDS", "ElasticQueue", "HTTPConnection", "ONE_WRITE_MAX", "bulk_chunked_source", "close_pools", "install_pool_classes",
    "pool_is_closed", "read1_of", "trim_idle_pools",
]  # fmt: skip

#: Request bodies up to this size go out in the same write as the headers.
ONE_WRITE_MAX = 256 * 1024


# --------------------------------------------------------------------------
# 1. connection classes: the exchange hook and the one-write body
# --------------------------------------------------------------------------


class _ConnectionMixin:
    """Learns its exchange in ``request()``; sends a small body with the headers in one write."""

    #: The exchange (send) this connection carries now or carried last.
    mp_exchange: Any = None
    #: The socket an interrupted exchange shut down (reconnect before reusing it).
    mp_shut: Any = None
    #: The transport registry this connection is listed in.
    mp_registry: Any = None
    #: The socket of the last ``connect()``: http.client drops ``sock`` when a response says
    #: ``Connection: close`` (the response keeps reading from it), and it must stay reachable.
    mp_sock: Any = None
    _mp_body: Optional[bytes] = None
    _mp_tail: Optional[bytes] = None

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, *args: Any, **kwargs: Any) -> Any:
        exchange = current()
        if exchange is not None and exchange.attach(self):
            self.close()  # type: ignore[attr-defined]  # its socket was shut down: http.client reconnects on send
        if (
            type(body) is bytes
            and 0 < len(body) <= ONE_WRITE_MAX
            and not args
            and not kwargs.get("chunked")
            and headers is not None
            and "Content-Length" in headers
        ):
            self._mp_body = body
            try:
                return super().request(method, url, None, headers, **kwargs)  # type: ignore[misc]
            finally:
                self._mp_body = self._mp_tail = None
        return super().request(method, url, body, headers, *args, **kwargs)  # type: ignore[misc]

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.mp_sock = self.sock  # type: ignore[attr-defined]

    def endheaders(self, message_body: Any = None, **kwargs: Any) -> Any:
        if self._mp_body is not None and message_body is None:
            self._mp_tail, self._mp_body = self._mp_body, None
        return super().endheaders(message_body, **kwargs)  # type: ignore[misc]

    def send(self, data: Any) -> Any:
        tail = self._mp_tail
        if tail is not None and isinstance(data, bytes):
            self._mp_tail = None
            data = data + tail
        return super().send(data)  # type: ignore[misc]


class HTTPConnection(_ConnectionMixin, _u3conn.HTTPConnection):
    """urllib3's HTTP connection with the exchange hook and the one-write body."""


# --------------------------------------------------------------------------
# 5. pools that follow demand
# --------------------------------------------------------------------------

#: Seconds a connection beyond a pool's ``pool_size`` may stay idle before it is closed.
POOL_IDLE_SECONDS = 30.0


class ElasticQueue(queue.LifoQueue):  # type: ignore[type-arg]
    """A pool's idle connections, last in first out, never full (see item 5 of the module docstring).

    ``maxsize`` (the pool's ``pool_size``) becomes :attr:`keep`: the idle
    connections kept however long they idle. Each entry remembers when it
    came back; :meth:`trim` closes the oldest beyond :attr:`keep` that idled
    for :data:`POOL_IDLE_SECONDS`.
    """

    #: The clock that dates returned connections (monotonic seconds).
    clock: Callable[[], float] = time.monotonic

    def _init(self, maxsize: int) -> None:
        self.keep = max(0, maxsize)
        self.maxsize = 0  # never full: put() neither blocks nor raises queue.Full
        self.queue: Deque[Tuple[Any, float]] = collections.deque()  # type: ignore[assignment]
        self.watched = False  # listed for the reaper

    def _qsize(self) -> int:
        return len(self.queue)

    def _put(self, item: Any) -> None:
        self.queue.append((item, self.clock()))

    def _get(self) -> Any:
        item = self.queue.pop()[0]
        if self.watched and len(self.queue) <= self.keep:
            _WAKE.set()  # the surplus is gone (in use again, or the pool closed): let the reaper look
        return item

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        """Return ``item`` (a connection or a placeholder); never blocks, never raises ``queue.Full``."""
        super().put(item, block, timeout)
        if len(self.queue) > self.keep and not self.watched:
            _watch(self)

    @property
    def surplus(self) -> int:
        """Idle entries beyond :attr:`keep`."""
        return max(0, len(self.queue) - self.keep)

    def trim(self, now: Optional[float] = None, idle: Optional[float] = None) -> int:
        """Close the idle connections beyond :attr:`keep` that came back ``idle`` seconds or more before ``now``.

        ``idle`` defaults to :data:`POOL_IDLE_SECONDS`, ``now`` to :attr:`clock`.
        Returns how many entries were dropped; sockets are closed outside the lock.
        """
        now = self.clock() if now is None else now
        limit = POOL_IDLE_SECONDS if idle is None else idle
        dropped: List[Any] = []
        with self.mutex:
            entries = self.queue
            while len(entries) > self.keep and now - entries[0][1] >= limit:
                dropped.append(entries.popleft()[0])
        for conn in dropped:
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # pragma: no cover - closing an idle socket
                    pass
        return len(dropped)


_WATCHED: "weakref.WeakSet[ElasticQueue]" = weakref.WeakSet()
_REAPER_LOCK = threading.Lock()
_WAKE = threading.Event()
_reaper: Optional[threading.Thread] = None


def _watch(q: ElasticQueue) -> None:
    """List ``q`` for the reaper (it holds a surplus); start the reaper if it is not running."""
    global _reaper
    with _REAPER_LOCK:
        q.watched = True
        _WATCHED.add(q)
        if _reaper is not None:
            return
        _reaper = threading.Thread(target=_reap, name="modelprov-pool-reaper", daemon=True)
        thread = _reaper
    thread.start()


def trim_idle_pools(now: Optional[float] = None) -> int:
    """One reaper pass: trim every listed queue, unlist those without a surplus; returns how many remain listed."""
    with _REAPER_LOCK:
        queues = list(_WATCHED)
    for q in queues:
        q.trim(now)
    with _REAPER_LOCK:
        for q in queues:
            if not q.surplus:
                q.watched = False
                _WATCHED.discard(q)
        return len(_WATCHED)


def _reap() -> None:
    """The reaper thread: a pass every half idle period (or when a surplus is gone), until no surplus is left."""
    global _reaper
    while True:
        _WAKE.wait(POOL_IDLE_SECONDS / 2)
        _WAKE.clear()
        trim_idle_pools()
        with _REAPER_LOCK:
            if not _WATCHED:
                _reaper = None
                return


def close_pools(manager: Any) -> None:
    """Close every pool of a urllib3 ``PoolManager``, draining its idle connections now.

    ``PoolManager.clear()`` closes its pools in 1.26 but in 2.x only forgets them
    (their connections close when the pool is garbage collected); a closed pool
    also unlists its queue from the reaper. ``pools.keys()`` and ``pools.get()``
    (``RecentlyUsedContainer``) and ``HTTPConnectionPool.close()`` are public in both.
    """
    container = getattr(manager, "pools", None)
    if container is None:
        return
    for key in list(container.keys()):
        pool = container.get(key)
        if pool is not None:
            pool.close()


def _after_fork_in_child() -> None:
    global _REAPER_LOCK, _reaper
    _REAPER_LOCK, _reaper = threading.Lock(), None  # the parent's reaper thread does not exist here
    for q in list(_WATCHED):
        q.watched = False
    _WATCHED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _HTTPPool(_u3pool.HTTPConnectionPool):
    ConnectionCls = HTTPConnection
    QueueCls = ElasticQueue


_DEFAULT_CLASSES = {"http": _u3pool.HTTPConnectionPool, "https": _u3pool.HTTPSConnectionPool}
_POOL_CLASSES: Dict[str, Any] = {"http": _HTTPPool, "https": _u3pool.HTTPSConnectionPool}
if _u3pool.HTTPSConnectionPool.ConnectionCls is _u3conn.HTTPSConnection:  # the ssl module is available

    class HTTPSConnection(_ConnectionMixin, _u3conn.HTTPSConnection):
        """urllib3's HTTPS connection with the exchange hook and the one-write body."""

    class _HTTPSPool(_u3pool.HTTPSConnectionPool):
        ConnectionCls = HTTPSConnection
        QueueCls = ElasticQueue

    _POOL_CLASSES["https"] = _HTTPSPool


def install_pool_classes(manager: Any) -> bool:
    """Make a urllib3 ``PoolManager`` (or ``ProxyManager``) create our pools; False if it has its own.

    ``pool_classes_by_scheme`` is a public attribute in 1.26 and 2.x. A manager
    with other classes (SOCKS) is left alone: its calls still work, without the
    header-phase deadline interrupt and the one-write body.
    """
    classes = getattr(manager, "pool_classes_by_scheme", None)
    if not isinstance(classes, dict) or classes != _DEFAULT_CLASSES:
        return classes == _POOL_CLASSES
    manager.pool_classes_by_scheme = dict(_POOL_CLASSES)
    return True


# --------------------------------------------------------------------------
# 2. the bulk chunked reader's source
# --------------------------------------------------------------------------


def bulk_chunked_source(raw: Any) -> Optional[Tuple[http.client.HTTPResponse, Any]]:
    """``(http.client response, its buffered socket reader)`` when the bulk chunked reader may take ``raw``.

    It may when ``raw`` is a urllib3 response (1.26 or 2.x) reading straight
    from an ``http.client.HTTPResponse`` (``_original_response`` is ``_fp``),
    nothing was read yet (``chunk_left`` is still ``None``, no ``_decoder``),
    the body is not content-encoded and the request was not a HEAD
    (``http.client.HTTPResponse._method``). ``None`` otherwise: the caller
    uses urllib3's ``read_chunked``.
    """
    original = getattr(raw, "_original_response", None)
    if not isinstance(original, http.client.HTTPResponse) or type(original) is not http.client.HTTPResponse:
        return None  # exactly http.client's: a subclass may read differently
    if id(getattr(raw, "_fp", None)) != id(original):  # urllib3 reads straight from it (no wrapper)
        return None
    fp = original.fp
    if fp is None or not hasattr(fp, "read1") or not hasattr(fp, "readline"):
        return None
    if getattr(raw, "chunk_left", 0) is not None or getattr(raw, "_decoder", None) is not None:
        return None  # urllib3 started reading it, or the attribute is unknown: not ours
    headers = getattr(raw, "headers", None)
    encoding = headers.get("content-encoding", "") if headers is not None else ""
    if encoding.strip().lower() not in ("", "identity") or getattr(original, "_method", None) == "HEAD":
        return None
    return original, fp


# --------------------------------------------------------------------------
# 3. read1 on urllib3 1.26
# --------------------------------------------------------------------------


def read1_of(raw: Any) -> Optional[Callable[[int], bytes]]:
    """A ``read1(size)`` returning what has arrived, or ``None`` (then read with ``raw.stream()``).

    urllib3 2.x: its public ``HTTPResponse.read1`` (decoding included). 1.26:
    the http.client response's ``read1`` (``raw._fp``), only for a body that
    is not content-encoded (the decoder lives in urllib3).
    """
    read1 = getattr(raw, "read1", None)
    if read1 is not None:
        return lambda size: read1(size, decode_content=True)  # type: ignore[no-any-return,unused-ignore]
    fp = getattr(raw, "_fp", None)
    headers = getattr(raw, "headers", None) or {}
    if fp is not None and hasattr(fp, "read1") and not headers.get("content-encoding"):
        return fp.read1  # type: ignore[no-any-return]
    return None


# --------------------------------------------------------------------------
# 4. a closed connection pool
# --------------------------------------------------------------------------


def pool_is_closed(pool: Any) -> bool:
    """True when urllib3's ``HTTPConnectionPool.close()`` ran on ``pool`` (or it has no ``pool`` queue).

    ``close()`` sets the pool's ``pool`` attribute (its idle-connection queue)
    to ``None`` in urllib3 1.26.x and 2.x; there is no public flag.
    """
    return getattr(pool, "pool", None) is None
