"""Network failures as modelprov exceptions: the ONE place where requests, urllib3,
``socket``, ``ssl`` and ``http.client`` errors are mapped.

* :func:`map_exception` turns any such failure into the exception tree of
  :mod:`modelprov.exceptions` (DNS, refused, reset, TLS, connect/read timeout,
  closed mid-stream, too many redirects, invalid URL). The caller raises the
  result ``from`` the original.
* :func:`deadline_error` is the error for a call whose deadline passed while
  the transport waited (the watchdog interrupted the read).
* :func:`scrub_chain` redacts credentials inside the foreign exceptions that
  end up in ``__cause__`` so a printed traceback shows no secret either, and
  detaches them from the connection machinery: their frames' locals are
  cleared and their ``pool``/``response``/``request`` references dropped, so
  an exception a caller keeps (``batch()`` returns them) never pins a pool or
  a socket.

Non-2xx answers are mapped by :mod:`.status` (re-exported here). Messages say
what happened and to which host; URLs are redacted and nothing here ever
formats a header value.
"""

import http.client
import socket
import ssl
import traceback
from typing import Any, Dict, Iterator, Optional, Tuple, Type

import requests
import urllib3

from .._redact import redact, redact_url
from ..deadline import Deadline
from ..exceptions import (
    ConfigurationError,
    ModelProvError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ResponseError,
)
from .base import ErrorParser
from .status import MAX_ERROR_BODY, error_from_status, retry_headers, summarize_body

__all__ = [
    "MAX_ERROR_BODY",
    "ErrorParser",
    "deadline_error",
    "error_from_status",
    "map_exception",
    "retry_headers",
    "scrub_chain",
    "short_url",
    "summarize_body",
]

TLS_HINT = (
    "Check the server certificate: pass verify='/path/to/ca-bundle.pem' (or set REQUESTS_CA_BUNDLE), "
    "or use_truststore=True to use the system trust store"
)
PROXY_HINT = "Check the proxy settings (proxy=..., HTTPS_PROXY/HTTP_PROXY/NO_PROXY)"

_rx = requests.exceptions
_ux = urllib3.exceptions
_NameResolutionError: Tuple[Type[BaseException], ...] = tuple(
    t for t in (getattr(_ux, "NameResolutionError", None),) if t is not None
)
_INVALID_URL = (
    _rx.InvalidURL,
    _rx.MissingSchema,
    _rx.InvalidSchema,
    _rx.URLRequired,
    _ux.LocationValueError,
)
_SSL = (_rx.SSLError, _ux.SSLError, ssl.SSLError, ssl.CertificateError)
_PROXY = (_rx.ProxyError, _ux.ProxyError)
_READ_TIMEOUT = (_rx.ReadTimeout, _ux.ReadTimeoutError, socket.timeout, TimeoutError)
_RESET = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
_CLOSED = (
    _rx.ChunkedEncodingError,
    _ux.ProtocolError,
    _ux.IncompleteRead,
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
    http.client.HTTPException,
)
_DECODE = (_rx.ContentDecodingError, _ux.DecodeError)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: ``.reason``, exception args, cause, context."""
    seen = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        nxt = [getattr(e, "reason", None), e.__cause__, e.__context__]
        nxt.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        todo.extend(n for n in nxt if isinstance(n, BaseException))


def _detail(e: BaseException) -> str:
    """A short description of a low-level error (redacted, at most ~120 chars)."""
    if isinstance(e, ssl.SSLError) and getattr(e, "reason", None):
        text = f"{e.reason}: {getattr(e, 'verify_message', '') or e.strerror or ''}".rstrip(": ")
    elif isinstance(e, OSError) and e.strerror:
        text = e.strerror
    else:
        text = str(e) or e.__class__.__name__
    text = " ".join(redact(text).split())
    return text if len(text) <= 120 else text[:117] + "..."


def short_url(url: str) -> str:
    """``url`` redacted, its query string (which may hold keys) shown as ``?...``."""
    base, sep, _ = (url or "").partition("?")
    return redact_url(base) + ("?..." if sep else "")


#: Attributes of foreign exceptions that reference connection machinery: urllib3's
#: ``PoolError.pool`` (``MaxRetryError``, ``ReadTimeoutError``...) and
#: ``NewConnectionError.conn`` (2.x; ``pool`` in 1.26), requests'
#: ``RequestException.request``/``.response`` (a prepared request with the
#: credential headers; a response holding the urllib3 response and its connection).
#: Instance attributes only (read from ``__dict__``, so no deprecated property is touched).
_PINNING_ATTRS = ("pool", "conn", "response", "request")


def scrub_chain(exc: BaseException) -> None:
    """Redact credentials in wrapped errors and detach them from pools, responses and frames.

    For every foreign exception ``exc`` wraps (cause, context, ``reason``,
    args): URL credentials in its args are redacted, its ``pool``/``request``/
    ``response`` attributes are dropped and the local variables of its
    finished frames are cleared (``traceback.clear_frames``: file and line
    stay printable). So a caller holding the modelprov exception, for as long
    as it likes, pins neither a connection pool nor a socket.
    """
    for e in _chain(exc):
        if isinstance(e, ModelProvError):
            continue
        try:
            args = getattr(e, "args", ())
            new = tuple(redact(a) if isinstance(a, str) else a for a in args)
            if new != args:
                e.args = new
            url = getattr(e, "url", None)
            if isinstance(url, str):
                e.url = redact_url(url)  # type: ignore[attr-defined]
            attrs = getattr(e, "__dict__", None)
            if attrs:
                for name in _PINNING_ATTRS:
                    if attrs.get(name) is not None:
                        attrs[name] = None
            if e.__traceback__ is not None:
                traceback.clear_frames(e.__traceback__)
        except Exception:  # pragma: no cover - exotic exception types
            pass


def deadline_error(
    deadline: Deadline,
    *,
    provider: Optional[str],
    method: str,
    url: str,
    host: str,
    phase: str = "request",
) -> ProviderTimeoutError:
    """The error for a call whose deadline passed while the transport was waiting.

    ``phase``: ``"request"`` (connecting or waiting for the headers),
    ``"body"`` or ``"stream"``.
    """
    during = {"request": "waiting for", "body": "reading the response body from", "stream": "streaming from"}[phase]
    total = f" of {deadline.timeout:g}s" if deadline.timeout is not None else ""
    return ProviderTimeoutError(
        f"the call's deadline{total} passed while {during} {host} ({method} {short_url(url)})",
        provider=provider,
        hint="raise timeout=, or stream long answers",
    )


def map_exception(
    exc: BaseException,
    *,
    provider: Optional[str],
    method: str,
    url: str,
    host: str,
    connect_timeout: Optional[float] = None,
    read_timeout: Optional[float] = None,
    phase: str = "request",
    proxy: Optional[str] = None,
) -> Optional[ModelProvError]:
    """The modelprov exception for a transport failure, or ``None`` if it is not one.

    ``phase`` is ``"request"`` (connecting, sending, waiting for headers),
    ``"body"`` (reading a whole body) or ``"stream"`` (reading a streamed body).
    A :class:`~modelprov.exceptions.ModelProvError` is returned unchanged.
    """
    if isinstance(exc, ModelProvError):
        return exc
    chain = list(_chain(exc))

    def find(types: Tuple[Type[BaseException], ...]) -> Optional[BaseException]:
        for e in chain:
            if isinstance(e, types):
                return e
        return None

    where = f"{method} {short_url(url)}"
    ctx: Dict[str, Any] = {"provider": provider}
    during = {"request": "", "body": " while reading the response body", "stream": " mid-stream"}[phase]

    if find((_rx.InvalidProxyURL, _ux.ProxySchemeUnknown, _ux.ProxySchemeUnsupported)) is not None:
        return ConfigurationError(f"invalid proxy URL {redact_url(proxy or '')} for {where}", **ctx)
    e = find(_INVALID_URL)
    if e is not None:
        return ConfigurationError(f"invalid URL {short_url(url)}: {_detail(e)}", hint="Check base_url", **ctx)
    e = find((_rx.InvalidHeader, _ux.InvalidHeader))
    if e is not None and phase == "request":
        return ConfigurationError(f"invalid request header for {where}: {_detail(e)}", **ctx)
    if find((_rx.TooManyRedirects,)) is not None:
        return ProviderConnectionError(
            f"too many redirects from {host} ({where})",
            retryable=False,
            hint="Point base_url at the final URL",
            **ctx,
        )
    e = find((OSError,))
    if isinstance(exc, OSError) and e is exc and exc.errno is None and "invalid path" in str(exc):
        # requests' cert_verify(): the CA bundle or client certificate file does not exist
        return ConfigurationError(
            f"TLS file not found for {where}: {_detail(exc)}", hint="Check verify=, cert= and REQUESTS_CA_BUNDLE", **ctx
        )
    e = find(_SSL)
    if e is not None:
        root = find((ssl.SSLError, ssl.CertificateError)) or e
        return ProviderConnectionError(f"TLS error talking to {host}: {_detail(root)} ({where})", hint=TLS_HINT, **ctx)
    if find(_PROXY) is not None:
        cause = find((OSError,))
        detail = f": {_detail(cause)}" if cause is not None else ""
        return ProviderConnectionError(
            f"could not reach {host} through proxy {redact_url(proxy or '?')}{detail} ({where})", hint=PROXY_HINT, **ctx
        )
    if find((socket.gaierror,) + _NameResolutionError) is not None:
        return ProviderConnectionError(f"DNS lookup failed for {host} ({where})", hint="Check the host name in base_url", **ctx)
    if find((ConnectionRefusedError,)) is not None:
        return ProviderConnectionError(f"connection refused by {host} ({where})", hint="Is the server running?", **ctx)
    if find((_rx.ConnectTimeout,)) is not None or (
        find((_ux.ConnectTimeoutError,)) is not None and find((_ux.NewConnectionError,)) is None
    ):
        secs = f" after {connect_timeout:g}s" if connect_timeout is not None else ""
        return ProviderTimeoutError(f"connect timeout{secs} to {host} ({where})", **ctx)
    if find(_READ_TIMEOUT) is not None:
        secs = f" after {read_timeout:g}s" if read_timeout is not None else ""
        return ProviderTimeoutError(f"read timeout{secs} waiting for {host}{during} ({where})", **ctx)
    if find(_RESET) is not None and find((http.client.RemoteDisconnected,)) is None:
        return ProviderConnectionError(f"connection reset by {host}{during} ({where})", **ctx)
    if find(_DECODE) is not None:
        return ResponseError(f"could not decode the response body from {host} ({where})", **ctx)
    if find(_CLOSED) is not None:
        if phase == "request":
            return ProviderConnectionError(f"{host} closed the connection without a response ({where})", **ctx)
        what = "connection closed mid-stream" if phase == "stream" else "connection closed while reading the response body"
        return ProviderConnectionError(f"{what} by {host} ({where})", **ctx)
    e = find((_ux.NewConnectionError, OSError))
    if e is not None:
        return ProviderConnectionError(f"could not connect to {host}: {_detail(e)} ({where})", **ctx)
    if isinstance(exc, (_rx.RequestException, _ux.HTTPError)):
        return ProviderConnectionError(f"HTTP failure talking to {host}: {_detail(exc)} ({where})", **ctx)
    return None
