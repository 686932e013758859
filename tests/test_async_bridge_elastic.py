"""The async bridge's elastic pool: it grows past its old fixed size, queues at its cap, retires idle threads.

No timing assertions: calls block on events; waits are bounded polls of the bridge's own counters.
"""

import asyncio
import sys
import threading
import time

import pytest

import modelprov._bridge_pool as bp
from modelprov.async_bridge import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_WORKERS,
    ENV_IDLE_TIMEOUT,
    ENV_MAX_WORKERS,
    AsyncBridge,
    get_bridge,
    reset_bridge,
)
from modelprov.exceptions import ConfigurationError

OLD_FIXED_SIZE = 256


def wait_until(pred, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


async def until(pred, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.002)


def prefixed(prefix):
    return [t for t in threading.enumerate() if t.name.startswith(prefix + "_")]


@pytest.fixture
def release():
    ev = threading.Event()
    yield ev
    ev.set()


def blocked_burst(bridge: AsyncBridge, n: int, release: threading.Event):
    """Run ``n`` calls that each block on ``release``; once all ``n`` run at once, release them.

    Returns the thread name each call ran on, and the stats seen while all were running.
    """

    def call():
        release.wait(10)
        return threading.current_thread().name

    async def main():
        tasks = [asyncio.ensure_future(bridge.run(call)) for _ in range(n)]
        await until(lambda: bridge.stats().active == n)
        during = bridge.stats()
        release.set()
        return await asyncio.gather(*tasks), during

    return asyncio.run(main())


# ------------------------------------------------------------------ growth
def test_grows_past_the_old_fixed_size_one_thread_per_call_in_flight(release):
    n = OLD_FIXED_SIZE + 64
    b = AsyncBridge(max_workers=1000, thread_name_prefix="grow")
    try:
        names, during = blocked_burst(b, n, release)
        assert len(set(names)) == n  # each call on its own worker, all at once
        assert (during.active, during.workers, during.idle_workers, during.queued) == (n, n, 0, 0)
        wait_until(lambda: b.stats().idle_workers == n)  # a worker files itself idle just after its result is set
        s = b.stats()
        assert (s.completed, s.peak_active, s.peak_workers, s.workers, s.idle_workers) == (n, n, n, n, n)
    finally:
        b.shutdown()
    assert prefixed("grow") == []


def test_default_cap_allows_thousands_of_calls_in_flight():
    assert DEFAULT_MAX_WORKERS >= bp.FLOOR
    assert AsyncBridge().max_workers == DEFAULT_MAX_WORKERS and AsyncBridge().idle_timeout == DEFAULT_IDLE_TIMEOUT
    assert min([bp.CEILING] + [n for _, n in bp._limits()]) <= DEFAULT_MAX_WORKERS


def test_cap_is_respected_and_extra_calls_queue_instead_of_failing(release):
    b = AsyncBridge(max_workers=4, thread_name_prefix="cap")
    try:

        async def main():
            tasks = [asyncio.ensure_future(b.run(release.wait, 10)) for _ in range(10)]
            await until(lambda: b.stats().active == 4 and b.stats().queued == 6)
            during = b.stats()
            release.set()
            return await asyncio.gather(*tasks), during

        results, during = asyncio.run(main())
        assert results == [True] * 10
        assert (during.workers, during.queued, during.active) == (4, 6, 4)
        s = b.stats()
        assert (s.completed, s.failed, s.cancelled, s.peak_workers, s.peak_active, s.queued) == (10, 0, 0, 4, 4, 0)
    finally:
        b.shutdown()


def test_max_workers_can_be_changed_on_a_live_bridge(release):
    b = AsyncBridge(max_workers=2)
    try:
        b.max_workers = 3
        assert b.max_workers == 3
        _, during = blocked_burst(b, 3, release)
        assert during.workers == 3
        for bad in (0, -1, 1.5, True, "4"):
            with pytest.raises(ValueError, match="max_workers"):
                b.max_workers = bad  # type: ignore[assignment]
    finally:
        b.shutdown()


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "30"])
def test_idle_timeout_is_validated(bad):
    with pytest.raises(ValueError, match="idle_timeout"):
        AsyncBridge(idle_timeout=bad)


# ---------------------------------------------------------------- shrinking
def test_idle_threads_retire_after_the_idle_timeout(release):
    n = OLD_FIXED_SIZE + 44
    b = AsyncBridge(max_workers=1000, idle_timeout=0.01, thread_name_prefix="shrink")
    try:
        names, _ = blocked_burst(b, n, release)
        assert len(set(names)) == n
        wait_until(lambda: b.stats().workers == 0)
        s = b.stats()
        assert (s.workers, s.idle_workers, s.retired_workers, s.peak_workers) == (0, 0, n, n)
        wait_until(lambda: prefixed("shrink") == [])  # the threads have ended, not just left the books
        assert asyncio.run(b.run(lambda: 7)) == 7  # and new calls start threads again
        assert b.stats().peak_workers == n
    finally:
        b.shutdown()


def test_retire_idle_workers_now_leaves_busy_ones(release):
    b = AsyncBridge(max_workers=100, idle_timeout=3600, thread_name_prefix="retire")
    try:
        blocked_burst(b, 40, release)
        wait_until(lambda: b.stats().idle_workers == 40)  # every worker filed itself idle after its call
        busy = threading.Event()

        async def main():
            task = asyncio.ensure_future(b.run(busy.wait, 10))
            await until(lambda: b.stats().active == 1)
            retired = b.retire_idle_workers()
            s = b.stats()
            busy.set()
            return retired, s, await task

        retired, s, result = asyncio.run(main())
        assert (retired, s.workers, s.idle_workers, s.active, result) == (39, 1, 0, 1, True)
        wait_until(lambda: len(prefixed("retire")) == 1 and b.stats().idle_workers == 1)  # back from its call
        assert b.retire_idle_workers() == 1 and b.retire_idle_workers() == 0
        wait_until(lambda: prefixed("retire") == [])
    finally:
        b.shutdown()


def test_most_recently_idle_thread_takes_the_next_call_so_the_surplus_can_retire(release):
    b = AsyncBridge(max_workers=100, idle_timeout=3600, thread_name_prefix="lifo")
    try:
        blocked_burst(b, 30, release)

        async def sequential():
            names = set()
            for _ in range(50):
                await until(lambda: b.stats().idle_workers == 30)  # the last call's thread is idle again
                names.add(await b.run(lambda: threading.current_thread().name))
            return names

        assert len(asyncio.run(sequential())) == 1  # the other 29 stay idle: they time out and retire
        assert b.stats().workers == 30
    finally:
        b.shutdown()


def test_calls_racing_with_retirement_all_complete():
    b = AsyncBridge(max_workers=8, idle_timeout=0.0005, thread_name_prefix="race")
    try:

        async def main():
            results = []
            for i in range(150):
                results += await asyncio.gather(*(b.run(int, str(i)) for _ in range(i % 5 + 1)))
                if i % 3 == 0:
                    await asyncio.sleep(0.001)  # let some threads time out between rounds
            return results

        results = asyncio.run(asyncio.wait_for(main(), 30))
        assert results == [i for i in range(150) for _ in range(i % 5 + 1)]
        s = b.stats()
        assert s.completed == s.submitted == len(results) and s.failed == 0 and s.peak_workers <= 8
    finally:
        b.shutdown()


# ---------------------------------------------------------------- shutdown
def test_shutdown_stops_idle_threads_and_lets_queued_calls_run(release):
    b = AsyncBridge(max_workers=1, thread_name_prefix="stop")
    ran = []

    async def main():
        blocker = asyncio.ensure_future(b.run(release.wait, 10))
        queued = asyncio.ensure_future(b.run(ran.append, 1))
        await until(lambda: b.stats().queued == 1)
        b.shutdown(wait=False)  # without cancel_futures a queued call still runs
        release.set()
        return await blocker, await queued

    assert asyncio.run(main()) == (True, None) and ran == [1]
    wait_until(lambda: prefixed("stop") == [])
    assert b.stats().workers == 0


def test_a_thread_the_os_refuses_lowers_the_cap_and_the_call_waits(monkeypatch, release):
    b = AsyncBridge(max_workers=10, thread_name_prefix="refused")
    real_start = threading.Thread.start
    started = []

    def start(self):
        if self.name.startswith("refused_"):
            if len(started) >= 2:
                raise RuntimeError("can't start new thread")
            started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    try:

        async def main():
            tasks = [asyncio.ensure_future(b.run(release.wait, 10)) for _ in range(5)]
            await until(lambda: b.stats().active == 2 and b.stats().queued == 3)
            release.set()
            return await asyncio.gather(*tasks)

        assert asyncio.run(main()) == [True] * 5
        assert b.max_workers == 2 and b.stats().completed == 5
    finally:
        b.shutdown()


def test_with_no_thread_at_all_the_call_fails_with_the_os_error(monkeypatch):
    b = AsyncBridge(max_workers=3, thread_name_prefix="none")

    def start(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", start)
    try:
        with pytest.raises(RuntimeError, match="can't start new thread"):
            asyncio.run(b.run(int, "1"))
        assert b.stats().workers == 0 and b.stats().completed == 0
    finally:
        b.shutdown()


# ------------------------------------------------------------ the defaults
def test_machine_cap_is_the_lowest_limit_within_floor_and_ceiling(monkeypatch):
    limits = {"RLIMIT_NOFILE": 1024, "RLIMIT_NPROC": None, "RLIMIT_AS": None, "RLIMIT_STACK": 8 << 20}
    files = {}
    monkeypatch.setattr(bp, "_soft_rlimit", lambda name: limits.get(name))
    monkeypatch.setattr(bp, "_read_int", lambda path: files.get(path))
    monkeypatch.setattr(bp, "_physical_memory", lambda: 64 << 30)
    assert bp.machine_max_workers() == 512  # half of ulimit -n 1024: one socket per call
    limits["RLIMIT_NOFILE"] = 1 << 20
    assert bp.machine_max_workers() == bp.CEILING
    if sys.platform.startswith("linux"):
        files["/sys/fs/cgroup/pids.max"] = 2000
        assert bp.machine_max_workers() == 1000
    monkeypatch.setattr(bp, "_physical_memory", lambda: 512 << 20)  # a small container: 512 MiB
    assert bp.machine_max_workers() == 256
    limits["RLIMIT_NOFILE"] = 20
    assert bp.machine_max_workers() == bp.FLOOR
    limits["RLIMIT_NOFILE"], limits["RLIMIT_AS"] = 1 << 20, 4 << 30  # 4 GiB address space, 8 MiB stacks
    monkeypatch.setattr(bp, "_physical_memory", lambda: None)
    assert bp.machine_max_workers() == 256
    assert dict(bp._limits())["RLIMIT_AS"] == 256


def test_machine_cap_without_any_readable_limit_is_the_ceiling(monkeypatch):
    monkeypatch.setattr(bp, "_soft_rlimit", lambda name: None)
    monkeypatch.setattr(bp, "_read_int", lambda path: None)
    monkeypatch.setattr(bp, "_physical_memory", lambda: None)
    assert bp._limits() == [] and bp.machine_max_workers() == bp.CEILING


def test_limit_readers_tolerate_missing_and_odd_files(tmp_path):
    path = tmp_path / "pids.max"
    path.write_text("max\n")
    assert bp._read_int(str(path)) is None and bp._read_int(str(tmp_path / "missing")) is None
    path.write_text("4096\n")
    assert bp._read_int(str(path)) == 4096
    assert bp._soft_rlimit("RLIMIT_NOT_A_LIMIT") is None


@pytest.fixture
def fresh_default():
    reset_bridge()
    yield
    reset_bridge()


def test_environment_sizes_the_process_wide_bridge(monkeypatch, fresh_default):
    monkeypatch.setenv(ENV_MAX_WORKERS, " 7 ")
    monkeypatch.setenv(ENV_IDLE_TIMEOUT, "2.5")
    assert (get_bridge().max_workers, get_bridge().idle_timeout) == (7, 2.5)
    reset_bridge()
    monkeypatch.delenv(ENV_MAX_WORKERS)
    monkeypatch.setenv(ENV_IDLE_TIMEOUT, "")
    assert (get_bridge().max_workers, get_bridge().idle_timeout) == (DEFAULT_MAX_WORKERS, DEFAULT_IDLE_TIMEOUT)


@pytest.mark.parametrize(
    "name, value", [(ENV_MAX_WORKERS, "0"), (ENV_MAX_WORKERS, "1.5"), (ENV_MAX_WORKERS, "many"),
                    (ENV_IDLE_TIMEOUT, "-1"), (ENV_IDLE_TIMEOUT, "inf"), (ENV_IDLE_TIMEOUT, "nan"), (ENV_IDLE_TIMEOUT, "soon")],
)
def test_bad_environment_values_raise_configuration_error(monkeypatch, fresh_default, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name) as info:
        get_bridge()
    assert info.value.hint and name in info.value.hint
