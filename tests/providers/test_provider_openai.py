"""OpenAIProvider: request bodies and headers, response/stream/error parsing, embeddings, models.

Codec hooks are exercised directly; the HTTP path (exact body and headers on the
wire, retries, missing keys) goes through ``responses`` against the real transport.
"""

import base64
import json
import struct

import pytest
import responses

from modelprov.engine import bind
from modelprov.exceptions import (
    AuthenticationError,
    ConfigurationError,
    ContentFilterError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ResponseError,
    ServerError,
    TokenLimitError,
)
from modelprov.providers.openai_compat.openai import OpenAIProvider
from modelprov.types import ImagePart, Message, ProviderConfig, TextPart, ToolCall, ToolCallDelta

try:
    from modelprov.streaming import SSEEvent
except ImportError:  # pragma: no cover - streaming.py not written yet
    from collections import namedtuple

    SSEEvent = namedtuple("SSEEvent", ("event", "data", "id", "retry"), defaults=("message", "", "", None))

BASE = "https://api.openai.com/v1"
KEY = "sk-test-0123456789abcdef"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def make(**options):
    cfg = ProviderConfig(name="openai", api_key=KEY, base_url=BASE, options=tuple(sorted(options.items())))
    return bind(OpenAIProvider(cfg), sleep=lambda s: None)


def sent(provider, messages="Hi", **kw):
    """Run ``generate`` against a mocked endpoint; return (JSON body, headers) as sent on the wire."""
    kw.setdefault("model", "gpt-5.4-mini")
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", json=completion({"content": "ok"}))
        provider.generate(messages, **kw)
        request = mock.calls[0].request
    return json.loads(request.body), request.headers


def body_for(provider, messages="Hi", **kw):
    return sent(provider, messages, **kw)[0]


def ev(data, event="message"):
    return SSEEvent(event=event, data=data if isinstance(data, str) else json.dumps(data))


def chunk(delta=None, finish=None, **extra):
    obj = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5.4-mini",
           "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]}  # fmt: skip
    obj.update(extra)
    return ev(obj)


def completion(message, finish="stop", usage=None, **extra):
    body = {
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1700000000, "model": "gpt-5.4-mini-2026-03-17",
        "choices": [{"index": 0, "finish_reason": finish, "logprobs": None, "message": dict({"role": "assistant", "refusal": None}, **message)}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                           "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
                           "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0}},
        "system_fingerprint": "fp_1",
    }  # fmt: skip
    body.update(extra)
    return body


# ----------------------------------------------------------------- class facts
def test_class_attributes():
    assert OpenAIProvider.name == "openai"
    assert OpenAIProvider.default_base_url == "https://api.openai.com/v1"
    assert OpenAIProvider.default_model == "gpt-5.4-mini"
    assert OpenAIProvider.api_key_env == ("OPENAI_API_KEY",)
    assert OpenAIProvider.base_url_env == ("OPENAI_BASE_URL",)
    assert OpenAIProvider.requires_api_key is True
    assert OpenAIProvider.stream_format == "sse"
    assert all(OpenAIProvider.capabilities.as_dict().values())


def test_auth_headers_with_organization_and_project():
    assert make().auth_headers() == {"Authorization": f"Bearer {KEY}"}
    assert make(organization="org-1", project="proj_2").auth_headers() == {
        "Authorization": f"Bearer {KEY}",
        "OpenAI-Organization": "org-1",
        "OpenAI-Project": "proj_2",
    }


# ------------------------------------------------------------ request bodies
def test_plain_chat_body_and_headers():
    http = make().build_chat_request(make().make_request("Hello", model="gpt-5.4-mini"))
    assert (http.method, http.path, http.headers, http.stream) == ("POST", "/chat/completions", {}, False)
    body, headers = sent(make(), "Hello")
    assert body == {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "Hello"}]}
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["Content-Type"] == "application/json"
    assert "OpenAI-Organization" not in headers and "OpenAI-Project" not in headers


def test_organization_project_and_extra_headers_on_the_wire():
    cfg = ProviderConfig(name="openai", api_key=KEY, base_url=BASE, headers=(("X-Team", "search"),),
                         options=(("organization", "org-1"), ("project", "proj_2")))  # fmt: skip
    _, headers = sent(bind(OpenAIProvider(cfg), sleep=lambda s: None))
    assert (headers["OpenAI-Organization"], headers["OpenAI-Project"], headers["X-Team"]) == ("org-1", "proj_2", "search")


def test_system_prompt_is_prepended():
    body = body_for(make(), [{"role": "user", "content": "Hi"}], system="Be terse.")
    assert body["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]


def test_every_option():
    body = body_for(
        make(), "Hi", temperature=0.2, top_p=0.9, max_tokens=64, stop=["END", "STOP"], seed=7,
        provider_options={"parallel_tool_calls": False, "reasoning_effort": "low"}, user="u1",
    )  # fmt: skip
    assert body == {
        "model": "gpt-5.4-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 64,
        "stop": ["END", "STOP"],
        "seed": 7,
        "parallel_tool_calls": False,
        "reasoning_effort": "low",
        "user": "u1",
    }


def test_single_stop_string_becomes_list():
    assert body_for(make(), "Hi", stop="END")["stop"] == ["END"]


@pytest.mark.parametrize(
    "given, sent",
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_forms(given, sent):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER}}]
    body = body_for(make(), "Hi", tools=tools, tool_choice=given)
    assert body["tools"] == [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER}}]
    assert body["tool_choice"] == sent


def test_tool_round_trip_history():
    history = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        Message(role="assistant", content=None, tool_calls=[
            ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}),
            ToolCall(id="call_2", name="get_weather", arguments={"city": "Rome"}),
        ]),
        {"role": "tool", "tool_call_id": "call_1", "content": "18C", "name": "get_weather"},
        {"role": "tool", "tool_call_id": "call_2", "content": "24C"},
    ]  # fmt: skip
    body = body_for(make(), history, tools=[{"name": "get_weather", "parameters": WEATHER}])
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "24C"},
    ]
    assert body["tools"] == [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]


def test_assistant_text_with_tool_calls_and_malformed_raw_arguments_kept():
    bad = ToolCall.from_json_text("call_9", "f", '{"a": 1')
    msg = Message(role="assistant", content="Let me check.", tool_calls=[bad])
    body = body_for(make(), [{"role": "user", "content": "x"}, msg, {"role": "tool", "tool_call_id": "call_9", "content": "?"}])
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1'}}],
    }


def test_model_argument_text_is_sent_back_verbatim_unless_edited():
    original = ToolCall.from_json_text("call_1", "f", '{"b":2,"a":1}')
    edited = ToolCall.from_json_text("call_2", "f", '{"b":2}')
    edited.arguments["b"] = 3
    msg = Message(role="assistant", content=None, tool_calls=[original, edited])
    body = body_for(make(), [{"role": "user", "content": "x"}, msg])
    assert [c["function"]["arguments"] for c in body["messages"][1]["tool_calls"]] == ['{"b":2,"a":1}', '{"b": 3}']


def test_image_parts_url_bytes_and_path(tmp_path):
    path = tmp_path / "pic.png"
    path.write_bytes(PNG)
    content = [
        TextPart("What is in these?"),
        ImagePart(url="https://example.com/cat.jpg", detail="low"),
        ImagePart(data=PNG),
        ImagePart(path=str(path), detail="high"),
    ]
    body = body_for(make(), [Message(role="user", content=content)])
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": PNG_URL}},
                {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "high"}},
            ],
        }
    ]


def test_text_only_parts_are_sent_as_a_string():
    body = body_for(make(), [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    assert body["messages"] == [{"role": "user", "content": "ab"}]


def test_json_mode_and_json_schema():
    assert body_for(make(), "Hi", response_format="json")["response_format"] == {"type": "json_object"}
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "point", "schema": schema, "strict": True}}
    assert body_for(make(), "Hi", response_format=fmt)["response_format"] == fmt


def sse(*events):
    return "".join("data: %s\n\n" % (e if isinstance(e, str) else json.dumps(e)) for e in events).encode()


def test_stream_body_asks_for_usage():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", body=sse("[DONE]"), content_type="text/event-stream")
        assert list(make().stream("Hi", model="gpt-5.4-mini")) == []
        request = mock.calls[0].request
    assert json.loads(request.body) == {
        "model": "gpt-5.4-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert request.headers["Authorization"] == f"Bearer {KEY}"


# ------------------------------------------------------------- responses
def test_parse_plain_completion():
    r = make().parse_chat_response(completion({"content": "Hello!"}))
    assert r.text == "Hello!"
    assert (r.finish_reason, r.native_finish_reason) == ("stop", "stop")
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (10, 5, 15)
    assert (r.usage.cache_read_tokens, r.usage.reasoning_tokens, r.usage.cache_write_tokens) == (4, 2, None)
    assert (r.model, r.id, r.created_at, r.provider) == ("gpt-5.4-mini-2026-03-17", "chatcmpl-abc", 1700000000.0, "openai")
    assert r.raw["system_fingerprint"] == "fp_1"


def test_parse_tool_calls_including_malformed_arguments():
    msg = {"content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Ro'}},
        {"id": "call_3", "type": "function", "function": {"name": "noop", "arguments": ""}},
    ]}  # fmt: skip
    r = make().parse_chat_response(completion(msg, finish="tool_calls"))
    assert r.text == "" and r.finish_reason == "tool_calls"
    ok, bad, empty = r.tool_calls
    assert (ok.id, ok.name, ok.arguments, ok.arguments_error) == ("call_1", "get_weather", {"city": "Paris"}, None)
    assert bad.arguments == {} and bad.raw_arguments == '{"city": "Ro' and "invalid JSON" in bad.arguments_error
    assert empty.arguments == {} and empty.arguments_error is None


@pytest.mark.parametrize(
    "native, norm",
    [("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"), ("function_call", "tool_calls"),
     ("content_filter", "content_filter"), ("eos", "stop"), ("something_new", "stop"), (None, None)],
)  # fmt: skip
def test_finish_reason_normalised(native, norm):
    r = make().parse_chat_response(completion({"content": "x"}, finish=native))
    assert (r.finish_reason, r.native_finish_reason) == (norm, native)


def test_stop_with_tool_calls_becomes_tool_calls():
    msg = {"content": "", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    r = make().parse_chat_response(completion(msg, finish="stop"))
    assert (r.finish_reason, r.native_finish_reason) == ("tool_calls", "stop")


@pytest.mark.parametrize("body", [None, [], "text", 3, {"choices": []}, {"choices": None}, {"id": "x"}, {"choices": ["x"]}])
def test_malformed_bodies_raise_response_error(body):
    with pytest.raises(ResponseError):
        make().parse_chat_response(body)


def test_error_object_in_200_body_is_raised():
    with pytest.raises(RateLimitError):
        make().parse_chat_response({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}})


def test_missing_usage_gives_zero_usage():
    body = completion({"content": "x"})
    del body["usage"]
    assert make().parse_chat_response(body).usage.input_tokens == 0


# ------------------------------------------------------------- stream decoder
def decode(events, provider=None, finish=True):
    dec = (provider or make()).new_stream_decoder(None)
    out = []
    for e in events:
        out.extend(dec.feed(e))
        if dec.done:
            break
    if finish:
        out.extend(dec.finish())
    return out


def test_stream_text_finish_and_usage():
    chunks = decode([
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        ev({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5.4-mini", "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}),
        ev("[DONE]"),
    ])  # fmt: skip
    assert [c.text for c in chunks] == ["Hel", "lo", "", ""]
    assert chunks[2].finish_reason == "stop" and chunks[2].native_finish_reason == "stop"
    assert chunks[3].usage.input_tokens == 9 and chunks[3].usage.total_tokens == 11
    assert chunks[0].model == "gpt-5.4-mini" and chunks[0].id == "chatcmpl-1"


def test_stream_tool_call_fragments_and_parallel_calls():
    chunks = decode([
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        ev("[DONE]"),
    ])  # fmt: skip
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas == [
        ToolCallDelta(0, "call_a", "get_weather", ""),
        ToolCallDelta(0, None, None, '{"ci'),
        ToolCallDelta(0, None, None, 'ty": "Paris"}'),
        ToolCallDelta(1, "call_b", "get_time", ""),
        ToolCallDelta(1, None, None, "{}"),
    ]
    assert chunks[-1].finish_reason == "tool_calls"


def test_stream_collects_into_response():
    from modelprov import collect

    chunks = decode([
        chunk({"content": "On it. "}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": '{"x":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
        chunk({}, "tool_calls"),
        ev({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}),
        ev("[DONE]"),
    ])  # fmt: skip
    r = collect(chunks)
    assert r.text == "On it. " and r.finish_reason == "tool_calls" and r.usage.total_tokens == 7
    assert [(t.id, t.name, t.arguments) for t in r.tool_calls] == [("call_a", "f", {"x": 1})]


def test_stream_skips_empty_chunks_and_keepalives():
    dec = make().new_stream_decoder(None)
    assert dec.is_keepalive(ev("")) and not dec.is_keepalive(ev("{}"))
    assert dec.feed(chunk({"role": "assistant"})) == []
    assert dec.feed(ev({"choices": [], "usage": None})) == []
    assert dec.feed(ev({"id": "x", "choices": [], "obfuscation": "abc"})) == []


def test_stream_error_event_raises_mapped_error():
    with pytest.raises(RateLimitError) as info:
        decode([chunk({"content": "a"}), ev({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})])
    assert info.value.provider == "openai" and "Rate limit reached" in str(info.value)
    with pytest.raises(ServerError) as info:
        decode([ev({"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}})])
    assert info.value.status_code == 500


def test_stream_bad_json_raises_response_error_with_excerpt():
    with pytest.raises(ResponseError, match="not JSON.*oops"):
        decode([ev("{oops")])


def test_stream_missing_done_is_truncated():
    with pytest.raises(ResponseError, match="truncated"):
        decode([chunk({"content": "Hel"}), chunk({}, "stop")])


# ---------------------------------------------------------------- errors
def err(message, type_=None, code=None, param=None):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@pytest.mark.parametrize(
    "status, body, cls",
    [
        (400, err("bad", "invalid_request_error"), InvalidRequestError),
        (400, err("Unrecognized request argument supplied: top_k", "invalid_request_error"), InvalidRequestError),
        (400, err("x", "invalid_request_error", "content_filter", "prompt"), ContentFilterError),
        (400, err("Your request was rejected", "invalid_request_error", "content_policy_violation"), ContentFilterError),
        (400, err("Invalid prompt: your prompt was flagged as potentially violating our usage policy.", "invalid_request_error",
                  "invalid_prompt"), ContentFilterError),
        (401, err("Incorrect API key provided: sk-abc***", "invalid_request_error", "invalid_api_key"), AuthenticationError),
        (403, err("Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory"), PermissionDeniedError),
        (404, err("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"), ModelNotFoundError),
        (400, err("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"), ModelNotFoundError),
        (413, err("Request too large"), InvalidRequestError),
        (422, err("Unprocessable"), InvalidRequestError),
        (429, err("Rate limit reached for requests", "requests", "rate_limit_exceeded"), RateLimitError),
        (429, err("You exceeded your current quota", "insufficient_quota", "insufficient_quota"), QuotaExceededError),
        (500, err("The server had an error", "server_error"), ServerError),
        (502, None, ServerError),
        (503, err("Slow down"), OverloadedError),
        (529, None, OverloadedError),
    ],
)
def test_error_mapping(status, body, cls):
    exc = make().parse_error(status, body, json.dumps(body) if body else "<html>Bad gateway</html>", {})
    assert type(exc) is cls
    assert exc.status_code == status and exc.provider == "openai"
    if body:
        assert exc.message == body["error"]["message"]
    else:
        assert exc.message == f"HTTP {status} from the provider (HTML error page)"


def test_token_limit_numbers_are_parsed():
    body = err("This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. "
               "Please reduce the length of the messages.", "invalid_request_error", "context_length_exceeded", "messages")  # fmt: skip
    exc = make().parse_error(400, body, "", {})
    assert isinstance(exc, TokenLimitError) and (exc.limit, exc.requested) == (8192, 9000)
    assert exc.extra["error_code"] == "context_length_exceeded" and exc.extra["param"] == "messages"
    legacy = err("This model's maximum context length is 4097 tokens. However, you requested 4268 tokens (4012 in the messages, 256 in the completion).")
    exc = make().parse_error(400, legacy, "", {})
    assert isinstance(exc, TokenLimitError) and (exc.limit, exc.requested) == (4097, 4268)


def test_error_hints():
    auth = make().parse_error(401, err("Incorrect API key provided"), "", {})
    assert "OPENAI_API_KEY" in auth.hint and "modelprov keys set openai" in auth.hint
    unknown = make().parse_error(400, err("Unrecognized request argument supplied: top_k"), "", {})
    assert "does not know" in unknown.hint


def test_quota_and_client_errors_are_not_retryable():
    assert make().parse_error(429, err("quota", "insufficient_quota", "insufficient_quota"), "", {}).retryable is False
    assert make().parse_error(429, err("slow", "requests", "rate_limit_exceeded"), "", {}).retryable is True
    assert make().parse_error(500, err("boom"), "", {}).retryable is True


# ------------------------------------------------------- embeddings and models
def test_embed_request_and_response_order():
    http = make().build_embed_request(["a", "b"], "text-embedding-3-small", {"dimensions": 3})
    assert (http.method, http.path) == ("POST", "/embeddings")
    assert http.json == {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float", "dimensions": 3}
    body = {"object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 4, "total_tokens": 4},
            "data": [{"object": "embedding", "index": 1, "embedding": [0.5, 0.25]},
                     {"object": "embedding", "index": 0, "embedding": [1, -1.5]}]}  # fmt: skip
    r = make().parse_embed_response(body)
    assert r.embeddings == [[1.0, -1.5], [0.5, 0.25]]
    assert (r.model, r.usage.input_tokens, r.usage.total_tokens) == ("text-embedding-3-small", 4, 4)


def test_embed_base64_vectors_are_decoded():
    packed = base64.b64encode(struct.pack("<3f", 0.5, -2.0, 1.25)).decode()
    r = make().parse_embed_response({"data": [{"index": 0, "embedding": packed}]})
    assert r.embeddings == [[0.5, -2.0, 1.25]]
    for bad in ("!!!", base64.b64encode(b"abc").decode(), 12):
        with pytest.raises(ResponseError):
            make().parse_embed_response({"data": [{"index": 0, "embedding": bad}]})
    with pytest.raises(ResponseError):
        make().parse_embed_response({"object": "list"})


def test_models_request_and_response():
    http = make().build_models_request(None)
    assert (http.method, http.path) == ("GET", "/models")
    body = {"object": "list", "data": [
        {"id": "gpt-5.4-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
        {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"},
        {"object": "model"},
    ]}  # fmt: skip
    models, cursor = make().parse_models_response(body)
    assert cursor is None
    assert [(m.id, m.provider, m.created_at, m.owned_by, m.context_length) for m in models] == [
        ("gpt-5.4-mini", "openai", 1721172741.0, "system", None),
        ("text-embedding-3-small", "openai", 1705948997.0, "system", None),
    ]
    with pytest.raises(ResponseError):
        make().parse_models_response({"error": "nope"})


# ------------------------------------------------------------- before any I/O
def test_missing_key_raises_configuration_error_naming_env_and_command():
    provider = bind(OpenAIProvider(ProviderConfig(name="openai", base_url=BASE)), sleep=lambda s: None)
    with pytest.raises(ConfigurationError) as info:
        provider.validate_config()
    text = str(info.value)
    assert "OPENAI_API_KEY" in text and "modelprov keys set openai" in text


# -------------------------------------------------------------- over HTTP
def test_generate_over_http_fills_request_id_and_latency():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", json=completion({"content": "Hi!"}), headers={"x-request-id": "req_123"})
        r = make().generate("Hello", model="gpt-5.4-mini")
    assert (r.text, r.request_id, r.provider) == ("Hi!", "req_123", "openai") and r.latency_s >= 0


def test_missing_key_fails_before_any_request():
    provider = bind(OpenAIProvider(ProviderConfig(name="openai", base_url=BASE)), sleep=lambda s: None)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, BASE + "/chat/completions", json=completion({"content": "x"}))
        with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
            provider.generate("Hi", model="gpt-5.4-mini")
        with pytest.raises(ConfigurationError, match="modelprov keys set openai"):
            list(provider.stream("Hi", model="gpt-5.4-mini"))
        assert len(mock.calls) == 0


HTTP_ERRORS = [
    (400, err("x", "invalid_request_error", "context_length_exceeded", "messages"), TokenLimitError, 1),
    (400, err("filtered", None, "content_filter", "prompt"), ContentFilterError, 1),
    (401, err("Incorrect API key provided", "invalid_request_error", "invalid_api_key"), AuthenticationError, 1),
    (403, err("Country, region, or territory not supported"), PermissionDeniedError, 1),
    (404, err("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"), ModelNotFoundError, 1),
    (413, err("Request too large"), InvalidRequestError, 1),
    (429, err("You exceeded your current quota", "insufficient_quota", "insufficient_quota"), QuotaExceededError, 1),
    (429, err("Rate limit reached", "requests", "rate_limit_exceeded"), RateLimitError, 3),
    (500, err("The server had an error", "server_error"), ServerError, 3),
    (503, err("Slow down"), OverloadedError, 3),
]


@pytest.mark.parametrize("status, body, cls, calls", HTTP_ERRORS)
def test_http_errors_and_retry_decisions(status, body, cls, calls):
    slept = []
    provider = bind(OpenAIProvider(ProviderConfig(name="openai", api_key=KEY, base_url=BASE)), sleep=slept.append)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", json=body, status=status, headers={"x-request-id": "req_e"})
        with pytest.raises(cls) as info:
            provider.generate("Hi", model="gpt-5.4-mini")
        assert len(mock.calls) == calls  # default policy: 2 retries for transient errors only
    exc = info.value
    assert type(exc) is cls and exc.status_code == status and exc.request_id == "req_e" and exc.provider == "openai"
    assert exc.message == body["error"]["message"] and len(slept) == calls - 1


def test_quota_is_not_retried_even_with_retry_after():
    slept = []
    provider = bind(OpenAIProvider(ProviderConfig(name="openai", api_key=KEY, base_url=BASE)), sleep=slept.append)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", status=429, headers={"retry-after": "1"},
                 json=err("You exceeded your current quota", "insufficient_quota", "insufficient_quota"))  # fmt: skip
        with pytest.raises(QuotaExceededError):
            provider.generate("Hi", model="gpt-5.4-mini")
        assert len(mock.calls) == 1 and slept == []


def test_rate_limit_then_success_honours_retry_after():
    slept = []
    provider = bind(OpenAIProvider(ProviderConfig(name="openai", api_key=KEY, base_url=BASE)), sleep=slept.append)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", status=429, headers={"retry-after": "2"},
                 json=err("Rate limit reached", "requests", "rate_limit_exceeded"))  # fmt: skip
        mock.add(responses.POST, BASE + "/chat/completions", json=completion({"content": "done"}))
        assert provider.generate("Hi", model="gpt-5.4-mini").text == "done"
        assert len(mock.calls) == 2 and slept == [2.0]


def test_stream_over_http_with_tool_calls_and_usage():
    from modelprov import collect

    events = sse(
        {"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}, "finish_reason": None}]},
        {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, "finish_reason": None}]},
        {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}, "finish_reason": None}]},
        {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 44, "completion_tokens": 16, "total_tokens": 60}},
        "[DONE]",
    )  # fmt: skip
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", body=events, content_type="text/event-stream", headers={"x-request-id": "req_s"})
        r = collect(make().stream("Weather?", model="gpt-5.4-mini", tools=[{"name": "get_weather", "parameters": WEATHER}]))
    assert r.finish_reason == "tool_calls" and r.usage.total_tokens == 60 and r.request_id == "req_s"
    assert [(c.id, c.name, c.arguments) for c in r.tool_calls] == [("call_1", "get_weather", {"city": "Paris"})]


def test_stream_over_http_truncated_is_not_retried():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", body=sse({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
                 content_type="text/event-stream")  # fmt: skip
        stream = make().stream("Hi", model="gpt-5.4-mini")
        assert next(stream).text == "Hel"
        with pytest.raises(ResponseError, match="truncated"):
            next(stream)
        assert len(mock.calls) == 1


def test_stream_error_before_anything_reached_the_caller_is_retried():
    # responses delivers the whole body in one read, so the error arrives before any chunk was yielded
    body = sse({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}, {"error": {"message": "overloaded", "type": "server_error", "code": None}})
    slept = []
    provider = bind(OpenAIProvider(ProviderConfig(name="openai", api_key=KEY, base_url=BASE)), sleep=slept.append)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", body=body, content_type="text/event-stream")
        with pytest.raises(ServerError, match="overloaded"):
            list(provider.stream("Hi", model="gpt-5.4-mini"))
        assert len(mock.calls) == 3 and len(slept) == 2


def test_embed_and_list_models_over_http():
    packed = base64.b64encode(struct.pack("<2f", 0.5, 1.5)).decode()
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/embeddings", json={"object": "list", "model": "text-embedding-3-small",
                 "data": [{"index": 1, "embedding": [3.0]}, {"index": 0, "embedding": packed}], "usage": {"prompt_tokens": 2, "total_tokens": 2}})  # fmt: skip
        mock.add(responses.GET, BASE + "/models", json={"object": "list", "data": [{"id": "gpt-5.4", "object": "model", "created": 1, "owned_by": "system"}]})
        e = make().embed(["a", "b"], model="text-embedding-3-small", dimensions=2)
        models = make().list_models()
        assert json.loads(mock.calls[0].request.body) == {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float", "dimensions": 2}
        assert mock.calls[1].request.headers["Authorization"] == f"Bearer {KEY}"
    assert e.embeddings == [[0.5, 1.5], [3.0]] and e.usage.input_tokens == 2 and e.provider == "openai"
    assert [(m.id, m.owned_by) for m in models] == [("gpt-5.4", "system")]
