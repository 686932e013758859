"""Secret redaction shared by exceptions, logging, reprs and the CLI.

Standard library only. Everything that may end up in front of a person (a log
line, an exception message, a ``repr``) passes through :func:`redact` or
:func:`redact_headers` first.
"""

import re
from typing import Iterable, Mapping, MutableMapping, Optional

__all__ = ["REDACTED", "SECRET_HEADERS", "mask_key", "redact", "redact_headers", "redact_url", "register_secret"]

REDACTED = "***"

#: Header names (lower case) whose values are credentials.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
    }
)

# Query parameters whose values look like credentials.
_SECRET_PARAM = re.compile(
    r"(?i)([?&](?:api[_-]?key|key|token|access[_-]?token|auth|secret|password|sig)=)[^&#\s]*"
)
# Tokens that look like vendor API keys, bearer tokens or userinfo in URLs.
_KEY_PATTERNS = (
    re.compile(r"\b(sk|rk|pk)-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-+/=]{8,}"),
    re.compile(r"\b(?:sk-ant|sk-or|sk-proj)-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)(x-api-key|api-key|authorization)(\s*[:=]\s*)[^\s,;\"']+"),
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
)

_known_secrets: "set[str]" = set()


def register_secret(value: Optional[str]) -> None:
    """Remember a concrete secret so that :func:`redact` removes it anywhere.

    Keys shorter than 6 characters are not registered (they would redact
    ordinary words); they are still kept out of reprs by the types that hold
    them.
    """
    if value and isinstance(value, str) and len(value) >= 6:
        _known_secrets.add(value)


def mask_key(value: Optional[str]) -> str:
    """Return a display form of a key that shows only that one is set."""
    if not value:
        return "<not set>"
    if len(value) <= 8:
        return REDACTED
    return value[:3] + "..." + value[-2:]


def redact(text: object) -> str:
    """Return ``str(text)`` with credentials and key-looking tokens masked."""
    s = text if isinstance(text, str) else str(text)
    if not s:
        return s
    for secret in tuple(_known_secrets):
        if secret in s:
            s = s.replace(secret, REDACTED)
    s = _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, s)
    for pattern in _KEY_PATTERNS:
        if pattern.groups >= 2 and "api-key" in pattern.pattern:
            s = pattern.sub(lambda m: m.group(1) + m.group(2) + REDACTED, s)
        else:
            s = pattern.sub(REDACTED, s)
    return s


def redact_url(url: str) -> str:
    """Mask credentials in a URL's userinfo and key-looking query parameters."""
    return redact(url)


def redact_headers(headers: Optional[Mapping[str, str]], extra: Iterable[str] = ()) -> "dict[str, str]":
    """Return a copy of ``headers`` with credential headers replaced by ``***``."""
    out: "MutableMapping[str, str]" = {}
    if not headers:
        return dict(out)
    secret = SECRET_HEADERS | {h.lower() for h in extra}
    for name, value in headers.items():
        out[name] = REDACTED if name.lower() in secret else redact(value)
    return dict(out)
