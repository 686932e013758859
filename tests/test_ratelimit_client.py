"""Client-side rate limits through the Client: rpm/tpm provider settings, one limiter per endpoint shared by every
thread, adaptive pacing on by default, a wait past the deadline raising (and falling back), pickling."""

import pickle
import threading

import pytest

from modelprov import Client, RateLimitError
from modelprov.testing import MockReply, MockTransport, chat_body


def make_client(clock, handler=None, sleep=None, **kw):
    handler = handler or (lambda request: chat_body("openai", "hi"))
    providers = kw.pop("providers", {"openai": {"api_key": "sk-test", "rpm": 60}})
    return Client(providers=providers, transport=MockTransport(handler), clock=clock, sleep=sleep or clock.sleep, **kw)


def test_rpm_60_lets_a_burst_through_then_one_call_a_second(clock):
    sent = []

    def handler(request):
        sent.append(clock())
        return chat_body("openai", "hi")

    client = make_client(clock, handler)
    for _ in range(12):
        client.complete("openai/gpt-x", "hi")
    assert sent[:10] == [100.0] * 10 and sent[10:] == pytest.approx([101.0, 102.0])
    assert client.limiter("openai").rpm == 60


def test_one_limiter_per_endpoint_is_shared_by_every_thread(clock):
    waits = []
    lock = threading.Lock()

    def sleep(seconds):  # the clock stands still: every reservation is made at the same instant
        with lock:
            waits.append(seconds)

    client = make_client(clock, sleep=sleep)
    results = client.batch([("openai/gpt-x", "hi")] * 20, max_concurrency=8)
    assert all(r.text == "hi" for r in results)
    assert sorted(waits) == pytest.approx([float(n) for n in range(1, 11)])  # 10 at once, then one slot a second


def test_tpm_from_the_provider_settings(clock):
    client = make_client(clock, providers={"openai": {"api_key": "sk-test", "tpm": 600}})  # 10 tokens/s, burst 100
    client.complete("openai/gpt-x", "x" * 200, max_tokens=50)  # estimate 100; the reply reports 11 tokens
    client.complete("openai/gpt-x", "x" * 200, max_tokens=50)
    assert clock.slept == pytest.approx([1.1])


def test_adaptive_pacing_is_on_by_default_and_can_be_turned_off(clock):
    spent = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "5s"}

    def handler(request):
        return MockReply(200, chat_body("openai", "hi"), headers=spent)

    client = make_client(clock, handler, providers={"openai": {"api_key": "sk-test"}})
    client.complete("openai/gpt-x", "hi")
    client.complete("openai/gpt-x", "hi")
    assert clock.slept == pytest.approx([5.0])

    off = make_client(clock, handler, providers={"openai": {"api_key": "sk-test"}}, adaptive_limits=False)
    off.complete("openai/gpt-x", "hi")
    off.complete("openai/gpt-x", "hi")
    assert clock.slept == pytest.approx([5.0]) and off.limiter("openai") is None


def test_a_wait_past_the_deadline_raises_at_once(clock):
    client = make_client(clock, providers={"openai": {"api_key": "sk-test", "rpm": 6}}, timeout=5)
    client.complete("openai/gpt-x", "hi")
    with pytest.raises(RateLimitError) as info:
        client.complete("openai/gpt-x", "hi")
    assert clock.slept == [] and "rpm=6" in str(info.value)


def test_a_wait_past_the_deadline_falls_back_to_the_next_model(clock):
    client = make_client(clock, providers={"openai": {"api_key": "sk-test", "rpm": 6}}, timeout=5, fallbacks=["mock/echo"])
    assert client.complete("openai/gpt-x", "hi").provider == "openai"
    assert client.complete("openai/gpt-x", "hi").provider == "mock"
    assert clock.slept == []


def test_a_pickled_client_starts_with_fresh_limiters(clock):
    client = Client(providers={"mock": {"rpm": 60}})
    client.complete("mock/echo", "hi")
    assert client.limiter("mock").rpm == 60
    copy = pickle.loads(pickle.dumps(client))
    assert copy.limiter("mock") is not client.limiter("mock")
    assert copy.limiter("mock").rpm == 60 and copy.limiter("mock").waits == 0
