"""``StreamHandle``: the iterator users hold for a stream, and ``ProviderStream``, one provider's stream.

The work happens in a generator made by a *state* object (``state.run()``);
the handle only drives it. Because the generator holds the state and never
the handle, a handle dropped without ``close()`` is finalised at once by
reference counting, which closes the generator and releases what it holds.
``close()`` and ``abort()`` are safe from any thread: while ``next()`` runs
in another thread, ``close()`` aborts it and that thread finishes the cleanup.

:class:`ProviderStream` is what ``provider.stream()`` returns (its state is
the engine's stream runner); the client's fallback stream,
:class:`~modelprov.fallback.ChatStream`, is built on the same handle.
"""

from typing import Any, Generator, Generic, Iterator, Optional, Protocol, TypeVar

from .types import StreamChunk

__all__ = ["ProviderStream", "StreamHandle", "StreamState"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class StreamState(Protocol[T_co]):
    """What a handle drives: ``run()`` makes the generator; ``abort()`` is thread-safe; ``cancel()`` is for a stream never started."""

    def run(self) -> Generator[T_co, None, None]: ...  # pragma: no cover - protocol

    def abort(self) -> None: ...  # pragma: no cover - protocol

    def cancel(self) -> None: ...  # pragma: no cover - protocol


class StreamHandle(Generic[T]):
    """Drives ``state.run()``; ``state`` also has ``abort()`` (thread-safe) and ``cancel()`` (before start)."""

    def __init__(self, state: StreamState[T]) -> None:
        self._state = state
        self._gen: Optional[Generator[T, None, None]] = None
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

    def rest(self) -> Iterator[T]:
        """The items not yet taken, for a stream that drives this one from inside its own generator.

        It is the underlying generator itself, so the outer stream pays for
        one handle per item, not two; the caller still owns this handle and
        calls :meth:`close` when done. Empty once the handle is closed.
        """
        if self._closed:
            return iter(())
        if self._gen is None:
            self._gen = self._state.run()
        return self._gen

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
            gen.close()
        except ValueError:  # pragma: no cover - raced with a running next()
            self._state.abort()
        except Exception:  # pragma: no cover - cleanup errors never escape close()
            pass


class ProviderStream(StreamHandle[StreamChunk]):
    """An iterator of :class:`~modelprov.types.StreamChunk` for one provider's streamed answer.

    What ``provider.stream()`` returns. Use it in a ``for`` loop or a
    ``with`` block. ``close()`` releases the connection; ``abort()``
    (thread-safe) interrupts a read or a retry wait blocked in another
    thread. Nothing is sent until the first ``next()``.
    """

    def __enter__(self) -> "ProviderStream":
        return self

    @property
    def request_id(self) -> Optional[str]:
        """The request id of the HTTP response, once known (``None`` before, or without HTTP)."""
        rid: Optional[str] = getattr(self._state, "request_id", None)
        return rid
