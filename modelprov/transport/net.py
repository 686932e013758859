"""Connection plumbing behind :mod:`modelprov.transport`.

* :func:`make_adapter` / :func:`make_session`: one ``requests.Session`` per
  transport with an ``HTTPAdapter`` sized from ``pool_size``, urllib3 retries
  off, optionally a ``truststore`` SSL context (never ``inject_into_ssl``).
  For the transport's own direct requests the adapter looks the pool up once
  per origin and builds a lean ``requests.Response`` (see :class:`Adapter`).
* :func:`resolve_settings`: proxies, ``verify`` and ``cert`` for one
  scheme+host, from explicit settings first and requests' environment
  conventions second (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY``,
  ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``); loopback hosts bypass an
  environment proxy; ``~/.netrc`` is never read.
* :func:`iter_raw`, :func:`drain`, :func:`release`, :func:`abort_raw`: prompt
  streaming reads from a urllib3 response (chunked bodies through the bulk
  reader of :mod:`._transport_chunked`), finishing a body briefly so its
  connection is reused, returning the connection to the pool, and unblocking
  a read pending in another thread. Works on urllib3 1.26 and 2.x.
"""

import datetime
import ipaddress
import os
import socket
import ssl
import time
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies, select_proxy, should_bypass_proxies
from urllib3 import connection as _u3conn
from urllib3 import connectionpool as _u3pool
from urllib3.util.retry import Retry

from .chunked import iter_chunked
from ..exceptions import ConfigurationError

__all__ = [
    "ConnectionSettings",
    "abort_raw",
    "drain",
    "find_socket",
    "is_loopback",
    "iter_raw",
    "make_adapter",
    "make_session",
    "release",
    "resolve_settings",
]

VerifyType = Union[bool, str]
CertType = Union[str, Tuple[str, str], None]
ProxyType = Union[str, Mapping[str, str], None]

#: Bytes asked for per read when the body is not chunked.
READ_SIZE = 64 * 1024
_NO_TIME = datetime.timedelta(0)


class ConnectionSettings(NamedTuple):
    """What the transport passes to the adapter for one scheme+host."""

    #: ``proxies`` argument for ``HTTPAdapter.send`` (``{}`` = direct).
    proxies: Dict[str, str]
    #: ``True``/``False`` or a CA bundle path.
    verify: VerifyType
    #: Client certificate path, or ``(cert, key)`` paths, or ``None``.
    cert: CertType
    #: The proxy URL actually used, or ``None`` for a direct connection.
    proxy: Optional[str]


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``*.localhost``, 127.0.0.0/8 and ``::1``."""
    h = (host or "").strip().strip("[]").lower().rstrip(".")
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def resolve_settings(
    url: str,
    host: str,
    *,
    proxy: ProxyType,
    verify: Optional[VerifyType],
    cert: CertType,
    trust_env: bool,
) -> ConnectionSettings:
    """Resolve proxies/verify/cert for ``url`` once (the caller caches per scheme+host).

    An explicit ``proxy`` is used for every host, loopback included. Otherwise,
    with ``trust_env``, the environment's proxy applies unless ``NO_PROXY``
    matches or the host is loopback. An explicit ``verify`` (even ``True``)
    wins over ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``.
    """
    if proxy:
        proxies = dict(proxy) if isinstance(proxy, Mapping) else {"http": proxy, "https": proxy}
    elif trust_env and not is_loopback(host) and not should_bypass_proxies(url, no_proxy=None):
        proxies = get_environ_proxies(url, no_proxy=None)
    else:
        proxies = {}
    chosen = select_proxy(url, proxies) if proxies else None
    scheme = url.split(":", 1)[0].lower()
    final_proxies = {scheme: chosen} if chosen else {}
    if verify is None:
        env_ca = None
        if trust_env:
            env_ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        verify = env_ca or True
    return ConnectionSettings(final_proxies, verify, cert, chosen)


#: Request bodies up to this size go out in the same write as the headers.
ONE_WRITE_MAX = 256 * 1024


class _OneWriteMixin:
    """Send a small ``bytes`` body in the same ``sendall`` as the request headers.

    urllib3 and ``http.client`` write the header block and the body separately;
    on a small JSON POST that second syscall (and TCP segment) is a large part
    of the client's CPU. Works with urllib3 1.26 and 2.x: the body is held back
    from ``request()`` and appended to the header block when it is sent.
    """

    _mp_body: Optional[bytes] = None
    _mp_tail: Optional[bytes] = None

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, *args: Any, **kwargs: Any) -> Any:
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


class _HTTPConnection(_OneWriteMixin, _u3conn.HTTPConnection):
    pass


class _HTTPPool(_u3pool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


_POOL_CLASSES: Dict[str, Any] = {"http": _HTTPPool, "https": _u3pool.HTTPSConnectionPool}
if _u3pool.HTTPSConnectionPool.ConnectionCls is _u3conn.HTTPSConnection:  # ssl available

    class _HTTPSConnection(_OneWriteMixin, _u3conn.HTTPSConnection):
        pass

    class _HTTPSPool(_u3pool.HTTPSConnectionPool):
        ConnectionCls = _HTTPSConnection

    _POOL_CLASSES["https"] = _HTTPSPool


class Adapter(HTTPAdapter):
    """``HTTPAdapter`` whose direct pools send small bodies with the headers in one write.

    Requests the transport prepares carry ``mp_origin`` (their scheme and
    host). For those, on a direct connection, the pool is looked up once per
    origin and TLS settings instead of per request, the URL sent is the path
    without a proxy lookup, and the ``requests.Response`` is built without
    the cookie extraction and charset sniffing the transport never uses.
    Anything else sent through the session gets requests' own behaviour.
    """

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        """Create the pool manager, then switch it to the one-write connection classes."""
        self._mp_pools: Dict[Any, Any] = {}
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        classes = getattr(self.poolmanager, "pool_classes_by_scheme", None)
        if isinstance(classes, dict) and set(classes) == {"http", "https"}:
            self.poolmanager.pool_classes_by_scheme = dict(_POOL_CLASSES)

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        """The pool for ``request``; cached per origin, ``verify`` and ``cert`` for the transport's direct requests."""
        origin = getattr(request, "mp_origin", None)
        if origin is None or proxies:
            return super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        key = (origin, verify, cert)
        pool = self._mp_pools.get(key)
        if pool is None or pool.pool is None:  # first use, or closed (adapter closed, pool evicted)
            pool = super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
            self._mp_pools[key] = pool
        return pool

    def request_url(self, request: Any, proxies: Any) -> str:
        """The URL to send: the path for the transport's direct requests (no proxy to consult)."""
        if proxies or getattr(request, "mp_origin", None) is None:
            return super().request_url(request, proxies)
        return request.path_url  # type: ignore[no-any-return]

    def build_response(self, req: Any, resp: Any) -> requests.Response:
        """A ``requests.Response``; for the transport's requests without cookies and charset sniffing."""
        if getattr(req, "mp_origin", None) is None:
            return super().build_response(req, resp)
        response = requests.Response.__new__(requests.Response)
        response._content = False
        response._content_consumed = False
        response._next = None
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.raw = resp
        response.url = req.url
        response.encoding = None
        response.history = []
        response.reason = resp.reason
        response.cookies = RequestsCookieJar()
        response.elapsed = _NO_TIME
        response.request = req
        response.connection = self
        return response

    def close(self) -> None:
        """Close every pool (the pool cache is emptied too)."""
        self._mp_pools.clear()
        super().close()


class TruststoreAdapter(Adapter):
    """An ``HTTPAdapter`` whose pools (direct and proxied) use a given SSL context."""

    def __init__(self, ssl_context: ssl.SSLContext, **kwargs: Any) -> None:
        self._ssl_context = ssl_context  # set before HTTPAdapter calls init_poolmanager
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        """Create the pool manager with our SSL context."""
        pool_kwargs.setdefault("ssl_context", self._ssl_context)
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """Create a proxy manager with our SSL context."""
        proxy_kwargs.setdefault("ssl_context", self._ssl_context)
        return super().proxy_manager_for(proxy, **proxy_kwargs)


def _truststore_context() -> ssl.SSLContext:
    try:
        import truststore  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ConfigurationError(
            "use_truststore=True needs the truststore package: pip install truststore",
            hint="pip install truststore, or set use_truststore=False",
        ) from exc
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def make_adapter(pool_size: int, use_truststore: bool = False) -> HTTPAdapter:
    """An adapter with ``pool_size`` connections per host and urllib3 retries off."""
    size = max(1, int(pool_size))
    kwargs: Dict[str, Any] = dict(pool_connections=size, pool_maxsize=size, max_retries=Retry(0, read=False))
    if use_truststore:
        return TruststoreAdapter(_truststore_context(), **kwargs)
    return Adapter(**kwargs)


def make_session(adapter: HTTPAdapter) -> requests.Session:
    """A session that never consults the environment or ``~/.netrc`` by itself."""
    session = requests.Session()
    session.trust_env = False  # no netrc auth, no per-request env merging
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# --------------------------------------------------------------------------
# reading, releasing, aborting
# --------------------------------------------------------------------------


def _iter_read1(read1: Any, size: int, **kw: Any) -> Iterator[bytes]:
    while True:
        data = read1(size, **kw)
        if not data:
            return
        yield data


def iter_raw(raw: Any, size: int = READ_SIZE, join: Optional[List[bool]] = None) -> Iterator[bytes]:
    """Yield decoded body bytes as soon as they arrive (not ``size`` at a time).

    Chunked bodies yield one item per HTTP chunk (the bulk reader of
    :mod:`._transport_chunked`, else urllib3's ``read_chunked``); once
    ``join[0]`` is true the bulk reader joins the chunks of one read. Other
    bodies use ``read1`` (urllib3 2.x, or ``http.client``'s on urllib3 1.26
    when not compressed).
    """
    if getattr(raw, "chunked", False) and raw.supports_chunked_reads():
        fast = iter_chunked(raw, size, join)
        if fast is not None:
            return fast
        return raw.read_chunked(None, decode_content=True)
    read1 = getattr(raw, "read1", None)
    if read1 is not None:
        return _iter_read1(read1, size, decode_content=True)
    fp = getattr(raw, "_fp", None)
    headers = getattr(raw, "headers", None) or {}
    if fp is not None and hasattr(fp, "read1") and not headers.get("content-encoding"):
        return _iter_read1(fp.read1, size)
    return raw.stream(size, decode_content=True)


def drain(raw: Any, it: Iterator[bytes], timeout: float, limit: int) -> bool:
    """Read the rest of a body through ``it`` for at most ``timeout`` seconds and ``limit`` bytes.

    For a stream whose protocol already ended: what is left is normally the
    final zero-length chunk, already received or on its way. True when the
    body was read to its end (the connection can go back to the pool); False
    when the time or byte budget ran out (the caller closes the connection).
    May raise what a read raises. The socket's timeout is restored before
    urllib3 may pool the connection again.
    """
    original = getattr(raw, "_original_response", None)
    if original is None:
        return False
    if original.isclosed():
        return True
    sock = find_socket(raw)
    if sock is None:
        return False
    old = sock.gettimeout()
    deadline = time.monotonic() + timeout
    has_pool = hasattr(raw, "_pool")
    pool = raw._pool if has_pool else None
    got = 0
    try:
        if has_pool:
            raw._pool = None  # urllib3 releases at the end of its reader: not before our timeout is back
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            sock.settimeout(left)
            chunk = next(it, None)
            if chunk is None:
                break
            got += len(chunk)
            if got > limit:
                return False
    finally:
        if has_pool:
            raw._pool = pool
        try:
            sock.settimeout(old)
        except OSError:
            pass
    return original.isclosed()


def read_all(raw: Any) -> bytes:
    """Read a whole (non-streamed) body, decoded."""
    data = raw.read(decode_content=True)
    return data if data is not None else b""


def read_capped(raw: Any, limit: int) -> bytes:
    """Read at most ``limit`` decoded bytes (an error or redirect body)."""
    data = raw.read(limit, decode_content=True) or b""
    return data[:limit]


def release(raw: Any) -> None:
    """Give the connection back to the pool: reused if the body was read to the end, else closed."""
    if raw is None:
        return
    try:
        original = getattr(raw, "_original_response", None)
        if original is None or not original.isclosed():
            raw.close()  # unread body: the connection cannot be reused
    finally:
        release_conn = getattr(raw, "release_conn", None)
        if release_conn is not None:
            release_conn()


def find_socket(raw: Any) -> Optional[socket.socket]:
    """The socket under a urllib3 response, found defensively (``None`` if gone)."""
    for path in (("_fp", "fp", "raw", "_sock"), ("connection", "sock"), ("_connection", "sock")):
        obj: Any = raw
        for attr in path:
            try:
                obj = getattr(obj, attr, None)
            except Exception:
                obj = None
            if obj is None:
                break
        if isinstance(obj, socket.socket):
            return obj
    return None


def abort_raw(raw: Any) -> bool:
    """Unblock a read pending on ``raw`` in another thread; True if something was shut down.

    Uses ``HTTPResponse.shutdown()`` (urllib3 >= 2.3) when it works, else shuts
    the socket down for reading and writing. Closing alone does not wake a
    blocked ``recv``; shutting the socket down does.
    """
    shutdown = getattr(raw, "shutdown", None)
    done = False
    if shutdown is not None:
        try:
            shutdown()
            done = True
        except Exception:
            done = False
    sock = find_socket(raw)
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
            done = True
        except (OSError, ValueError):
            pass
    return done
