"""``modelprov embed`` (placeholder until the command lands)."""

from typing import Any


def register(sub: Any) -> None:
    """Add nothing yet."""
