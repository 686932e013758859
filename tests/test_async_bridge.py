"""Tests for modelprov.async_bridge: run(), iterate(), run_sync(), stats, shutdown, fork, exit."""

import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import modelprov.async_bridge as ab
from modelprov.async_bridge import DEFAULT_MAX_WORKERS, AsyncBridge, BridgeStats, get_bridge, reset_bridge, run_sync
from modelprov.exceptions import ErrorCategory, ProviderTimeoutError, classify

PREFIX = "t-bridge"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def bridge():
    b = AsyncBridge(max_workers=8, thread_name_prefix=PREFIX)
    yield b
    b.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def release():
    """An event that blocking test callables wait on; always set at teardown."""
    ev = threading.Event()
    yield ev
    ev.set()


@pytest.fixture
def listener():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield srv
    srv.close()


class SocketStream:
    """A blocking iterator like a provider stream: ``__next__`` blocks in ``recv()``
    on a loopback socket whose server sent one chunk and then went quiet."""

    def __init__(self, srv: socket.socket) -> None:
        self.sock = socket.create_connection(srv.getsockname())
        self.peer, _ = srv.accept()
        self.peer.sendall(b"hello")
        self.recv_calls = 0
        self.aborted_in = None
        self.closed_in = None

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        self.recv_calls += 1
        data = self.sock.recv(1024)
        if not data:
            raise ConnectionError("stream aborted" if self.aborted_in else "server hung up")
        return data

    def abort(self) -> None:
        self.aborted_in = threading.current_thread().name
        self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed_in = threading.current_thread().name
        self.sock.close()
        self.peer.close()


async def until(pred, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.002)


def wait_until(pred, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


def collect(b: AsyncBridge, make, **kw):
    async def main():
        return [x async for x in b.iterate(make, **kw)]

    return asyncio.run(asyncio.wait_for(main(), 5))


def run_script(code: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


# ------------------------------------------------------------------- run()
def test_run_returns_result_on_a_named_pool_thread(bridge):
    def work(a, b=0):
        return a + b, threading.current_thread().name

    value, name = asyncio.run(bridge.run(work, 1, b=2))
    assert value == 3
    assert name.startswith(PREFIX) and name != threading.current_thread().name


def test_run_propagates_exceptions_and_counts_failures(bridge):
    def boom():
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        asyncio.run(bridge.run(boom))
    assert bridge.stats().failed == 1


def test_stop_iteration_from_the_callable_becomes_runtime_error_not_a_hang(bridge):
    # Raw run_in_executor(None, next, it) hangs on 3.9-3.12 (TypeError inside a callback).
    async def main():
        return await asyncio.wait_for(bridge.run(next, iter([])), 2)

    with pytest.raises(RuntimeError, match="StopIteration") as info:
        asyncio.run(main())
    assert isinstance(info.value.__cause__, StopIteration)


def test_timeout_raises_provider_timeout_error_and_counts_timed_out(bridge, release):
    async def main():
        with pytest.raises(ProviderTimeoutError) as info:
            await bridge.run(release.wait, timeout=0.05)
        return info.value

    t0 = time.monotonic()
    exc = asyncio.run(main())
    assert time.monotonic() - t0 < 1.0
    assert classify(exc) is ErrorCategory.TIMEOUT and "wait" in str(exc)
    stats = bridge.stats()
    assert stats.timed_out == 1 and stats.active == 1  # the thread keeps running
    release.set()
    wait_until(lambda: bridge.stats().active == 0)
    assert bridge.stats().completed == 0  # its outcome stays "timed out"


def test_a_timeout_error_raised_by_the_callable_is_not_rewritten(bridge):
    def slow_socket():
        raise socket.timeout("read timed out")

    with pytest.raises(socket.timeout):
        asyncio.run(bridge.run(slow_socket, timeout=5))
    assert bridge.stats().failed == 1 and bridge.stats().timed_out == 0


def test_cancelled_await_does_not_stop_its_thread(bridge, release):
    # Documented trap: cancellation reaches the coroutine, not the thread.
    async def main():
        task = asyncio.ensure_future(bridge.run(release.wait))
        await until(lambda: bridge.stats().active == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert bridge.stats().cancelled == 1 and bridge.stats().active == 1
    release.set()
    wait_until(lambda: bridge.stats().active == 0)
    assert bridge.stats().completed == 0


def test_a_call_cancelled_before_it_started_never_runs(release):
    ran = []
    with AsyncBridge(max_workers=1) as b:

        async def main():
            blocker = asyncio.ensure_future(b.run(release.wait))
            queued = asyncio.ensure_future(b.run(ran.append, 1))
            await until(lambda: b.stats().active == 1)
            queued.cancel()
            await asyncio.sleep(0)
            release.set()
            await blocker

        asyncio.run(main())
    assert ran == [] and b.stats().cancelled == 1 and b.stats().completed == 1


def test_200_concurrent_calls():
    b = AsyncBridge(max_workers=50, thread_name_prefix="many")

    def work(i):
        time.sleep(0.01)
        return i * 2

    async def main():
        return await asyncio.gather(*(b.run(work, i) for i in range(200)))

    try:
        assert asyncio.run(main()) == [i * 2 for i in range(200)]
        s = b.stats()
        assert (s.submitted, s.completed, s.failed, s.active) == (200, 200, 0, 0)
        assert 1 < s.peak_active <= 50
        assert sum(t.name.startswith("many") for t in threading.enumerate()) <= 50
    finally:
        b.shutdown()


# --------------------------------------------------------------- iterate()
def test_iterate_yields_every_item_in_order(bridge):
    assert collect(bridge, lambda: iter(range(1000))) == list(range(1000))


def test_iterate_empty_iterator_and_plain_iterable(bridge):
    assert collect(bridge, lambda: iter(())) == []
    assert collect(bridge, lambda: [1, 2]) == [1, 2]
    assert bridge.stats().completed == 2


def test_make_iterator_runs_in_a_worker_thread(bridge):
    seen = []

    def make():
        seen.append(threading.current_thread().name)
        return iter([1])

    assert collect(bridge, make) == [1]
    assert seen[0].startswith(PREFIX)


def test_error_mid_stream_arrives_after_earlier_items_and_stream_is_closed(bridge):
    closed_in = []

    def gen():
        try:
            yield 1
            yield 2
            raise ValueError("mid-stream")
        finally:
            closed_in.append(threading.current_thread().name)

    async def main():
        it = bridge.iterate(gen)
        got = []
        with pytest.raises(ValueError, match="mid-stream"):
            async for x in it:
                got.append(x)
        with pytest.raises(StopAsyncIteration):
            await it.__anext__()
        return got

    assert asyncio.run(main()) == [1, 2]
    assert closed_in[0].startswith(PREFIX)
    assert bridge.stats().failed == 1


def test_stop_iteration_raising_callable_does_not_hang(bridge):
    with pytest.raises(RuntimeError, match="StopIteration"):
        collect(bridge, lambda: next(iter([])))


def test_iterator_ending_with_stop_iteration_ends_normally(bridge):
    class Two:
        n = 0

        def __iter__(self):
            return self

        def __next__(self):
            self.n += 1
            if self.n > 2:
                raise StopIteration
            return self.n

    assert collect(bridge, Two) == [1, 2]


def test_backpressure_producer_never_more_than_queue_size_ahead(bridge):
    produced = 0

    def gen():
        nonlocal produced
        for i in range(50):
            produced += 1
            yield i

    async def main():
        it = bridge.iterate(gen, queue_size=3)
        got, ahead = [], []
        for _ in range(2):
            got.append(await it.__anext__())
        # A stalled consumer: the producer fills the queue, then stops.
        await until(lambda: produced == 2 + 3)
        await asyncio.sleep(0.05)
        assert produced == 5
        async for x in it:  # a slow consumer
            got.append(x)
            ahead.append(produced - len(got))
            await asyncio.sleep(0)
        return got, ahead

    got, ahead = asyncio.run(main())
    assert got == list(range(50))
    assert max(ahead) <= 3


def test_cancelling_the_consumer_aborts_and_closes_a_blocked_stream(bridge, listener):
    stream = SocketStream(listener)
    got = []

    async def consume():
        async for chunk in bridge.iterate(lambda: stream):
            got.append(chunk)

    async def main():
        task = asyncio.ensure_future(consume())
        await until(lambda: got == [b"hello"] and stream.recv_calls == 2)  # now blocked in recv()
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    assert asyncio.run(main()) < 1.0
    assert stream.aborted_in == threading.current_thread().name  # the event-loop thread
    assert stream.closed_in.startswith(PREFIX)  # the worker thread
    s = bridge.stats()
    assert s.cancelled == 1 and s.active == 0


def test_break_out_of_async_for_closes_the_stream(bridge, listener):
    stream = SocketStream(listener)

    async def main():
        async for chunk in bridge.iterate(lambda: stream):
            assert chunk == b"hello"
            break
        await until(lambda: stream.closed_in is not None, 1.0)

    asyncio.run(main())
    assert stream.aborted_in is not None and stream.closed_in.startswith(PREFIX)
    wait_until(lambda: bridge.stats().active == 0)
    assert bridge.stats().completed == 1 and bridge.stats().failed == 0


def test_aclose_closes_the_iterator_before_returning(bridge):
    closed_in = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed_in.append(threading.current_thread().name)

    async def main():
        it = bridge.iterate(endless)
        async for x in it:
            if x == 2:
                break
        await it.aclose()
        assert closed_in and closed_in[0].startswith(PREFIX)
        await it.aclose()  # idempotent
        with pytest.raises(StopAsyncIteration):
            await it.__anext__()

    asyncio.run(main())


def test_item_timeout_raises_and_closes_the_stream(bridge, listener):
    stream = SocketStream(listener)

    async def main():
        it = bridge.iterate(lambda: stream, timeout=0.05)
        assert await it.__anext__() == b"hello"
        with pytest.raises(ProviderTimeoutError):
            await it.__anext__()

    asyncio.run(main())
    assert stream.aborted_in and stream.closed_in
    assert bridge.stats().timed_out == 1


def test_outer_wait_for_timeout_closes_the_stream(bridge, listener):
    stream = SocketStream(listener)

    async def main():
        it = bridge.iterate(lambda: stream)
        assert await it.__anext__() == b"hello"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(it.__anext__(), 0.05)

    asyncio.run(main())
    assert stream.aborted_in and stream.closed_in
    assert bridge.stats().cancelled == 1


def test_trap_closing_a_socket_from_another_thread_does_not_unblock_a_read(listener):
    def blocked_reader(sock):
        done = threading.Event()

        def read():
            try:
                sock.recv(10)
            except OSError:
                pass
            done.set()

        threading.Thread(target=read, daemon=True).start()
        time.sleep(0.05)
        return done

    sock = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    done = blocked_reader(sock)
    sock.close()
    assert not done.wait(0.15)  # close() does not wake recv() in another thread
    peer.close()
    assert done.wait(2)

    sock = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    done = blocked_reader(sock)
    sock.shutdown(socket.SHUT_RDWR)  # what abort() does
    assert done.wait(1)
    sock.close()
    peer.close()


def test_iterate_validates_arguments(bridge):
    with pytest.raises(TypeError):
        bridge.iterate([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bridge.iterate(list, queue_size=0)


def test_throughput_is_cheap_per_item(bridge):
    t0 = time.perf_counter()
    assert len(collect(bridge, lambda: iter(range(20000)), queue_size=64)) == 20000
    assert time.perf_counter() - t0 < 2.0  # ~2 us/item here; one executor hop per item is ~90 us


# -------------------------------------------------------------- run_sync()
def test_run_sync_works_inside_a_running_loop(bridge):
    async def inner():
        return threading.current_thread().name, await bridge.run(lambda: 42)

    async def notebook_cell():
        coro = inner()
        with pytest.raises(RuntimeError):
            asyncio.run(coro)  # the Jupyter trap
        coro.close()
        return bridge.run_sync(inner())

    name, value = asyncio.run(notebook_cell())
    assert value == 42 and name == f"{PREFIX}-loop"


def test_run_sync_repeated_uses_one_loop_that_is_never_closed(bridge):
    for i in range(50):
        assert bridge.run_sync(asyncio.sleep(0, result=i)) == i
        if i % 10 == 0:
            asyncio.run(asyncio.sleep(0))  # other loops come and go
    assert sum(t.name == f"{PREFIX}-loop" for t in threading.enumerate()) == 1


def test_run_sync_propagates_errors_and_wants_a_coroutine(bridge):
    async def boom():
        raise KeyError("k")

    with pytest.raises(KeyError):
        bridge.run_sync(boom())
    with pytest.raises(TypeError):
        bridge.run_sync(42)  # type: ignore[arg-type]


def test_run_sync_timeout_cancels_the_coroutine(bridge):
    cancelled = threading.Event()

    async def slow():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(ProviderTimeoutError):
        bridge.run_sync(slow(), timeout=0.05)
    assert cancelled.wait(1)


def test_run_sync_on_the_bridge_loop_thread_refuses_instead_of_deadlocking(bridge):
    async def nested():
        return bridge.run_sync(asyncio.sleep(0))

    with pytest.raises(RuntimeError, match="deadlock"):
        bridge.run_sync(nested())


# ---------------------------------------------------------- stats, shutdown
def test_stats_snapshot_is_frozen_and_counts_outcomes(bridge, release):
    def boom():
        raise ValueError

    async def main():
        await bridge.run(int, "1")
        await bridge.run(int, "2")
        with pytest.raises(ValueError):
            await bridge.run(boom)
        with pytest.raises(ProviderTimeoutError):
            await bridge.run(release.wait, timeout=0.01)

    asyncio.run(main())
    s = bridge.stats()
    assert (s.submitted, s.completed, s.failed, s.timed_out, s.cancelled) == (4, 2, 1, 1, 0)
    assert s.active == 1 and s.peak_active >= 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.completed = 0  # type: ignore[misc]
    assert BridgeStats().submitted == 0


def test_context_manager_shuts_down_and_joins_threads():
    with AsyncBridge(max_workers=2, thread_name_prefix="cm") as b:
        assert asyncio.run(b.run(lambda: 1)) == 1
        assert b.run_sync(asyncio.sleep(0, result=2)) == 2
        assert any(t.name.startswith("cm") for t in threading.enumerate())
    assert b.closed and not any(t.name.startswith("cm") for t in threading.enumerate())
    with pytest.raises(RuntimeError, match="shut down"):
        asyncio.run(b.run(lambda: 1))
    with pytest.raises(RuntimeError, match="shut down"):
        b.run_sync(asyncio.sleep(0))
    b.shutdown()  # idempotent


def test_shutdown_aborts_open_streams_and_fails_queued_calls(listener, release):
    b = AsyncBridge(max_workers=2)
    stream = SocketStream(listener)

    async def main():
        it = b.iterate(lambda: stream)
        assert await it.__anext__() == b"hello"
        blocker = asyncio.ensure_future(b.run(release.wait))
        queued = asyncio.ensure_future(b.run(int, "1"))
        await until(lambda: b.stats().active == 2)
        b.shutdown(wait=False, cancel_futures=True)
        with pytest.raises(RuntimeError, match="shut down"):
            await it.__anext__()
        with pytest.raises(RuntimeError, match="shut down"):
            await queued
        release.set()
        await blocker

    asyncio.run(main())
    assert stream.aborted_in and stream.closed_in
    assert b.stats().cancelled == 2


def test_constructor_validation_and_default_size():
    assert AsyncBridge().max_workers == DEFAULT_MAX_WORKERS
    with pytest.raises(ValueError):
        AsyncBridge(max_workers=0)
    with pytest.raises(ValueError):
        AsyncBridge(queue_size=0)


# -------------------------------------------------------- process-wide bits
def test_get_bridge_is_a_thread_safe_singleton():
    barrier = threading.Barrier(16)
    seen = []

    def grab():
        barrier.wait()
        seen.append(get_bridge())

    threads = [threading.Thread(target=grab) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(b) for b in seen}) == 1 and seen[0] is get_bridge()
    assert get_bridge().max_workers == DEFAULT_MAX_WORKERS


def test_reset_bridge_does_not_wait_for_blocked_threads(release):
    old = get_bridge()
    with pytest.raises(ProviderTimeoutError):
        asyncio.run(old.run(release.wait, timeout=0.02))
    t0 = time.monotonic()
    reset_bridge()
    assert time.monotonic() - t0 < 0.5
    assert old.closed and get_bridge() is not old


def test_closed_default_bridge_is_replaced_and_set_bridge_swaps():
    first = get_bridge()
    first.shutdown()
    second = get_bridge()
    assert second is not first and not second.closed
    mine = AsyncBridge(max_workers=2)
    assert ab.set_bridge(mine) is second and get_bridge() is mine
    assert not second.closed  # set_bridge does not shut the old one down
    second.shutdown()
    with pytest.raises(TypeError, match="AsyncBridge, not int"):
        ab.set_bridge(3)  # type: ignore[arg-type]
    assert get_bridge() is mine
    reset_bridge()
    assert mine.closed and get_bridge() is not mine


def test_module_level_run_sync_uses_the_default_bridge():
    async def where():
        return threading.current_thread().name

    assert run_sync(where()) == "modelprov-bridge-loop"
    assert run_sync(asyncio.sleep(0, result=5), timeout=5) == 5
    assert ab.get_bridge() is get_bridge()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_a_fresh_pool_and_loop():
    proc = run_script(
        """
        import asyncio, os, threading
        from modelprov.async_bridge import AsyncBridge, get_bridge

        b = AsyncBridge(max_workers=2, thread_name_prefix="fk")
        assert asyncio.run(b.run(lambda: 1)) == 1
        assert b.run_sync(asyncio.sleep(0, result=2)) == 2
        assert asyncio.run(get_bridge().run(lambda: 0)) == 0
        parent_default = get_bridge()
        parent_threads, parent_loop = b._pool.threads(), b._loop
        assert parent_threads and parent_loop is not None
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                assert b.stats().submitted == 0 and b._pool.threads() == [] and b._loop is None
                t = asyncio.run(b.run(threading.current_thread))
                assert t.name.startswith("fk") and t.is_alive() and t not in parent_threads
                assert b.run_sync(asyncio.sleep(0, result=3)) == 3
                assert b._loop is not parent_loop
                assert asyncio.run(get_bridge().run(lambda: 4)) == 4
                assert get_bridge() is parent_default  # kept, with a fresh lock and fresh threads
                b.shutdown()
                code = 0
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert asyncio.run(b.run(lambda: 5)) == 5 and b.run_sync(asyncio.sleep(0, result=6)) == 6
        assert b.stats().submitted == 2
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_interpreter_exit_is_not_blocked_by_threads_stuck_in_blocking_calls():
    code = """
        import asyncio, threading
        from modelprov.async_bridge import get_bridge, run_sync

        forever = threading.Event()

        class Live:
            # A stream whose second read blocks until abort() (or forever, if stuck=True).
            def __init__(self, name, stuck=False):
                self.name, self.stuck, self.unblock, self.first = name, stuck, threading.Event(), True
            def __iter__(self):
                return self
            def __next__(self):
                if self.first:
                    self.first = False
                    return self.name
                (forever if self.stuck else self.unblock).wait()
                raise ConnectionError("aborted")
            def abort(self):
                print("abort:" + self.name, flush=True)
                self.unblock.set()

        keep = []

        async def main():
            try:
                await get_bridge().run(forever.wait, timeout=0.05)  # a thread stuck forever
            except Exception as exc:
                print(type(exc).__name__, flush=True)
            it = get_bridge().iterate(lambda: Live("a"))
            print(await it.__anext__(), flush=True)  # left open: asyncio.run's end closes it

        async def background():
            it = get_bridge().iterate(lambda: Live("b", stuck=True))
            keep.append(it)  # open on the bridge's own loop until exit; its thread never ends
            print(await it.__anext__(), flush=True)

        asyncio.run(main())
        run_sync(background())
        print("main-done", flush=True)
    """
    t0 = time.monotonic()
    proc = run_script(code, timeout=10)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ProviderTimeoutError", "a", "abort:a", "b", "main-done", "abort:b"], proc.stdout
    assert elapsed < 5
