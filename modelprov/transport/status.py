"""Non-2xx answers as modelprov exceptions (standard library only, shared by every transport).

:func:`error_from_status` turns a non-2xx response (status, headers, a body
capped at :data:`MAX_ERROR_BODY`) into a
:class:`~modelprov.exceptions.ProviderError`, through the provider's
``error_parser`` hook first and a generic JSON/text/HTML summary second, and
fills in provider, status, request id, ``retry_after`` and the retry-hint
headers. :class:`~modelprov.transport.requests_transport.RequestsTransport`
and :class:`modelprov.testing.MockTransport` both use it, so a codec sees the
same exception whichever transport answered.
"""

import html
import json
import re
from typing import Any, Dict, Mapping, Optional

from ..exceptions import ModelProvError, error_for_status
from .base import ErrorParser

__all__ = [
    "MAX_ERROR_BODY",
    "RETRY_HEADERS",
    "decode_text",
    "error_from_status",
    "retry_headers",
    "summarize_body",
]

#: At most this many bytes of an error body are read.
MAX_ERROR_BODY = 64 * 1024
#: Fallback messages are cut to about this many characters.
MAX_FALLBACK_MESSAGE = 200
#: Response headers copied onto exceptions (retry hints only, never credentials).
RETRY_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")

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
    return head.startswith(("<!doctype html", "<html")) or "<body" in head


def _json_message(body: Any) -> Optional[str]:
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if isinstance(err, dict):
        for key in ("message", "msg", "detail"):
            value = err.get(key)
            if isinstance(value, str) and value:
                return value
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
