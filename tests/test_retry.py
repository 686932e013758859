"""Tests for modelprov.retry: policy fields, header parsing, retry decisions, the loop."""

import dataclasses
import logging
import math
import pickle

import pytest

from modelprov.exceptions import (
    AuthenticationError,
    CircuitBreakerError,
    ConfigurationError,
    ContentFilterError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelProvError,
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
    error_for_status,
)
from modelprov.retry import RetryPolicy, call_with_retry, parse_retry_after, parse_should_retry, server_wait_hint

NOW = 1_700_000_000.0  # a fixed wall-clock "now" for HTTP-date tests


def fixed_now() -> float:
    return NOW


class FakeTime:
    """A fake monotonic clock whose sleep advances it; records every sleep."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(*errors, result="ok", cost=0.0, fake=None):
    """fn(attempt) raising errors in order, then returning result; each call costs `cost` seconds."""
    calls = []

    def fn(attempt):
        calls.append(attempt)
        if fake is not None:
            fake.now += cost
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    fn.calls = calls
    return fn


def run(policy, fn, fake=None, rand=0.0, **kw):
    fake = fake or FakeTime()
    return call_with_retry(policy, fn, sleep=fake.sleep, clock=fake.clock, random=lambda: rand, **kw), fake


# ---------------------------------------------------------------- parse_retry_after


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "250.5"}, 0.2505),
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "1.5"}, 1.5),  # float seconds accepted, like the SDKs
        ({"RETRY-AFTER": " 3 "}, 3.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "2000", "retry-after": "9"}, 2.0),  # ms wins
        ({"retry-after-ms": "garbage", "retry-after": "9"}, 9.0),  # bad ms falls through
        ({"retry-after-ms": "-5", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "nan", "retry-after": "4"}, 4.0),
        ({"retry-after": b"6"}, 6.0),
    ],
)
def test_parse_retry_after_numbers(headers, expected):
    assert parse_retry_after(headers, fixed_now) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    ["-1", "-0.5", "inf", "-inf", "Infinity", "nan", "NaN", "1e400", "9" * 400, "garbage", "", "   ", "5 seconds",
     "Wed, 21 Oct 100000 07:28:00 GMT", "Mon, 32 Foo 2024 99:99:99 GMT", "Fri, 31 Dec 9999 23:59:59 +2400"],
)
def test_parse_retry_after_malformed_is_none(value):
    assert parse_retry_after({"Retry-After": value}, fixed_now) is None


@pytest.mark.parametrize("value", ["-1", "inf", "nan", "1e400", "x", ""])
def test_parse_retry_after_ms_malformed_is_none(value):
    assert parse_retry_after({"retry-after-ms": value}, fixed_now) is None


def test_parse_retry_after_absent_or_empty():
    assert parse_retry_after({}, fixed_now) is None
    assert parse_retry_after(None, fixed_now) is None
    assert parse_retry_after({"x-other": "5"}, fixed_now) is None


def test_parse_retry_after_http_date_future_and_past():
    future = "Tue, 14 Nov 2023 22:13:50 GMT"  # NOW + 30 s
    assert parse_retry_after({"Retry-After": future}, fixed_now) == pytest.approx(30.0)
    past = "Tue, 14 Nov 2023 22:12:00 GMT"
    assert parse_retry_after({"retry-after": past}, fixed_now) == 0.0
    # "-0000" gives a naive datetime, read as UTC
    assert parse_retry_after({"retry-after": "Tue, 14 Nov 2023 22:13:50 -0000"}, fixed_now) == pytest.approx(30.0)
    # the default `now` is the real wall clock: a date long past gives 0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_parse_retry_after_never_raises_on_broken_input():
    class Broken(dict):
        def items(self):
            raise RuntimeError("boom")

    assert parse_retry_after(Broken(a=1), fixed_now) is None

    def bad_now():
        raise OverflowError

    assert parse_retry_after({"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"}, bad_now) is None


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"x-should-retry": "true"}, True),
        ({"X-Should-Retry": "TRUE"}, True),
        ({"x-should-retry": " false "}, False),
        ({"x-should-retry": "yes"}, None),
        ({"x-should-retry": ""}, None),
        ({}, None),
        (None, None),
    ],
)
def test_parse_should_retry(headers, expected):
    assert parse_should_retry(headers) is expected


# ---------------------------------------------------------------- policy construction


def test_defaults_match_the_sdks():
    p = RetryPolicy()
    assert (p.max_retries, p.initial_backoff, p.max_backoff, p.multiplier, p.jitter, p.max_retry_after, p.deadline) == (
        2, 0.5, 8.0, 2.0, 0.25, 60.0, None)


def test_policy_is_frozen_hashable_and_copyable():
    p = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.max_retries = 5  # type: ignore[misc]
    q = p.with_(max_retries=5)
    assert q.max_retries == 5 and p.max_retries == 2
    assert dataclasses.replace(p, jitter=0.0).jitter == 0.0
    assert hash(p) == hash(RetryPolicy()) and p == RetryPolicy()
    assert pickle.loads(pickle.dumps(q)) == q
    assert RetryPolicy.none().max_retries == 0
    with pytest.raises(ValueError):
        p.with_(max_retries=-1)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"initial_backoff": -0.1}, "initial_backoff"),
        ({"initial_backoff": math.nan}, "initial_backoff"),
        ({"initial_backoff": "1"}, "initial_backoff"),
        ({"max_backoff": math.inf}, "max_backoff"),
        ({"max_backoff": 0.1}, "max_backoff"),  # below initial_backoff
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": 1.5}, "jitter"),
        ({"max_retry_after": -1}, "max_retry_after"),
        ({"max_retry_after": math.inf}, "max_retry_after"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": -3}, "deadline"),
        ({"deadline": math.nan}, "deadline"),
    ],
)
def test_invalid_fields_raise_value_error(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        RetryPolicy(**kwargs)


# ---------------------------------------------------------------- should_retry


RETRYABLE = [
    ProviderConnectionError("reset"),
    ProviderTimeoutError("read timeout"),
    error_for_status(408)("timeout", status_code=408),
    error_for_status(409)("conflict", status_code=409),
    RateLimitError("slow down", status_code=429),
    ServerError("boom", status_code=500),
    ServerError("bad gateway", status_code=502),
    OverloadedError("overloaded", status_code=503),
    OverloadedError("overloaded", status_code=529),
]
NOT_RETRYABLE = [
    InvalidRequestError("bad", status_code=400),
    TokenLimitError("too long", status_code=400),
    ContentFilterError("nope", status_code=400),
    AuthenticationError("who", status_code=401),
    PermissionDeniedError("no", status_code=403),
    ModelNotFoundError("what", status_code=404),
    QuotaExceededError("no money", status_code=429),
    QuotaExceededError("no money", status_code=402),
    ValidationError("bad input"),
    ConfigurationError("no key"),
    UnsupportedFeatureError("no tools"),
    CircuitBreakerError("open", retry_after=3),
    ResponseError("bad json"),
]


@pytest.mark.parametrize("exc", RETRYABLE, ids=lambda e: f"{type(e).__name__}-{e.status_code}")
def test_retryable_errors(exc):
    assert RetryPolicy().should_retry(exc, 1) is True


@pytest.mark.parametrize("exc", NOT_RETRYABLE, ids=lambda e: f"{type(e).__name__}-{e.status_code}")
def test_not_retryable_errors(exc):
    assert RetryPolicy().should_retry(exc, 1) is False


@pytest.mark.parametrize("exc", [ValueError("x"), OSError("x"), TimeoutError(), KeyboardInterrupt()])
def test_foreign_exceptions_never_retried(exc):
    assert RetryPolicy().should_retry(exc, 1) is False


def test_x_should_retry_overrides_status():
    assert RetryPolicy().should_retry(InvalidRequestError("x", status_code=400, headers={"x-should-retry": "true"}), 1)
    assert not RetryPolicy().should_retry(ServerError("x", status_code=500, headers={"X-Should-Retry": "false"}), 1)
    assert not RetryPolicy().should_retry(RateLimitError("x", status_code=429, headers={"x-should-retry": "false"}), 1)
    # the server's explicit word wins even for a quota error
    assert RetryPolicy().should_retry(QuotaExceededError("x", status_code=429, headers={"x-should-retry": "true"}), 1)
    # an invalid value is ignored
    assert RetryPolicy().should_retry(ServerError("x", status_code=500, headers={"x-should-retry": "maybe"}), 1)


def test_x_should_retry_never_revives_local_errors():
    for cls in (CircuitBreakerError, ValidationError, ConfigurationError, UnsupportedFeatureError):
        assert not RetryPolicy().should_retry(cls("x", headers={"x-should-retry": "true"}), 1)


def test_explicit_retryable_flag_is_honoured():
    assert not RetryPolicy().should_retry(ServerError("x", status_code=500, retryable=False), 1)
    assert RetryPolicy().should_retry(ResponseError("truncated", retryable=True), 1)
    assert not RetryPolicy().should_retry(InvalidRequestError("x", retryable=True), 1)


def test_should_retry_respects_max_retries():
    exc = ServerError("x", status_code=500)
    p = RetryPolicy(max_retries=2)
    assert [p.should_retry(exc, a) for a in (1, 2, 3)] == [True, True, False]
    assert RetryPolicy.none().should_retry(exc, 1) is False


# ---------------------------------------------------------------- backoff / delay_for


def test_backoff_sequence_matches_sdk_formula():
    p = RetryPolicy()
    assert [p.backoff(k, 0.0) for k in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert p.backoff(0, 1.0) == pytest.approx(0.375)  # shortened by at most 25%
    assert p.backoff(3, 0.5) == pytest.approx(4.0 * (1 - 0.125))
    assert p.backoff(10**9, 0.0) == 8.0  # exponent capped, no overflow
    assert p.backoff(-3, 0.0) == 0.5


def test_each_backoff_field_changes_the_delay():
    base = RetryPolicy(jitter=0.0)
    assert base.with_(initial_backoff=1.0).backoff(0, 0) == 1.0
    assert base.with_(max_backoff=1.5).backoff(5, 0) == 1.5
    assert base.with_(multiplier=3.0).backoff(2, 0) == 4.5
    assert base.with_(multiplier=1.0).backoff(5, 0) == 0.5
    assert RetryPolicy(jitter=0.5).backoff(0, 1.0) == 0.25
    assert base.backoff(0, 1.0) == 0.5  # jitter 0: rand has no effect
    assert RetryPolicy(multiplier=1e6, max_backoff=8.0).backoff(1000, 0) == 8.0  # huge power -> capped
    assert base.backoff(0, math.nan) == 0.5 and base.backoff(0, 7.0) == 0.5  # odd rand clamped


def test_delay_for_uses_retry_after_exactly():
    p = RetryPolicy()
    assert p.delay_for(RateLimitError("x", retry_after=3.25), 0, 0.9) == 3.25
    assert p.delay_for(RateLimitError("x", headers={"retry-after-ms": "1200"}), 0, 0.9) == pytest.approx(1.2)
    assert p.delay_for(RateLimitError("x", headers={"Retry-After": "Tue, 14 Nov 2023 22:13:50 GMT"}), 0, 0.9,
                       now=fixed_now) == pytest.approx(30.0)
    # exc.retry_after wins over the headers
    assert p.delay_for(RateLimitError("x", retry_after=2.0, headers={"retry-after": "9"}), 0, 0.0) == 2.0
    assert p.delay_for(RateLimitError("x", retry_after=60.0), 0, 0.0) == 60.0  # exactly the cap: honoured


@pytest.mark.parametrize(
    "exc",
    [
        RateLimitError("x", retry_after=0),
        RateLimitError("x", retry_after=-4),
        RateLimitError("x", retry_after=math.nan),
        RateLimitError("x", headers={"retry-after": "0"}),
        RateLimitError("x", headers={"retry-after": "nan"}),
        RateLimitError("x", headers={"retry-after": "garbage"}),
        RateLimitError("x", headers={"retry-after": "Tue, 14 Nov 2023 22:12:00 GMT"}),  # in the past
        RateLimitError("x", headers={"retry-after": "Wed, 21 Oct 100000 07:28:00 GMT"}),
    ],
)
def test_delay_for_falls_back_to_backoff(exc):
    assert RetryPolicy().delay_for(exc, 2, 0.0, now=fixed_now) == 2.0


def test_delay_for_hint_above_cap_means_raise_now():
    p = RetryPolicy()
    assert p.delay_for(RateLimitError("x", retry_after=61), 0, 0.0) is None
    assert p.delay_for(RateLimitError("x", headers={"retry-after": "120"}), 0, 0.0) is None
    assert p.with_(max_retry_after=120.0).delay_for(RateLimitError("x", retry_after=120), 0, 0.0) == 120.0
    # a cap of 0 means: never wait on the server's say-so
    assert p.with_(max_retry_after=0.0).delay_for(RateLimitError("x", retry_after=1), 0, 0.0) is None


def test_delay_for_deadline():
    p = RetryPolicy(deadline=10.0, jitter=0.0)
    exc = ServerError("x")
    assert p.delay_for(exc, 0, 0.0, elapsed=5.0) == 0.5
    assert p.delay_for(exc, 0, 0.0, elapsed=9.6) is None  # 9.6 + 0.5 > 10
    assert p.delay_for(RateLimitError("x", retry_after=6), 0, 0.0, elapsed=5.0) is None
    assert p.delay_for(exc, 0, 0.0) == 0.5  # elapsed unknown: deadline not applied
    assert RetryPolicy().delay_for(exc, 0, 0.0, elapsed=1e9) == 0.5  # no deadline


def test_server_wait_hint():
    assert server_wait_hint(RateLimitError("x", retry_after=4)) == 4.0
    assert server_wait_hint(RateLimitError("x", headers={"retry-after": "5"})) == 5.0
    assert server_wait_hint(ValueError("x")) is None


# ---------------------------------------------------------------- call_with_retry


def test_success_first_time_never_sleeps():
    fn = failing()
    result, fake = run(RetryPolicy(), fn)
    assert result == "ok" and fn.calls == [1] and fake.sleeps == []


def test_retries_then_succeeds_with_backoff_sleeps():
    fn = failing(ServerError("a", status_code=500), ProviderConnectionError("b"))
    result, fake = run(RetryPolicy(), fn)
    assert result == "ok"
    assert fn.calls == [1, 2, 3]
    assert fake.sleeps == [0.5, 1.0]


def test_jitter_uses_injected_random():
    fn = failing(ServerError("a"), ServerError("b"))
    _, fake = run(RetryPolicy(), fn, rand=1.0)
    assert fake.sleeps == [0.375, 0.75]


def test_max_retries_exhausted_records_every_attempt():
    errors = [ServerError(f"e{i}", status_code=503, request_id=f"req_{i}") for i in range(5)]
    fn = failing(*errors)
    fake = FakeTime()
    with pytest.raises(ServerError) as info:
        run(RetryPolicy(max_retries=2), fn, fake=fake)
    assert info.value is errors[2]
    assert fn.calls == [1, 2, 3]
    attempts = info.value.attempts
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["delay"] for a in attempts] == [0.5, 1.0, None]
    assert [a["elapsed"] for a in attempts] == [0.0, 0.5, 1.5]
    assert attempts[1] == {
        "attempt": 2, "error": "ServerError", "message": "e1", "status_code": 503,
        "request_id": "req_1", "delay": 1.0, "elapsed": 0.5,
    }


def test_attempts_are_appended_to_existing_ones():
    exc = ServerError("x", attempts=[{"attempt": 1, "error": "Earlier"}])
    with pytest.raises(ServerError) as info:
        run(RetryPolicy.none(), failing(exc))
    assert [a["error"] for a in info.value.attempts] == ["Earlier", "ServerError"]


def test_max_retries_zero_means_one_call():
    fn = failing(ServerError("x"))
    with pytest.raises(ServerError) as info:
        run(RetryPolicy.none(), fn)
    assert fn.calls == [1] and len(info.value.attempts) == 1


def test_non_retryable_raises_at_once():
    fn = failing(AuthenticationError("bad key", status_code=401))
    fake = FakeTime()
    with pytest.raises(AuthenticationError) as info:
        run(RetryPolicy(), fn, fake=fake)
    assert fn.calls == [1] and fake.sleeps == []
    assert info.value.attempts[0]["delay"] is None


def test_quota_is_not_retried():
    fn = failing(QuotaExceededError("insufficient_quota", status_code=429))
    with pytest.raises(QuotaExceededError):
        run(RetryPolicy(max_retries=5), fn)
    assert fn.calls == [1]


def test_circuit_breaker_error_is_not_retried():
    fn = failing(CircuitBreakerError("open", retry_after=1.0))
    with pytest.raises(CircuitBreakerError):
        run(RetryPolicy(max_retries=5), fn)
    assert fn.calls == [1]


@pytest.mark.parametrize("exc", [ValueError("x"), OSError("reset"), KeyboardInterrupt(), GeneratorExit(), SystemExit(1)])
def test_foreign_exceptions_propagate_untouched(exc):
    fn = failing(exc)
    fake = FakeTime()
    with pytest.raises(type(exc)) as info:
        run(RetryPolicy(max_retries=5), fn, fake=fake)
    assert info.value is exc and fn.calls == [1] and fake.sleeps == []
    assert not hasattr(info.value, "attempts")


def test_keyboard_interrupt_in_later_attempt_and_in_sleep_propagates():
    fn = failing(ServerError("x"), KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run(RetryPolicy(), fn)
    assert fn.calls == [1, 2]

    def sleep(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call_with_retry(RetryPolicy(), failing(ServerError("x")), sleep=sleep, clock=lambda: 0.0)


def test_x_should_retry_drives_the_loop():
    fn = failing(InvalidRequestError("x", status_code=400, headers={"x-should-retry": "true"}))
    result, _ = run(RetryPolicy(), fn)
    assert result == "ok" and fn.calls == [1, 2]
    fn = failing(ServerError("x", status_code=500, headers={"x-should-retry": "false"}))
    with pytest.raises(ServerError):
        run(RetryPolicy(), fn)
    assert fn.calls == [1]


def test_retry_after_is_slept_exactly():
    fn = failing(RateLimitError("x", status_code=429, headers={"retry-after": "7"}),
                 RateLimitError("x", status_code=429, retry_after=1.5))
    _, fake = run(RetryPolicy(), fn, rand=0.99)
    assert fake.sleeps == [7.0, 1.5]


def test_retry_after_above_cap_raises_at_once_with_retry_after_set():
    exc = RateLimitError("x", status_code=429, headers={"Retry-After": "600"})
    fn = failing(exc)
    fake = FakeTime()
    with pytest.raises(RateLimitError) as info:
        run(RetryPolicy(max_retries=5), fn, fake=fake)
    assert fn.calls == [1] and fake.sleeps == []
    assert info.value.retry_after == 600.0
    assert info.value.attempts[0]["delay"] is None
    # raising max_retry_after makes the same wait acceptable
    fn = failing(RateLimitError("x", status_code=429, headers={"Retry-After": "600"}))
    _, fake = run(RetryPolicy(max_retry_after=600.0), fn)
    assert fake.sleeps == [600.0]


def test_final_error_gets_retry_after_from_headers():
    fn = failing(*[RateLimitError("x", headers={"retry-after-ms": "500"}) for _ in range(3)])
    with pytest.raises(RateLimitError) as info:
        run(RetryPolicy(max_retries=1), fn)
    assert info.value.retry_after == 0.5


def test_deadline_stops_retries():
    # each attempt costs 3 s; backoff 0.5, 1.0; deadline 5: after attempt 1 (3 s + 0.5 < 5) retry,
    # after attempt 2 (elapsed 6.5) stop.
    fake = FakeTime()
    fn = failing(*[ServerError("x") for _ in range(5)], cost=3.0, fake=fake)
    with pytest.raises(ServerError) as info:
        run(RetryPolicy(max_retries=5, deadline=5.0, jitter=0.0), fn, fake=fake)
    assert fn.calls == [1, 2]
    assert fake.sleeps == [0.5]
    assert [a["elapsed"] for a in info.value.attempts] == [3.0, 6.5]


def test_deadline_refuses_a_retry_after_that_would_pass_it():
    fake = FakeTime()
    fn = failing(RateLimitError("x", retry_after=30.0))
    with pytest.raises(RateLimitError) as info:
        run(RetryPolicy(deadline=20.0), fn, fake=fake)
    assert fake.sleeps == [] and info.value.retry_after == 30.0


def test_on_retry_hook_receives_records_and_its_errors_are_swallowed(caplog):
    seen = []

    def hook(record, exc):
        seen.append((record, type(exc).__name__))
        raise RuntimeError("hook bug")

    fn = failing(ServerError("a", status_code=500), OverloadedError("b", status_code=529))
    with caplog.at_level(logging.DEBUG, logger="modelprov.retry"):
        result, _ = run(RetryPolicy(), fn, on_retry=hook, provider="anthropic")
    assert result == "ok"
    assert [(r["attempt"], r["delay"], n) for r, n in seen] == [(1, 0.5, "ServerError"), (2, 1.0, "OverloadedError")]
    assert any("on_retry hook raised" in r.getMessage() for r in caplog.records)
    retry_lines = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retry_lines) == 2 and all(line.startswith("[anthropic]") for line in retry_lines)


def test_on_retry_keyboard_interrupt_is_not_swallowed():
    def hook(record, exc):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(RetryPolicy(), failing(ServerError("x")), on_retry=hook)


def test_logs_carry_no_secrets(caplog):
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"
    fn = failing(ServerError(f"upstream said Authorization: Bearer {key}"), ServerError(f"key={key}"),
                 ServerError(f"again {key}"))
    with caplog.at_level(logging.DEBUG, logger="modelprov.retry"):
        with pytest.raises(ServerError) as info:
            run(RetryPolicy(), fn)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "retrying in" in text and "giving up" in text
    assert key not in text
    assert all(key not in a["message"] for a in info.value.attempts)


def test_attempt_number_passed_to_fn_and_same_exception_object_reused():
    exc = ServerError("same")
    fn = failing(exc, exc, exc)
    with pytest.raises(ServerError) as info:
        run(RetryPolicy(), fn)
    assert fn.calls == [1, 2, 3]
    assert [a["attempt"] for a in info.value.attempts] == [1, 2, 3]


def test_no_retry_if_error_is_not_a_modelprov_error_even_after_retries():
    fn = failing(ServerError("x"), ValueError("bug"))
    with pytest.raises(ValueError):
        run(RetryPolicy(), fn)
    assert fn.calls == [1, 2]


def test_generic_modelprov_error_uses_retryable_flag():
    fn = failing(ModelProvError("custom", retryable=True))
    result, _ = run(RetryPolicy(), fn)
    assert result == "ok" and fn.calls == [1, 2]


@pytest.mark.parametrize(
    "policy, exc, reason",
    [
        (RetryPolicy(), AuthenticationError("x"), "not retryable"),
        (RetryPolicy.none(), ServerError("x"), "max_retries=0"),
        (RetryPolicy(), RateLimitError("x", retry_after=500), "max_retry_after"),
        (RetryPolicy(deadline=0.1), ServerError("x"), "deadline"),
    ],
)
def test_give_up_is_logged_with_its_reason(caplog, policy, exc, reason):
    with caplog.at_level(logging.DEBUG, logger="modelprov.retry"):
        with pytest.raises(type(exc)):
            run(policy, failing(exc))
    assert any("giving up" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
