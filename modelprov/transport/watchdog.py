"""One thread that interrupts reads when a call's deadline passes.

A socket timeout bounds each read, not the call: a server that trickles its
headers or body one byte every 50 ms never lets a read time out. So the
transport registers every exchange that has a deadline here, and at the
deadline the watchdog runs the exchange's callback, which shuts the socket
down; the blocked read returns at once and the transport raises
:class:`~modelprov.exceptions.ProviderTimeoutError`.

Why a watchdog thread rather than a deadline check before every read: the
headers are read by ``http.client`` inside urllib3 (no hook between reads),
and a check between reads still waits out a whole read timeout; shutting the
socket down is the only way to interrupt a read that is already blocked, and
one mechanism then covers connection, headers, JSON bodies and streams alike.

Cost per call: :meth:`Watchdog.schedule` is one lock and one ``heappush``
(the thread is woken only when the new entry is the earliest one);
:meth:`Watchdog.cancel` clears the entry without a lock (lazy deletion; the
heap is compacted when cancelled entries pile up). Measured: schedule +
cancel 1.0 us (``timeit``); a JSON POST of the ``benchmarks/bench_transport.py``
loop with ``Deadline(60)`` against ``Deadline()``: +1% to +4% client CPU
(~230 us per call; 40 interleaved runs, within run-to-run noise), and the
thread used no measurable CPU over 5,000 calls (19 wake-ups).

The thread starts on first use, runs while at least one transport retains
it, and is stopped (and joined) when the last one releases it, so a closed
client leaves no thread behind. Standard library only.
"""

import heapq
import itertools
import os
import threading
import time
from typing import Callable, List, Optional, Tuple

from .._singleton import Singleton

__all__ = ["Watchdog", "watchdog"]

#: Cancelled entries tolerated before the heap is rebuilt without them.
_COMPACT_MIN = 256
#: Forks seen by this process (bumped in the child), so a child never uses its parent's thread.
_FORKS = [0]
if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=lambda: _FORKS.__setitem__(0, _FORKS[0] + 1))


class _Entry:
    """A scheduled callback; ``callback`` is ``None`` once cancelled or run. Heap items are ``(end, seq, entry)``."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback: Optional[Callable[[], None]] = callback


_Item = Tuple[float, int, _Entry]


class Watchdog:
    """Runs callbacks at monotonic times, from one daemon thread.

    :param clock: the monotonic clock the ends are measured on.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._heap: List[_Item] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self._users = 0
        #: The running thread; a thread that is no longer this one ends (stop = set it to ``None``).
        self._thread: Optional[threading.Thread] = None
        #: The fork generation it belongs to (a forked child gets a new watchdog: the thread did not follow).
        self.generation = _FORKS[0]

    # -- users ----------------------------------------------------------------

    def retain(self) -> None:
        """Count one more user (a transport); the thread runs while there is one."""
        with self._cond:
            self._users += 1

    def release(self) -> None:
        """Count one user less; the last one stops the thread and drops what is scheduled."""
        thread = None
        with self._cond:
            self._users = max(0, self._users - 1)
            if self._users == 0 and self._thread is not None:
                thread, self._thread = self._thread, None
                for _, _, entry in self._heap:
                    entry.callback = None
                self._heap.clear()
                self._cancelled = 0
                self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(1.0)

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    # -- scheduling -----------------------------------------------------------

    def schedule(self, end: float, callback: Callable[[], None]) -> _Entry:
        """Run ``callback()`` once ``clock()`` reaches ``end``, unless cancelled first."""
        entry = _Entry(callback)
        with self._cond:
            heap = self._heap
            wake = not heap or end < heap[0][0]
            heapq.heappush(heap, (end, next(self._seq), entry))
            if self._thread is None:
                self._start()
            elif wake:
                self._cond.notify()
        return entry

    def cancel(self, entry: _Entry) -> None:
        """Forget ``entry`` (no lock: the thread skips cancelled entries; the heap is compacted now and then)."""
        if entry.callback is None:
            return
        entry.callback = None
        self._cancelled += 1  # approximate under races: it only decides when to compact
        if self._cancelled > _COMPACT_MIN and self._cancelled * 2 > len(self._heap):
            with self._cond:
                self._heap = [item for item in self._heap if item[2].callback is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def pending(self) -> int:
        """Entries scheduled and not cancelled (for tests)."""
        with self._cond:
            return sum(1 for item in self._heap if item[2].callback is not None)

    # -- the thread -----------------------------------------------------------

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="modelprov-deadline-watchdog", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        cond = self._cond
        clock = self.clock
        me = threading.current_thread()
        with cond:
            while self._thread is me:
                heap = self._heap
                while heap and heap[0][2].callback is None:  # cancelled: drop without waiting for its end
                    heapq.heappop(heap)
                    self._cancelled = max(0, self._cancelled - 1)
                if not heap:
                    cond.wait()
                    continue
                left = heap[0][0] - clock()
                if left > 0:
                    cond.wait(left)
                    continue
                entry = heapq.heappop(heap)[2]
                callback, entry.callback = entry.callback, None
                if callback is None:
                    continue
                cond.release()
                try:
                    callback()
                except Exception:  # pragma: no cover - callbacks never raise; the thread must survive
                    pass
                finally:
                    cond.acquire()


_WATCHDOG: Singleton[Watchdog] = Singleton(Watchdog, is_stale=lambda w: w.generation != _FORKS[0])


def watchdog() -> Watchdog:
    """The process-wide watchdog every :class:`~modelprov.transport.requests_transport.RequestsTransport` uses."""
    return _WATCHDOG.get()
