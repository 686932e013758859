"""The call engine: codec -> transport under retry and the breaker's permits, explicit attempt records,
the null breaker, options learned from rejections, transports given or built, and binding."""

import json

import pytest

from modelprov import (
    CircuitBreaker,
    CircuitBreakerError,
    Client,
    ConfigurationError,
    InvalidRequestError,
    ModelResponse,
    ProviderConfig,
    ProviderConnectionError,
    RetryPolicy,
    ServerError,
    UnsupportedFeatureError,
)
from modelprov.deadline import Deadline
from modelprov.engine import NULL_BREAKER, Engine, bind
from modelprov.providers.base import ModelProvider, StreamDecoder
from modelprov.providers.openai_compat.compatible import OpenAICompatibleProvider
from modelprov.types import ChatRequest, HTTPRequest, StreamChunk

ANSWER = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 1, "completion_tokens": 1}}  # fmt: skip
SSE = [b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n',
       b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n']  # fmt: skip


class FakeResponse:
    """A transport response: a JSON body or body chunks (each may move a fake clock first)."""

    latency_s = 0.01

    def __init__(self, body=None, chunks=(), clock=None, step=0.0, request_id="req-1"):
        self.body, self.chunks, self.clock, self.step, self.request_id = body, list(chunks), clock, step, request_id
        self.closed = self.aborted = False

    def json(self):
        return self.body

    def iter_bytes(self):
        for chunk in self.chunks:
            if self.clock is not None:
                self.clock.advance(self.step)
            yield chunk

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True


class FakeTransport:
    """Answers each ``send`` with the next scripted item: a response, an exception, or ``fn(request, deadline, attempt)``."""

    def __init__(self, *script, default=None):
        self.script = list(script)
        self.default = default
        self.sent = []
        self.closed = False

    def send(self, request, deadline, *, attempt=1):
        self.sent.append((request, deadline, attempt))
        item = self.script.pop(0) if self.script else self.default
        if callable(item) and not isinstance(item, (FakeResponse, BaseException)):
            item = item(request, deadline, attempt)
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self):
        self.closed = True


def compat(transport, **engine_kwargs):
    config = ProviderConfig(name="local", type="openai_compatible", base_url="http://local.test/v1")
    engine_kwargs.setdefault("sleep", lambda s: None)
    return bind(OpenAICompatibleProvider(config), transport=transport, **engine_kwargs)


# ------------------------------------------------------------- retry + breaker
def test_retries_run_each_attempt_under_a_breaker_permit():
    breaker = CircuitBreaker("local", failure_threshold=5)
    transport = FakeTransport(ServerError("a"), ServerError("b"), FakeResponse(ANSWER))
    p = compat(transport, retry=RetryPolicy(max_retries=2), breaker=breaker)
    assert p.generate("x", model="m").text == "hi"
    stats = breaker.stats()
    assert (stats.calls, stats.failures, stats.successes) == (3, 2, 1)
    assert [attempt for _, _, attempt in transport.sent] == [1, 2, 3]


def test_an_open_breaker_sends_nothing():
    breaker = CircuitBreaker("local")
    breaker.force_open()
    transport = FakeTransport(default=FakeResponse(ANSWER))
    with pytest.raises(CircuitBreakerError):
        compat(transport, breaker=breaker).generate("x", model="m")
    assert transport.sent == []


def test_a_callers_4xx_is_no_breaker_failure():
    breaker = CircuitBreaker("local", failure_threshold=1)
    p = compat(FakeTransport(InvalidRequestError("bad"), default=FakeResponse(ANSWER)), breaker=breaker)
    with pytest.raises(InvalidRequestError):
        p.generate("x", model="m")
    assert breaker.stats().ignored == 1 and breaker.stats().state.value == "closed"
    assert p.generate("x", model="m").text == "hi"


def test_without_a_breaker_the_null_breaker_runs_the_same_path():
    p = compat(FakeTransport(ServerError("a"), FakeResponse(ANSWER)), retry=RetryPolicy(max_retries=1))
    engine = p.engine
    assert isinstance(engine, Engine) and engine.breaker is NULL_BREAKER
    permit = NULL_BREAKER.acquire()
    permit.success(), permit.ignore(), permit.record(ServerError("x"))  # all no-ops
    with pytest.raises(ServerError), NULL_BREAKER.guard() as guarded:
        assert guarded is permit
        raise ServerError("x")  # recorded nowhere, re-raised
    assert p.generate("x", model="m").text == "hi"


class GuardOnlyBreaker:
    """A breaker offering only ``guard()``: the JSON path must not acquire permits by hand."""

    def __init__(self):
        self.breaker = CircuitBreaker("local", failure_threshold=5)
        self.guards = 0

    def acquire(self):
        raise AssertionError("the JSON path runs each attempt through guard()")

    def guard(self):
        self.guards += 1
        return self.breaker.guard()


def test_each_json_attempt_runs_inside_the_breakers_guard():
    breaker = GuardOnlyBreaker()
    p = compat(FakeTransport(ServerError("a"), InvalidRequestError("bad"), default=FakeResponse(ANSWER)),
               retry=RetryPolicy(max_retries=1), breaker=breaker)  # fmt: skip
    with pytest.raises(InvalidRequestError):
        p.generate("x", model="m")
    assert p.generate("x", model="m").text == "hi"
    stats = breaker.breaker.stats()
    assert breaker.guards == 3 and (stats.calls, stats.failures, stats.ignored, stats.successes) == (3, 1, 1, 1)


def test_a_connection_error_gets_the_providers_hint_and_counts_against_the_breaker():
    breaker = CircuitBreaker("local", failure_threshold=1)
    p = compat(FakeTransport(ProviderConnectionError("refused")), retry=RetryPolicy.none(), breaker=breaker)
    p.connection_hint = "is the local server running?"
    with pytest.raises(ProviderConnectionError) as info:
        p.generate("x", model="m")
    assert info.value.hint == "is the local server running?"
    assert breaker.stats().failures == 1 and breaker.stats().state.value == "open"


def test_retry_records_go_to_the_list_the_caller_passes():
    seen = []
    p = compat(FakeTransport(ServerError("a"), ServerError("b"), default=FakeResponse(ANSWER)), retry=RetryPolicy(max_retries=2),
               on_retry=lambda record, exc: seen.append(record))  # fmt: skip
    retries = []
    req = p.make_request("x", model="m")
    resp = p.engine.chat(p, req, Deadline(), retries=retries)
    assert resp.text == "hi"
    assert [r["attempt"] for r in retries] == [1, 2] and [r["error"] for r in retries] == ["ServerError", "ServerError"]
    assert seen == retries  # the engine's hook saw the same records
    p.engine.chat(p, req, Deadline())  # no list: nothing is kept anywhere
    assert len(retries) == 2


def test_client_attempts_come_from_explicit_records_even_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    def script(request, deadline, attempt):
        return ServerError("flaky") if attempt == 1 else FakeResponse(ANSWER)

    client = Client(providers={"local": {"type": "openai_compatible", "base_url": "http://local.test/v1"}},
                    transport=FakeTransport(default=script), retry=RetryPolicy(max_retries=1), sleep=lambda s: None)  # fmt: skip
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: client.complete("local/m", f"q{i}"), range(32)))
    for resp in results:
        assert [(a["outcome"], a.get("error"), a.get("attempt")) for a in resp.attempts] == [("error", "ServerError", 1), ("ok", None, None)]
    import modelprov.fallback as fallback

    assert not any(type(v).__name__ == "_local" for v in vars(fallback).values())  # no thread-local record keeping


# ------------------------------------------------------------ learned options
class Codec(ModelProvider):
    """Rejects ``temperature`` with a 400 naming the option."""

    name = "codec"
    default_base_url = "http://codec.test"

    def build_chat_request(self, req):
        body = {"model": req.model, "stream": req.stream}
        if req.temperature is not None:
            body["temperature"] = req.temperature
        return HTTPRequest(method="POST", path="/chat", json=body, stream=req.stream)

    def parse_chat_response(self, body):
        return ModelResponse(text=body["text"])

    def new_stream_decoder(self, req):
        class Decoder(StreamDecoder):
            def feed(self, event):
                data = json.loads(event.data)
                self.done = bool(data.get("end"))
                return [StreamChunk(finish_reason="stop")] if self.done else [StreamChunk(text=data["text"])]

        return Decoder()


def rejecting_temperature(request, deadline, attempt):
    if "temperature" in request.json:
        return UnsupportedFeatureError("temperature is not supported", option="temperature", status_code=400)
    if request.stream:
        return FakeResponse(chunks=[b'data: {"text": "ok"}\n\n', b'data: {"end": true}\n\n'])
    return FakeResponse({"text": "ok"})


def test_a_rejected_option_is_learned_by_the_engine():
    transport = FakeTransport(default=rejecting_temperature)
    p = bind(Codec(ProviderConfig(name="codec", base_url="http://codec.test", drop_unsupported=True)), transport=transport)
    assert p.generate("x", model="m", temperature=0.5).dropped_options == ["temperature"]
    assert ["temperature" in r.json for r, _, _ in transport.sent] == [True, False]
    assert list(p.engine._learned) == ["m"] and list(p.engine._learned["m"]) == ["temperature"]
    assert p.engine._learned["m"]["temperature"].values is None  # the option itself: every value is left out
    chunks = list(p.stream("x", model="m", temperature=0.5))  # learned: not even sent once
    assert "".join(c.text for c in chunks) == "ok" and chunks[-1].dropped_options == ["temperature"]
    assert len(transport.sent) == 3 and "temperature" not in transport.sent[-1][0].json
    fresh = bind(Codec(p.config), transport=transport)  # learned per engine
    fresh.generate("x", model="m", temperature=0.5)
    assert ["temperature" in r.json for r, _, _ in transport.sent[3:]] == [True, False]


def test_without_drop_unsupported_a_rejection_raises_and_nothing_is_learned():
    p = bind(Codec(ProviderConfig(name="codec", base_url="http://codec.test")), transport=FakeTransport(default=rejecting_temperature))
    with pytest.raises(UnsupportedFeatureError):
        p.generate("x", model="m", temperature=0.5)
    assert p.engine._learned == {}


def test_a_rejection_without_drop_unsupported_names_option_provider_model_and_fix():
    p = bind(Codec(ProviderConfig(name="codec", base_url="http://codec.test")), transport=FakeTransport(default=rejecting_temperature))
    for call in (lambda: p.generate("x", model="m", temperature=0.5), lambda: list(p.stream("x", model="m", temperature=0.5))):
        with pytest.raises(UnsupportedFeatureError) as info:
            call()
        exc = info.value
        assert exc.message == "codec does not take the option 'temperature' for model m: temperature is not supported"
        assert exc.extra["model"] == "m" and exc.extra["option"] == "temperature" and exc.status_code == 400
        assert exc.provider == "codec" and "Leave temperature out, or pass drop_unsupported=True" in str(exc)


def openai_like(drop=True):
    """The OpenAI-compatible codec; ``reasoning="minimal"`` is refused as a value, ``seed`` as a parameter (OpenAI 400 bodies)."""
    from modelprov.testing._openai import openai_unsupported_body

    def answer(request, deadline, attempt):
        body = request.json
        if body.get("reasoning_effort") == "minimal":
            return p.parse_error(400, openai_unsupported_body("reasoning_effort", "minimal"), "", {})
        if "seed" in body:
            return p.parse_error(400, openai_unsupported_body("seed", code="unsupported_parameter"), "", {})
        return FakeResponse(chunks=SSE) if request.stream else FakeResponse(ANSWER)

    transport = FakeTransport(default=answer)
    config = ProviderConfig(name="local", type="openai_compatible", base_url="http://local.test/v1", drop_unsupported=drop)
    p = bind(OpenAICompatibleProvider(config), transport=transport)
    return p, transport


def test_a_value_specific_rejection_leaves_out_only_that_value():
    p, transport = openai_like()
    assert p.generate("x", model="m", reasoning="minimal").dropped_options == ["reasoning"]
    assert [r.json.get("reasoning_effort") for r, _, _ in transport.sent] == ["minimal", None]
    high = p.generate("x", model="m", reasoning="high")  # another value is still sent
    assert high.dropped_options == [] and transport.sent[-1][0].json["reasoning_effort"] == "high"
    again = p.generate("x", model="m", reasoning="minimal")  # the refused value is left out without a doomed request
    assert again.dropped_options == ["reasoning"] and len(transport.sent) == 4 and "reasoning_effort" not in transport.sent[-1][0].json
    chunks = list(p.stream("x", model="m", reasoning="minimal"))
    assert chunks[-1].dropped_options == ["reasoning"] and len(transport.sent) == 5
    refusal = p.engine._learned["m"]["reasoning"]
    assert refusal.values == ("minimal",) and refusal.covers("minimal") and not refusal.covers("low")


def test_an_option_refused_itself_leaves_out_every_value():
    p, transport = openai_like()
    assert p.generate("x", model="m", seed=1).dropped_options == ["seed"]
    assert p.generate("x", model="m", seed=2).dropped_options == ["seed"]
    assert ["seed" in r.json for r, _, _ in transport.sent] == [True, False, False]
    assert p.engine._learned["m"]["seed"].values is None


def test_a_refusal_widens_from_values_to_the_option():
    from modelprov.engine import Refusal

    r = Refusal("x", ("minimal",))
    assert r.adding("minimal", "y", True) is r
    assert r.adding("low", "y", True).values == ("minimal", "low")
    assert r.adding("low", "y", False) == Refusal("y")
    assert Refusal("z").adding("low", "y", True) == Refusal("z")  # the option itself is refused already


def test_a_value_specific_rejection_without_drop_unsupported_says_so():
    p, transport = openai_like(drop=False)
    with pytest.raises(UnsupportedFeatureError) as info:
        p.generate("x", model="m", reasoning="minimal")
    exc = info.value
    assert exc.message.startswith("local does not take the option 'reasoning' for model m: Unsupported value: 'reasoning_effort'")
    assert exc.extra["value_specific"] is True and exc.extra["model"] == "m" and "drop_unsupported=True" in str(exc)
    assert p.engine._learned == {}


def test_learned_options_are_read_safely_while_others_are_learned():
    import threading

    from modelprov.engine import Engine

    p = Codec(ProviderConfig(name="codec", base_url="http://codec.test", drop_unsupported=True))
    engine = Engine(p, transport=FakeTransport())
    names = [f"o{i}" for i in range(400)]
    full = ChatRequest(messages=[], model="m", provider_options=dict.fromkeys(names, 1))
    engine.learn(p, full, UnsupportedFeatureError("no", option=names[0]))
    errors, done = [], threading.Event()

    def read():
        try:
            while not done.is_set():
                engine.learned(p, full)
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for name in names[1:]:
            engine.learn(p, full, UnsupportedFeatureError("no", option=name))
    finally:
        done.set()
        for t in readers:
            t.join()
    assert errors == []
    assert engine.learned(p, full).dropped == names


# ------------------------------------------------------------- transports
def test_a_given_transport_gets_auth_headers_per_request_and_is_left_open():
    transport = FakeTransport(default=FakeResponse(ANSWER))
    config = ProviderConfig(name="local", type="openai_compatible", base_url="http://local.test/v1", api_key="sk-local-0123456789",
                            headers=(("X-Team", "t1"),))  # fmt: skip
    p = bind(OpenAICompatibleProvider(config), transport=transport)
    p.generate("x", model="m")
    headers = transport.sent[0][0].headers
    assert headers["Authorization"] == "Bearer sk-local-0123456789" and headers["X-Team"] == "t1"
    p.close()
    assert not transport.closed  # its owner closes it
    p.generate("x", model="m")
    assert len(transport.sent) == 2


def test_a_transport_factory_is_called_once_per_engine_and_closed_with_it():
    built = []

    def factory(config):
        built.append(config.name)
        return FakeTransport(default=FakeResponse(ANSWER))

    client = Client(providers={"a": {"type": "openai_compatible", "base_url": "http://a.test/v1"},
                               "b": {"type": "openai_compatible", "base_url": "http://b.test/v1"}}, transport=factory)  # fmt: skip
    client.complete("a/m", "x"), client.complete("a/m", "x"), client.complete("b/m", "x")
    assert built == ["a", "b"]
    transport = client.provider("a").engine._transport
    client.close()
    assert transport.closed


def test_client_transport_serves_every_provider():
    transport = FakeTransport(default=FakeResponse(ANSWER))
    client = Client(providers={"a": {"type": "openai_compatible", "base_url": "http://a.test/v1"}, "b": {"type": "ollama"}},
                    transport=transport, fallbacks=["b/llama"])  # fmt: skip
    assert client.complete("a/m", "x").text == "hi"
    assert len(transport.sent) == 1 and transport.sent[0][0].path == "/chat/completions"


def test_bad_transports_are_refused():
    with pytest.raises(Exception, match="transport"):
        Client(transport=42)
    with pytest.raises(Exception, match="transport"):
        bind(OpenAICompatibleProvider(), transport="http://x")


# ------------------------------------------------------------------ binding
def test_an_unbound_provider_says_how_to_bind_it():
    p = OpenAICompatibleProvider(ProviderConfig(name="local", type="openai_compatible", base_url="http://local.test/v1"))
    req = p.make_request("x", model="m")  # codec work needs no engine
    assert isinstance(req, ChatRequest) and p.build_chat_request(req).path == "/chat/completions"
    for call in (lambda: p.generate("x", model="m"), lambda: p.stream("x", model="m"), lambda: p.list_models()):
        with pytest.raises(ConfigurationError) as info:
            call()
        assert "bind(" in str(info.value) and "get_registry().get" in str(info.value)
    p.close()  # nothing to release


def test_bind_returns_the_provider_and_closes_an_old_engine():
    first = FakeTransport(default=FakeResponse(ANSWER))

    def factory(config):
        return first

    p = compat(factory)
    p.generate("x", model="m")
    assert bind(p, transport=FakeTransport(default=FakeResponse(ANSWER))) is p
    assert first.closed


def test_registry_and_client_bind_engines():
    from modelprov import get_registry

    assert isinstance(get_registry().get("mock").engine, Engine)
    assert isinstance(Client().provider("mock").engine, Engine)
    assert isinstance(get_registry().create("mock", engine_kwargs={"retry": RetryPolicy.none()}).engine, Engine)
