"""RFC 3339 timestamp parsing for provider payloads (standard library only).

Anthropic's ``created_at`` (``2025-02-19T00:00:00Z``) and Ollama's
``modified_at`` / ``created_at`` (``2024-12-12T19:31:52.395536737-08:00``,
nanosecond fractions) are not all accepted by ``datetime.fromisoformat`` on
Python 3.9, so this module parses them itself.
"""

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

__all__ = ["parse_rfc3339"]

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_rfc3339(value: Any) -> Optional[float]:
    """Seconds since the epoch for an RFC 3339 timestamp, or ``None`` if it is not one.

    Fractions of any length are accepted (truncated to microseconds); a
    missing offset is taken as UTC. Never raises.
    """
    if not isinstance(value, str):
        return None
    m = _RFC3339.match(value.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, offset = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if offset and offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        tz = timezone(sign * delta)
    try:
        stamp = datetime(int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59), micro, tzinfo=tz)
    except ValueError:
        return None
    return stamp.timestamp()
