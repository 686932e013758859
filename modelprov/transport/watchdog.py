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
heap is compacted when cancelled entries pile up). Measured in
``benchmarks/bench_transport.py`` (a JSON POST with a deadline vs without).

The thread starts on first use, runs while at least one transport retains
it, and is stopped (and joined) when the last one releases it, so a closed
client leaves no thread behind. Standard library only.
"""

import heapq
import itertools
import os
import threading
import time
from typing import Callable, List, Optional

from .._singleton import Singleton

__all__ = ["Watchdog", "watchdog"]

#: Cancelled entries tolerated before the heap is rebuilt without them.
_COMPACT_MIN = 256


class _Entry:
    """A scheduled callback; ``callback`` is ``None`` once cancelled or run."""

    __slots__ = ("callback", "end", "seq")

    def __init__(self, end: float, seq: int, callback: Callable[[], None]) -> None:
        self.end = end
        self.seq = seq
        self.callback: Optional[Callable[[], None]] = callback

    def __lt__(self, other: "_Entry") -> bool:
        return (self.end, self.seq) < (other.end, other.seq)


class Watchdog:
    """Runs callbacks at monotonic times, from one daemon thread.

    :param clock: the monotonic clock the ends are measured on.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._heap: List[_Entry] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self._users = 0
        self._thread: Optional[threading.Thread] = None
        self._stop = False
        #: The process that made it (a forked child gets a new watchdog: the thread did not follow).
        self.pid = os.getpid()

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
                self._stop = True
                for entry in self._heap:
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
        entry = _Entry(end, next(self._seq), callback)
        with self._cond:
            heap = self._heap
            wake = not heap or end < heap[0].end
            heapq.heappush(heap, entry)
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
                self._heap = [e for e in self._heap if e.callback is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def pending(self) -> int:
        """Entries scheduled and not cancelled (for tests)."""
        with self._cond:
            return sum(1 for e in self._heap if e.callback is not None)

    # -- the thread -----------------------------------------------------------

    def _start(self) -> None:
        self._stop = False
        thread = threading.Thread(target=self._run, name="modelprov-deadline-watchdog", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        cond = self._cond
        clock = self.clock
        with cond:
            while not self._stop:
                heap = self._heap
                while heap and heap[0].callback is None:  # cancelled: drop without waiting for its end
                    heapq.heappop(heap)
                    self._cancelled = max(0, self._cancelled - 1)
                if not heap:
                    cond.wait()
                    continue
                left = heap[0].end - clock()
                if left > 0:
                    cond.wait(left)
                    continue
                entry = heapq.heappop(heap)
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


_WATCHDOG: Singleton[Watchdog] = Singleton(Watchdog, is_stale=lambda w: w.pid != os.getpid())


def watchdog() -> Watchdog:
    """The process-wide watchdog every :class:`~modelprov.transport.requests_transport.RequestsTransport` uses."""
    return _WATCHDOG.get()
