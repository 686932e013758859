"""RateLimiter alone: static buckets (burst, refill, tokens in debt, reconciling), deadlines, header parsing,
adaptive pacing and its recovery, 429 waits, the lock never held while sleeping, validation and pickling."""

import datetime
import math
import pickle

import pytest

from modelprov import RateLimitError, ValidationError
from modelprov.deadline import Deadline
from modelprov.messages import Message, Tool
from modelprov.parts import ImagePart, TextPart
from modelprov.ratelimit import BURST_SECONDS, DEFAULT_OUTPUT_TOKENS, Estimate, RateLimiter, estimate_tokens, parse_reset
from modelprov.types import ChatRequest, Usage

WALL = 1_800_000_000.0  # the fake epoch "now"


def _rfc3339(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def limiter(clock, **kw):
    return RateLimiter("openai", clock=clock, sleep=clock.sleep, wall=lambda: WALL + clock(), **kw)


# ----------------------------------------------------------------- static rpm
def test_rpm_60_lets_a_burst_through_then_spaces_calls_one_second_apart(clock):
    lim = limiter(clock, rpm=60)
    starts = []
    for _ in range(14):
        lim.acquire()
        starts.append(clock())
    burst = int(60 / 60 * BURST_SECONDS)  # ten seconds' worth of budget
    assert starts[:burst] == [100.0] * burst
    gaps = [b - a for a, b in zip(starts[burst - 1 :], starts[burst:])]
    assert gaps == pytest.approx([1.0] * 4)
    assert clock.slept == pytest.approx([1.0] * 4)
    assert (lim.waits, lim.waited) == (4, pytest.approx(4.0))


def test_the_bucket_refills_at_the_rate_and_never_above_the_burst(clock):
    lim = limiter(clock, rpm=120)  # 2 per second, burst 20
    for _ in range(20):
        lim.acquire()
    clock.advance(2.5)  # 5 requests back
    for _ in range(5):
        assert lim.acquire() == 0
    assert lim.acquire() == pytest.approx(0.5)
    clock.advance(3600)  # an idle hour refills to the burst, not beyond
    for _ in range(20):
        assert lim.acquire() == 0
    assert lim.acquire() > 0


def test_concurrent_reservations_queue_up_in_order(clock):
    """Waits are reserved under the lock, so callers who come in together are spaced, not let through together."""
    lim = RateLimiter("x", rpm=60, burst_seconds=1, clock=clock, sleep=lambda s: None)
    waits = [lim.acquire() for _ in range(4)]  # the clock does not move: each reserves the next slot
    assert waits == pytest.approx([0.0, 1.0, 2.0, 3.0])


# ----------------------------------------------------------------- static tpm
def test_tpm_waits_for_the_estimate_and_reconciles_with_the_usage_reported(clock):
    lim = limiter(clock, tpm=6000)  # 100 tokens/s, burst 1000
    est = Estimate(400, 400)
    assert lim.acquire(est) == 0  # 200 left
    lim.settle(est, Usage(input_tokens=100, output_tokens=100))  # used 200, not 800: 600 back
    assert lim.acquire(est) == 0  # 800 left -> 0
    lim.settle(est, Usage(input_tokens=600, output_tokens=600))  # used 1200: 400 more charged -> -400
    assert lim.acquire(Estimate(100, 0)) == pytest.approx(5.0)  # needs 100 from -400 at 100/s


def test_tpm_refunds_a_failed_attempt_and_keeps_the_estimate_without_usage(clock):
    lim = limiter(clock, tpm=600)  # 10 tokens/s, burst 100
    est = Estimate(50, 50)
    lim.acquire(est)
    lim.failed(est, RuntimeError("refused"))
    assert lim.acquire(est) == 0  # the first attempt's tokens came back
    lim.settle(est, Usage())  # nothing reported: the estimate stands
    assert lim.acquire(Estimate(10, 0)) == pytest.approx(1.0)


def test_a_call_bigger_than_the_bucket_waits_for_a_full_bucket_and_leaves_a_debt(clock):
    lim = limiter(clock, tpm=600)  # 10/s, burst 100
    lim.acquire(Estimate(10, 0))
    assert lim.acquire(Estimate(500, 0)) == pytest.approx(1.0)  # waits for a full bucket, not forever
    assert lim.acquire(Estimate(10, 0)) == pytest.approx(41.0)  # 100 - 500 = -400 -> 10 needs 41 s


def test_estimate_counts_prompt_characters_and_max_tokens():
    req = ChatRequest(messages=[Message("user", "x" * 400)], model="m", system="s" * 40, max_tokens=50)
    assert estimate_tokens(req) == Estimate(110, 50)
    parts = [TextPart("y" * 8), ImagePart(url="https://example.test/i.png")]
    req = ChatRequest(messages=[Message("user", parts)], model="m", tools=[Tool("t", "d", {"type": "object"})])
    est = estimate_tokens(req)
    assert est.output == DEFAULT_OUTPUT_TOKENS
    assert est.input > 1000  # the image counts
    assert RateLimiter("x").estimate(req) == Estimate(0, 0)  # nothing limits tokens: nothing is counted


# ------------------------------------------------------------------ deadlines
def test_a_wait_that_would_pass_the_deadline_raises_at_once_and_takes_nothing(clock):
    lim = limiter(clock, rpm=6, burst_seconds=10)  # one request, then one per 10 s
    lim.acquire()
    with pytest.raises(RateLimitError) as info:
        lim.acquire(deadline=Deadline(5, clock=clock))
    exc = info.value
    assert clock.slept == [] and clock() == 100.0  # at once
    assert "rpm=6" in exc.message and "10s away" in exc.message and "deadline" in exc.message
    assert exc.retry_after == pytest.approx(10.0) and "rpm" in exc.hint
    assert exc.status_code is None and exc.provider == "openai"
    # nothing was reserved: a caller with time enough still waits 10 s, not 20
    assert lim.acquire(deadline=Deadline(30, clock=clock)) == pytest.approx(10.0)


def test_a_wait_within_the_deadline_sleeps(clock):
    lim = limiter(clock, rpm=6, burst_seconds=10)
    lim.acquire()
    assert lim.acquire(deadline=Deadline(11, clock=clock)) == pytest.approx(10.0)


# -------------------------------------------------------------- header formats
@pytest.mark.parametrize(
    "value, seconds",
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("120ms", 0.12),
        ("1h2m3.5s", 3723.5),
        ("17.28s", 17.28),
        ("2", 2.0),
        ("0.5", 0.5),
        (str(int((WALL + 30) * 1000)), 30.0),  # OpenRouter: epoch milliseconds
        (str(int(WALL + 12)), 12.0),  # epoch seconds
        (_rfc3339(WALL + 42), 42.0),  # Anthropic: RFC 3339
        ("2020-01-01T00:00:00Z", 0.0),  # in the past
        ("soon", None),
        ("", None),
        ("-3", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_reset(value, seconds):
    got = parse_reset(value, lambda: WALL)
    assert got == (None if seconds is None else pytest.approx(seconds, abs=1e-6))


OPENAI_LOW = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "10s"}


@pytest.mark.parametrize(
    "headers, dimension",
    [
        (OPENAI_LOW, "requests"),
        ({"x-ratelimit-limit-tokens": "10000", "x-ratelimit-remaining-tokens": "500", "x-ratelimit-reset-tokens": "6m0s"}, "tokens"),
        ({"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "2", "anthropic-ratelimit-requests-reset": "+10"}, "requests"),
        (
            {
                "anthropic-ratelimit-output-tokens-limit": "8000",
                "anthropic-ratelimit-output-tokens-remaining": "100",
                "anthropic-ratelimit-output-tokens-reset": "+10",
            },
            "output-tokens",
        ),
        ({"x-ratelimit-limit": "20", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "+10"}, "requests"),  # OpenRouter
    ],
)
def test_each_header_family_starts_pacing_when_little_is_left(clock, headers, dimension):
    wall = WALL + clock()
    headers = {k: (str(int((wall + 10) * 1000)) if v == "+10" and "x-ratelimit" in k else v) for k, v in headers.items()}
    headers = {k: (_rfc3339(wall + 10) if v == "+10" else v) for k, v in headers.items()}
    lim = limiter(clock)
    lim.observe(headers)
    assert list(lim.paced()) == [dimension]


def test_plenty_left_or_no_headers_paces_nothing(clock):
    lim = limiter(clock)
    lim.observe({"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "50", "x-ratelimit-reset-requests": "30s"})
    lim.observe({"content-type": "application/json"})
    lim.observe(None)
    lim.observe({"x-ratelimit-remaining-requests": "garbage", "x-ratelimit-reset-requests": "soon"})
    assert lim.paced() == {}
    assert [lim.acquire() for _ in range(100)] == [0.0] * 100


# ------------------------------------------------------------ adaptive pacing
def test_adaptive_pacing_spreads_what_is_left_until_the_reset_then_recovers(clock):
    lim = limiter(clock)  # no static limits: headers alone
    lim.observe(OPENAI_LOW)  # 5 of 100 left for 10 s: one call every 2 s
    waits = [lim.acquire() for _ in range(4)]
    assert waits == pytest.approx([0.0, 2.0, 2.0, 2.0])
    clock.advance(10)  # past the reset
    assert [lim.acquire() for _ in range(10)] == [0.0] * 10
    assert lim.paced() == {}


def test_a_budget_shown_again_ends_pacing_before_the_reset(clock):
    lim = limiter(clock)
    lim.observe(OPENAI_LOW)
    lim.acquire()
    lim.observe({"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "90", "x-ratelimit-reset-requests": "1s"})
    assert lim.acquire() == 0 and lim.paced() == {}


def test_nothing_left_waits_for_the_reset_and_no_longer(clock):
    lim = limiter(clock)
    lim.observe({"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "7s"})
    assert lim.acquire(Estimate(10, 10)) == pytest.approx(7.0)
    assert lim.acquire(Estimate(10, 10)) == 0.0


def test_token_pacing_is_charged_the_estimate(clock):
    lim = limiter(clock)
    lim.observe({"anthropic-ratelimit-input-tokens-limit": "10000", "anthropic-ratelimit-input-tokens-remaining": "500",
                 "anthropic-ratelimit-input-tokens-reset": _rfc3339(WALL + clock() + 10)})  # fmt: skip
    # 500 input tokens over 10 s: 50 per second; a 100-token prompt every 2 s; output tokens are not this budget
    waits = [lim.acquire(Estimate(100, 4000)) for _ in range(3)]
    assert waits == pytest.approx([0.0, 2.0, 2.0])
    assert lim.acquire(Estimate(10_000, 0)) == pytest.approx(2.0)  # at t=6; it would push the next call to t=206...
    assert lim.acquire(Estimate(100, 0)) == pytest.approx(4.0)  # ...but no wait goes past the reset (t=10)


def test_adaptive_off_ignores_headers(clock):
    lim = limiter(clock, adaptive=False)
    lim.observe(OPENAI_LOW)
    assert lim.paced() == {} and lim.acquire() == 0


def test_a_429_holds_every_call_back_for_its_retry_after(clock):
    lim = limiter(clock)
    lim.failed(None, RateLimitError("slow down", retry_after=3.0))
    assert lim.acquire() == pytest.approx(3.0)
    assert lim.acquire() == 0.0
    from modelprov import QuotaExceededError, ServerError

    lim.failed(None, QuotaExceededError("no credit", retry_after=60.0))  # waiting will not help: not learned
    lim.failed(None, ServerError("boom", retry_after=60.0))
    lim.throttled(None)
    lim.throttled(math.inf)
    assert lim.acquire() == 0.0


# --------------------------------------------------------------------- hygiene
def test_the_lock_is_free_while_sleeping(clock):
    seen = []

    def sleep(seconds):
        seen.append(lim._lock.acquire(blocking=False))
        lim._lock.release()
        clock.sleep(seconds)

    lim = RateLimiter("x", rpm=60, burst_seconds=1, clock=clock, sleep=sleep)
    lim.acquire()
    lim.acquire()
    assert seen == [True]


def test_an_interrupted_wait_gives_the_tokens_back(clock):
    def sleep(seconds):
        raise KeyboardInterrupt

    lim = RateLimiter("x", tpm=600, clock=clock, sleep=sleep)  # burst 100
    lim.acquire(Estimate(100, 0))
    with pytest.raises(KeyboardInterrupt):
        lim.acquire(Estimate(50, 0))
    clock.advance(10)  # the bucket is full again only if the 50 came back
    assert lim.acquire(Estimate(100, 0), sleep=lambda s: None) == 0.0


@pytest.mark.parametrize("kw", [{"rpm": 0}, {"rpm": -1}, {"tpm": "100"}, {"rpm": True}, {"rpm": math.nan}, {"burst_seconds": 0}, {"low_fraction": 2}])
def test_bad_settings_raise_validation_errors(kw):
    with pytest.raises(ValidationError):
        RateLimiter("x", **kw)


def test_pickles_as_a_fresh_limiter_with_the_same_settings(clock):
    lim = RateLimiter("openai", rpm=60, tpm=1000, burst_seconds=5, adaptive=False)
    lim.acquire()
    copy = pickle.loads(pickle.dumps(lim))
    assert (copy.name, copy.rpm, copy.tpm, copy.burst_seconds, copy.adaptive) == ("openai", 60.0, 1000.0, 5.0, False)
    assert copy.waits == 0
    assert "openai" in repr(copy) and "rpm=60" in repr(copy)


def test_a_retry_does_not_wait_again_for_the_429_its_retry_loop_waited_out(clock):
    lim = limiter(clock)
    lim.failed(None, RateLimitError("slow down", retry_after=3.0))
    assert lim.acquire(retry=True) == 0.0  # the retry loop already slept the server's 3 s
    assert lim.acquire() == pytest.approx(3.0)  # any other call waits for it


def test_limiters_one_per_endpoint_with_its_settings(clock):
    from modelprov import ProviderConfig
    from modelprov.ratelimit import Limiters

    limiters = Limiters(clock=clock, sleep=clock.sleep)
    a = limiters.for_config(ProviderConfig(name="openai", rpm=60))
    assert limiters.for_config(ProviderConfig(name="openai", rpm=60)) is a and a.rpm == 60
    assert limiters.for_config(ProviderConfig(name="vllm", base_url="http://h:1/v1")) is not a
    off = Limiters(adaptive=False)
    assert off.for_config(ProviderConfig(name="openai")) is None
    assert off.for_config(ProviderConfig(name="openai", tpm=1000)).tpm == 1000


def test_a_429_holds_calls_back_at_most_a_minute(clock):
    lim = limiter(clock)
    lim.throttled(3600)
    assert lim.acquire() == pytest.approx(60.0)


def test_an_interrupted_wait_gives_the_request_back_too(clock):
    def interrupted(seconds):
        raise KeyboardInterrupt

    lim = RateLimiter("x", rpm=60, burst_seconds=1, clock=clock, sleep=clock.sleep)  # a bucket of one request
    lim.acquire()
    with pytest.raises(KeyboardInterrupt):
        lim.acquire(sleep=interrupted)  # never sent
    clock.advance(1)  # one request refilled: it is there only if the interrupted one came back
    assert lim.acquire() == 0.0


def test_the_time_spent_getting_the_lock_is_not_waited_again():
    times = iter([100.0, 100.0, 100.0, 102.0])  # construction; the 429; the read before the lock; the read under it, 2 s later
    lim = RateLimiter("x", clock=lambda: next(times), sleep=lambda s: None)
    lim.throttled(3.0)  # a 429 holds calls back until t=103
    assert lim.acquire() == pytest.approx(1.0)
