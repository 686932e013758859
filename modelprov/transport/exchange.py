"""``Exchange``: one send's link to the connection that carries it.

requests and urllib3 pick the connection inside ``HTTPAdapter.send``; the
transport never sees it before the headers are read. So the transport makes
an :class:`Exchange` per send and hands it over through :func:`sending` (a
thread-local set for the duration of the adapter call, in the sending
thread); the connection classes of :mod:`._compat` call :meth:`Exchange.attach`
from their ``request()``. From then on the exchange knows the socket, and

* the deadline watchdog calls :meth:`Exchange.expire` at the deadline: the
  socket is shut down, the pending read (headers, JSON body or stream)
  returns at once and the transport raises ``ProviderTimeoutError``;
* :meth:`Exchange.abort` (``Response.abort()`` from any thread) does the same
  for a caller who stops a stream;
* the transport's :class:`ConnectionRegistry` learns every connection it
  used, so ``close()`` can shut them all, pooled or checked out.

A connection whose socket an exchange shut down is reconnected before its
next request (:meth:`Exchange.attach` tells it), so an interruption that
races with the connection going back to the pool never breaks another call.
Standard library only.
"""

import socket
import threading
import weakref
from typing import Any, List, Optional

__all__ = ["ABORTED", "DONE", "EXPIRED", "LIVE", "ConnectionRegistry", "Exchange", "current", "sending", "shutdown_socket", "socket_of"]

LIVE, DONE, EXPIRED, ABORTED = 0, 1, 2, 3

#: One lock for every exchange/connection binding: each critical section is a few attribute moves.
_LOCK = threading.Lock()
_local = threading.local()


def socket_of(conn: Any) -> Any:
    """A connection's socket: ``sock``, else the one its last ``connect()`` made (see ``_compat``)."""
    sock = getattr(conn, "sock", None)
    return sock if sock is not None else getattr(conn, "mp_sock", None)


def shutdown_socket(sock: Any) -> None:
    """Shut ``sock`` down both ways (wakes a blocked ``recv``; ``close`` alone does not)."""
    if isinstance(sock, socket.socket):
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the base method: an SSLSocket's would unwrap first
        except (OSError, ValueError):
            pass


class ConnectionRegistry:
    """The connections one transport used (weakly held), so ``close()`` can end them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: "weakref.WeakSet[Any]" = weakref.WeakSet()

    def add(self, conn: Any) -> None:
        with self._lock:
            self._conns.add(conn)

    def __len__(self) -> int:
        with self._lock:
            return len(self._conns)

    def close_all(self) -> int:
        """Shut down and close every connection still alive (pooled or in use); returns how many."""
        with self._lock:
            conns: List[Any] = list(self._conns)
            self._conns = weakref.WeakSet()
        for conn in conns:
            shutdown_socket(socket_of(conn))
            try:
                conn.close()
            except Exception:  # closing must never raise
                pass
        return len(conns)


class Exchange:
    """The state of one send: its connection, and whether it ended, expired or was aborted."""

    __slots__ = ("conn", "entry", "registry", "state")

    def __init__(self, registry: Optional[ConnectionRegistry] = None) -> None:
        self.conn: Any = None
        self.state = LIVE
        self.entry: Any = None  # the watchdog entry, if the call has a deadline
        self.registry = registry

    # -- called from the connection (sending thread) --------------------------

    def attach(self, conn: Any) -> bool:
        """Bind to ``conn`` (it is about to send our request); True if its socket was shut by an earlier exchange.

        A True answer means the connection must reconnect before sending.
        """
        with _LOCK:
            self.conn = conn
            conn.mp_exchange = self
            stale = conn.mp_shut is not None and conn.mp_shut is conn.sock
            if stale:
                conn.mp_shut = None
        registry = self.registry
        if registry is not None and conn.mp_registry is not registry:
            conn.mp_registry = registry
            registry.add(conn)
        return stale

    def adopt(self, conn: Any) -> None:
        """Bind to a connection found after the fact (one not made by our connection classes)."""
        if conn is None or self.conn is not None or not hasattr(conn, "sock"):
            return
        with _LOCK:
            self.conn = conn
        if self.registry is not None:
            self.registry.add(conn)

    # -- called by the transport, the watchdog, or another thread -------------

    def finish(self) -> int:
        """The exchange is over (body read, or response released); returns the final state."""
        with _LOCK:
            if self.state == LIVE:
                self.state = DONE
            state = self.state
            self.conn = None  # nothing left to interrupt: hold no connection
        return state

    def _kill(self, why: int) -> None:
        with _LOCK:
            if self.state != LIVE:
                return
            self.state = why
            conn = self.conn
            if conn is None:
                return
            mine = getattr(conn, "mp_exchange", self) is self  # the connection has not moved on to another request
            sock = socket_of(conn)
            if mine and sock is not None:
                if hasattr(conn, "mp_shut"):
                    conn.mp_shut = sock
                shutdown_socket(sock)  # under the lock: a new attach() waits and then sees mp_shut

    def expire(self) -> None:
        """The deadline passed: interrupt whatever read is pending (the watchdog calls this)."""
        self._kill(EXPIRED)

    def abort(self) -> None:
        """The caller stopped the response: interrupt whatever read is pending."""
        self._kill(ABORTED)

    @property
    def expired(self) -> bool:
        """True when the deadline interrupted this exchange."""
        return self.state == EXPIRED


def sending(exchange: Optional[Exchange]) -> None:
    """Make ``exchange`` the one the current thread is sending (``None`` when the adapter call returns)."""
    _local.exchange = exchange


def current() -> Optional[Exchange]:
    """The exchange the current thread is sending, if any (read by the connection classes)."""
    return getattr(_local, "exchange", None)
