"""One Deadline per call, at every hop, with an injected clock: the check before each attempt, the retry
waits, ``transport.send``, stream headers and reads, the idle deadline, and the fallback chain."""

import pytest
from test_engine import ANSWER, SSE, FakeResponse, FakeTransport

from modelprov import Client, ProviderConfig, ProviderTimeoutError, RetryPolicy, ServerError, ValidationError
from modelprov.deadline import Deadline
from modelprov.engine import bind
from modelprov.providers.openai_compat.compatible import OpenAICompatibleProvider

LOCAL = {"type": "openai_compatible", "base_url": "http://local.test/v1"}


def compat(transport, clock, timeout=None, **engine_kwargs):
    config = ProviderConfig(name="local", type="openai_compatible", base_url="http://local.test/v1", timeout=timeout)
    return bind(OpenAICompatibleProvider(config), transport=transport, clock=clock, sleep=clock.sleep, **engine_kwargs)


def slow(clock, seconds, then):
    """A send that takes ``seconds`` of the fake clock, then answers ``then`` (a response or an exception)."""

    def send(request, deadline, attempt):
        clock.advance(seconds)
        return then

    return send


# ------------------------------------------------------------------ one call
def test_the_call_deadline_reaches_transport_send(clock):
    transport = FakeTransport(ServerError("a"), FakeResponse(ANSWER))
    p = compat(transport, clock, retry=RetryPolicy(max_retries=1, initial_backoff=0.5, jitter=0))
    p.generate("x", model="m", timeout=10)
    (_, first, n1), (_, second, n2) = transport.sent
    assert first is second and (n1, n2) == (1, 2)  # one Deadline object for the call, attempts numbered
    assert first.end == 100.0 + 10 and first.clock is clock


def test_the_provider_timeout_is_the_default_deadline_and_a_per_call_one_wins(clock):
    transport = FakeTransport(default=FakeResponse(ANSWER))
    p = compat(transport, clock, timeout=30)
    p.generate("x", model="m")
    p.generate("x", model="m", timeout=5)
    assert [d.timeout for _, d, _ in transport.sent] == [30.0, 5.0]
    with pytest.raises(ValidationError, match="timeout must be a positive number"):
        p.generate("x", model="m", timeout=-1)


def test_the_retry_policys_own_deadline_is_folded_in(clock):
    transport = FakeTransport(default=FakeResponse(ANSWER))
    compat(transport, clock, retry=RetryPolicy(deadline=4)).generate("x", model="m", timeout=10)
    assert transport.sent[0][1].end == 104.0


def test_a_retry_wait_is_cut_at_the_deadline(clock):
    transport = FakeTransport(default=ServerError("down"))
    p = compat(transport, clock, retry=RetryPolicy(max_retries=5, initial_backoff=1.0, max_backoff=8.0, jitter=0))
    with pytest.raises(ServerError) as info:
        p.generate("x", model="m", timeout=2.5)
    assert clock.slept == [1.0]  # the next wait (2 s) would have passed the deadline: no retry
    assert len(transport.sent) == 2 and clock.now <= 100.0 + 2.5
    assert [r["delay"] for r in info.value.attempts] == [1.0, None]


def test_an_expired_deadline_before_an_attempt_raises_timeout(clock):
    transport = FakeTransport(default=FakeResponse(ANSWER))
    p = compat(transport, clock)
    deadline = Deadline(1.0, clock=clock)
    clock.advance(2.0)
    with pytest.raises(ProviderTimeoutError):
        p.engine.chat(p, p.make_request("x", model="m"), deadline)
    assert transport.sent == []

    def oversleep(seconds):  # a wait that overshoots: the next attempt finds the deadline passed
        clock.advance(seconds + 5)

    p = bind(OpenAICompatibleProvider(p.config), transport=FakeTransport(ServerError("a"), default=FakeResponse(ANSWER)), clock=clock,
             sleep=oversleep, retry=RetryPolicy(max_retries=3, initial_backoff=0.5, jitter=0))  # fmt: skip
    with pytest.raises(ProviderTimeoutError) as info:
        p.generate("x", model="m", timeout=3)
    assert [r["error"] for r in info.value.attempts] == ["ServerError", "ProviderTimeoutError"]


# -------------------------------------------------------------------- streams
def test_stream_headers_straddling_the_deadline_raise_timeout_not_validation_error(clock):
    # the headers arrive 0.26 s after the deadline: once a ValidationError('total_timeout ... not -0.26')
    transport = FakeTransport(slow(clock, 1.26, FakeResponse(chunks=SSE)))
    stream = compat(transport, clock, timeout=1.0, retry=RetryPolicy.none()).stream("x", model="m")
    with pytest.raises(ProviderTimeoutError) as info:
        next(stream)
    assert info.value.extra["timeout_kind"] == "total"


def test_straddled_headers_fall_back_while_the_chain_has_time(clock):
    def factory(config):
        if config.name == "a":
            return FakeTransport(slow(clock, 1.26, FakeResponse(chunks=SSE)))
        return FakeTransport(FakeResponse(chunks=SSE))

    client = Client(providers={"a": dict(LOCAL, timeout=1.0), "b": LOCAL}, fallbacks=["b/m"], transport=factory,
                    clock=clock, sleep=clock.sleep, retry=RetryPolicy.none())  # fmt: skip
    stream = client.stream("a/m", "x")
    assert "".join(c.text for c in stream) == "hi"
    assert [(r["provider"], r.get("error")) for r in stream.attempts] == [("a", "ProviderTimeoutError"), ("b", None)]


def test_a_stream_past_its_deadline_mid_body_raises_timeout(clock):
    chunks = [b'data: {"choices":[{"index":0,"delta":{"content":"w "}}]}\n\n'] * 20
    transport = FakeTransport(FakeResponse(chunks=chunks, clock=clock, step=0.1))
    got = []
    with pytest.raises(ProviderTimeoutError) as info:
        for chunk in compat(transport, clock).stream("x", model="m", timeout=1.0):
            got.append(chunk.text)
    assert 5 <= len(got) <= 11
    assert info.value.extra["timeout_kind"] == "total"  # the overall deadline, not the idle one


def test_the_idle_deadline_ignores_keepalives_and_the_callers_time(clock):
    keepalive = b": keep-alive\n\n"
    config = ProviderConfig(name="local", type="openai_compatible", base_url="http://local.test/v1", idle_timeout=1.0)
    transport = FakeTransport(FakeResponse(chunks=[SSE[0]] + [keepalive] * 5, clock=clock, step=0.4))
    p = bind(OpenAICompatibleProvider(config), transport=transport, clock=clock)
    with pytest.raises(ProviderTimeoutError, match="idle") as info:
        for _ in p.stream("x", model="m"):
            clock.advance(30)  # the caller's own time is never server idleness
    assert info.value.extra["timeout_kind"] == "idle"


# -------------------------------------------------------------- the chain
def test_fallbacks_move_on_after_a_timeout_only_while_time_remains(clock):
    a = FakeTransport(default=slow(clock, 3.0, ProviderTimeoutError("read timed out")))
    b = FakeTransport(default=FakeResponse(ANSWER))
    client = Client(providers={"a": LOCAL, "b": dict(LOCAL, base_url="http://b.test/v1")}, fallbacks=["b/m"], timeout=10,
                    transport=lambda config: a if config.name == "a" else b, clock=clock, sleep=clock.sleep,
                    retry=RetryPolicy.none())  # fmt: skip
    resp = client.complete("a/m", "x")
    assert resp.text == "hi" and [(r["provider"], r["outcome"]) for r in resp.attempts] == [("a", "error"), ("b", "ok")]
    assert b.sent[0][1] is a.sent[0][1]  # the chain's one Deadline, handed on

    a.default = slow(clock, 11.0, ProviderTimeoutError("read timed out"))  # a uses up the whole deadline
    with pytest.raises(ProviderTimeoutError) as info:
        client.complete("a/m", "x")
    assert len(b.sent) == 1  # no fallback once the deadline has passed
    assert [r["provider"] for r in info.value.attempts] == ["a"]


def test_without_a_client_timeout_each_provider_timeout_bounds_its_own_part(clock):
    seen = {}

    def factory(config):
        def send(request, deadline, attempt):
            seen[config.name] = deadline.timeout
            clock.advance(2.0)
            return ProviderTimeoutError("slow") if config.name == "a" else FakeResponse(ANSWER)

        return FakeTransport(default=send)

    client = Client(providers={"a": dict(LOCAL, timeout=1.5), "b": dict(LOCAL, timeout=4.0)}, fallbacks=["b/m"], transport=factory,
                    clock=clock, sleep=clock.sleep, retry=RetryPolicy.none())  # fmt: skip
    assert client.complete("a/m", "x").text == "hi"
    assert seen == {"a": 1.5, "b": 4.0}


def test_client_timeout_is_checked_once_and_becomes_the_deadline(clock):
    transport = FakeTransport(default=FakeResponse(ANSWER))
    client = Client(providers={"local": dict(LOCAL, timeout=60)}, timeout=7, transport=transport, clock=clock)
    client.complete("local/m", "x")
    client.complete("local/m", "x", timeout=2)
    assert [d.timeout for _, d, _ in transport.sent] == [7.0, 2.0]  # the client's or the call's, not the provider's
    with pytest.raises(ValidationError, match="timeout"):
        client.complete("local/m", "x", timeout=0)
