"""Client: routing, aliases, default model, fallbacks, breakers, hooks, batch, pickling."""

import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

import modelprov
from modelprov import (
    AuthenticationError,
    CircuitBreakerError,
    Client,
    ConfigurationError,
    InvalidRequestError,
    QuotaExceededError,
    RetryPolicy,
    ServerError,
    ValidationError,
)

THREE = {"a": {"type": "mock"}, "b": {"type": "mock"}, "c": {"type": "mock"}}


def no_sleep(seconds):
    pass


def client(**kw):
    kw.setdefault("sleep", no_sleep)
    return Client(**kw)


def test_routes_provider_slash_model_at_first_slash():
    c = client(providers={"openrouter": {"api_key": "sk-or-xxxxxxxxxx"}})
    assert c.resolve("openrouter/anthropic/claude-sonnet-4.6") == ("openrouter", "anthropic/claude-sonnet-4.6")
    assert c.resolve("mock") == ("mock", "echo")


def test_default_model_order(monkeypatch):
    with pytest.raises(ConfigurationError) as info:
        client().complete(None, "x")
    assert "MODELPROV_MODEL" in str(info.value)
    monkeypatch.setenv("MODELPROV_MODEL", "mock/echo")
    assert client().complete(None, "from env").text == "from env"
    assert client(default_model="a/echo", providers=THREE).resolve(None) == ("a", "echo")


def test_aliases_from_config():
    modelprov.get_config().set_value("aliases", "fast", "mock/echo")
    assert client().complete("fast", "aliased").model == "echo"


def test_bad_model_strings():
    with pytest.raises(ConfigurationError, match="no provider prefix"):
        client().resolve("gpt-5.4")
    with pytest.raises(ConfigurationError, match="unknown provider"):
        client().complete("nope/x", "hi")
    with pytest.raises(ValidationError):
        client().resolve("  ")


def test_client_settings_override_config():
    c = client(providers={"mock": {"default_model": "scripted"}})
    assert c.provider("mock").config.default_model == "scripted"


def test_fallback_order_and_recorded_attempts():
    c = client(providers=THREE, fallbacks=["b/echo", "c/echo"], retry=RetryPolicy(max_retries=1))
    c.provider("a").push(ServerError("a down"), ServerError("a still down"))
    c.provider("b").push(AuthenticationError("bad key"))
    events = []
    c.hooks.on_fallback = events.append
    resp = c.complete("a/echo", "hello")
    assert resp.text == "hello" and resp.provider == "c"
    assert [(r["provider"], r["outcome"], r.get("error")) for r in resp.attempts] == [
        ("a", "error", "ServerError"),
        ("a", "error", "ServerError"),
        ("b", "error", "AuthenticationError"),
        ("c", "ok", None),
    ]
    assert [(e["from"], e["to"]) for e in events] == [("a/echo", "b/echo"), ("b/echo", "c/echo")]


def test_no_fallback_on_invalid_request():
    c = client(providers=THREE, fallbacks=["b/echo"])
    c.provider("a").push(InvalidRequestError("bad"))
    with pytest.raises(InvalidRequestError) as info:
        c.complete("a/echo", "x")
    assert [r["provider"] for r in info.value.attempts] == ["a"]
    assert c.provider("b").requests == []


def test_all_fail_raises_last_error_with_every_attempt():
    c = client(providers=THREE, fallbacks=["b/echo"], retry=RetryPolicy(max_retries=0))
    c.provider("a").push(QuotaExceededError("broke"))
    c.provider("b").push(ServerError("down"))
    with pytest.raises(ServerError) as info:
        c.complete("a/echo", "x")
    assert [(r["provider"], r["error"]) for r in info.value.attempts] == [("a", "QuotaExceededError"), ("b", "ServerError")]


def test_breaker_opens_on_one_provider_while_fallback_serves():
    c = client(providers=THREE, fallbacks=["b/echo"], retry=RetryPolicy(max_retries=0), breaker={"failure_threshold": 2, "recovery_timeout": 60})
    a = c.provider("a")
    a.push(*[ServerError("down")] * 5)
    for _ in range(4):
        assert c.complete("a/echo", "x").provider == "b"
    assert c.breaker("a").state.value == "open"
    resp = c.complete("a/echo", "x")
    assert resp.attempts[0]["error"] == "CircuitBreakerError"
    assert a.pending == 3  # the open breaker kept calls away from "a"


def test_breaker_error_without_fallback():
    c = client(providers=THREE, retry=RetryPolicy(max_retries=0), breaker={"failure_threshold": 1, "recovery_timeout": 60})
    c.provider("a").push(ServerError("down"))
    with pytest.raises(ServerError):
        c.complete("a/echo", "x")
    with pytest.raises(CircuitBreakerError) as info:
        c.complete("a/echo", "x")
    assert info.value.retry_after is not None


def test_hooks_receive_redacted_information():
    seen = []
    c = client(on_request=seen.append, on_response=seen.append, on_error=seen.append)
    c.complete("mock/echo", "my secret sk-proj-SENTINEL0123456789abcdef")
    c.provider("mock").push(InvalidRequestError("nope"))
    with pytest.raises(InvalidRequestError):
        c.complete("mock/echo", "x")
    assert seen[0] == {"provider": "mock", "model": "echo", "stream": False, "attempt": 1}
    assert seen[1]["usage"]["output_tokens"] == 3
    assert seen[-1]["type"] == "InvalidRequestError"
    assert "SENTINEL" not in repr(seen)


def test_failing_hook_is_ignored():
    def boom(info):
        raise RuntimeError("hook bug")

    assert client(on_request=boom).complete("mock/echo", "still works").text == "still works"


def test_stream_falls_back_before_first_chunk_only():
    c = client(providers=THREE, fallbacks=["b/echo"], retry=RetryPolicy(max_retries=0))
    c.provider("a").push(ServerError("down"))
    s = c.stream("a/echo", "one two")
    assert "".join(ch.text for ch in s) == "one two"
    assert [r["provider"] for r in s.attempts] == ["a", "b"]


def test_stream_validates_before_io():
    with pytest.raises(ValidationError):
        client().stream("mock/echo", [])


def test_batch_keeps_order_and_reports_progress():
    c = client()
    c.provider("mock").push("r0", "r1", InvalidRequestError("bad"), "r3")
    progress = []
    # scripted replies are consumed in arrival order, so run one at a time for a deterministic script
    requests = [("mock/echo", "p0"), ("mock/echo", "p1"), {"model": "mock/echo", "messages": "p2"}, ("mock/echo", "p3")]
    out = c.batch(requests, max_concurrency=1, on_progress=lambda d, t: progress.append((d, t)))
    assert [getattr(r, "text", type(r).__name__) for r in out] == ["r0", "r1", "InvalidRequestError", "r3"]
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    many = c.batch([("mock/echo", f"prompt {i}") for i in range(50)], max_concurrency=8)
    assert [r.text for r in many] == [f"prompt {i}" for i in range(50)]
    c.provider("mock").push(ServerError("x", retryable=False))
    with pytest.raises(ServerError):
        c.batch([("mock/echo", "a")], return_exceptions=False)
    with pytest.raises(ValidationError, match="requests\\[0\\]"):
        c.batch([42])


def _use_client(blob):
    c = pickle.loads(blob)
    return c.complete("b/echo", "from a worker").text, c.fallbacks


def test_client_pickles_to_a_process_pool():
    c = client(providers=THREE, fallbacks=["c/echo"], timeout=30)
    c.complete("a/echo", "warm up")  # has live state (instances, locks)
    blob = pickle.dumps(c)
    with ProcessPoolExecutor(max_workers=1) as pool:
        text, fallbacks = pool.submit(_use_client, blob).result(timeout=60)
    assert text == "from a worker" and fallbacks == ["c/echo"]


class _PlainTransport:
    """A transport object without a lock: pickles as is."""

    def __init__(self, tag):
        self.tag = tag

    def send(self, request, deadline, *, attempt=1):  # pragma: no cover - never called
        raise AssertionError("not used")


def _mock_transport_factory(config):  # pragma: no cover - only pickled
    from modelprov.testing import MockTransport

    return MockTransport(lambda request: {}).for_provider(config)


def test_pickling_a_client_whose_transport_does_not_pickle_says_what_to_do():
    from modelprov.testing import MockTransport

    c = client(providers={"openai": {"api_key": "sk-test"}}, transport=MockTransport(lambda request: {}))
    with pytest.raises(TypeError, match=r"transport \(MockTransport\) does not pickle.*transport factory.*in the worker"):
        pickle.dumps(c)
    c = client(transport=lambda config: MockTransport(lambda request: {}))
    with pytest.raises(TypeError, match=r"its transport factory \(function\) does not pickle"):
        pickle.dumps(c)


def test_a_client_with_a_transport_or_factory_that_pickles_keeps_it():
    c = pickle.loads(pickle.dumps(client(transport=_PlainTransport("t1"))))
    assert isinstance(c._transport, _PlainTransport) and c._transport.tag == "t1"
    c = pickle.loads(pickle.dumps(client(transport=_mock_transport_factory)))
    assert c._transport is _mock_transport_factory


def test_constructor_validation():
    with pytest.raises(ValidationError):
        Client(providers=["openai"])
    with pytest.raises(ValidationError):
        Client(providers={"openai": "key"})
    with pytest.raises(ValidationError):
        Client(timeout=-1)


def test_models_and_embed():
    c = client()
    assert [m.id for m in c.models("mock")] == ["echo", "scripted"]
    assert len(c.embed("mock/echo", ["a", "b"]).embeddings) == 2
