"""Anthropic and Ollama end to end over real loopback sockets (FakeServer).

The whole path runs: codec -> transport -> SSE / NDJSON parser -> decoder ->
ChunkStream, with retries and fault injection. No sleeps (``sleep`` is
injected), no network beyond 127.0.0.1.
"""

import pytest

from modelprov._collect import collect
from modelprov.engine import bind
from modelprov.exceptions import (
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    ProviderError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from modelprov.providers.anthropic.provider import AnthropicProvider
from modelprov.providers.ollama.provider import OllamaProvider
from modelprov.testing import FakeServer, anthropic_stream_events, ollama_stream_lines
from modelprov.types import ProviderConfig, Tool

KEY = "sk-ant-test-0123456789abcdef"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}}
UNICODE = "Grüße aus Köln 👋 — naïve café"
CALLS = [{"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Zürich"}},
         {"id": "toolu_2", "name": "get_time", "arguments": {"tz": "Europe/Paris"}}]  # fmt: skip


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


def anthropic(server, slept=None):
    cfg = ProviderConfig(name="anthropic", api_key=KEY, base_url=server.base_url("anthropic"))
    return bind(AnthropicProvider(cfg), sleep=(slept.append if slept is not None else lambda s: None))


def ollama(server, slept=None, base_url=None):
    cfg = ProviderConfig(name="ollama", base_url=base_url or server.base_url("ollama"))
    return bind(OllamaProvider(cfg), sleep=(slept.append if slept is not None else lambda s: None))


# -------------------------------------------------------------------- Anthropic
def test_anthropic_text_stream_with_usage(server):
    server.add_chat("anthropic", "Hello there, world", usage={"input_tokens": 21, "output_tokens": 4}, request_id="req_s1")
    chunks = list(anthropic(server).stream("Hi", model="claude-x", max_tokens=64))
    req = server.last_request
    assert (req.method, req.path) == ("POST", "/v1/messages")
    assert req.json == {"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    assert req.headers["authorization"] == f"Bearer {KEY}" and req.headers["anthropic-version"] == "2026-10-21"
    assert "x-api-key" not in req.headers
    assert [c.text for c in chunks[:-1]] == ["Hello", " there,", " world"]
    res = collect(chunks)
    assert (res.text, res.finish_reason, res.native_finish_reason) == ("Hello there, world", "stop", "end_turn")
    assert (res.usage.input_tokens, res.usage.output_tokens) == (21, 4)
    assert (res.provider, res.request_id, res.id) == ("anthropic", "req_s1", "msg_fake")


def test_anthropic_tool_call_stream(server):
    server.add_chat("anthropic", "Let me look.", tool_calls=CALLS)
    tools = [Tool("get_weather", None, WEATHER), Tool("get_time", None, {"type": "object"})]
    chunks = list(anthropic(server).stream("Weather?", model="claude-x", tools=tools, tool_choice="required"))
    assert server.last_request.json["tool_choice"] == {"type": "any"}
    deltas = [d for c in chunks for d in c.tool_calls]
    assert {d.index for d in deltas} == {0, 1}
    assert sum(1 for d in deltas if d.arguments) >= 4  # arguments arrived in fragments
    res = collect(chunks)
    assert res.text == "Let me look." and res.finish_reason == "tool_calls"
    assert [(t.id, t.name, t.arguments) for t in res.tool_calls] == [
        ("toolu_1", "get_weather", {"city": "Zürich"}), ("toolu_2", "get_time", {"tz": "Europe/Paris"})]


def test_anthropic_split_utf8_reassembles(server):
    server.add_chat("anthropic", UNICODE, split_utf8=True)
    assert collect(anthropic(server).stream("Hi", model="claude-x")).text == UNICODE


def test_anthropic_mid_stream_error_after_output_is_raised_not_retried(server):
    server.add_stream_error("anthropic", after_chunks=2, text="partial answer")
    server.add_chat("anthropic", "should not be used")
    got = []
    with pytest.raises(OverloadedError) as info:
        for chunk in anthropic(server).stream("Hi", model="claude-x"):
            got.append(chunk.text)
    assert "".join(got) == "partial answer"
    assert info.value.message == "Overloaded" and info.value.provider == "anthropic"
    assert len(server.requests) == 1 and server.pending == 1


def test_anthropic_mid_stream_error_before_output_is_retried(server):
    server.add_stream_error("anthropic", error_type="rate_limit_error", message="slow down", text="")
    server.add_chat("anthropic", "second try")
    slept = []
    assert collect(anthropic(server, slept).stream("Hi", model="claude-x")).text == "second try"
    assert len(server.requests) == 2 and len(slept) == 1


def test_anthropic_mid_stream_error_type_is_mapped(server):
    server.add_stream_error("anthropic", error_type="invalid_request_error", message="bad tool input", text="x")
    with pytest.raises(InvalidRequestError, match="bad tool input"):
        list(anthropic(server).stream("Hi", model="claude-x"))


def test_anthropic_http_error_before_stream_is_retried(server):
    server.add_error(529, protocol="anthropic")
    server.add_error(429, protocol="anthropic", retry_after=0.25)
    server.add_chat("anthropic", "finally")
    slept = []
    assert collect(anthropic(server, slept).stream("Hi", model="claude-x")).text == "finally"
    assert len(server.requests) == 3 and slept[1] == 0.25


def test_anthropic_stream_without_message_stop_is_truncated(server):
    events = anthropic_stream_events("Hello world")
    server.add_raw(headers={"Content-Type": "text/event-stream"}, chunks=events[:-1])
    got = []
    with pytest.raises(ResponseError, match="truncated"):
        for chunk in anthropic(server).stream("Hi", model="claude-x"):
            got.append(chunk.text)
    assert "".join(got) == "Hello world"


def test_anthropic_connection_cut_mid_stream(server):
    # A chunked body missing only its zero-length terminator is complete: message_stop arrived.
    server.add_chat("anthropic", "Hello world again", truncate=True)
    assert collect(anthropic(server).stream("Hi", model="claude-x")).text == "Hello world again"
    # A reset after a few writes surfaces as a provider error once output reached the caller.
    server.add_chat("anthropic", "Hello world again", drop_after=4)
    got = []
    with pytest.raises(ProviderError):
        for chunk in anthropic(server).stream("Hi", model="claude-x"):
            got.append(chunk.text)
    assert "".join(got) == "Hello"
    assert len(server.requests) == 2


def test_anthropic_model_paging(server):
    ids = [{"id": f"claude-{i}", "display_name": f"Claude {i}", "created_at": "2025-02-19T00:00:00Z"} for i in range(5)]
    server.add_models("anthropic", ids, page_size=2)
    models = anthropic(server).list_models()
    assert [m.id for m in models] == [f"claude-{i}" for i in range(5)]
    assert models[3].name == "Claude 3" and models[3].created_at == 1739923200.0
    assert [r.query for r in server.requests] == [
        {"limit": "1000"}, {"limit": "1000", "after_id": "claude-1"}, {"limit": "1000", "after_id": "claude-3"}]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)


def test_anthropic_non_streamed_call_end_to_end(server):
    server.add_chat("anthropic", "", tool_calls=CALLS[:1], usage={"input_tokens": 3, "output_tokens": 2})
    res = anthropic(server).generate("Weather?", model="claude-x", tools=[Tool("get_weather", None, WEATHER)])
    assert "stream" not in server.last_request.json
    assert res.finish_reason == "tool_calls" and res.tool_calls[0].arguments == {"city": "Zürich"}


# ----------------------------------------------------------------------- Ollama
def test_ollama_text_stream_with_usage_and_timings(server):
    server.add_chat("ollama", "Why is the sky blue", usage={"input_tokens": 11, "output_tokens": 5})
    chunks = list(ollama(server).stream("Hi", model="llama3.2", temperature=0.2))
    req = server.last_request
    assert (req.method, req.path) == ("POST", "/api/chat")
    assert req.json == {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}], "stream": True,
                        "options": {"temperature": 0.2}}  # fmt: skip
    res = collect(chunks)
    assert (res.text, res.finish_reason, res.native_finish_reason) == ("Why is the sky blue", "stop", "stop")
    assert (res.usage.input_tokens, res.usage.output_tokens) == (11, 5)
    assert chunks[-1].usage.timings == {"total_s": 0.006, "load_s": 0.001, "prompt_eval_s": 0.002, "eval_s": 0.003}
    assert res.model == "llama3.2" and res.provider == "ollama"


def test_ollama_tool_call_stream(server):
    server.add_chat("ollama", "", tool_calls=[{"name": "get_weather", "arguments": {"city": "Zürich"}},
                                              {"id": "call_b", "name": "get_time", "arguments": {}}])  # fmt: skip
    chunks = list(ollama(server).stream("Weather?", model="llama3.2", tools=[Tool("get_weather", None, WEATHER)]))
    deltas = [d for c in chunks for d in c.tool_calls]
    assert [(d.index, d.id, d.name) for d in deltas] == [(0, "call_0", "get_weather"), (1, "call_b", "get_time")]
    res = collect(chunks)
    assert res.finish_reason == "tool_calls" and [t.arguments for t in res.tool_calls] == [{"city": "Zürich"}, {}]


def test_ollama_split_utf8_reassembles(server):
    server.add_chat("ollama", UNICODE, split_utf8=True)
    assert collect(ollama(server).stream("Hi", model="llama3.2")).text == UNICODE


def test_ollama_mid_stream_error_line(server):
    server.add_stream_error("ollama", after_chunks=2, text="half", message="llama runner process has terminated")
    got = []
    with pytest.raises(ServerError, match="llama runner process has terminated"):
        for chunk in ollama(server).stream("Hi", model="llama3.2"):
            got.append(chunk.text)
    assert "".join(got) == "half" and len(server.requests) == 1


def test_ollama_stream_without_done_line_is_truncated(server):
    lines = ollama_stream_lines("Hello world")
    server.add_raw(headers={"Content-Type": "application/x-ndjson"}, chunks=lines[:-1])
    with pytest.raises(ResponseError, match="truncated"):
        list(ollama(server).stream("Hi", model="llama3.2"))


def test_ollama_missing_model_is_not_retried_and_hints_pull(server):
    server.add_error(404, protocol="ollama", message="model 'llama9' not found")
    with pytest.raises(ModelNotFoundError) as info:
        list(ollama(server).stream("Hi", model="llama9"))
    assert "ollama pull llama9" in info.value.hint and len(server.requests) == 1


def test_ollama_queue_full_then_rate_limit_then_success(server):
    server.add_error(503, protocol="ollama", message="server busy")
    server.add_error(429, protocol="ollama", message="too many requests")
    server.add_chat("ollama", "ok")
    slept = []
    assert ollama(server, slept).generate("Hi", model="llama3.2").text == "ok"
    assert len(server.requests) == 3 and len(slept) == 2
    server.add_error(429, protocol="ollama", message="too many requests")
    from modelprov.retry import RetryPolicy

    p = bind(OllamaProvider(ollama(server).config), retry=RetryPolicy.none())
    with pytest.raises(RateLimitError):
        p.generate("Hi", model="llama3.2")


def test_ollama_host_without_scheme_reaches_the_server(server):
    p = ollama(server, base_url="127.0.0.1:%d" % server.port)
    assert p.config.base_url == server.url
    server.add_chat("ollama", "reached")
    assert p.generate("Hi", model="llama3.2").text == "reached"
    assert server.last_request.json["stream"] is False


def test_ollama_embeddings_and_models_end_to_end(server):
    server.add_embeddings("ollama", [[0.5, 0.25], [1.0, 0.0]])
    server.add_models("ollama", ["llama3.2:latest", "nomic-embed-text:latest"])
    p = ollama(server)
    emb = p.embed(["a", "b"], model="nomic-embed-text")
    assert emb.embeddings == [[0.5, 0.25], [1.0, 0.0]]
    assert server.requests[0].path == "/api/embed" and server.requests[0].json == {"model": "nomic-embed-text", "input": ["a", "b"]}
    assert [m.id for m in p.list_models()] == ["llama3.2:latest", "nomic-embed-text:latest"]
    assert server.requests[1].path == "/api/tags"
