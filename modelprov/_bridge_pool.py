"""The async bridge's elastic worker pool, and the worker cap derived from the machine's limits.

:class:`WorkerPool` runs jobs on daemon threads that start on demand, one per
job in flight, up to ``max_workers``; jobs beyond the cap wait in a queue (they
never fail for lack of a thread). A thread that finds no job for
``idle_timeout`` seconds retires, so a burst of thousands of calls leaves no
thousands of idle threads behind. Idle threads are a stack: the most recently
idle one takes the next job, so under a steady load below the peak the threads
at the bottom of the stack stay idle and retire. Private to
:mod:`modelprov.async_bridge`.

:func:`machine_max_workers` is the default cap (see its docstring for the
derivation).
"""

import collections
import concurrent.futures
import math
import os
import sys
import threading
from typing import Any, Callable, Deque, List, Optional, Set, Tuple

from ._log import get_logger
from .exceptions import ConfigurationError

__all__ = ["CEILING", "FLOOR", "Job", "WorkerPool", "env_number", "machine_max_workers"]

_log = get_logger("async_bridge")

#: The default cap never exceeds this many worker threads.
CEILING = 4096
#: ... and is never below this many, whatever the limits read.
FLOOR = 32
#: Resident memory one call in flight may take: the touched part of its thread's
#: stack, its socket's kernel buffers, the request and the parsed response.
PER_CALL_BYTES = 512 * 1024

#: A job: the future that gets its outcome, a callable and its arguments.
Job = Tuple["concurrent.futures.Future[Any]", Callable[..., Any], Tuple[Any, ...]]


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):  # missing, unreadable or "max"
        return None


def _soft_rlimit(name: str) -> Optional[int]:
    try:
        import resource
    except ImportError:  # Windows
        return None
    try:
        soft = resource.getrlimit(getattr(resource, name))[0]
    except (AttributeError, ValueError, OSError):
        return None
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else int(soft)


def _physical_memory() -> Optional[int]:
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        total = 0
    cgroup = _read_int("/sys/fs/cgroup/memory.max") or _read_int("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    sizes = [n for n in (total, cgroup) if n and n > 0]
    return min(sizes) if sizes else None


def _limits() -> List[Tuple[str, int]]:
    """Each limit read on this machine, as the number of calls in flight it allows."""
    found: List[Tuple[str, int]] = []

    def add(what: str, value: Optional[int], share: int) -> None:
        if value is not None and value > 0:
            found.append((what, value // share))

    add("RLIMIT_NOFILE", _soft_rlimit("RLIMIT_NOFILE"), 2)
    add("RLIMIT_NPROC", _soft_rlimit("RLIMIT_NPROC"), 4)
    if sys.platform.startswith("linux"):
        add("kernel.threads-max", _read_int("/proc/sys/kernel/threads-max"), 4)
        add("kernel.pid_max", _read_int("/proc/sys/kernel/pid_max"), 4)
        add("vm.max_map_count", _read_int("/proc/sys/vm/max_map_count"), 4)
        add("cgroup pids.max", _read_int("/sys/fs/cgroup/pids.max"), 2)
    memory = _physical_memory()
    add("memory", None if memory is None else memory // PER_CALL_BYTES, 4)
    address_space = _soft_rlimit("RLIMIT_AS")
    stack = threading.stack_size() or _soft_rlimit("RLIMIT_STACK") or 8 * 1024 * 1024
    add("RLIMIT_AS", None if address_space is None else address_space // stack, 2)
    return found


def machine_max_workers() -> int:
    """The default worker cap: the lowest of :data:`CEILING` and what each machine limit allows.

    A call in flight holds one worker thread and one socket, so the cap is the
    smallest of (each read where the platform has it, else skipped):

    * half the soft ``RLIMIT_NOFILE`` (one descriptor per call's socket; the
      other half for the rest of the process);
    * a quarter of the soft ``RLIMIT_NPROC``, of ``kernel.threads-max`` and of
      ``kernel.pid_max`` (threads count against these, shared with every other
      process of the user or the machine), and of ``vm.max_map_count`` (each
      thread stack is a memory mapping, plus its guard page);
    * half the cgroup's ``pids.max`` (a container's task limit);
    * a quarter of the physical memory (or the cgroup's ``memory.max``) at
      :data:`PER_CALL_BYTES` a call: a thread's stack is reserved address space
      (``ulimit -s``, 8 MiB on Linux) of which only the touched pages, tens of
      KiB, become resident;
    * half the soft ``RLIMIT_AS`` divided by the thread stack size, when the
      address space is limited.

    then at most :data:`CEILING` (4096) and at least :data:`FLOOR` (32). On a
    Linux machine with ``ulimit -n 1024`` that is 512; with the usual larger
    limits, 4096. Python cannot give one thread a smaller stack without
    changing ``threading.stack_size()`` for the whole process, so the workers
    keep the default; a thread that cannot start lowers the cap instead.
    """
    caps = [CEILING] + [n for _, n in _limits()]
    return max(FLOOR, min(caps))


def env_number(name: str, kind: Callable[[str], Any]) -> Any:
    """Environment variable ``name`` as a positive finite ``kind`` (``int`` or ``float``); ``None`` if unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < math.inf:
        what = "a whole number, 1 or more" if kind is int else "a number of seconds greater than 0"
        raise ConfigurationError(f"{name}={text!r} is not valid: expected {what}", hint=f"Fix or unset {name}")
    return value


class _Worker:
    """One worker thread's hand-off slot: a job is put in ``job`` and ``wake`` released."""

    __slots__ = ("job", "wake", "thread")

    def __init__(self, job: Optional[Job]) -> None:
        self.job = job
        self.wake = threading.Lock()
        self.wake.acquire()
        self.thread: Optional[threading.Thread] = None


_STOP: Job = (concurrent.futures.Future(), int, ())  # handed to an idle worker to make it exit


def _execute(job: Job) -> None:
    fut, fn, args = job
    if fut.set_running_or_notify_cancel():  # False: cancelled before it started
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:
            fut.set_exception(exc)


class WorkerPool:
    """Elastic daemon threads running jobs (thread-safe).

    :param max_workers: the most threads at once; more jobs wait in a queue.
    :param idle_timeout: seconds a thread waits for a job before it retires.
    :param name_prefix: thread names are ``f"{name_prefix}_{n}"``.
    """

    def __init__(self, max_workers: int, idle_timeout: float, name_prefix: str) -> None:
        self.max_workers, self.idle_timeout, self.name_prefix = max_workers, idle_timeout, name_prefix
        self._lock = threading.Lock()
        self._idle: List[_Worker] = []  # a stack: the last one to become idle is woken first
        self._pending: Deque[Job] = collections.deque()  # jobs waiting for a thread (all are busy, at the cap)
        self._workers: Set[_Worker] = set()
        self._closed = False
        self._started = self._retired = self._peak = 0
        self._start_failures = 0

    # -- introspection ----------------------------------------------------

    def counts(self) -> Tuple[int, int, int, int, int]:
        """``(workers, idle, queued, peak workers, retired)``, consistent with each other."""
        with self._lock:
            return len(self._workers), len(self._idle), len(self._pending), self._peak, self._retired

    def threads(self) -> List[threading.Thread]:
        """The worker threads alive now (started and not yet retired)."""
        with self._lock:
            return [w.thread for w in self._workers if w.thread is not None]

    # -- jobs ---------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Run ``job`` on an idle thread, a new one, or (at the cap) the next one free.

        Its future gets the result or the exception; a cancelled future's job never runs.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("AsyncBridge is shut down")
            if self._idle:
                worker = self._idle.pop()
                worker.job = job
                worker.wake.release()
                return
            if len(self._workers) >= self.max_workers:
                self._pending.append(job)
                return
            worker = _Worker(job)
            self._workers.add(worker)
            self._peak = max(self._peak, len(self._workers))
            number = self._started
            self._started += 1
        self._start(worker, number)

    def _start(self, worker: _Worker, number: int) -> None:
        """Start ``worker``'s thread (outside the lock); if the OS refuses, lower the cap and queue its job."""
        thread = threading.Thread(target=self._run, args=(worker,), name=f"{self.name_prefix}_{number}", daemon=True)
        worker.thread = thread
        try:
            thread.start()
            return
        except RuntimeError as exc:  # "can't start new thread": a limit the derivation did not see
            error: BaseException = exc
        with self._lock:
            self._workers.discard(worker)
            job, worker.job = worker.job, None
            alive = len(self._workers)
            if alive:
                self.max_workers = min(self.max_workers, alive)
                if job is not None:
                    self._pending.appendleft(job)
                job = None
            self._start_failures += 1
            first = self._start_failures == 1
        if first:
            _log.warning("could not start a bridge worker thread (%s); the bridge now runs at most %d at once", error, alive)
        if job is not None and job[0].set_running_or_notify_cancel():  # no thread at all: fail, not wait forever
            job[0].set_exception(error)

    def _run(self, worker: _Worker) -> None:
        """A worker thread: run its job, then the queued ones, then wait idle until woken or retired."""
        lock, idle, pending, timeout = self._lock, self._idle, self._pending, self.idle_timeout
        job = worker.job
        while True:
            if job is _STOP or job is None:
                return
            _execute(job)
            job = None  # hold nothing while idle
            with lock:
                worker.job = None
                if pending:
                    job = pending.popleft()
                    continue
                if self._closed:
                    self._workers.discard(worker)
                    return
                idle.append(worker)
            if not worker.wake.acquire(timeout=timeout):
                with lock:
                    if worker.job is None:  # not handed a job since: retire
                        idle.remove(worker)  # near the bottom of the stack: cheap
                        self._workers.discard(worker)
                        self._retired += 1
                        return
                worker.wake.acquire()  # a job was handed over just as the wait ended: its release came first
            job = worker.job

    def retire_idle(self) -> int:
        """Retire every idle thread now (busy ones are untouched); returns how many."""
        with self._lock:
            woken = list(self._idle)
            self._idle.clear()  # in place: the threads hold the list
            for worker in woken:
                worker.job = _STOP
                self._workers.discard(worker)
                self._retired += 1
                worker.wake.release()
        return len(woken)

    def close(self, cancel: Optional[Callable[[Job], None]] = None) -> List[threading.Thread]:
        """Refuse new jobs and stop idle threads; busy ones stop after the queued jobs.

        ``cancel`` is called (outside the lock) on each queued job, which is then
        dropped; without it queued jobs still run. Returns the threads alive.
        """
        with self._lock:
            self._closed = True
            dropped: List[Job] = []
            if cancel is not None:
                dropped = list(self._pending)
                self._pending.clear()  # in place: the threads hold the deque
            threads = [w.thread for w in self._workers if w.thread is not None]
        self.retire_idle()
        for job in dropped:
            cancel(job)  # type: ignore[misc]  # not None when dropped is not empty
        return threads
