"""End-to-end tests of the OpenAI-family providers against ``FakeServer`` over real loopback sockets.

Each HTTP chunk the fake server writes reaches the decoder as its own read, so
these tests see exactly what a client of the real APIs sees: keep-alive
comments, usage chunks, tool-call fragments, UTF-8 split across writes,
mid-stream errors, streams that end without ``[DONE]`` and retried 5xx.
"""

import pytest

from modelprov import collect
from modelprov.engine import bind
from modelprov.exceptions import (
    ModelNotFoundError,
    QuotaExceededError,
    RateLimitError,
    ResponseError,
    ServerError,
    TokenLimitError,
)
from modelprov.providers.openai_compat.compatible import OpenAICompatibleProvider
from modelprov.providers.openai_compat.openai import OpenAIProvider
from modelprov.providers.openai_compat.openrouter import OpenRouterProvider
from modelprov.retry import RetryPolicy
from modelprov.testing import FakeServer, openai_stream_events, sse_comment, sse_event
from modelprov.types import ProviderConfig

KEY = "sk-fake-0123456789abcdef"
FAMILY = ("openai", "openrouter", "openai_compatible")
CLASSES = {"openai": OpenAIProvider, "openrouter": OpenRouterProvider, "openai_compatible": OpenAICompatibleProvider}
KEYS = {"openai": KEY, "openrouter": KEY, "openai_compatible": None}
MODELS = {"openai": "gpt-5.4-mini", "openrouter": "openai/gpt-5.4-mini", "openai_compatible": "llama-3.1-8b"}
SSE = [("Content-Type", "text/event-stream")]


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


@pytest.fixture
def connect(server):
    """``connect(protocol, **kw)`` builds a provider aimed at the fake server; records sleeps; closes at teardown."""
    made = []

    def build(protocol, api_key="default", retry=None, **options):
        slept = []
        cfg = ProviderConfig(
            name=protocol,
            api_key=KEYS[protocol] if api_key == "default" else api_key,
            base_url=server.base_url(protocol),
            options=tuple(sorted(options.items())),
        )
        provider = bind(CLASSES[protocol](cfg), retry=retry, sleep=slept.append)
        provider.slept = slept
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def run(provider, protocol, prompt="Hi", **kw):
    return list(provider.stream(prompt, model=MODELS[protocol], **kw))


# ------------------------------------------------------------------ happy paths
@pytest.mark.parametrize("protocol", FAMILY)
def test_text_stream_with_usage_chunk(server, connect, protocol):
    server.add_chat(protocol, "Hello from the fake server", usage={"input_tokens": 7, "output_tokens": 5, "cache_read_tokens": 2},
                    request_id="req-%s" % protocol)  # fmt: skip
    chunks = run(connect(protocol), protocol, "Say hello")
    assert len([c for c in chunks if c.text]) == 5  # one chunk per word
    r = collect(chunks)
    assert (r.text, r.finish_reason, r.native_finish_reason) == ("Hello from the fake server", "stop", "stop")
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens, r.usage.cache_read_tokens) == (7, 5, 12, 2)
    assert (r.provider, r.request_id, r.model) == (protocol, "req-%s" % protocol, MODELS[protocol])
    sent = server.last_request
    assert sent.path == {"openrouter": "/api/v1/chat/completions"}.get(protocol, "/v1/chat/completions")
    expected = {"model": MODELS[protocol], "messages": [{"role": "user", "content": "Say hello"}], "stream": True}
    if protocol != "openrouter":  # OpenRouter always sends usage; include_usage is a deprecated no-op there
        expected["stream_options"] = {"include_usage": True}
    assert sent.json == expected
    if KEYS[protocol]:
        assert sent.headers["Authorization"] == "Bearer " + KEY
    else:
        assert "Authorization" not in sent.headers


@pytest.mark.parametrize("protocol", FAMILY)
def test_tool_call_stream_with_parallel_calls(server, connect, protocol):
    calls = [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
             {"id": "call_2", "name": "get_time", "arguments": {"tz": "Europe/Paris"}}]  # fmt: skip
    server.add_chat(protocol, "", tool_calls=calls)
    tools = [{"name": "get_weather", "parameters": {"type": "object"}}, {"name": "get_time", "parameters": {"type": "object"}}]
    chunks = run(connect(protocol), protocol, "Weather and time?", tools=tools)
    assert sum(len(c.tool_calls) for c in chunks) == 8  # per call: a header + three argument fragments
    r = collect(chunks)
    assert r.finish_reason == "tool_calls" and r.text == ""
    assert [(c.id, c.name, c.arguments, c.arguments_error) for c in r.tool_calls] == [
        ("call_1", "get_weather", {"city": "Paris", "unit": "celsius"}, None),
        ("call_2", "get_time", {"tz": "Europe/Paris"}, None),
    ]
    assert server.last_request.json["tools"][0] == {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize("protocol", FAMILY)
def test_malformed_streamed_tool_arguments_are_flagged(server, connect, protocol):
    server.add_chat(protocol, "", tool_calls=[{"id": "call_x", "name": "f", "arguments": '{"city": "Par'}])
    r = collect(run(connect(protocol), protocol, tools=[{"name": "f", "parameters": {"type": "object"}}]))
    call = r.tool_calls[0]
    assert call.arguments == {} and call.raw_arguments == '{"city": "Par' and "invalid JSON" in call.arguments_error


@pytest.mark.parametrize("protocol", FAMILY)
def test_utf8_split_across_writes(server, connect, protocol):
    text = "Grüße, 世界! 🎉 ça va — naïve"
    server.add_chat(protocol, text, split_utf8=True)
    assert collect(run(connect(protocol), protocol)).text == text


def test_openrouter_comments_before_and_between_tokens(server, connect):
    events = openai_stream_events("Hi there", protocol="openrouter", model=MODELS["openrouter"])
    chunks = [sse_comment("OPENROUTER PROCESSING")] * 3 + events[:3] + [sse_comment("OPENROUTER PROCESSING")] + events[3:]
    server.add_raw(200, SSE, chunks=chunks)
    out = run(connect("openrouter"), "openrouter")
    assert all(c.text or c.finish_reason or c.usage or c.tool_calls for c in out)  # comments yield nothing
    r = collect(out)
    assert (r.text, r.finish_reason, r.usage.total_tokens) == ("Hi there", "stop", r.usage.input_tokens + r.usage.output_tokens)


@pytest.mark.parametrize("protocol", FAMILY)
def test_non_streamed_generate_embed_and_models(server, connect, protocol):
    server.add_chat(protocol, "Plain answer", usage={"input_tokens": 3, "output_tokens": 2})
    server.add_embeddings(protocol, [[0.5, -1.0], [0.25, 2.0]])
    server.add_models(protocol, ["m-1", "m-2"])
    provider = connect(protocol)
    r = provider.generate("Hi", model=MODELS[protocol], max_tokens=20)
    assert (r.text, r.finish_reason, r.usage.total_tokens) == ("Plain answer", "stop", 5)
    field = "max_completion_tokens" if protocol == "openai" else "max_tokens"
    assert server.requests[0].json == {"model": MODELS[protocol], "messages": [{"role": "user", "content": "Hi"}], field: 20}
    e = provider.embed(["a", "b"], model="embed-1")
    assert e.embeddings == [[0.5, -1.0], [0.25, 2.0]]
    assert server.requests[1].json == {"model": "embed-1", "input": ["a", "b"], "encoding_format": "float"}
    models = provider.list_models()
    assert [m.id for m in models] == ["m-1", "m-2"]
    assert models[0].context_length == (None if protocol == "openai" else 8192)
    assert server.requests[2].method == "GET"


# ------------------------------------------------------------- failures
@pytest.mark.parametrize("protocol", FAMILY)
def test_mid_stream_error_after_text(server, connect, protocol):
    server.add_stream_error(protocol, after_chunks=2, text="partial", message="The upstream failed")
    stream = connect(protocol).stream("Hi", model=MODELS[protocol])
    got = [next(stream).text, next(stream).text]
    assert "".join(got) == "partial"
    with pytest.raises(ServerError, match="The upstream failed") as info:
        next(stream)
    assert info.value.provider == protocol
    assert len(server.requests) == 1  # never retried once output reached the caller


def test_openrouter_mid_stream_finish_reason_error_maps_code(server, connect):
    server.add_stream_error("openrouter", after_chunks=1, code=429, error_type="rate_limit_exceeded", message="Rate limit exceeded")
    stream = connect("openrouter").stream("Hi", model=MODELS["openrouter"])
    assert next(stream).text == "partial"
    with pytest.raises(RateLimitError, match="Rate limit exceeded") as info:
        next(stream)
    assert info.value.status_code == 429 and len(server.requests) == 1


@pytest.mark.parametrize("protocol", ["openai", "openrouter"])
def test_stream_without_done_is_truncated(server, connect, protocol):
    events = openai_stream_events("Hi there", protocol=protocol, include_usage=True)
    assert events[-1] == sse_event("[DONE]")
    server.add_raw(200, SSE, chunks=events[:-1])
    stream = connect(protocol).stream("Hi", model=MODELS[protocol])
    with pytest.raises(ResponseError, match="truncated"):
        for _ in stream:
            pass
    assert len(server.requests) == 1


def test_compatible_stream_closed_after_finish_reason_is_complete(server, connect):
    events = openai_stream_events("Hi there", protocol="openai_compatible")
    server.add_raw(200, SSE, chunks=events[:-1])  # the server closed without [DONE]
    r = collect(run(connect("openai_compatible"), "openai_compatible"))
    assert (r.text, r.finish_reason) == ("Hi there", "stop")


def test_compatible_stream_closed_without_finish_reason_is_truncated(server, connect):
    events = openai_stream_events("Hi there", protocol="openai_compatible")
    server.add_raw(200, SSE, chunks=events[:-2])  # neither a finish chunk nor [DONE]
    with pytest.raises(ResponseError, match="truncated"):
        run(connect("openai_compatible"), "openai_compatible")


def test_compatible_llamacpp_error_field_is_raised(server, connect):
    events = openai_stream_events("Hi there", protocol="openai_compatible")
    error_line = (b'error: {"code":400,"message":"the request exceeds the available context size (4096 tokens)",'
                  b'"type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}\n\n')
    server.add_raw(200, SSE, chunks=events[:2] + [error_line])
    with pytest.raises(TokenLimitError) as info:
        run(connect("openai_compatible"), "openai_compatible")
    assert (info.value.limit, info.value.requested) == (4096, 5000)


@pytest.mark.parametrize("protocol, status", [("openai", 500), ("openrouter", 502), ("openai_compatible", 503)])
def test_5xx_then_success_is_retried(server, connect, protocol, status):
    server.add_error(status, protocol=protocol)
    server.add_chat(protocol, "Recovered fine")
    provider = connect(protocol)
    r = collect(provider.stream("Hi", model=MODELS[protocol]))
    assert r.text == "Recovered fine"
    assert len(server.requests) == 2 and len(provider.slept) == 1


def test_quota_is_not_retried(server, connect):
    server.add_error(429, protocol="openai", type="insufficient_quota", code="insufficient_quota", message="You exceeded your current quota")
    provider = connect("openai")
    with pytest.raises(QuotaExceededError):
        run(provider, "openai")
    assert len(server.requests) == 1 and provider.slept == []


def test_openrouter_out_of_credits_and_missing_model(server, connect):
    server.add_error(402, protocol="openrouter", message="Insufficient credits")
    server.add_error(404, protocol="openrouter", message="No endpoints found for x/y", type="not_found")
    provider = connect("openrouter", retry=RetryPolicy())
    with pytest.raises(QuotaExceededError):
        run(provider, "openrouter")
    with pytest.raises(ModelNotFoundError) as info:
        run(provider, "openrouter")
    assert "modelprov models openrouter" in str(info.value)
    assert len(server.requests) == 2 and provider.slept == []


def test_compatible_unknown_model_hint(server, connect):
    server.add_error(404, protocol="openai_compatible", message="The model `nope` does not exist.", type="NotFoundError")
    with pytest.raises(ModelNotFoundError) as info:
        connect("openai_compatible").generate("Hi", model="nope")
    assert "served model name" in info.value.hint and info.value.status_code == 404


def test_named_compatible_instances_through_the_client(server):
    import modelprov

    server.add_chat("openai_compatible", "From vLLM", tool_calls=[{"id": "c1", "name": "f", "arguments": {"a": 1}}])
    server.add_chat("openai_compatible", "From LM Studio")
    client = modelprov.Client(providers={
        "vllm": {"type": "openai_compatible", "base_url": server.base_url("openai_compatible")},
        "lmstudio": {"type": "openai_compatible", "base_url": server.base_url("openai_compatible"), "api_key": "lm-key-123456"},
    })  # fmt: skip
    try:
        r = collect(client.stream("vllm/qwen2.5", "Hi", tools=[{"name": "f", "parameters": {"type": "object"}}]))
        assert (r.text, r.provider, r.finish_reason, r.tool_calls[0].arguments) == ("From vLLM", "vllm", "tool_calls", {"a": 1})
        assert "Authorization" not in server.requests[0].headers and server.requests[0].json["model"] == "qwen2.5"
        r = client.complete("lmstudio/llama-3.2-1b", "Hi")
        assert (r.text, r.provider) == ("From LM Studio", "lmstudio")
        assert server.requests[1].headers["Authorization"] == "Bearer lm-key-123456"
    finally:
        client.close()
