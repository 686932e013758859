"""The async bridge: asyncio callers on top of modelprov's blocking core.

:class:`AsyncBridge` runs blocking calls on its own pool of daemon threads
(:meth:`~AsyncBridge.run`), turns a blocking iterator such as a provider
stream into a bounded async iterator (:meth:`~AsyncBridge.iterate`), and runs
a coroutine from synchronous code, even inside a running loop as in Jupyter
(:meth:`~AsyncBridge.run_sync`). :func:`get_bridge` is the process-wide one.

Traps this module handles (each has a test):

* ``StopIteration`` cannot cross a Future: ``run_in_executor(None, next, it)``
  on an exhausted iterator hangs on 3.9-3.12. ``run()`` re-raises it as
  ``RuntimeError`` (as 3.13 does); ``iterate()`` uses ``next(it, sentinel)``.
* Cancelling (or timing out) an ``await`` does not stop its thread. ``run()``
  documents this; streams are stopped with ``abort()``, which unblocks a read
  that ``close()`` from another thread would not.
* ``ThreadPoolExecutor`` joins its workers at interpreter exit *before*
  ``atexit`` hooks run, so one read that never ends blocks exit forever. The
  pool here uses daemon threads, and an ``atexit`` hook aborts live streams.
* ``asyncio.run`` fails inside a running loop; ``run_sync`` uses a loop on a
  background thread instead (no ``nest_asyncio``), never closed between calls.
* After ``os.fork()`` the child has none of the parent's threads: every bridge
  drops its pool, loop and locks in the child and starts afresh on first use.
"""

import asyncio
import atexit
import collections
import concurrent.futures
import dataclasses
import logging
import os
import queue
import threading
import time
import weakref
from typing import Any, AsyncIterator, Awaitable, Callable, Deque, Iterable, List, Optional, Set, TypeVar

from .exceptions import ProviderTimeoutError

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "DEFAULT_QUEUE_SIZE",
    "AsyncBridge",
    "BridgeStats",
    "BridgedIterator",
    "get_bridge",
    "reset_bridge",
    "run_sync",
]

T = TypeVar("T")
_log = logging.getLogger("modelprov.async_bridge")

#: Worker threads per bridge when ``max_workers`` is not given. The work is
#: I/O bound (threads mostly wait on sockets), so this is far above the CPU
#: count; an open stream holds one thread for its whole life. Tune with the
#: concurrency benchmark (256 calls against a 50 ms loopback server).
DEFAULT_MAX_WORKERS = 64
#: Items a stream's producer thread may run ahead of its consumer.
DEFAULT_QUEUE_SIZE = 8
_POLL = 0.25  # a producer waiting for room re-checks that its consumer is alive this often
_END = object()


def _name(fn: Any) -> str:
    fn = getattr(fn, "func", fn)  # functools.partial
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _fix_stop(exc: BaseException, what: str) -> BaseException:
    if isinstance(exc, (StopIteration, StopAsyncIteration)):
        new = RuntimeError(f"{what} raised {type(exc).__name__}")
        new.__cause__ = exc
        return new
    return exc


class _DaemonPool(concurrent.futures.Executor):
    """A minimal thread pool executor whose worker threads are daemons."""

    def __init__(self, max_workers: int, prefix: str) -> None:
        self._max = max_workers
        self._prefix = prefix
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "concurrent.futures.Future[Any]":
        with self._lock:
            if self._shutdown:
                raise RuntimeError("AsyncBridge is shut down")
            fut: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
            self._queue.put((fut, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                t = threading.Thread(target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
        return fut

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.put(None)  # let the next worker see it too
                return
            self._run_one(*item)
            del item
            self._idle.release()

    @staticmethod
    def _run_one(fut: "concurrent.futures.Future[Any]", fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        if fut.set_running_or_notify_cancel():
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                fut.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            while cancel_futures:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None and item[0].set_running_or_notify_cancel():
                    item[0].set_exception(RuntimeError("AsyncBridge was shut down before this call ran"))
            self._queue.put(None)
        if wait:
            self.join()

    def join(self) -> None:
        for t in list(self._threads):
            if t is not threading.current_thread():
                t.join()


@dataclasses.dataclass(frozen=True)
class BridgeStats:
    """A snapshot of a bridge's counters (see :meth:`AsyncBridge.stats`).

    Each submitted call or stream ends in exactly one of ``completed``,
    ``failed``, ``cancelled`` (the awaiting task was cancelled, or the bridge
    shut down first) or ``timed_out``. ``active`` counts threads busy right now,
    including ones whose caller gave up; ``peak_active`` is its maximum.
    """

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    active: int = 0
    peak_active: int = 0


class _Call:
    __slots__ = ("settled",)

    def __init__(self) -> None:
        self.settled = False


class _Channel:
    """State shared by one :class:`BridgedIterator` and its producer thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.loop = loop
        self.maxsize = maxsize
        self.cond = threading.Condition(threading.Lock())
        self.buffer: Deque[Any] = collections.deque()
        self.produced = 0  # items pushed
        self.taken = 0  # items the consumer took
        self.producer_waiting = False
        self.waiter: Optional["asyncio.Future[None]"] = None  # the consumer, parked
        self.source: Any = None  # what make_iterator() returned, once it has
        self.stop = False  # the consumer went away or the bridge is shutting down
        self.stop_error: Optional[BaseException] = None  # set when the bridge stopped it
        self.done = False  # the producer finished and closed its iterator
        self.error: Optional[BaseException] = None

    def _wake(self, waiter: Optional["asyncio.Future[None]"]) -> bool:
        if waiter is not None:
            try:
                self.loop.call_soon_threadsafe(_set_none, waiter)
            except RuntimeError:  # the consumer's loop is closed: nobody is listening
                self.stop = True
                return False
        return True

    def push(self, item: Any) -> bool:
        with self.cond:
            self.buffer.append(item)
            self.produced += 1
            waiter, self.waiter = self.waiter, None
        return self._wake(waiter)

    def finish(self, error: Optional[BaseException]) -> None:
        with self.cond:
            if self.done:
                return
            self.error = error
            self.done = True
            waiter, self.waiter = self.waiter, None
        self._wake(waiter)

    def wait_for_room(self) -> bool:
        """Block until the consumer made room; False when the stream must stop."""
        with self.cond:
            while not self.stop and self.produced - self.taken >= self.maxsize:
                self.producer_waiting = True
                self.cond.wait(_POLL)
                if self.loop.is_closed():
                    self.stop = True
            self.producer_waiting = False
            return not self.stop

    def request_stop(self, error: Optional[BaseException] = None) -> None:
        """Stop the producer; ``abort()`` the stream if it is still running (thread-safe)."""
        with self.cond:
            self.stop = True
            if error is not None and self.stop_error is None:
                self.stop_error = error
            self.cond.notify_all()
            source = None if self.done else self.source
        abort = getattr(source, "abort", None)
        if callable(abort):
            try:
                abort()
            except Exception:  # pragma: no cover - defensive
                _log.debug("abort() of a bridged stream failed", exc_info=True)


def _set_none(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


async def _await(aw: Awaitable[T]) -> T:
    return await aw


class BridgedIterator(AsyncIterator[T]):
    """An async iterator over a blocking iterator running on a bridge thread.

    Returned by :meth:`AsyncBridge.iterate`. Nothing starts before the first
    ``__anext__``. ``await it.aclose()`` or ``async with`` stops the stream;
    so do cancelling the task awaiting an item, an item timeout, and dropping
    the iterator (``break`` out of ``async for``).
    """

    def __init__(self, bridge: "AsyncBridge", make: Callable[[], Iterable[T]], queue_size: int, timeout: Optional[float]) -> None:
        self._bridge = bridge
        self._make: Optional[Callable[[], Iterable[T]]] = make
        self._queue_size = queue_size
        self._timeout = timeout
        self._ch: Optional[_Channel] = None
        self._call = _Call()
        self._cfut: Optional["concurrent.futures.Future[Any]"] = None
        self._finished = False
        self._busy = False

    def __aiter__(self) -> "BridgedIterator[T]":
        return self

    async def __aenter__(self) -> "BridgedIterator[T]":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def __anext__(self) -> T:
        if self._finished:
            raise StopAsyncIteration
        if self._busy:
            raise RuntimeError("anext(): another task is already waiting on this iterator")
        ch = self._ch or self._start()
        self._busy = True
        try:
            while True:
                with ch.cond:
                    if ch.buffer:
                        ch.taken += 1
                        if ch.producer_waiting:
                            ch.cond.notify()
                        return ch.buffer.popleft()  # type: ignore[no-any-return]
                    if ch.done:
                        break
                    waiter = ch.waiter = ch.loop.create_future()
                try:
                    if self._timeout is None:
                        await waiter
                    else:
                        await asyncio.wait_for(waiter, self._timeout)
                except asyncio.CancelledError:
                    await self._stop("cancelled")
                    raise
                except asyncio.TimeoutError:
                    await self._stop("timed_out")
                    raise ProviderTimeoutError(
                        f"no stream item within {self._timeout:g}s", hint="Raise the timeout or check the server"
                    ) from None
        finally:
            self._busy = False
        self._finished = True
        error, ch.error = ch.error, None
        if error is not None:
            raise error
        raise StopAsyncIteration

    def _start(self) -> _Channel:
        ch = self._ch = _Channel(asyncio.get_running_loop(), self._queue_size)
        make, self._make = self._make, None
        self._cfut = self._bridge._start_stream(ch, make, self._call)
        return ch

    async def aclose(self) -> None:
        """Stop the stream: ``abort()`` it, let its thread ``close()`` it, wait (bounded)."""
        await self._stop("completed")

    async def _stop(self, outcome: str) -> None:
        self._finished = True
        ch = self._ch
        if ch is None or ch.done:
            return
        self._bridge._settle(self._call, outcome)
        if self._cfut is not None:
            self._cfut.cancel()  # if it never started, its done callback finishes the channel
        ch.request_stop()
        loop = ch.loop
        deadline = loop.time() + self._bridge.close_timeout
        while True:
            with ch.cond:
                if ch.done:
                    return
                waiter = ch.waiter = loop.create_future()
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(waiter, remaining)
            except asyncio.TimeoutError:
                _log.warning("a bridged stream did not stop within %.1fs; its thread is left running", self._bridge.close_timeout)
                return

    def __del__(self) -> None:
        ch = self._ch
        if ch is None or ch.done:
            return
        ch.stop = True  # no locks here: __del__ may run anywhere; the loop does the rest
        try:
            ch.loop.call_soon_threadsafe(ch.request_stop)
        except Exception:  # the loop is closed (or shutting down)
            try:
                ch.request_stop()
            except Exception:  # pragma: no cover
                pass


class AsyncBridge:
    """Runs blocking modelprov calls for asyncio code on its own thread pool.

    :param max_workers: pool size (default :data:`DEFAULT_MAX_WORKERS`).
    :param thread_name_prefix: prefix of the worker and loop thread names.
    :param queue_size: default number of items a stream may run ahead.
    :param close_timeout: how long closing a stream waits for its thread.

    The pool and the ``run_sync`` loop start on first use. Threads are daemons,
    so a call blocked forever never blocks interpreter exit. Thread-safe.
    """

    def __init__(
        self,
        max_workers: Optional[int] = None,
        *,
        thread_name_prefix: str = "modelprov-bridge",
        queue_size: int = DEFAULT_QUEUE_SIZE,
        close_timeout: float = 2.0,
    ) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive int, not {max_workers!r}")
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be a positive int, not {queue_size!r}")
        self.max_workers: int = max_workers or DEFAULT_MAX_WORKERS
        self.thread_name_prefix = thread_name_prefix
        self.queue_size = queue_size
        self.close_timeout = float(close_timeout)
        self._closed = False
        self._init_state()
        _BRIDGES.add(self)

    def _init_state(self) -> None:
        """(Re)create locks, pool, loop and counters: at init and in a forked child."""
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._pool: Optional[_DaemonPool] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[threading.Thread] = None
        self._channels: Set[_Channel] = set()
        self._counts = dict.fromkeys(("submitted", "completed", "failed", "cancelled", "timed_out"), 0)
        self._active = self._peak = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<AsyncBridge {state} max_workers={self.max_workers} prefix={self.thread_name_prefix!r}>"

    def __enter__(self) -> "AsyncBridge":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown(wait=True)

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._closed

    # ------------------------------------------------------------ counters
    def stats(self) -> BridgeStats:
        """A consistent snapshot of the counters."""
        with self._stats_lock:
            return BridgeStats(active=self._active, peak_active=self._peak, **self._counts)

    def _settle(self, call: _Call, outcome: str) -> None:
        with self._stats_lock:
            if not call.settled:
                call.settled = True
                self._counts[outcome] += 1

    def _enter(self) -> None:
        with self._stats_lock:
            self._active += 1
            if self._active > self._peak:
                self._peak = self._active

    def _leave(self, call: _Call, outcome: str) -> None:
        with self._stats_lock:
            self._active -= 1
            if not call.settled:
                call.settled = True
                self._counts[outcome] += 1

    def _invoke(self, call: _Call, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        self._enter()
        outcome = "failed"
        try:
            result = fn(*args, **kwargs)
            outcome = "completed"
            return result
        except (StopIteration, StopAsyncIteration) as exc:
            raise _fix_stop(exc, _name(fn)) from exc
        finally:
            self._leave(call, outcome)

    # ---------------------------------------------------------------- pool
    def _submit(self, call: _Call, fn: Callable[..., Any], args: Any, kwargs: Any, *, direct: bool = False) -> "concurrent.futures.Future[Any]":
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("AsyncBridge is shut down")
                if self._pool is None:
                    self._pool = _DaemonPool(self.max_workers, self.thread_name_prefix)
                pool = self._pool
        with self._stats_lock:
            self._counts["submitted"] += 1
        try:
            return pool.submit(fn, *args) if direct else pool.submit(self._invoke, call, fn, args, kwargs)
        except BaseException:
            with self._stats_lock:
                self._counts["submitted"] -= 1
            raise

    async def run(self, fn: Callable[..., T], *args: Any, timeout: Optional[float] = None, **kwargs: Any) -> T:
        """Run blocking ``fn(*args, **kwargs)`` on the pool and await its result.

        ``timeout`` (seconds) raises :class:`~modelprov.exceptions.ProviderTimeoutError`.
        A timed-out or cancelled await returns at once, but a thread that already
        started keeps running until ``fn`` returns: Python cannot stop a thread.
        ``StopIteration`` from ``fn`` arrives as ``RuntimeError``.
        """
        loop = asyncio.get_running_loop()
        call = _Call()
        afut = asyncio.wrap_future(self._submit(call, fn, args, kwargs), loop=loop)
        try:
            if timeout is not None:
                done, _ = await asyncio.wait({afut}, timeout=timeout)
                if not done:
                    afut.cancel()
                    self._settle(call, "timed_out")
                    raise ProviderTimeoutError(
                        f"{_name(fn)} did not finish within {timeout:g}s (its thread keeps running)",
                        hint="Raise the timeout, or give the blocking call its own timeout",
                    )
            return await afut
        except asyncio.CancelledError:
            afut.cancel()
            self._settle(call, "cancelled")
            raise
        except BaseException:
            self._settle(call, "cancelled")  # no-op when fn ran or timed out; else the pool shut down first
            raise

    # ------------------------------------------------------------- streams
    def iterate(
        self, make_iterator: Callable[[], Iterable[T]], *, queue_size: Optional[int] = None, timeout: Optional[float] = None
    ) -> BridgedIterator[T]:
        """Iterate a blocking iterator (such as a provider stream) from async code.

        ``make_iterator()`` is called on a bridge thread, which then runs the
        iterator, never more than ``queue_size`` items ahead of the consumer.
        Errors arrive in order, after the items before them. ``timeout`` is the
        longest wait for any one item (:class:`ProviderTimeoutError`). Stopping
        early calls the iterator's ``abort()`` (if any) from the loop thread and
        its ``close()`` from the worker thread. One pool thread per open stream.
        """
        if not callable(make_iterator):
            raise TypeError(f"make_iterator must be callable, not {type(make_iterator).__name__}")
        size = self.queue_size if queue_size is None else queue_size
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"queue_size must be a positive int, not {size!r}")
        return BridgedIterator(self, make_iterator, size, timeout)

    def _start_stream(self, ch: _Channel, make: Any, call: _Call) -> "concurrent.futures.Future[Any]":
        with self._lock:
            self._channels.add(ch)
        try:
            cfut = self._submit(call, self._produce, (ch, make, call), {}, direct=True)
        except BaseException:
            with self._lock:
                self._channels.discard(ch)
            raise

        def never_ran(f: "concurrent.futures.Future[Any]") -> None:
            # _produce never raises: a cancelled or failed future means it never ran
            if f.cancelled() or f.exception() is not None:
                with self._lock:
                    self._channels.discard(ch)
                self._settle(call, "cancelled")
                ch.finish(None if f.cancelled() else f.exception())

        cfut.add_done_callback(never_ran)
        return cfut

    def _produce(self, ch: _Channel, make: Callable[[], Iterable[Any]], call: _Call) -> None:
        """Worker side of a stream: run the iterator into the channel, then close it.

        Never raises; counts its own outcome before the consumer can see the end.
        """
        self._enter()
        error: Optional[BaseException] = None
        source: Any = None
        it: Any = None
        try:
            if not ch.stop:
                source = make()
                it = iter(source)
                with ch.cond:
                    ch.source = source
                while ch.wait_for_room():
                    item = next(it, _END)
                    if item is _END or not ch.push(item):
                        break
        except BaseException as exc:
            error = _fix_stop(exc, "the bridged iterator")
        finally:
            for obj in (it, source) if source is not it else (it,):
                close = getattr(obj, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception:
                        _log.debug("close() of a bridged stream failed", exc_info=True)
            with self._lock:
                self._channels.discard(ch)
            failed = error is not None and not ch.stop
            self._leave(call, "cancelled" if ch.stop_error is not None else "failed" if failed else "completed")
            ch.finish(ch.stop_error or (None if ch.stop else error))

    # ------------------------------------------------------------ run_sync
    def run_sync(self, coro: Awaitable[T], timeout: Optional[float] = None) -> T:
        """Run an awaitable to completion from synchronous code and return its result.

        It runs on the bridge's own event loop thread, so this works where
        ``asyncio.run`` fails: inside a running loop (Jupyter), and repeatedly.
        ``timeout`` cancels it and raises :class:`ProviderTimeoutError`. The
        awaitable must not be tied to another loop (e.g. that loop's futures).
        """
        try:
            if threading.current_thread() is self._loop_thread:
                raise RuntimeError("run_sync() on the bridge's own loop thread would deadlock; await it instead")
            loop = self._get_loop()
            cfut = asyncio.run_coroutine_threadsafe(coro if asyncio.iscoroutine(coro) else _await(coro), loop)
        except BaseException:
            if asyncio.iscoroutine(coro):
                coro.close()  # no "never awaited" warning
            raise
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not cfut.done():
                left = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
                if left <= 0:
                    cfut.cancel()
                    raise ProviderTimeoutError(f"run_sync() did not finish within {timeout:g}s", hint="Raise the timeout")
                concurrent.futures.wait([cfut], timeout=left)
                if loop.is_closed() and not cfut.done():  # shut down before the coroutine started
                    raise RuntimeError("AsyncBridge was shut down before the coroutine ran")
        except BaseException:  # also KeyboardInterrupt while waiting
            cfut.cancel()
            raise
        return cfut.result()  # type: ignore[no-any-return]

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("AsyncBridge is shut down")
                if self._loop is None:
                    new = asyncio.new_event_loop()
                    t = threading.Thread(target=_loop_main, args=(new,), name=f"{self.thread_name_prefix}-loop", daemon=True)
                    t.start()
                    self._loop, self._loop_thread = new, t
                loop = self._loop
        return loop

    # ------------------------------------------------------------ shutdown
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the bridge: abort open streams, stop the pool and the loop.

        ``wait`` joins the threads (a call blocked forever then blocks this
        too); ``cancel_futures`` fails calls that have not started. Idempotent.
        """
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
            channels = list(self._channels)
        if pool is not None:  # first, so that no freed thread picks up a queued call
            pool.shutdown(wait=False, cancel_futures=cancel_futures)
        for ch in channels:
            ch.request_stop(RuntimeError("AsyncBridge was shut down while the stream was open"))
        if loop is not None:
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # pragma: no cover - already closed
                pass
        if wait and pool is not None:
            pool.join()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    def _after_fork_in_child(self) -> None:
        old = self._loop
        if old is not None:
            _ORPHANED_LOOPS.append(old)  # owned by a thread that does not exist here: never touch it
        self._init_state()


def _loop_main(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


# ------------------------------------------------------------ process-wide
_BRIDGES: "weakref.WeakSet[AsyncBridge]" = weakref.WeakSet()
_ORPHANED_LOOPS: List[Any] = []
_default: Optional[AsyncBridge] = None
_default_lock = threading.Lock()


def get_bridge() -> AsyncBridge:
    """The process-wide bridge, created on first use (thread-safe)."""
    global _default
    bridge = _default
    if bridge is None or bridge.closed:
        with _default_lock:
            if _default is None or _default.closed:
                _default = AsyncBridge()
            bridge = _default
    return bridge


def reset_bridge() -> None:
    """Shut the process-wide bridge down (not waiting on blocked threads); the next use makes a new one."""
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.shutdown(wait=False, cancel_futures=True)


def run_sync(coro: Awaitable[T], timeout: Optional[float] = None) -> T:
    """:meth:`AsyncBridge.run_sync` on the process-wide bridge."""
    return get_bridge().run_sync(coro, timeout=timeout)


def _shutdown_all_at_exit() -> None:
    for bridge in list(_BRIDGES):
        try:
            bridge.shutdown(wait=False, cancel_futures=True)
        except Exception:  # pragma: no cover - best effort at exit
            pass


def _after_fork_in_child() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for bridge in list(_BRIDGES):
        bridge._after_fork_in_child()


atexit.register(_shutdown_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
