"""The engine with a RateLimiter (``bind(limiter=)``): waits before each attempt (JSON calls, streams, embeddings),
headers observed from MockTransport and from a FakeServer over loopback, tokens reconciled with the usage
reported, a 429's Retry-After learned, and a wait past the deadline refused before anything is sent."""

import datetime

import pytest

from modelprov import ProviderConfig, RateLimitError, RetryPolicy
from modelprov.deadline import Deadline
from modelprov.engine import bind
from modelprov.messages import Message
from modelprov.providers.anthropic.provider import AnthropicProvider
from modelprov.providers.openai_compat.compatible import OpenAICompatibleProvider
from modelprov.ratelimit import RateLimiter
from modelprov.testing import FakeServer, MockReply, MockTransport, chat_body, chat_stream
from modelprov.types import ChatRequest

WALL = 1_800_000_000.0


def compat(handler, clock, limiter, **kw):
    config = ProviderConfig(name="local", type="openai_compatible", base_url="http://local.test/v1")
    kw.setdefault("retry", RetryPolicy.none())
    return bind(OpenAICompatibleProvider(config), transport=MockTransport(handler), sleep=clock.sleep, clock=clock, limiter=limiter, **kw)


def make_limiter(clock, **kw):
    return RateLimiter("local", clock=clock, sleep=clock.sleep, wall=lambda: WALL + clock(), **kw)


def test_rpm_60_burst_then_one_call_a_second_through_the_engine(clock):
    sent = []

    def handler(request):
        sent.append(clock())
        return chat_body("openai", "hi")

    p = compat(handler, clock, make_limiter(clock, rpm=60))
    for _ in range(13):
        assert p.generate("hi", model="m").text == "hi"
    assert sent[:10] == [100.0] * 10
    assert sent[10:] == pytest.approx([101.0, 102.0, 103.0])
    assert clock.slept == pytest.approx([1.0, 1.0, 1.0])


def test_streams_wait_for_the_limiter_too(clock):
    sent = []

    def handler(request):
        sent.append(clock())
        return MockReply(chunks=chat_stream("openai", "hi there"))

    p = compat(handler, clock, make_limiter(clock, rpm=60, burst_seconds=1))
    for _ in range(3):
        assert "".join(c.text for c in p.stream("hi", model="m")) == "hi there"
    assert sent == pytest.approx([100.0, 101.0, 102.0])


def test_tpm_is_estimated_before_and_reconciled_with_the_reported_usage(clock):
    usage = iter([{"prompt_tokens": 10, "completion_tokens": 10}, {"prompt_tokens": 10, "completion_tokens": 10}])
    p = compat(lambda request: chat_body("openai", "hi", usage=next(usage)), clock, make_limiter(clock, tpm=600))  # 10/s, burst 100
    prompt = "x" * 200  # 50 tokens, plus max_tokens=50: an estimate of 100
    p.generate(prompt, model="m", max_tokens=50)  # takes 100, 20 used: 80 come back
    p.generate(prompt, model="m", max_tokens=50)  # 80 there, 100 needed: 2 s (10 s without the refund)
    assert clock.slept == pytest.approx([2.0])


def test_tpm_reconciles_a_stream_with_its_final_usage(clock):
    def handler(request):
        return MockReply(chunks=chat_stream("openai", "hi", usage={"prompt_tokens": 5, "completion_tokens": 5}, include_usage=True))

    p = compat(handler, clock, make_limiter(clock, tpm=600))
    for _ in range(2):
        list(p.stream("x" * 200, model="m", max_tokens=50))
    assert clock.slept == pytest.approx([1.0])  # 100 - 100 + 90 refunded = 90: 10 short


def test_embeddings_count_their_input_tokens(clock):
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
        "model": "e",
        "usage": {"prompt_tokens": 100, "total_tokens": 100},
    }
    p = compat(lambda request: body, clock, make_limiter(clock, tpm=600))
    p.engine.embed(p, ["y" * 400], "e", {}, Deadline(None, clock=clock))  # 100 tokens: the whole burst
    p.engine.embed(p, ["y" * 40], "e", {}, Deadline(None, clock=clock))
    assert clock.slept == pytest.approx([1.0])


def test_adaptive_pacing_keeps_under_a_nearly_spent_server_budget_then_recovers(clock):
    """A server with 5 requests left in a 10 s window: the client spreads them and never meets a 429."""
    window = {"end": clock() + 10, "left": 5}
    sent = []

    def handler(request):
        now = clock()
        if now >= window["end"]:
            window.update(end=now + 60, left=100)
        if window["left"] == 0:
            return MockReply(429, {"error": {"message": "rate limited", "type": "rate_limit_error"}}, headers={"retry-after": "30"})
        window["left"] -= 1
        sent.append(now)
        reset = f"{window['end'] - now:.3f}s"
        headers = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": str(window["left"]), "x-ratelimit-reset-requests": reset}
        return MockReply(200, chat_body("openai", "hi"), headers=headers)

    p = compat(handler, clock, make_limiter(clock))  # no static limit: the headers alone
    for _ in range(12):
        p.generate("hi", model="m")  # raises on a 429 (no retries)
    in_window = [t for t in sent if t < 110]
    assert len(in_window) == 5  # the budget, spread out: not all at once
    assert in_window[-1] - in_window[0] > 5
    assert min(t for t in sent if t >= 110) == pytest.approx(110.0, abs=0.01)  # waited for the reset, no longer
    after = [t for t in sent if t >= 110]
    assert after == [after[0]] * len(after) and len(after) == 7  # recovered: full speed again


def test_a_wait_past_the_deadline_raises_at_once_and_sends_nothing(clock):
    sent = []

    def handler(request):
        sent.append(clock())
        return chat_body("openai", "hi")

    p = compat(handler, clock, make_limiter(clock, rpm=6, burst_seconds=10), retry=RetryPolicy(max_retries=3))
    req = ChatRequest(messages=[Message("user", "hi")], model="m")
    p.engine.chat(p, req, Deadline(5, clock=clock))
    with pytest.raises(RateLimitError) as info:
        p.engine.chat(p, req, Deadline(5, clock=clock))
    assert len(sent) == 1 and clock.slept == [] and clock() == 100.0
    assert "rpm=6" in str(info.value) and info.value.retry_after == pytest.approx(10.0)
    # a stream is refused the same way, at its first next()
    with pytest.raises(RateLimitError):
        next(iter(p.engine.stream(p, req, Deadline(5, clock=clock))))
    assert len(sent) == 1 and clock.slept == []


def test_a_429_retry_after_holds_back_the_next_calls(clock):
    replies = [MockReply(429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, headers={"retry-after": "3"})]
    sent = []

    def handler(request):
        sent.append(clock())
        return replies.pop(0) if replies else chat_body("openai", "hi")

    p = compat(handler, clock, make_limiter(clock))
    with pytest.raises(RateLimitError):
        p.generate("hi", model="m")
    p.generate("hi", model="m")  # another call waits out the server's 3 s first
    assert sent == pytest.approx([100.0, 103.0]) and clock.slept == pytest.approx([3.0])


def test_one_limiter_is_shared_by_the_providers_bound_to_it(clock):
    limiter = make_limiter(clock, rpm=60, burst_seconds=2)
    a = compat(lambda r: chat_body("openai", "a"), clock, limiter)
    b = compat(lambda r: chat_body("openai", "b"), clock, limiter)
    a.generate("x", model="m")
    b.generate("x", model="m")
    a.generate("x", model="m")
    assert clock.slept == pytest.approx([1.0])


def _rfc3339(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_anthropic_headers_from_a_fake_server_slow_the_client_down_and_it_recovers(clock):
    limiter = make_limiter(clock)

    def budget(left, reset_in=10):
        at = _rfc3339(WALL + clock() + reset_in)
        return {"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": str(left), "anthropic-ratelimit-requests-reset": at}

    with FakeServer() as server:
        config = ProviderConfig(name="anthropic", api_key="sk-ant-test", base_url=server.base_url("anthropic"))
        p = bind(AnthropicProvider(config), sleep=clock.sleep, clock=clock, limiter=limiter, retry=RetryPolicy.none())
        server.add_chat("anthropic", "one", headers=budget(0))  # the budget is spent until the reset, 10 s away
        server.add_chat("anthropic", "two", headers=budget(50))  # after the reset: all back
        server.add_chat("anthropic", "three", headers=budget(50))
        assert p.generate("hi", model="claude-x").text == "one"
        assert p.generate("hi", model="claude-x").text == "two"
        assert p.generate("hi", model="claude-x").text == "three"
        p.close()
    assert clock.slept == [pytest.approx(10.0, abs=1.0)]  # waited for the reset (whole seconds in the header), then full speed
    assert limiter.paced() == {}


def test_openrouter_headers_in_any_case_with_an_epoch_millisecond_reset(clock):
    def handler(request):
        reset = str(int((WALL + clock() + 4) * 1000))
        headers = {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
        return MockReply(200, chat_body("openrouter", "hi"), headers=headers)

    from modelprov.providers.openai_compat.openrouter import OpenRouterProvider

    config = ProviderConfig(name="openrouter", api_key="sk-or-test")
    limiter = make_limiter(clock)
    p = bind(OpenRouterProvider(config), transport=MockTransport(handler), sleep=clock.sleep, clock=clock, limiter=limiter)
    p.generate("hi", model="a/b")
    p.generate("hi", model="a/b")  # nothing left until the reset, 4 s away
    assert clock.slept == pytest.approx([4.0], abs=0.01)
