"""``Singleton``: the one helper behind every process-wide default object.

The registry, the config manager, the async bridge and the default client
each keep one lazily created instance per process. :class:`Singleton` holds
it behind a lock: :meth:`get` creates it on first use (and again after
:meth:`reset`, or when ``is_stale`` says the held one is unusable),
:meth:`set` swaps it, :meth:`reset` drops it and hands the old one to a
``dispose`` callback outside the lock.
"""

import threading
from typing import Callable, Generic, Optional, TypeVar

__all__ = ["Singleton"]

T = TypeVar("T")


class Singleton(Generic[T]):
    """A lazily created, thread-safe, replaceable process-wide instance."""

    def __init__(
        self,
        factory: Callable[[], T],
        *,
        dispose: Optional[Callable[[T], None]] = None,
        is_stale: Optional[Callable[[T], bool]] = None,
    ) -> None:
        self._factory = factory
        self._dispose = dispose
        self._is_stale = is_stale
        self._lock = threading.Lock()
        self._value: Optional[T] = None

    def get(self) -> T:
        """The instance, created on first use (no lock taken once it exists and is fresh)."""
        value = self._value
        if value is None or (self._is_stale is not None and self._is_stale(value)):
            with self._lock:
                value = self._value
                if value is None or (self._is_stale is not None and self._is_stale(value)):
                    value = self._value = self._factory()
        return value

    def peek(self) -> Optional[T]:
        """The instance if one exists, without creating it."""
        return self._value

    def set(self, value: T) -> Optional[T]:
        """Make ``value`` the instance; returns the previous one (not disposed)."""
        with self._lock:
            old, self._value = self._value, value
        return old

    def reset(self) -> None:
        """Drop the instance; ``dispose`` runs on it outside the lock."""
        with self._lock:
            old, self._value = self._value, None
        if old is not None and self._dispose is not None:
            self._dispose(old)
