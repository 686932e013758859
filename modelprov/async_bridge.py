"""The async bridge: asyncio callers on top of modelprov's blocking core.

:class:`AsyncBridge` runs blocking calls on its own daemon threads (``run``), turns
a blocking iterator such as a provider stream into a bounded async iterator
(``iterate``), and runs a coroutine from sync code, even inside a running loop as
in Jupyter (``run_sync``). :func:`get_bridge` is the process-wide one. Traps handled:

* ``StopIteration`` cannot cross a Future (``run_in_executor(None, next, it)`` hangs
  on 3.9-3.12): ``run`` raises ``RuntimeError`` as 3.13 does; ``iterate`` uses a sentinel.
* A cancelled or timed-out ``await`` does not stop its thread; streams are stopped
  with ``abort()``, since ``close()`` from another thread does not unblock a read.
* ``ThreadPoolExecutor`` joins its workers at exit *before* ``atexit`` hooks run, so
  one endless read blocks exit: these threads are daemons, and ``atexit`` aborts streams.
* ``asyncio.run`` fails in a running loop: ``run_sync`` uses a loop on its own thread.
* A forked child has none of its parent's threads: bridges start afresh there.

The pool is elastic (:mod:`._bridge_pool`): one thread per call in flight, started
on demand up to ``max_workers`` (default derived from the machine's limits, see
:func:`~modelprov._bridge_pool.machine_max_workers`), retired after ``idle_timeout``
seconds without work. The process-wide bridge reads ``MODELPROV_BRIDGE_MAX_WORKERS``
and ``MODELPROV_BRIDGE_IDLE_TIMEOUT`` when it is created.
"""

import asyncio
import atexit
import concurrent.futures
import dataclasses
import math
import os
import threading
import weakref
from typing import Any, AsyncGenerator, Callable, Coroutine, Dict, Iterable, List, Optional, Set, Tuple, TypeVar

from ._bridge_channel import _END, _Channel
from ._bridge_pool import Job, WorkerPool, env_number, machine_max_workers
from ._log import get_logger
from ._singleton import Singleton
from .exceptions import ProviderTimeoutError

__all__ = [
    "DEFAULT_IDLE_TIMEOUT", "DEFAULT_MAX_WORKERS", "DEFAULT_QUEUE_SIZE", "ENV_IDLE_TIMEOUT", "ENV_MAX_WORKERS",
    "AsyncBridge", "BridgeStats", "get_bridge", "reset_bridge", "run_sync", "set_bridge",
]  # fmt: skip

T = TypeVar("T")
_Fut = concurrent.futures.Future
_log = get_logger("async_bridge")

#: The most worker threads a bridge runs at once, by default: derived from this
#: machine's limits (descriptors, threads, memory), at most 4096; see
#: :func:`~modelprov._bridge_pool.machine_max_workers`. A call or an open stream
#: holds a thread while it runs, so this caps the calls in flight; threads start
#: only as calls arrive, and calls beyond the cap wait for a free thread.
DEFAULT_MAX_WORKERS = machine_max_workers()
#: Seconds a worker thread waits for work before it retires.
DEFAULT_IDLE_TIMEOUT = 30.0
#: Environment variables read when the process-wide bridge is created.
ENV_MAX_WORKERS, ENV_IDLE_TIMEOUT = "MODELPROV_BRIDGE_MAX_WORKERS", "MODELPROV_BRIDGE_IDLE_TIMEOUT"
#: Items a stream's producer thread may run ahead of its consumer.
DEFAULT_QUEUE_SIZE = 8
_Call = List[bool]  # [settled]: a call's outcome is counted once, by whoever knows it first


def _no_stop(exc: BaseException, what: object) -> BaseException:
    """``StopIteration`` cannot cross a Future or a coroutine: make it a ``RuntimeError``."""
    if not isinstance(exc, (StopIteration, StopAsyncIteration)):
        return exc
    name = getattr(getattr(what, "func", what), "__qualname__", what)  # unwraps functools.partial
    new = RuntimeError(f"{name} raised {type(exc).__name__}")
    new.__cause__ = exc
    return new


@dataclasses.dataclass(frozen=True)
class BridgeStats:
    """A snapshot of a bridge's counters. Each submitted call or stream ends as one of
    ``completed``, ``failed``, ``cancelled`` (task cancelled, or bridge shut down first)
    or ``timed_out``; ``active`` counts busy threads, including ones whose caller gave up.
    ``workers`` are the threads alive now (busy or ``idle_workers``), ``peak_workers`` the
    most at once, ``retired_workers`` those that ended after idling (or at shutdown);
    ``queued`` calls wait for a thread because ``max_workers`` are busy."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    active: int = 0
    peak_active: int = 0
    workers: int = 0
    idle_workers: int = 0
    peak_workers: int = 0
    retired_workers: int = 0
    queued: int = 0


class AsyncBridge:
    """Runs blocking modelprov calls for asyncio code on its own elastic thread pool (thread-safe).

    :param max_workers: the most threads at once, so the most calls in flight (default
        :data:`DEFAULT_MAX_WORKERS`, derived from the machine's limits); calls beyond it wait.
    :param idle_timeout: seconds a thread waits for work before it retires
        (default :data:`DEFAULT_IDLE_TIMEOUT`).
    :param thread_name_prefix: prefix of the worker and loop thread names.
    :param queue_size: default number of items a stream may run ahead of its consumer.
    :param close_timeout: how long stopping a stream waits for its thread.

    Threads start as calls arrive (one per call in flight) and are daemons: a call
    blocked forever never blocks exit.
    """

    def __init__(self, max_workers: Optional[int] = None, *, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 thread_name_prefix: str = "modelprov-bridge", queue_size: int = DEFAULT_QUEUE_SIZE,
                 close_timeout: float = 2.0) -> None:
        for name, value in (("max_workers", 1 if max_workers is None else max_workers), ("queue_size", queue_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if isinstance(idle_timeout, bool) or not isinstance(idle_timeout, (int, float)) or not 0 < idle_timeout < math.inf:
            raise ValueError(f"idle_timeout must be a positive number of seconds, not {idle_timeout!r}")
        self._max_workers: int = max_workers or DEFAULT_MAX_WORKERS
        self.idle_timeout = float(idle_timeout)
        self.thread_name_prefix, self.queue_size, self.close_timeout = thread_name_prefix, queue_size, close_timeout
        self._closed = False
        self._init_state()
        _BRIDGES.add(self)

    @property
    def max_workers(self) -> int:
        """The most worker threads at once (lowered by itself if the OS refuses a thread)."""
        return self._pool.max_workers

    @max_workers.setter
    def max_workers(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"max_workers must be a positive int, not {value!r}")
        self._max_workers = self._pool.max_workers = value

    def _init_state(self) -> None:
        """(Re)create locks, pool, loop and counters: at init and in a forked child."""
        self._lock, self._stats_lock = threading.Lock(), threading.Lock()
        self._pool = WorkerPool(self._max_workers, self.idle_timeout, self.thread_name_prefix)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[threading.Thread] = None
        self._channels: Set[_Channel] = set()
        self._counts = dict.fromkeys(("submitted", "completed", "failed", "cancelled", "timed_out"), 0)
        self._active = self._peak = 0

    def __enter__(self) -> "AsyncBridge":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True)

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._closed

    def stats(self) -> BridgeStats:
        """A snapshot of the counters (call counters consistent together, thread counters together)."""
        workers, idle, queued, peak, retired = self._pool.counts()
        with self._stats_lock:
            return BridgeStats(active=self._active, peak_active=self._peak, workers=workers, idle_workers=idle,
                               peak_workers=peak, retired_workers=retired, queued=queued, **self._counts)

    def retire_idle_workers(self) -> int:
        """Retire every idle worker thread now, without waiting for ``idle_timeout``; returns how many.

        Busy threads are untouched; later calls start threads again as needed.
        """
        return self._pool.retire_idle()

    def _count(self, call: Optional[_Call], outcome: str = "", active: int = 0) -> None:
        """Count a thread starting (``active=1``) or ending (-1), and ``call``'s outcome once."""
        with self._stats_lock:
            self._active += active
            self._peak = max(self._peak, self._active)
            if call is not None and not call[0]:
                call[0] = True
                self._counts[outcome] += 1

    def _submit(self, fn: Callable[..., T], *args: Any) -> "_Fut[T]":
        fut: "_Fut[T]" = _Fut()
        if self._closed:
            raise RuntimeError("AsyncBridge is shut down")
        with self._stats_lock:
            self._counts["submitted"] += 1
        try:
            self._pool.submit((fut, fn, args))
        except RuntimeError:  # shut down in between
            with self._stats_lock:
                self._counts["submitted"] -= 1
            raise
        return fut

    def _invoke(self, call: _Call, fn: Callable[..., T], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> T:
        self._count(None, active=1)
        outcome = "failed"
        try:
            result = fn(*args, **kwargs)
            outcome = "completed"
            return result
        except (StopIteration, StopAsyncIteration) as exc:
            raise _no_stop(exc, fn) from exc
        finally:
            self._count(call, outcome, active=-1)

    async def run(self, fn: Callable[..., T], *args: Any, timeout: Optional[float] = None, **kwargs: Any) -> T:
        """Run blocking ``fn(*args, **kwargs)`` on the pool and await its result.

        ``timeout`` (seconds) raises :class:`~modelprov.exceptions.ProviderTimeoutError`.
        A timed-out or cancelled await returns at once, but a thread that already
        started runs on until ``fn`` returns: Python cannot stop a thread.
        ``StopIteration`` from ``fn`` arrives as ``RuntimeError``.
        """
        call: _Call = [False]
        cfut: "_Fut[T]" = self._submit(self._invoke, call, fn, args, kwargs)
        afut = asyncio.wrap_future(cfut, loop=asyncio.get_running_loop())
        try:
            if timeout is not None and not (await asyncio.wait({afut}, timeout=timeout))[0]:
                afut.cancel()
                self._count(call, "timed_out")
                msg = f"{getattr(fn, '__qualname__', 'the call')} did not finish within {timeout:g}s (its thread runs on)"
                raise ProviderTimeoutError(msg, hint="Raise the timeout, or give the blocking call its own timeout")
            return await afut
        except BaseException:
            afut.cancel()
            self._count(call, "cancelled")  # no-op when fn ran or timed out; else cancelled or shut down first
            raise

    def iterate(self, make_iterator: Callable[[], Iterable[T]], *, queue_size: Optional[int] = None,
                timeout: Optional[float] = None) -> AsyncGenerator[T, None]:
        """Iterate a blocking iterator (such as a provider stream) from async code.

        ``make_iterator()`` is called on a pool thread, which then runs the iterator
        never more than ``queue_size`` items ahead of the consumer; errors arrive after
        the items before them. ``timeout`` bounds the wait for each item. Cancelling,
        ``aclose()``, ``break`` or a timeout call the iterator's ``abort()`` (if any)
        from the loop and ``close()`` from its thread, waiting up to ``close_timeout``.
        """
        if not callable(make_iterator):
            raise TypeError(f"make_iterator must be callable, not {type(make_iterator).__name__}")
        size = self.queue_size if queue_size is None else queue_size
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"queue_size must be a positive int, not {size!r}")
        return self._iterate(make_iterator, size, timeout)

    async def _iterate(self, make: Callable[[], Iterable[T]], size: int, timeout: Optional[float]) -> AsyncGenerator[T, None]:
        ch, call = _Channel(asyncio.get_running_loop(), size), [False]
        cfut = self._start_stream(ch, make, call)
        outcome = "completed"
        try:
            while True:
                with ch.cond:
                    waiter = None
                    if ch.buffer:
                        ch.taken += 1
                        if ch.producer_waiting:
                            ch.cond.notify()
                        item = ch.buffer.popleft()
                    elif ch.done:
                        break
                    else:
                        waiter = ch.waiter = ch.loop.create_future()
                if waiter is None:
                    yield item
                    continue
                try:
                    await (waiter if timeout is None else asyncio.wait_for(waiter, timeout))
                except asyncio.CancelledError:
                    outcome = "cancelled"
                    raise
                except asyncio.TimeoutError:
                    outcome = "timed_out"
                    raise ProviderTimeoutError(f"no stream item within {timeout:g}s", hint="Raise the timeout") from None
        finally:
            if not ch.done:  # the consumer is leaving early
                await self._stop_stream(ch, cfut, call, outcome)
        error, ch.error = ch.error, None
        if error is not None:
            raise error

    def _start_stream(self, ch: _Channel, make: Callable[[], Iterable[Any]], call: _Call) -> "_Fut[Any]":
        with self._lock:
            self._channels.add(ch)  # before submitting, so that shutdown() sees it
        cfut = self._submit(self._produce, ch, make, call)  # raises only once shut down: then ch does not matter

        def never_ran(f: "_Fut[Any]") -> None:  # _produce never raises: cancelled or failed = never ran
            if f.cancelled() or f.exception() is not None:
                with self._lock:
                    self._channels.discard(ch)
                self._count(call, "cancelled")
                ch.push(error=None if f.cancelled() else f.exception())

        cfut.add_done_callback(never_ran)
        return cfut

    def _produce(self, ch: _Channel, make: Callable[[], Iterable[Any]], call: _Call) -> None:
        """Worker side of a stream: run the iterator into the channel, close it, count the outcome."""
        self._count(None, active=1)
        error: Optional[BaseException] = None
        source = it = None
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
            error = _no_stop(exc, "the bridged iterator")
        finally:
            for obj in (it,) if source is it else (it, source):
                try:
                    getattr(obj, "close", lambda: None)()
                except Exception:
                    _log.debug("close() of a bridged stream failed", exc_info=True)
            with self._lock:
                self._channels.discard(ch)
            failed = error is not None and not ch.stop
            self._count(call, "cancelled" if ch.stop_error else "failed" if failed else "completed", active=-1)
            ch.push(error=ch.stop_error or (None if ch.stop else error))  # after counting: stats are final at the end

    async def _stop_stream(self, ch: _Channel, cfut: "_Fut[Any]", call: _Call, outcome: str) -> None:
        self._count(call, outcome)
        cfut.cancel()  # if it never started, its done callback finishes the channel
        ch.request_stop()
        deadline = ch.loop.time() + self.close_timeout
        while True:
            with ch.cond:
                if ch.done:
                    return
                waiter = ch.waiter = ch.loop.create_future()
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - ch.loop.time()))
            except asyncio.TimeoutError:
                _log.warning("a bridged stream did not stop within %.1fs; its thread is left running", self.close_timeout)
                return

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
        """Run a coroutine to completion from synchronous code and return its result.

        It runs on the bridge's own loop thread, so this works where ``asyncio.run``
        fails: inside a running loop (Jupyter), and repeatedly. ``timeout`` cancels it
        and raises :class:`ProviderTimeoutError`. It must not await another loop's futures.
        """
        try:
            if threading.current_thread() is self._loop_thread:
                raise RuntimeError("run_sync() on the bridge's own loop thread would deadlock; await it instead")
            with self._lock:  # shutdown() cannot slip in: the coroutine gets a task, which stopping cancels
                if self._closed:
                    raise RuntimeError("AsyncBridge is shut down")
                if self._loop is None:
                    self._loop = asyncio.new_event_loop()
                    name = f"{self.thread_name_prefix}-loop"
                    self._loop_thread = threading.Thread(target=_loop_main, args=(self._loop,), name=name, daemon=True)
                    self._loop_thread.start()
                cfut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except BaseException:
            if asyncio.iscoroutine(coro):
                coro.close()  # no "never awaited" warning
            raise
        try:
            if not concurrent.futures.wait([cfut], timeout=timeout).done:
                raise ProviderTimeoutError(f"run_sync() did not finish within {timeout:g}s", hint="Raise the timeout")
        except BaseException:  # also KeyboardInterrupt while waiting
            cfut.cancel()
            raise
        return cfut.result()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the bridge: abort open streams, stop the pool and the loop. Idempotent.

        ``wait`` joins the threads (so a call blocked forever blocks this too);
        ``cancel_futures`` fails calls that have not started yet (else they still run).
        """
        with self._lock:
            self._closed = True
            loop, thread, channels = self._loop, self._loop_thread, list(self._channels)
            self._loop = self._loop_thread = None
        # queued calls are failed first, so that no thread a stopped stream frees runs them
        threads = self._pool.close(_never_ran if cancel_futures else None)
        for ch in channels:
            ch.request_stop(RuntimeError("AsyncBridge was shut down while the stream was open"))
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        for t in [*threads, thread] if wait else []:
            if t is not None and t.ident is not None and t is not threading.current_thread():
                t.join()


def _never_ran(job: Job) -> None:
    if job[0].set_running_or_notify_cancel():
        job[0].set_exception(RuntimeError("AsyncBridge was shut down before this call ran"))


def _loop_main(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()  # until shutdown() stops it; then cancel what is left and close
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


_BRIDGES: "weakref.WeakSet[AsyncBridge]" = weakref.WeakSet()
_ORPHANED_LOOPS: List[asyncio.AbstractEventLoop] = []


def _shutdown_now(bridge: AsyncBridge) -> None:
    bridge.shutdown(wait=False, cancel_futures=True)


def _is_closed(bridge: AsyncBridge) -> bool:
    return bridge.closed


def _default_bridge() -> AsyncBridge:
    """The process-wide bridge: sized by the environment variables when set, else the defaults."""
    idle = env_number(ENV_IDLE_TIMEOUT, float)
    return AsyncBridge(env_number(ENV_MAX_WORKERS, int), idle_timeout=DEFAULT_IDLE_TIMEOUT if idle is None else idle)


def _new_default() -> Singleton[AsyncBridge]:
    return Singleton(_default_bridge, dispose=_shutdown_now, is_stale=_is_closed)


_default = _new_default()


def get_bridge() -> AsyncBridge:
    """The process-wide bridge, created on first use (thread-safe)."""
    return _default.get()


def set_bridge(bridge: AsyncBridge) -> Optional[AsyncBridge]:
    """Make ``bridge`` the process-wide bridge (e.g. ``AsyncBridge(max_workers=8000)``); returns the old one.

    The old bridge is not shut down: calls running on it finish there.
    """
    if not isinstance(bridge, AsyncBridge):
        raise TypeError(f"set_bridge() takes an AsyncBridge, not {type(bridge).__name__}")
    return _default.set(bridge)


def reset_bridge() -> None:
    """Shut the process-wide bridge down without waiting on blocked threads; the next use makes a new one."""
    _default.reset()


def run_sync(coro: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
    """:meth:`AsyncBridge.run_sync` on the process-wide bridge."""
    return get_bridge().run_sync(coro, timeout=timeout)


def _shutdown_all_at_exit() -> None:
    for bridge in list(_BRIDGES):
        bridge.shutdown(wait=False, cancel_futures=True)


def _after_fork_in_child() -> None:
    global _default
    held, _default = _default.peek(), _new_default()  # a fresh lock: the parent's may have been held at fork
    if held is not None:
        _default.set(held)
    for bridge in list(_BRIDGES):
        if bridge._loop is not None:
            _ORPHANED_LOOPS.append(bridge._loop)  # its thread does not exist here: never touch it
        bridge._init_state()


atexit.register(_shutdown_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
