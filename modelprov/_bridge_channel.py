"""The channel between one bridged stream's producer thread and its asyncio consumer.

A bounded buffer with a condition variable on the producer side and a parked
future on the consumer side; private to :mod:`modelprov.async_bridge`.
"""

import asyncio
import collections
import threading
from typing import Any, Deque, Optional

from ._log import get_logger

_log = get_logger("async_bridge")
_POLL = 0.25  # how often a waiting thread re-checks that the other side is still there
_END = object()


class _Channel:
    """What one stream's consumer (on its event loop) and producer thread share."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.loop, self.maxsize = loop, maxsize
        self.cond = threading.Condition(threading.Lock())
        self.buffer: Deque[Any] = collections.deque()
        self.produced = self.taken = 0  # items pushed / items the consumer took
        self.producer_waiting = False
        self.waiter: Optional["asyncio.Future[None]"] = None  # the parked consumer
        self.source: Any = None  # what make_iterator() returned, once it has
        self.stop = self.done = False  # stop: the consumer left or the bridge shuts down; done: closed
        self.error: Optional[BaseException] = None  # what the consumer raises at the end
        self.stop_error: Optional[BaseException] = None  # why the bridge stopped it

    def push(self, item: Any = _END, error: Optional[BaseException] = None) -> bool:
        """Add an item, or with the default ``_END`` finish; wake the consumer. False: stop."""
        with self.cond:
            if self.done:
                return False
            if item is _END:
                self.error, self.done = error, True
            else:
                self.buffer.append(item)
                self.produced += 1
            waiter, self.waiter = self.waiter, None
        if waiter is not None:
            try:
                self.loop.call_soon_threadsafe(_set_none, waiter)
            except RuntimeError:  # the consumer's loop is closed: nobody is listening
                self.stop = True
        return not self.stop

    def wait_for_room(self) -> bool:
        """Block until the consumer made room; False when the stream must stop."""
        with self.cond:
            while not self.stop and self.produced - self.taken >= self.maxsize:
                self.producer_waiting = True
                self.cond.wait(_POLL)
                self.stop = self.stop or self.loop.is_closed()
            self.producer_waiting = False
            return not self.stop

    def request_stop(self, error: Optional[BaseException] = None) -> None:
        """Stop the producer and ``abort()`` the stream if it is still running (thread-safe)."""
        with self.cond:
            self.stop = True
            self.stop_error = self.stop_error or error
            self.cond.notify_all()
            abort, self.source = (None if self.done else getattr(self.source, "abort", None)), None  # once
        if callable(abort):
            try:
                abort()
            except Exception:  # pragma: no cover - defensive
                _log.debug("abort() of a bridged stream failed", exc_info=True)


def _set_none(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)
