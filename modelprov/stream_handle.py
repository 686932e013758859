"""``StreamHandle``: the iterator users hold for a stream, shared by providers and the client.

The work happens in a generator made by a *state* object (``state.run()``);
the handle only drives it. Because the generator holds the state and never
the handle, a handle dropped without ``close()`` is finalised at once by
reference counting, which closes the generator and releases what it holds.
``close()`` and ``abort()`` are safe from any thread: while ``next()`` runs
in another thread, ``close()`` aborts it and that thread finishes the cleanup.
"""

from typing import Any, Generic, Iterator, Optional, TypeVar

__all__ = ["StreamHandle"]

T = TypeVar("T")


class StreamHandle(Generic[T]):
    """Drives ``state.run()``; ``state`` also has ``abort()`` (thread-safe) and ``cancel()`` (before start)."""

    def __init__(self, state: Any) -> None:
        self._state = state
        self._gen: Optional[Iterator[T]] = None
        self._closed = False
        self._running = False

    def __iter__(self) -> "StreamHandle[T]":
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        if self._gen is None:
            self._gen = self._state.run()
        self._running = True
        try:
            return next(self._gen)
        finally:
            self._running = False
            if self._closed:  # closed from another thread while we were busy
                self._finish()

    def __enter__(self) -> "StreamHandle[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - best effort at teardown
            pass

    def abort(self) -> None:
        """Interrupt the stream from any thread; a blocked read or wait returns promptly."""
        self._state.abort()

    def close(self) -> None:
        """Stop the stream and release its connection (safe to call twice, from any thread)."""
        if self._closed:
            return
        self._closed = True
        if self._running:
            self._state.abort()  # next() runs in another thread: unblock it; it cleans up
            return
        self._finish()

    def _finish(self) -> None:
        gen = self._gen
        if gen is None:
            self._state.cancel()
            return
        try:
            gen.close()  # type: ignore[attr-defined]
        except ValueError:  # pragma: no cover - raced with a running next()
            self._state.abort()
        except Exception:  # pragma: no cover - cleanup errors never escape close()
            pass
