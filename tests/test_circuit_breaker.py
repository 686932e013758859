"""Tests for modelprov.circuit_breaker: transitions, outcomes, permits, threads, stats."""

import asyncio
import concurrent.futures
import dataclasses
import logging
import socket
import threading

import pytest

from modelprov.circuit_breaker import CircuitBreaker, CircuitState, CircuitStats, Permit
from modelprov.exceptions import (
    AuthenticationError,
    CircuitBreakerError,
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderTimeoutError,
    QuotaExceededError,
    RateLimitError,
    ResponseError,
    ServerError,
    TokenLimitError,
    UnsupportedFeatureError,
    ValidationError,
)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
JOIN = 10.0  # generous bound for thread joins; tests normally finish in milliseconds


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(**kw):
    clock = kw.pop("clock", None) or FakeClock()
    changes = []
    kw.setdefault("on_state_change", lambda b, old, new: changes.append((old, new)))
    breaker = CircuitBreaker(kw.pop("name", "prov"), clock=clock, **kw)
    return breaker, clock, changes


def fail(breaker, n=1, exc=None):
    for _ in range(n):
        breaker.acquire().failure(exc or ServerError("boom", status_code=500))


def succeed(breaker, n=1):
    for _ in range(n):
        breaker.acquire().success()


def raiser(exc):
    def fn():
        raise exc

    return fn


# ---------------------------------------------------------------- transitions


def test_walk_every_transition_with_fake_clock():
    b, clock, changes = make(failure_threshold=3, recovery_timeout=30.0)
    assert b.state is CLOSED
    fail(b, 2)
    assert b.state is CLOSED and b.stats().consecutive_failures == 2
    fail(b)
    assert b.state is OPEN
    with pytest.raises(CircuitBreakerError) as info:
        b.acquire()
    assert info.value.retry_after == 30.0 and info.value.provider == "prov"
    clock.advance(29.5)
    with pytest.raises(CircuitBreakerError) as info:
        b.acquire()
    assert info.value.retry_after == pytest.approx(0.5)
    clock.advance(0.5)
    assert b.state is HALF_OPEN
    permit = b.acquire()
    assert permit.is_trial
    permit.failure(ServerError("still down"))  # HALF_OPEN -> OPEN, fresh timeout
    assert b.state is OPEN
    with pytest.raises(CircuitBreakerError) as info:
        b.acquire()
    assert info.value.retry_after == 30.0
    clock.advance(30.0)
    b.acquire().success()  # OPEN -> HALF_OPEN (lazily, on acquire) -> CLOSED
    assert b.state is CLOSED
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
    s = b.stats()
    assert s.state_changes == 5 and s.consecutive_failures == 0 and s.opened_at is None


def test_success_resets_consecutive_failures():
    b, _, _ = make(failure_threshold=3)
    fail(b, 2)
    succeed(b)
    fail(b, 2)
    assert b.state is CLOSED
    fail(b)
    assert b.state is OPEN


def test_success_threshold_needs_several_trial_successes():
    b, clock, changes = make(failure_threshold=1, recovery_timeout=5, success_threshold=3)
    fail(b)
    clock.advance(5)
    succeed(b, 2)
    assert b.state is HALF_OPEN
    succeed(b)
    assert b.state is CLOSED


def test_half_open_failure_after_some_successes_reopens():
    b, clock, _ = make(failure_threshold=1, recovery_timeout=5, success_threshold=3)
    fail(b)
    clock.advance(5)
    succeed(b, 2)
    fail(b)
    assert b.state is OPEN
    clock.advance(5)
    succeed(b, 2)  # the count started afresh
    assert b.state is HALF_OPEN


def test_half_open_max_calls_bounds_concurrent_trials():
    b, clock, _ = make(failure_threshold=1, recovery_timeout=1, half_open_max_calls=2, success_threshold=2)
    fail(b)
    clock.advance(1)
    p1, p2 = b.acquire(), b.acquire()
    with pytest.raises(CircuitBreakerError) as info:
        b.acquire()
    assert "half-open" in str(info.value)
    assert info.value.retry_after == 60.0  # probe_timeout of the oldest trial
    p1.success()
    p3 = b.acquire()  # freed slot reused
    p2.success()
    assert b.state is CLOSED
    p3.success()  # stale now: no effect on the closed breaker
    assert b.state is CLOSED and b.stats().successes == 3


def test_recovery_timeout_zero_goes_half_open_at_once():
    b, _, _ = make(failure_threshold=1, recovery_timeout=0)
    fail(b)
    assert b.state is HALF_OPEN


# ---------------------------------------------------------------- outcomes


FAILURES = [
    ServerError("x", status_code=500),
    OverloadedError("x", status_code=529),
    ProviderTimeoutError("x"),
    ProviderConnectionError("x"),
    ResponseError("stream ended early"),
    OSError("reset"),
    ConnectionResetError(),
    TimeoutError(),
    socket.timeout(),
    concurrent.futures.TimeoutError(),
]
IGNORED = [
    InvalidRequestError("x", status_code=400),
    TokenLimitError("x"),
    AuthenticationError("x", status_code=401),
    PermissionDeniedError("x", status_code=403),
    ModelNotFoundError("x", status_code=404),
    RateLimitError("x", status_code=429),
    QuotaExceededError("x", status_code=429),
    ValidationError("x"),
    ConfigurationError("x"),
    UnsupportedFeatureError("x"),
    CircuitBreakerError("x"),
    asyncio.CancelledError(),
    concurrent.futures.CancelledError(),
    type("CancelledError", (Exception,), {})(),
    KeyboardInterrupt(),
    SystemExit(2),
    GeneratorExit(),
    ValueError("caller bug"),
    KeyError("k"),
]


@pytest.mark.parametrize("exc", FAILURES, ids=lambda e: type(e).__name__)
def test_classify_failures(exc):
    assert CircuitBreaker().classify(exc) == "failure"


@pytest.mark.parametrize("exc", IGNORED, ids=lambda e: type(e).__name__)
def test_classify_ignored(exc):
    assert CircuitBreaker().classify(exc) == "ignored"


def test_ignored_does_not_reset_consecutive_failures():
    b, _, _ = make(failure_threshold=3)
    fail(b, 2)
    b.acquire().record(InvalidRequestError("bad", status_code=400))
    b.acquire().ignore()
    assert b.stats().consecutive_failures == 2
    fail(b)
    assert b.state is OPEN


def test_ignored_does_not_close_half_open_but_frees_the_slot():
    b, clock, _ = make(failure_threshold=1, recovery_timeout=1)
    fail(b)
    clock.advance(1)
    for _ in range(5):
        b.acquire().record(RateLimitError("x", status_code=429))
        assert b.state is HALF_OPEN
    b.acquire().ignore()
    assert b.state is HALF_OPEN and b.stats().half_open_in_flight == 0
    b.acquire().success()
    assert b.state is CLOSED


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), GeneratorExit(), asyncio.CancelledError()])
def test_base_exceptions_pass_through_call_and_are_ignored(exc):
    b, clock, _ = make(failure_threshold=1, recovery_timeout=1)
    with pytest.raises(type(exc)) as info:
        b.call(raiser(exc))
    assert info.value is exc
    assert b.state is CLOSED and b.stats().ignored == 1 and b.stats().failures == 0
    # in HALF_OPEN too: the slot is freed, the breaker stays half-open
    fail(b)
    clock.advance(1)
    with pytest.raises(type(exc)):
        b.call(raiser(exc))
    assert b.state is HALF_OPEN and b.stats().half_open_in_flight == 0


def test_call_returns_result_passes_arguments_and_records():
    b, _, _ = make(failure_threshold=2)
    assert b.call(lambda a, fn=None: (a, fn), 1, fn="kw") == (1, "kw")  # "fn" usable as a kwarg
    with pytest.raises(ServerError):
        b.call(raiser(ServerError("x")))
    with pytest.raises(InvalidRequestError):
        b.call(raiser(InvalidRequestError("x")))
    s = b.stats()
    assert (s.calls, s.successes, s.failures, s.ignored) == (3, 1, 1, 1)


def test_guard_context_manager():
    b, _, _ = make(failure_threshold=1)
    with b.guard() as permit:
        assert isinstance(permit, Permit)
    with pytest.raises(InvalidRequestError):
        with b.guard():
            raise InvalidRequestError("x")
    with b.guard() as permit:
        permit.ignore()  # the block reports itself; the automatic success is a no-op
    assert b.stats().successes == 1 and b.stats().ignored == 2
    with pytest.raises(ProviderConnectionError):
        with b.guard():
            raise ProviderConnectionError("x")
    assert b.state is OPEN
    with pytest.raises(CircuitBreakerError):
        with b.guard():
            pytest.fail("body must not run while open")


def test_guard_is_a_plain_context_manager_with_calls_semantics():
    b, _, _ = make(failure_threshold=2)
    guard = b.guard()
    assert not hasattr(guard, "gen")  # not contextlib's generator wrapper: it runs on every engine attempt
    assert b.stats().calls == 0  # the permit is taken on entry, not when guard() is called
    with guard as permit:
        assert b.stats().calls == 1 and not permit.reported
    assert permit.reported and b.stats().successes == 1
    aborted = ProviderConnectionError("stopped", aborted=True)  # the caller stopped the call
    with pytest.raises(ProviderConnectionError):
        with b.guard():
            raise aborted
    with pytest.raises(KeyboardInterrupt):
        with b.guard():
            raise KeyboardInterrupt
    with pytest.raises(OSError):
        with b.guard():
            raise OSError("reset")
    s = b.stats()
    assert (s.calls, s.successes, s.ignored, s.failures, s.consecutive_failures) == (4, 1, 2, 1, 1)


# ---------------------------------------------------------------- permits


def test_reporting_twice_is_a_no_op():
    b, _, _ = make(failure_threshold=2)
    p = b.acquire()
    p.failure(ServerError("x"))
    p.failure(ServerError("x"))
    p.success()
    p.record(None)
    assert p.reported and b.state is CLOSED
    s = b.stats()
    assert (s.failures, s.successes, s.consecutive_failures) == (1, 0, 1)


def test_permit_from_before_reset_does_not_corrupt_new_state():
    b, _, _ = make(failure_threshold=1)
    old = b.acquire()
    b.reset()
    old.failure(ServerError("late"))
    assert b.state is CLOSED and b.stats().consecutive_failures == 0
    assert b.stats().failures == 1  # still counted in the totals


def test_stale_closed_permits_cannot_close_or_reopen():
    b, clock, _ = make(failure_threshold=1, recovery_timeout=10)
    slow_ok, slow_bad = b.acquire(), b.acquire()
    fail(b)  # opens
    slow_ok.success()  # a success from the CLOSED era must not close the open breaker
    assert b.state is OPEN
    clock.advance(10)
    trial = b.acquire()
    slow_bad.failure(ServerError("late"))  # must not reopen or steal the trial's effect
    assert b.state is HALF_OPEN
    trial.success()
    assert b.state is CLOSED


def test_old_trial_permit_after_reopen_is_stale():
    b, clock, _ = make(failure_threshold=1, recovery_timeout=1, half_open_max_calls=2)
    fail(b)
    clock.advance(1)
    t1, t2 = b.acquire(), b.acquire()
    t1.failure()
    assert b.state is OPEN
    t2.success()
    assert b.state is OPEN


def test_probe_timeout_frees_a_dead_trial_slot(caplog):
    b, clock, _ = make(failure_threshold=1, recovery_timeout=1, probe_timeout=20)
    fail(b)
    clock.advance(1)
    lost = b.acquire()  # its thread "dies": never reports
    clock.advance(19.9)
    with pytest.raises(CircuitBreakerError) as info:
        b.acquire()
    assert info.value.retry_after == pytest.approx(0.1)
    clock.advance(0.1)
    with caplog.at_level(logging.WARNING, logger="modelprov.circuit_breaker"):
        fresh = b.acquire()
    assert any("never reported" in r.getMessage() for r in caplog.records)
    lost.failure(ServerError("very late"))  # reclaimed slot: cannot reopen
    assert b.state is HALF_OPEN
    fresh.success()
    assert b.state is CLOSED


def test_permit_failure_without_exception():
    b, _, _ = make(failure_threshold=1)
    b.acquire().failure()
    assert b.state is OPEN and b.stats().last_failure


# ---------------------------------------------------------------- failure-rate window


def test_failure_rate_window_opens():
    b, _, _ = make(failure_threshold=100, window_size=10, failure_rate_threshold=0.5, minimum_calls=4)
    fail(b)
    succeed(b)
    fail(b)
    assert b.state is CLOSED  # 2/3 but fewer than minimum_calls
    succeed(b)
    assert b.stats().failure_rate == 0.5
    fail(b)  # 3/5 >= 0.5 with 5 >= 4 calls
    assert b.state is OPEN


def test_failure_rate_window_slides_and_ignored_calls_do_not_count():
    b, _, _ = make(failure_threshold=100, window_size=4, failure_rate_threshold=0.75, minimum_calls=4)
    fail(b, 2)
    succeed(b, 2)  # F F S S
    for _ in range(10):
        b.acquire().ignore()
    assert b.stats().failure_rate == 0.5
    fail(b)  # F S S F -> 0.5
    assert b.state is CLOSED
    fail(b)  # S S F F -> 0.5
    assert b.state is CLOSED
    fail(b)  # S F F F -> 0.75
    assert b.state is OPEN


def test_window_is_cleared_when_closing():
    b, clock, _ = make(failure_threshold=100, recovery_timeout=1, window_size=4,
                       failure_rate_threshold=0.5, minimum_calls=2)
    fail(b, 2)
    assert b.state is OPEN
    clock.advance(1)
    succeed(b)
    assert b.state is CLOSED and b.stats().failure_rate is None
    fail(b)
    assert b.state is CLOSED  # a single failure in a fresh window (below minimum_calls)


def test_consecutive_rule_still_works_with_window():
    b, _, _ = make(failure_threshold=2, window_size=10, failure_rate_threshold=1.0, minimum_calls=10)
    fail(b, 2)
    assert b.state is OPEN


# ---------------------------------------------------------------- stats, reset, force_open


def test_stats_values():
    b, clock, _ = make(failure_threshold=2, recovery_timeout=10)
    succeed(b)
    b.acquire().ignore()
    fail(b, 1, ServerError("upstream exploded", status_code=502))
    fail(b, 1, ProviderTimeoutError("read timed out"))
    opened = clock()
    for _ in range(3):
        with pytest.raises(CircuitBreakerError):
            b.acquire()
    s = b.stats()
    assert isinstance(s, CircuitStats)
    assert s == CircuitStats(
        name="prov", state=OPEN, calls=4, successes=1, failures=2, ignored=1, rejections=3,
        consecutive_failures=2, opened_at=opened, last_failure="ProviderTimeoutError: read timed out",
        state_changes=1, half_open_in_flight=0, failure_rate=None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.calls = 0  # type: ignore[misc]
    clock.advance(10)
    assert b.stats().state is HALF_OPEN  # stats also sees the elapsed timeout


def test_last_failure_is_redacted():
    b, _, _ = make()
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"
    b.acquire().failure(OSError(f"proxy said api_key={key}"))
    assert key not in b.stats().last_failure
    assert b.stats().last_failure.startswith("OSError: ")


def test_reset_closes_and_optionally_clears_stats():
    b, _, changes = make(failure_threshold=1)
    fail(b)
    assert b.state is OPEN
    b.reset()
    assert b.state is CLOSED and changes[-1] == (OPEN, CLOSED)
    s = b.stats()
    assert s.failures == 1 and s.consecutive_failures == 0 and s.opened_at is None
    b.reset(clear_stats=True)
    assert b.stats() == CircuitStats("prov", CLOSED, 0, 0, 0, 0, 0, 0, None, None, 0, 0, None)
    n = len(changes)
    b.reset()  # already closed: no callback
    assert len(changes) == n


def test_force_open():
    b, clock, changes = make(recovery_timeout=30)
    b.force_open()
    assert b.state is OPEN and changes == [(CLOSED, OPEN)]
    with pytest.raises(CircuitBreakerError) as info:
        b.acquire()
    assert info.value.retry_after == 30.0
    b.force_open(duration=100)  # restarts the timer, no new callback
    assert changes == [(CLOSED, OPEN)]
    clock.advance(99)
    assert b.state is OPEN
    clock.advance(1)
    assert b.state is HALF_OPEN
    with pytest.raises(ValueError):
        b.force_open(duration=-1)


def test_unnamed_breaker_error():
    b = CircuitBreaker(failure_threshold=1, clock=FakeClock())
    b.acquire().failure()
    with pytest.raises(CircuitBreakerError) as info:
        b.acquire()
    assert info.value.provider is None and "circuit breaker is open" in str(info.value)
    assert "CircuitBreaker(name=''" in repr(b)


# ---------------------------------------------------------------- callbacks


def test_callbacks_raising_never_break_the_breaker(caplog):
    def bad(breaker, old, new):
        raise RuntimeError("listener bug")

    seen = []
    b, clock, _ = make(failure_threshold=1, recovery_timeout=1, on_state_change=bad)
    b.add_listener(lambda br, old, new: seen.append((br.name, old, new)))
    with caplog.at_level(logging.ERROR, logger="modelprov.circuit_breaker"):
        with pytest.raises(ServerError):
            b.call(raiser(ServerError("x")))
    assert b.state is OPEN
    assert seen == [("prov", CLOSED, OPEN)]
    assert any("callback" in r.getMessage() and r.exc_info for r in caplog.records)
    clock.advance(1)
    assert b.call(lambda: 42) == 42
    assert seen[-1] == ("prov", HALF_OPEN, CLOSED)


def test_listeners_add_remove_and_run_outside_the_lock():
    b, _, _ = make(failure_threshold=1, on_state_change=None)
    seen = []

    def listener(br, old, new):
        # would deadlock if called with the lock held
        seen.append((new, br.state, br.stats().state))

    b.add_listener(listener)
    worker = threading.Thread(target=fail, args=(b,), daemon=True)
    worker.start()
    worker.join(JOIN)
    assert not worker.is_alive(), "listener deadlocked: it ran with the breaker's lock held"
    assert seen == [(OPEN, OPEN, OPEN)]
    assert b.remove_listener(listener) is True
    assert b.remove_listener(listener) is False
    b.reset()
    assert len(seen) == 1
    with pytest.raises(ValueError):
        b.add_listener("not callable")  # type: ignore[arg-type]


# ---------------------------------------------------------------- threads


@pytest.mark.parametrize("max_calls", [1, 3])
def test_half_open_race_admits_exactly_max_calls(max_calls):
    n = 32
    clock = FakeClock()
    b = CircuitBreaker("race", failure_threshold=1, recovery_timeout=5, half_open_max_calls=max_calls,
                       success_threshold=100, clock=clock)
    b.acquire().failure()
    clock.advance(5)  # the first acquire will make it HALF_OPEN: threads race on that too
    barrier = threading.Barrier(n)
    admitted, rejected = [], []
    lock = threading.Lock()

    def worker():
        barrier.wait()
        try:
            permit = b.acquire()
        except CircuitBreakerError:
            with lock:
                rejected.append(1)
        else:
            with lock:
                admitted.append(permit)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN)
    assert len(admitted) == max_calls and len(rejected) == n - max_calls
    s = b.stats()
    assert s.half_open_in_flight == max_calls and s.rejections == n - max_calls and s.state_changes == 2


def test_lock_not_held_during_the_protected_call():
    b, _, _ = make()
    entered, release = threading.Event(), threading.Event()
    result = {}

    def slow():
        entered.set()
        assert release.wait(JOIN)
        return "done"

    caller = threading.Thread(target=lambda: result.setdefault("r", b.call(slow)), daemon=True)
    caller.start()
    probe_done = threading.Event()

    def probe():
        b.acquire().success()
        b.stats()
        _ = b.state
        probe_done.set()

    prober = threading.Thread(target=probe, daemon=True)
    try:
        assert entered.wait(JOIN)
        prober.start()
        assert probe_done.wait(JOIN), "acquire/stats blocked while another thread was inside call()"
    finally:
        release.set()
        caller.join(JOIN)
        if prober.ident is not None:
            prober.join(JOIN)
    assert result["r"] == "done" and b.stats().successes == 2


def test_many_threads_counters_are_consistent():
    b = CircuitBreaker("busy", failure_threshold=10**6)
    n, per = 16, 200
    barrier = threading.Barrier(n)

    def worker(i):
        barrier.wait()
        for j in range(per):
            p = b.acquire()
            [p.success, p.failure, p.ignore][(i + j) % 3]()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN)
    s = b.stats()
    assert s.calls == n * per == s.successes + s.failures + s.ignored


# ---------------------------------------------------------------- constructor validation


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": 2.5}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"recovery_timeout": -1}, "recovery_timeout"),
        ({"recovery_timeout": float("inf")}, "recovery_timeout"),
        ({"recovery_timeout": float("nan")}, "recovery_timeout"),
        ({"recovery_timeout": "30"}, "recovery_timeout"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"window_size": -1}, "window_size"),
        ({"window_size": 10}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 0.5}, "window_size"),
        ({"window_size": 10, "failure_rate_threshold": 0}, "failure_rate_threshold"),
        ({"window_size": 10, "failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"window_size": 10, "failure_rate_threshold": "0.5"}, "failure_rate_threshold"),
        ({"window_size": 5, "failure_rate_threshold": 0.5}, "minimum_calls"),  # default 10 > 5
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"probe_timeout": 0}, "probe_timeout"),
        ({"probe_timeout": -5}, "probe_timeout"),
        ({"clock": 3}, "clock"),
        ({"on_state_change": "x"}, "on_state_change"),
        ({"name": 5}, "name"),
    ],
)
def test_invalid_constructor_args(kwargs, fragment):
    name = kwargs.pop("name", "x")
    with pytest.raises(ValueError, match=fragment):
        CircuitBreaker(name, **kwargs)


def test_state_enum_is_str():
    assert CircuitState.HALF_OPEN == "half_open" and CircuitState("open") is OPEN
