"""``modelprov logs`` (placeholder until the conversation log lands)."""

from typing import Any


def register(sub: Any) -> None:
    """Add nothing yet."""
