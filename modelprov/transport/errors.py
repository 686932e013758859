"""Failure mapping for the transport: the ONE place where requests/urllib3/socket
errors and non-2xx responses become modelprov exceptions.

* :func:`map_exception` turns any requests, urllib3, ``ssl``, ``socket`` or
  ``http.client`` failure into the exception tree of :mod:`modelprov.exceptions`
  (DNS, refused, reset, TLS, connect/read timeout, closed mid-stream, too many
  redirects, invalid URL). The caller raises the result ``from`` the original.
* :func:`error_from_status` turns a non-2xx response (status, headers, a body
  capped at 64 KB) into a :class:`~modelprov.exceptions.ProviderError`, through
  the provider's parser hook first and a generic JSON/text/HTML fallback second.
* :func:`scrub_chain` redacts credentials inside the foreign exceptions that end
  up in ``__cause__`` so a printed traceback shows no secret either.

Messages say what happened and to which host; URLs are redacted and nothing
here ever formats a header value.
"""

import html
import http.client
import json
import re
import socket
import ssl
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple, Type

import requests
import urllib3

from .._redact import redact, redact_url
from ..exceptions import (
    ConfigurationError,
    ModelProvError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ResponseError,
    error_for_status,
)

__all__ = [
    "MAX_ERROR_BODY",
    "ErrorParser",
    "error_from_status",
    "map_exception",
    "retry_headers",
    "scrub_chain",
    "short_url",
    "summarize_body",
]

#: At most this many bytes of an error body are read.
MAX_ERROR_BODY = 64 * 1024
#: Fallback messages are cut to about this many characters.
MAX_FALLBACK_MESSAGE = 200

#: ``error_parser(status, body_json_or_None, text, headers) -> Optional[ModelProvError]`` (a
#: ``ProviderError``, or ``UnsupportedFeatureError`` when the provider names an option it refuses)
ErrorParser = Callable[[int, Any, str, Mapping[str, str]], Optional[ModelProvError]]

#: Response headers copied onto exceptions (retry hints only, never credentials).
RETRY_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")

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


def scrub_chain(exc: BaseException) -> None:
    """Redact credentials (e.g. ``?key=...`` in a URL) in the args of wrapped errors."""
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
        except Exception:  # pragma: no cover - exotic exception types
            pass


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
        root = find((OSError,))
        detail = f": {_detail(root)}" if root is not None else ""
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


# --------------------------------------------------------------------------
# non-2xx responses
# --------------------------------------------------------------------------

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_DROP = re.compile(r"<(script|style)[^>]*>.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)


def retry_headers(headers: Mapping[str, str]) -> Dict[str, str]:
    """The retry-hint headers of a response, lower-cased (``retry-after`` etc.)."""
    out = {}
    for name in RETRY_HEADERS:
        value = headers.get(name)
        if value is not None:
            out[name] = value
    return out


def _shorten(text: str, limit: int = MAX_FALLBACK_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def decode_text(body: bytes, content_type: str) -> str:
    """Decode an error body with its declared charset, else UTF-8 (never raises)."""
    m = _CHARSET.search(content_type or "")
    enc = m.group(1) if m else "utf-8"
    try:
        return body.decode(enc, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _looks_html(text: str, content_type: str) -> bool:
    if "html" in content_type.lower():
        return True
    head = text.lstrip()[:200].lower()
    return head.startswith("<!doctype html") or head.startswith("<html") or "<body" in head


def _json_message(body: Any) -> Optional[str]:
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if isinstance(err, dict):
        for key in ("message", "msg", "detail"):
            if isinstance(err.get(key), str) and err[key]:
                return err[key]
    elif isinstance(err, str) and err:
        return err
    for key in ("message", "detail", "error_description", "msg", "title"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if key == "detail" and isinstance(value, list) and value:  # FastAPI / pydantic validation errors
            parts = []
            for item in value[:3]:
                if isinstance(item, dict):
                    loc = ".".join(str(x) for x in item.get("loc", ()) if x != "body")
                    parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
                else:
                    parts.append(str(item))
            return "; ".join(parts)
    return None


def summarize_body(status: int, reason: str, body_json: Any, text: str, content_type: str, host: str) -> str:
    """A short (<= ~200 chars) message for an error body: JSON, plain text or HTML."""
    msg = _json_message(body_json)
    if msg:
        return _shorten(msg)
    if body_json is not None and text.strip():
        return _shorten(text)
    if text.strip() and _looks_html(text, content_type):
        m = _TITLE.search(text)
        inner = m.group(1) if m else _TAG.sub(" ", _DROP.sub(" ", text))
        inner = _shorten(html.unescape(inner), MAX_FALLBACK_MESSAGE - 40)
        return _shorten(f"HTML error page from {host}: {inner}" if inner else f"HTML error page from {host}")
    if text.strip():
        return _shorten(text)
    return _shorten(f"HTTP {status} {reason or ''} from {host}".replace("  ", " "))


def _parse_json(text: str) -> Any:
    head = text.lstrip()[:1]
    if head not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def error_from_status(
    *,
    status: int,
    reason: str,
    headers: Mapping[str, str],
    body: bytes,
    provider: Optional[str],
    host: str,
    request_id: Optional[str],
    error_parser: Optional[ErrorParser] = None,
) -> ModelProvError:
    """Build the exception for a non-2xx response (parser hook first, then fallback).

    Fields the parser left unset (``provider``, ``status_code``, ``request_id``,
    ``retry_after``, ``headers``) are filled from the response.
    """
    content_type = headers.get("content-type", "") or ""
    text = decode_text(body[:MAX_ERROR_BODY], content_type)
    body_json = _parse_json(text)
    exc: Optional[ModelProvError] = None
    if error_parser is not None:
        try:
            exc = error_parser(status, body_json, text, headers)
        except ModelProvError as raised:  # a parser may raise instead of returning
            exc = raised
        except Exception:  # a broken parser must not hide the real error
            exc = None
    hints = retry_headers(headers)
    retry_after = None
    if hints:
        try:
            from ..retry import parse_retry_after
        except ImportError:  # pragma: no cover - retry.py always ships with the package
            parse_retry_after = None  # type: ignore[assignment]
        if parse_retry_after is not None:
            retry_after = parse_retry_after(hints)
    if exc is None:
        cls = error_for_status(status)
        message = summarize_body(status, reason, body_json, text, content_type, host)
        extra: Dict[str, Any] = {}
        if status in (408, 409):
            extra["retryable"] = True
        exc = cls(message, **extra)
    if exc.provider is None:
        exc.provider = provider
    if exc.status_code is None:
        exc.status_code = status
    if exc.request_id is None:
        exc.request_id = request_id
    if exc.retry_after is None:
        exc.retry_after = retry_after
    if not exc.headers:
        exc.headers = hints
    return exc
