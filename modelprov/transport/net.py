"""Connection plumbing behind :mod:`modelprov.transport`.

* :func:`make_adapter` / :func:`make_session`: one ``requests.Session`` per
  transport with an ``HTTPAdapter`` sized from ``pool_size``, urllib3 retries
  off, optionally a ``truststore`` SSL context (never ``inject_into_ssl``).
  Its pools make the connection classes of :mod:`._compat`; for the
  transport's own direct requests it looks the pool up once per origin (see
  :class:`Adapter`).
* :func:`resolve_settings`: proxies, ``verify`` and ``cert`` for one
  scheme+host, from explicit settings first and requests' environment
  conventions second (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY``,
  ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``); loopback hosts bypass an
  environment proxy; ``~/.netrc`` is never read.
* :func:`iter_raw`, :func:`drain`, :func:`release`: prompt streaming reads
  from a urllib3 response (chunked bodies through the bulk reader of
  :mod:`.chunked`), finishing a body briefly so its connection is reused, and
  returning the connection to the pool. Public urllib3 API only (1.26 and
  2.x); the internals they need come from :mod:`._compat`.
"""

import ipaddress
import logging
import os
import socket
import ssl
import time
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies, select_proxy, should_bypass_proxies
from urllib3.util.retry import Retry

from .._redact import redact
from ..exceptions import ConfigurationError
from ._compat import install_pool_classes, pool_is_closed, read1_of
from .chunked import iter_chunked

__all__ = [
    "ConnectionSettings",
    "drain",
    "install_log_redaction",
    "is_loopback",
    "iter_raw",
    "make_adapter",
    "make_session",
    "read_all",
    "read_capped",
    "release",
    "resolve_settings",
    "socket_of",
]

VerifyType = Union[bool, str]
CertType = Union[str, Tuple[str, str], None]
ProxyType = Union[str, Mapping[str, str], None]

#: Bytes asked for per read when the body is not chunked.
READ_SIZE = 64 * 1024


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


class Answer(NamedTuple):
    """What :meth:`Adapter.build_response` returns for the transport's own requests (not a ``requests.Response``)."""

    status_code: int
    reason: str
    #: urllib3's ``HTTPHeaderDict`` (case-insensitive, repeated headers joined with ", ").
    headers: Any
    #: The urllib3 response (its body not read yet).
    raw: Any
    request: Any
    url: str


class Adapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose pools make :mod:`._compat`'s connections, with fast paths for our requests.

    Requests the transport prepares carry ``mp_origin`` (their scheme and
    host, an attribute of ours on the ``PreparedRequest``). For those, on a
    direct connection, three public ``HTTPAdapter`` hooks take a shorter way
    (figures: each hook timed against requests' own with ``timeit``, as a
    share of the ~215 us client CPU per JSON POST of
    ``benchmarks/bench_transport.py``):

    * ``get_connection_with_tls_context``: the pool is looked up once per
      origin and TLS settings instead of parsing the URL and building the
      pool key on every call: 12.3 us (5.7%).
    * ``request_url``: the path is sent without asking ``select_proxy`` and
      ``urlparse`` (no proxy applies): 3.7 us (1.7%).
    * ``build_response``: an :class:`Answer` (status, reason, urllib3's own
      headers, the raw response) instead of a ``requests.Response`` with a
      headers copy, cookie extraction and charset sniffing the transport
      never uses: 6.1 us (2.8%).

    The three together keep the transport's CPU ratio to requests where it
    was before the transport interface (0.36-0.39). Anything else sent
    through the session gets requests' own behaviour.
    """

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        """Create the pool manager, then switch it to our connection classes."""
        self._mp_pools: Dict[Any, Any] = {}
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        install_pool_classes(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The proxy manager for ``proxy``, making our connection classes too (HTTP(S) proxies)."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        install_pool_classes(manager)
        return manager

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        """The pool for ``request``; cached per origin, ``verify`` and ``cert`` for the transport's direct requests."""
        origin = getattr(request, "mp_origin", None)
        if origin is None or proxies:
            return super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        key = (origin, verify, cert)
        pool = self._mp_pools.get(key)
        if pool is None or pool_is_closed(pool):  # first use, or closed (adapter closed, pool evicted)
            pool = super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
            self._mp_pools[key] = pool
        return pool

    def request_url(self, request: Any, proxies: Any) -> str:
        """The URL to send: the path for the transport's direct requests (no proxy to consult)."""
        if proxies or getattr(request, "mp_origin", None) is None:
            return super().request_url(request, proxies)
        return str(request.path_url)

    def build_response(self, req: Any, resp: Any) -> Any:
        """A ``requests.Response``; for the transport's own requests an :class:`Answer`."""
        if getattr(req, "mp_origin", None) is None:
            return super().build_response(req, resp)
        return Answer(resp.status, resp.reason or "", resp.headers, resp, req, req.url)

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
        """Create a proxy manager with our SSL context (and our connection classes)."""
        proxy_kwargs.setdefault("ssl_context", self._ssl_context)
        return super().proxy_manager_for(proxy, **proxy_kwargs)


def _truststore_context() -> ssl.SSLContext:
    try:
        import truststore  # type: ignore[import-not-found,unused-ignore]
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
# logging
# --------------------------------------------------------------------------


class _RedactingFilter(logging.Filter):
    """Redacts urllib3's own DEBUG lines, which print request URLs (query keys included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            clean = redact(message)
            if clean != message:
                record.msg, record.args = clean, ()
        except Exception:  # never break logging
            pass
        return True


def install_log_redaction() -> None:
    """Redact the URLs urllib3 logs at DEBUG (installed once, when the transport is imported)."""
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactingFilter) for f in target.filters):
        target.addFilter(_RedactingFilter())


install_log_redaction()


# --------------------------------------------------------------------------
# reading and releasing
# --------------------------------------------------------------------------


def _iter_read1(read1: Any, size: int) -> Iterator[bytes]:
    while True:
        data = read1(size)
        if not data:
            return
        yield data


def iter_raw(raw: Any, size: int = READ_SIZE, join: Optional[List[bool]] = None) -> Iterator[bytes]:
    """Yield decoded body bytes as soon as they arrive (not ``size`` at a time).

    Chunked bodies yield one item per HTTP chunk (the bulk reader of
    :mod:`.chunked`, else urllib3's ``read_chunked``); once ``join[0]`` is
    true the bulk reader joins the chunks of one read. Other bodies use
    ``read1`` (see :func:`._compat.read1_of`), else urllib3's ``stream()``.
    """
    if getattr(raw, "chunked", False) and raw.supports_chunked_reads():
        fast = iter_chunked(raw, size, join)
        if fast is not None:
            return fast
        return raw.read_chunked(None, decode_content=True)  # type: ignore[no-any-return]
    read1 = read1_of(raw)
    if read1 is not None:
        return _iter_read1(read1, size)
    return raw.stream(size, decode_content=True)  # type: ignore[no-any-return]


def socket_of(raw: Any) -> Optional[socket.socket]:
    """The socket under a urllib3 response (``HTTPResponse.connection.sock``, public in 1.26 and 2.x), or ``None``."""
    conn = getattr(raw, "connection", None)
    sock = getattr(conn, "sock", None) if conn is not None else None
    return sock if isinstance(sock, socket.socket) else None


def drain(raw: Any, it: Iterator[bytes], sock: Optional[socket.socket], timeout: float, limit: int) -> bool:
    """Read the rest of a body through ``it`` for at most ``timeout`` seconds and ``limit`` bytes.

    For a stream whose protocol already ended: what is left is normally the
    final zero-length chunk, already received or on its way. True when the
    body was read to its end (the connection can go back to the pool); False
    when the time or byte budget ran out (the caller closes the connection).
    May raise what a read raises.

    The socket's timeout is shortened for each read and not restored: once the
    body ended the socket is never touched again (urllib3 may already have
    pooled it, and it sets the timeout again before every request on a reused
    connection), and otherwise the connection is closed.
    """
    if raw.isclosed():
        return True
    if sock is None:
        return False
    end = time.monotonic() + timeout
    got = 0
    while True:
        if raw.isclosed():  # ended (and maybe back in the pool already): hands off the socket
            return True
        left = end - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        chunk = next(it, None)
        if chunk is None:
            return bool(raw.isclosed())
        got += len(chunk)
        if got > limit:
            return False


def read_all(raw: Any) -> bytes:
    """Read a whole (non-streamed) body, decoded."""
    data = raw.read(decode_content=True)
    return data if data is not None else b""


def read_capped(raw: Any, limit: int) -> bytes:
    """Read at most ``limit`` decoded bytes (an error or redirect body)."""
    data = raw.read(limit, decode_content=True) or b""
    return data[:limit]  # type: ignore[no-any-return,unused-ignore]


def release(raw: Any) -> None:
    """Give the connection back to the pool: reused if the body was read to the end, else closed."""
    if raw is None:
        return
    try:
        if not raw.isclosed():
            raw.close()  # unread body: the connection cannot be reused
    finally:
        release_conn = getattr(raw, "release_conn", None)
        if release_conn is not None:
            release_conn()
