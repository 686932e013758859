"""``Deadline``: the one representation of time for a call.

A :class:`Deadline` is made once per call from the overall timeout
(``Client(timeout=)`` or the per-call ``timeout=``) and passed by name down
every layer to the socket: the fallback chain, the retry loop and its waits,
each attempt, the transport's connect and read timeouts, and the stream
runner all read the same wall-clock end. When it passes, the layer that
notices raises :class:`~modelprov.exceptions.ProviderTimeoutError`.

The clock is injectable (``time.monotonic`` by default) so tests never sleep.
"""

import time
from typing import Callable, Optional

from .exceptions import ProviderTimeoutError, ValidationError

__all__ = ["Deadline", "check_timeout"]

#: The smallest socket timeout handed to the transport (a zero timeout would mean non-blocking).
MIN_SOCKET_TIMEOUT = 0.001


def check_timeout(timeout: object, name: str = "timeout") -> Optional[float]:
    """``timeout`` as a float, or ``None``; anything but a positive number raises :class:`ValidationError`."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValidationError(f"{name} must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


class Deadline:
    """The wall-clock end of one call (``timeout=None``: no end).

    :param timeout: seconds from now, validated once here.
    :param clock: a monotonic clock returning seconds.
    """

    __slots__ = ("clock", "end", "timeout")

    def __init__(self, timeout: Optional[float] = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout: Optional[float] = check_timeout(timeout)
        self.clock = clock
        self.end: Optional[float] = None if self.timeout is None else clock() + self.timeout

    def __repr__(self) -> str:
        left = self.remaining()
        return "Deadline(none)" if left is None else f"Deadline({left:.3f}s left of {self.timeout:g}s)"

    def remaining(self) -> Optional[float]:
        """Seconds left (negative once passed), or ``None`` without a deadline."""
        end = self.end
        return None if end is None else end - self.clock()

    def expired(self) -> bool:
        """True once the deadline has passed."""
        end = self.end
        return end is not None and self.clock() >= end

    def error(self, provider: Optional[str] = None) -> ProviderTimeoutError:
        """The error for a passed deadline."""
        return ProviderTimeoutError(
            f"the call's deadline of {self.timeout:g}s passed" if self.timeout is not None else "the call's deadline passed",
            provider=provider,
            hint="raise timeout=, or stream long answers",
        )

    def check(self, provider: Optional[str] = None) -> None:
        """Raise :class:`ProviderTimeoutError` if the deadline has passed."""
        end = self.end
        if end is not None and self.clock() >= end:
            raise self.error(provider)

    def cap(self, seconds: Optional[float], provider: Optional[str] = None) -> Optional[float]:
        """``seconds`` (a socket or wait timeout) shortened to the time left; raises once passed."""
        end = self.end
        if end is None:
            return seconds
        left = end - self.clock()
        if left <= 0:
            raise self.error(provider)
        left = max(left, MIN_SOCKET_TIMEOUT)
        return left if seconds is None or left < seconds else seconds

    def within(self, timeout: Optional[float]) -> "Deadline":
        """A deadline ending at the earlier of this one and ``timeout`` seconds from now (same clock)."""
        if timeout is None:
            return self
        other = Deadline(timeout, clock=self.clock)
        if self.end is None or (other.end is not None and other.end < self.end):
            return other
        return self
