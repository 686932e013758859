"""The fast paths give exactly what the general paths give.

The stream decoders have a shortcut for the common event (a text delta);
each test here feeds both paths the same input. Also pinned: the usage
shapes the parsers accept, auth headers living in the transport the engine
built, the adapter's pool cache, and the idle clock ignoring the caller's
own time.
"""

import json

import pytest

from modelprov.deadline import Deadline
from modelprov.engine import bind
from modelprov.exceptions import ProviderError, ResponseError
from modelprov.providers.anthropic.stream import AnthropicStreamDecoder
from modelprov.providers.anthropic.wire import normalize_usage as anthropic_usage
from modelprov.providers.ollama.wire import OllamaStreamDecoder
from modelprov.providers.openai_compat.codec import OpenAIStreamDecoder, parse_usage
from modelprov.providers.openai_compat.openai import OpenAIProvider
from modelprov.streaming import SSEEvent
from modelprov.testing import FakeServer
from modelprov.transport.requests_transport import RequestsTransport
from modelprov.types import HTTPRequest, ProviderConfig, StreamChunk, ToolCallDelta, Usage

KEY = "sk-test-0123456789abcdef"


# ---------------------------------------------------------------- decoders
def _openai_event(obj, event="message"):
    return SSEEvent(event, obj if isinstance(obj, str) else json.dumps(obj))


OPENAI_EVENTS = [
    {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}], "usage": None},
    {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    {"id": "c1", "choices": [{"index": 0, "delta": {"content": None}}]},
    {"id": 5, "model": ["x"], "choices": [{"delta": {"content": "no index, odd id and model"}}]},
    {"choices": [{"index": 1, "delta": {"content": "second choice"}}]},
    {"choices": [{"index": 0, "delta": {"content": "a"}}, {"index": 0, "delta": {"content": "b"}}]},
    {"choices": [{"index": 0, "delta": {"content": "end"}, "finish_reason": "stop"}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    {"choices": [{"index": 0, "delta": {"content": 7}}]},
    {"choices": [{"index": 0, "delta": {"content": []}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{"}}]}}]},
    {"choices": [{"index": 0, "delta": {"content": "x"}}], "error": {"message": "boom", "type": "server_error"}},
    {"object": "error", "message": "bad", "choices": [{"index": 0, "delta": {"content": "x"}}]},
    " {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"spaced\"}}]}",
    "{not json",
    "[DONE]",
]


def _outcome(fn):
    try:
        return fn()
    except (ProviderError, ResponseError) as exc:
        return type(exc), str(exc)


@pytest.mark.parametrize("obj", OPENAI_EVENTS, ids=range(len(OPENAI_EVENTS)))
@pytest.mark.parametrize("event", ["message", "error"])
def test_openai_fast_path_equals_the_general_decoder(obj, event):
    provider = OpenAIProvider(ProviderConfig(name="openai", api_key=KEY))
    ev = _openai_event(obj, event)
    fast, general = OpenAIStreamDecoder(provider), OpenAIStreamDecoder(provider)
    assert _outcome(lambda: fast.feed(ev)) == _outcome(lambda: general._feed(ev, ev.data.strip(), None))
    assert (fast.done, fast.finish_reason, fast._saw_tool_calls) == (general.done, general.finish_reason, general._saw_tool_calls)


ANTHROPIC_DELTAS = [
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\""}},
    {"type": "content_block_delta", "index": 0, "delta": None},
]


@pytest.mark.parametrize("data", ANTHROPIC_DELTAS, ids=range(len(ANTHROPIC_DELTAS)))
def test_anthropic_fast_path_equals_the_handler(data):
    def decoder():
        d = AnthropicStreamDecoder("anthropic")
        d.feed(SSEEvent("message_start", json.dumps({"type": "message_start", "message": {"id": "msg_1", "model": "claude"}})))
        d.feed(SSEEvent("content_block_start", json.dumps({"type": "content_block_start", "index": 1,
                                                           "content_block": {"type": "tool_use", "id": "t", "name": "f"}})))  # fmt: skip
        return d

    fast, general = decoder(), decoder()
    assert fast.feed(SSEEvent("content_block_delta", json.dumps(data))) == general._block_delta(data)


@pytest.mark.parametrize(
    "line,expected",
    [
        ({"model": "llama", "message": {"role": "assistant", "content": "Hi"}, "done": False},
         [StreamChunk(text="Hi", model="llama")]),
        ({"model": "llama", "message": {"role": "assistant", "content": ""}, "done": False}, []),
        ({"model": "llama", "message": {"content": "x", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}},
         [StreamChunk(text="x", tool_calls=[ToolCallDelta(index=0, id="call_0", name="f", arguments='{"a": 1}')], model="llama")]),
    ],
)  # fmt: skip
def test_ollama_fast_path_lines(line, expected):
    assert OllamaStreamDecoder("ollama").feed(line) == expected


def test_ollama_error_and_done_lines_skip_the_fast_path():
    with pytest.raises(ProviderError, match="boom"):
        OllamaStreamDecoder("ollama").feed({"error": "boom", "message": {"content": "x"}, "done": False})
    [last] = OllamaStreamDecoder("ollama").feed({"message": {"content": "!"}, "done": True, "done_reason": "stop", "eval_count": 2})
    assert (last.text, last.finish_reason, last.usage.output_tokens) == ("!", "stop", 2)


# ------------------------------------------------------------ usage shapes
@pytest.mark.parametrize(
    "usage,expected",
    [
        ({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}, Usage(9, 3, 12)),
        ({"prompt_tokens": 9, "completion_tokens": 3}, Usage(9, 3, 12)),
        ({"prompt_tokens": 9, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2},
          "completion_tokens_details": {"reasoning_tokens": 1}}, Usage(9, 3, 12, 4, 2, 1)),
        ({"prompt_tokens": 9.0, "completion_tokens": 3, "cache_write_tokens": 5}, Usage(9, 3, 12, None, 5)),
        ({"input_tokens": 9, "output_tokens": 3}, Usage(9, 3, 12)),
        ({"prompt_tokens": True, "completion_tokens": 3}, Usage(0, 3, 3)),
    ],
)  # fmt: skip
def test_parse_usage_shapes(usage, expected):
    assert parse_usage(usage) == expected


def test_anthropic_usage_shapes():
    assert anthropic_usage({"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 3}) == Usage(8, 2, 10, 3, None)
    assert anthropic_usage({"input_tokens": 5.0, "output_tokens": 2, "cache_creation_input_tokens": 1}) == Usage(6, 2, 8, None, 1)
    assert anthropic_usage(None) == Usage(0, 0)


# --------------------------------------------------------- auth and transport
def test_auth_headers_live_in_the_transport_and_follow_the_provider():
    with FakeServer() as server:
        server.set_default("openai", "ok")
        cfg = ProviderConfig(name="openai", api_key=KEY, base_url=server.base_url("openai"), headers=(("X-Team", "t1"),))
        provider = bind(OpenAIProvider(cfg))
        provider.generate("hi", model="m")
        http = provider.build_chat_request(provider.make_request("hi", model="m"))
        engine = provider.engine
        assert engine.with_auth(provider, http, engine.transport(provider)) is http  # nothing merged per call: the transport sends them
        provider.generate("hi", model="m")
        list(provider.stream("hi", model="m"))
        provider.close()
        provider.generate("hi", model="m")  # a new transport, the same headers
        injected = bind(OpenAIProvider(cfg), transport=RequestsTransport(cfg.base_url, provider="openai"))
        injected.generate("hi", model="m")  # a transport built elsewhere: headers go with each request
        for req in server.requests:
            assert req.headers["Authorization"] == "Bearer " + KEY and req.headers["X-Team"] == "t1"
        assert len(server.requests) == 5


def test_adapter_caches_the_pool_and_leaves_other_session_users_alone():
    with FakeServer() as server:
        server.set_default("openai", "ok")
        server.add_raw(headers={"Content-Type": "application/json; charset=utf-8", "Set-Cookie": "a=1"}, body=b"{}")
        t = RequestsTransport(server.base_url("openai"), provider="openai")
        plain = t.session.get(server.url + "/anything")  # not sent by the transport: requests' own response
        assert plain.cookies.get("a") == "1" and plain.encoding == "utf-8"
        request = HTTPRequest("POST", "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        for _ in range(3):
            assert t.send(request, Deadline()).json()["choices"][0]["message"]["content"] == "ok"
        assert len(t.adapter._mp_pools) == 1
        t.adapter.poolmanager.clear()  # pools closed behind the cache's back (eviction)
        assert t.send(request, Deadline()).status_code == 200
        t.close()
        assert not t.adapter._mp_pools


def test_a_slow_caller_is_not_server_idleness():
    now = [0.0]
    event = b'data: {"choices":[{"index":0,"delta":{"content":"%d "}}]}\n\n'
    with FakeServer() as server:
        # the middle HTTP chunk holds four events: only the caller's time passes between them
        chunks = [event % 0, b"".join(event % i for i in range(1, 5)), b"data: [DONE]\n\n"]
        server.add_raw(headers={"Content-Type": "text/event-stream"}, chunks=chunks)
        cfg = ProviderConfig(name="openai", api_key=KEY, base_url=server.base_url("openai"), idle_timeout=5.0)
        provider = bind(OpenAIProvider(cfg), clock=lambda: now[0], sleep=lambda s: None)
        texts = []
        for chunk in provider.stream("hi", model="m"):
            texts.append(chunk.text)
            now[0] += 10.0  # the caller takes longer than the idle timeout per chunk
        assert "".join(texts) == "0 1 2 3 4 "
