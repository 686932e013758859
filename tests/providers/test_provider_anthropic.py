"""AnthropicProvider: exact request bodies/headers on the wire, response, error, stream and model parsing.

HTTP-level tests go through ``responses`` against the real transport; the
stream decoder is also fed ``SSEEvent`` objects directly.
"""

import base64
import json

import pytest
import responses

from modelprov._collect import collect
from modelprov.engine import bind
from modelprov.exceptions import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderTimeoutError,
    QuotaExceededError,
    RateLimitError,
    ResponseError,
    ServerError,
    TokenLimitError,
    UnsupportedFeatureError,
    ValidationError,
)
from modelprov.providers.anthropic.provider import DEFAULT_MAX_TOKENS, AnthropicProvider
from modelprov.retry import RetryPolicy
from modelprov.streaming import SSEEvent
from modelprov.testing import protocols, split_utf8
from modelprov.types import ImagePart, Message, ProviderConfig, ReasoningPart, TextPart, Tool, ToolCall

BASE = "https://api.anthropic.com"
URL = BASE + "/v1/messages"
KEY = "sk-ant-test-0123456789abcdef"
MODEL = "claude-haiku-4-5"
LEGACY = "2023-06-01"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
PNG_B64 = base64.b64encode(PNG).decode()
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def make(retry=None, **options):
    cfg = ProviderConfig(name="anthropic", api_key=KEY, base_url=BASE, options=tuple(sorted(options.items())))
    return bind(AnthropicProvider(cfg), sleep=lambda s: None, retry=retry)


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


def reply(rsps, body=None, status=200, headers=None):
    rsps.add(responses.POST, URL, json=body or protocols.chat_body("anthropic", "Hi!"), status=status,
             headers=dict({"request-id": "req_hdr"}, **(headers or {})))  # fmt: skip


def sent(rsps, n=0):
    return json.loads(rsps.calls[n].request.body)


def ev(name, **data):
    return SSEEvent(event=name, data=json.dumps(dict({"type": name}, **data)))


# ----------------------------------------------------------------- class facts
def test_class_attributes_and_capabilities():
    assert AnthropicProvider.name == "anthropic"
    assert AnthropicProvider.default_base_url == "https://api.anthropic.com"
    assert AnthropicProvider.default_model == "claude-haiku-4-5"
    assert AnthropicProvider.option_env == {"api_version": ("ANTHROPIC_API_VERSION",)}
    assert AnthropicProvider.api_key_env == ("ANTHROPIC_API_KEY",)
    assert AnthropicProvider.base_url_env == ("ANTHROPIC_BASE_URL",)
    assert AnthropicProvider.requires_api_key is True
    assert AnthropicProvider.stream_format == "sse"
    assert DEFAULT_MAX_TOKENS == 16000
    caps = AnthropicProvider.capabilities.as_dict()
    assert {k for k, v in caps.items() if v} == {"chat", "streaming", "tools", "vision", "json_schema", "list_models", "stop"}


# ------------------------------------------------------- exact bodies on the wire
def test_plain_chat_exact_body_and_headers(rsps):
    reply(rsps, protocols.chat_body("anthropic", "Hello there", usage={"input_tokens": 12, "output_tokens": 3}))
    res = make().generate("Hello", model=MODEL)
    req = rsps.calls[0].request
    assert req.url == URL and req.method == "POST"
    assert sent(rsps) == {"model": MODEL, "max_tokens": 16000, "messages": [{"role": "user", "content": "Hello"}]}
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.headers["anthropic-version"] == "2026-10-21"
    assert req.headers["Content-Type"] == "application/json"
    assert "anthropic-beta" not in req.headers and "x-api-key" not in req.headers
    assert (res.text, res.finish_reason, res.native_finish_reason) == ("Hello there", "stop", "end_turn")
    assert (res.usage.input_tokens, res.usage.output_tokens, res.usage.total_tokens) == (12, 3, 15)
    assert (res.id, res.model, res.provider, res.request_id) == ("msg_fake", "fake-model", "anthropic", "req_hdr")


def test_legacy_version_sends_x_api_key_like_sdk_1x(rsps):
    reply(rsps)
    make(api_version=LEGACY).generate("Hello", model=MODEL)
    req = rsps.calls[0].request
    assert req.headers["x-api-key"] == KEY and req.headers["anthropic-version"] == LEGACY
    assert "Authorization" not in req.headers


def test_system_messages_under_2026_leading_to_top_level_later_in_place(rsps):
    reply(rsps)
    messages = [{"role": "system", "content": "Be terse."}, {"role": "developer", "content": "No emoji."},
                {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Bye"}, {"role": "developer", "content": "Answer in French."}]  # fmt: skip
    make().generate(messages, model="claude-opus-4-8", system="You are a bot.")
    assert sent(rsps) == {
        "model": "claude-opus-4-8",
        "max_tokens": 16000,
        "system": "You are a bot.\n\nBe terse.\n\nNo emoji.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"},
            {"role": "system", "content": "Answer in French."},
        ],
    }


def test_later_system_messages_join_the_top_level_on_models_without_system_messages(rsps):
    reply(rsps)
    messages = ["Hi", {"role": "assistant", "content": "Hello."}, {"role": "system", "content": "Answer in French."}, "Bye"]
    make().generate(messages, model="claude-opus-4-7")  # Opus 4.8 and later take system messages; older ones 400
    assert sent(rsps)["system"] == "Answer in French."
    assert [m["role"] for m in sent(rsps)["messages"]] == ["user", "assistant", "user"]


def test_system_prompt_and_system_messages_join_into_top_level_system_under_2023(rsps):
    reply(rsps)
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."}, {"role": "developer", "content": "Answer in French."},
                {"role": "user", "content": "Bye"}]  # fmt: skip
    make(api_version=LEGACY).generate(messages, model=MODEL, system="You are a bot.")
    assert sent(rsps) == {
        "model": MODEL,
        "max_tokens": 16000,
        "system": "You are a bot.\n\nBe terse.\n\nAnswer in French.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"},
        ],
    }


def test_consecutive_same_role_turns_are_merged(rsps):
    reply(rsps)
    make().generate(["one", "two", {"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}, "three"], model=MODEL)
    assert sent(rsps)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "user", "content": "three"},
    ]


def test_tools_and_tool_result_round_trip(rsps):
    reply(rsps, protocols.chat_body("anthropic", "", [{"id": "toolu_9", "name": "get_weather", "arguments": {"city": "Paris"}}]))
    tools = [Tool("get_weather", "Weather for a city", WEATHER), {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
    first = make().generate("Weather and time in Paris?", model=MODEL, tools=tools)
    assert first.finish_reason == "tool_calls" and first.native_finish_reason == "tool_use"
    assert first.tool_calls == [ToolCall(id="toolu_9", name="get_weather", arguments={"city": "Paris"})]
    assert sent(rsps)["tools"] == [
        {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER},
        {"name": "get_time", "input_schema": {"type": "object"}},
    ]
    assert "tool_choice" not in sent(rsps)

    reply(rsps)
    history = [
        "Weather and time in Paris?",
        Message("assistant", "Let me check.", tool_calls=[ToolCall("toolu_9", "get_weather", {"city": "Paris"}), ToolCall("toolu_10", "get_time", {})]),
        {"role": "tool", "tool_call_id": "toolu_9", "content": "18C, sunny"},
        {"role": "tool", "tool_call_id": "toolu_10", "content": [{"type": "text", "text": "14:00"}]},
        "Thanks, and tomorrow?",
    ]
    make().generate(history, model=MODEL, tools=tools)
    assert sent(rsps, 1)["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_10", "name": "get_time", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "18C, sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_10", "content": "14:00"},
            {"type": "text", "text": "Thanks, and tomorrow?"},
        ]},
    ]  # fmt: skip


def test_tool_results_come_first_even_after_user_text():
    p = make()
    history = ["q", Message("assistant", None, tool_calls=[ToolCall("t1", "f", {})]), "also this", Message("tool", "r", tool_call_id="t1")]
    body = p.build_chat_request(p.make_request(history, model=MODEL)).json
    assert body["messages"][1] == {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]}
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "r"},
        {"type": "text", "text": "also this"},
    ]


@pytest.mark.parametrize(
    "given, wire",
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ("any", {"type": "any"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice_forms(rsps, given, wire):
    reply(rsps)
    make().generate("Hi", model=MODEL, tools=[Tool("get_weather", None, WEATHER)], tool_choice=given)
    assert sent(rsps)["tool_choice"] == wire


def test_image_inputs_url_bytes_path_and_data_url(rsps, tmp_path):
    reply(rsps)
    path = tmp_path / "pic.png"
    path.write_bytes(PNG)
    content = [
        TextPart("Compare these"),
        ImagePart(url="https://example.com/cat.jpg"),
        ImagePart(data=PNG),
        ImagePart(path=str(path)),
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
    ]
    make().generate([{"role": "user", "content": content}], model=MODEL)
    png = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
    assert sent(rsps)["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Compare these"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        png,
        png,
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}},
    ]}]  # fmt: skip


def test_unsupported_image_type_and_unreadable_file_fail_before_io(rsps, tmp_path):
    with pytest.raises(ValidationError, match="image/jpeg, image/png, image/gif, image/webp"):
        make().generate([{"role": "user", "content": [ImagePart(data=b"BM-bitmap")]}], model=MODEL)
    with pytest.raises(ValidationError, match="cannot read image file"):
        make().generate([{"role": "user", "content": [ImagePart(path=str(tmp_path / "missing.png"))]}], model=MODEL)
    assert len(rsps.calls) == 0


def test_json_schema_goes_to_output_config_and_json_mode_is_unsupported(rsps):
    reply(rsps)
    fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": WEATHER, "strict": True}}
    make().generate("City?", model=MODEL, response_format=fmt, provider_options={"output_config": {"effort": "low"}})
    assert sent(rsps)["output_config"] == {"format": {"type": "json_schema", "schema": WEATHER}, "effort": "low"}
    with pytest.raises(UnsupportedFeatureError, match="json mode"):
        make().generate("City?", model=MODEL, response_format="json")
    assert len(rsps.calls) == 1


def test_every_option_on_the_wire_under_2023(rsps):
    reply(rsps)
    make(api_version=LEGACY).generate(
        "Hi", model=MODEL, temperature=0.3, top_p=0.9, max_tokens=100, stop=["END", "STOP"],
        provider_options={"top_k": 40, "metadata": {"user_id": "u-1"}}, thinking={"type": "enabled", "budget_tokens": 1024},
    )  # fmt: skip
    assert sent(rsps) == {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.3,
        "top_p": 0.9,
        "stop_sequences": ["END", "STOP"],
        "top_k": 40,
        "metadata": {"user_id": "u-1"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }


def test_single_stop_string_and_temperature_bounds_under_2023(rsps):
    reply(rsps)
    make(api_version=LEGACY).generate("Hi", model=MODEL, stop="END", temperature=1.0)
    assert sent(rsps)["stop_sequences"] == ["END"] and sent(rsps)["temperature"] == 1.0
    with pytest.raises(ValidationError, match="between 0 and 1 for Anthropic"):
        make(api_version=LEGACY).generate("Hi", model=MODEL, temperature=1.5)
    with pytest.raises(ValidationError, match="between 0 and 1 for Anthropic"):
        make(api_version=LEGACY).stream("Hi", model=MODEL, temperature=1.2)
    assert len(rsps.calls) == 1


def test_seed_and_reserved_provider_options_fail_before_io(rsps):
    with pytest.raises(UnsupportedFeatureError, match="seed"):
        make().generate("Hi", model=MODEL, seed=1)
    with pytest.raises(ValidationError, match="'stream' cannot be a provider option"):
        make().generate("Hi", model=MODEL, provider_options={"stream": True})
    assert len(rsps.calls) == 0


def test_anthropic_beta_header_from_config_and_per_call(rsps):
    reply(rsps)
    reply(rsps)
    reply(rsps)
    make(beta="output-128k-2025-02-19").generate("Hi", model=MODEL)
    make(beta=["a-1", "b-2"]).generate("Hi", model=MODEL, betas=["c-3", "a-1"])
    make().generate("Hi", model=MODEL, betas="d-4")
    assert rsps.calls[0].request.headers["anthropic-beta"] == "output-128k-2025-02-19"
    assert rsps.calls[1].request.headers["anthropic-beta"] == "a-1,b-2,c-3"
    assert rsps.calls[2].request.headers["anthropic-beta"] == "d-4"
    assert all("betas" not in sent(rsps, i) for i in range(3))


def test_missing_key_is_a_configuration_error_before_io(rsps):
    p = bind(AnthropicProvider(ProviderConfig(name="anthropic", base_url=BASE)))
    with pytest.raises(ConfigurationError) as info:
        p.generate("Hi", model=MODEL)
    assert "ANTHROPIC_API_KEY" in str(info.value) and "modelprov keys set anthropic" in str(info.value)
    with pytest.raises(ConfigurationError):
        next(iter(p.stream("Hi", model=MODEL)))
    assert len(rsps.calls) == 0


def test_embeddings_are_unsupported_before_io(rsps):
    with pytest.raises(UnsupportedFeatureError, match="embeddings"):
        make().embed(["a"], model=MODEL)
    assert len(rsps.calls) == 0


# ------------------------------------------------------------------ responses
def test_parse_text_tool_use_thinking_and_cache_usage():  # thinking: a ReasoningPart before the text
    body = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4",
        "content": [
            {"type": "thinking", "thinking": "Let me think", "signature": "sig"},
            {"type": "text", "text": "Checking. "},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "text", "text": "Done."},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 30,
                  "cache_read_input_tokens": 50, "service_tier": "standard"},
    }  # fmt: skip
    res = make().parse_chat_response(body)
    assert res.text == "Checking. Done."
    assert res.content == [ReasoningPart("Let me think", signature="sig", provider="anthropic"), TextPart("Checking. Done.")]
    assert res.tool_calls == [ToolCall("toolu_1", "get_weather", {"city": "Paris"})]
    assert (res.finish_reason, res.native_finish_reason, res.id, res.model) == ("tool_calls", "tool_use", "msg_1", "claude-sonnet-4")
    u = res.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.cache_read_tokens, u.cache_write_tokens) == (180, 20, 200, 50, 30)
    assert res.raw is body


def test_usage_without_cache_fields_leaves_them_none():
    u = make().parse_chat_response({"content": [], "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 1,
                                    "cache_creation_input_tokens": None}}).usage  # fmt: skip
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens) == (5, None, None)


@pytest.mark.parametrize(
    "native, norm",
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "pause"), ("max_tokens", "length"),
     ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"), ("refusal", "refusal"),
     ("some_new_reason", "stop")],
)  # fmt: skip
def test_stop_reason_mapping_keeps_native(native, norm):
    res = make().parse_chat_response({"content": [{"type": "text", "text": "x"}], "stop_reason": native, "usage": {}})
    assert (res.finish_reason, res.native_finish_reason) == (norm, native)


@pytest.mark.parametrize("body", [None, [], {"type": "message"}, {"content": "text"}])
def test_malformed_bodies_raise_response_error(body):
    with pytest.raises(ResponseError):
        make().parse_chat_response(body)


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "status, etype, message, cls",
    [
        (400, "invalid_request_error", "messages: field required", InvalidRequestError),
        (401, "authentication_error", "invalid x-api-key", AuthenticationError),
        (402, "billing_error", "Payment required", QuotaExceededError),
        (400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API.", QuotaExceededError),
        (403, "permission_error", "Your API key does not have permission", PermissionDeniedError),
        (404, "not_found_error", "model: claude-nope", ModelNotFoundError),
        (413, "request_too_large", "Request exceeds the maximum allowed number of bytes", InvalidRequestError),
        (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", RateLimitError),
        (500, "api_error", "Internal server error", ServerError),
        (504, "timeout_error", "Request timed out", ProviderTimeoutError),
        (529, "overloaded_error", "Overloaded", OverloadedError),
        (503, "some_future_error", "Unavailable", OverloadedError),
    ],
)
def test_error_mapping_over_http(rsps, status, etype, message, cls):
    reply(rsps, protocols.error_body("anthropic", status, message, type=etype, request_id="req_body"), status=status)
    with pytest.raises(cls) as info:
        make(retry=RetryPolicy.none()).generate("Hi", model=MODEL)
    exc = info.value
    assert type(exc) is cls
    assert (exc.status_code, exc.provider, exc.request_id) == (status, "anthropic", "req_body")
    assert exc.message == message and exc.extra["error_type"] == etype


def test_error_request_id_falls_back_to_header_and_retry_after_is_read(rsps):
    reply(rsps, protocols.error_body("anthropic", 429, "slow down"), status=429, headers={"retry-after": "7"})
    with pytest.raises(RateLimitError) as info:
        make(retry=RetryPolicy.none()).generate("Hi", model=MODEL)
    assert (info.value.request_id, info.value.retry_after) == ("req_hdr", 7.0)


def test_context_overflow_messages_become_token_limit_errors(rsps):
    reply(rsps, protocols.error_body("anthropic", 400, "prompt is too long: 209353 tokens > 199999 maximum"), status=400)
    reply(rsps, protocols.error_body("anthropic", 400, "input length and `max_tokens` exceed context limit: "
                                     "199759 + 8192 > 200000, decrease input length or `max_tokens` and try again"), status=400)  # fmt: skip
    p = make()
    with pytest.raises(TokenLimitError) as first:
        p.generate("Hi", model=MODEL)
    with pytest.raises(TokenLimitError) as second:
        p.generate("Hi", model=MODEL)
    assert (first.value.requested, first.value.limit) == (209353, 199999)
    assert (second.value.requested, second.value.limit) == (199759 + 8192, 200000)
    assert len(rsps.calls) == 2  # never retried


def test_error_hints_name_the_fix():
    p = make()
    auth = p.parse_error(401, protocols.error_body("anthropic", 401, "bad key"), "", {})
    assert "ANTHROPIC_API_KEY" in auth.hint and "modelprov keys set anthropic" in auth.hint
    assert "modelprov models anthropic" in p.parse_error(404, protocols.error_body("anthropic", 404, "model: x"), "", {}).hint
    assert "32 MB" in p.parse_error(413, protocols.error_body("anthropic", 413, "too big"), "", {}).hint
    assert p.parse_error(502, None, "<html>bad gateway</html>", {}) is None  # generic mapping
    assert p.parse_error(400, {"error": "string"}, "", {}) is None


def test_overloaded_is_retried_then_succeeds(rsps):
    reply(rsps, protocols.error_body("anthropic", 529), status=529)
    reply(rsps, protocols.chat_body("anthropic", "recovered"))
    slept = []
    p = bind(AnthropicProvider(ProviderConfig(name="anthropic", api_key=KEY, base_url=BASE)), sleep=slept.append)
    assert p.generate("Hi", model=MODEL).text == "recovered"
    assert len(rsps.calls) == 2 and len(slept) == 1


# ----------------------------------------------------------- stream over HTTP
def test_stream_over_http_sends_stream_true_and_yields_chunks(rsps):
    events = protocols.chat_stream("anthropic", "Hello wörld", usage={"input_tokens": 9, "output_tokens": 4})
    rsps.add(responses.POST, URL, body=b"".join(events), content_type="text/event-stream", headers={"request-id": "req_s"})
    chunks = list(make().stream("Hi", model=MODEL, max_tokens=50))
    assert sent(rsps) == {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    res = collect(chunks)
    assert (res.text, res.finish_reason, res.usage.input_tokens, res.usage.output_tokens) == ("Hello wörld", "stop", 9, 4)
    assert {c.request_id for c in chunks} == {"req_s"} and {c.provider for c in chunks} == {"anthropic"}


# --------------------------------------------------- stream decoder (unit level)
def feed_all(decoder, events):
    out = []
    for e in events:
        if not decoder.is_keepalive(e):
            out.extend(decoder.feed(e))
    return out


def start(usage=None):
    return ev("message_start", message={"id": "msg_s", "type": "message", "role": "assistant", "model": "claude-x",
                                        "content": [], "stop_reason": None,
                                        "usage": usage or {"input_tokens": 20, "output_tokens": 1}})  # fmt: skip


def test_decoder_text_and_tool_call_fragments_with_tool_counter():
    d = make().new_stream_decoder(None)
    events = [
        start(),
        ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        ev("ping"),
        ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "Let me "}),
        ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "check."}),
        ev("content_block_stop", index=0),
        ev("content_block_start", index=1, content_block={"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}),
        ev("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": ""}),
        ev("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": '{"city": "Pa'}),
        ev("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": 'ris"}'}),
        ev("content_block_stop", index=1),
        ev("content_block_start", index=2, content_block={"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}),
        ev("content_block_stop", index=2),
        ev("message_delta", delta={"stop_reason": "tool_use", "stop_sequence": None}, usage={"output_tokens": 65}),
        ev("message_stop"),
    ]
    chunks = feed_all(d, events)
    deltas = [t for c in chunks for t in c.tool_calls]
    assert [(t.index, t.id, t.name, t.arguments) for t in deltas] == [
        (0, "toolu_a", "get_weather", ""), (0, None, None, '{"city": "Pa'), (0, None, None, 'ris"}'), (1, "toolu_b", "get_time", ""),
    ]  # fmt: skip
    assert d.done and d.finish() == []
    res = collect(chunks)
    assert res.text == "Let me check."
    assert [(c.id, c.name, c.arguments) for c in res.tool_calls] == [("toolu_a", "get_weather", {"city": "Paris"}), ("toolu_b", "get_time", {})]
    assert (res.finish_reason, res.native_finish_reason, res.id, res.model) == ("tool_calls", "tool_use", "msg_s", "claude-x")


def test_decoder_ping_is_keepalive_and_harmless():
    d = make().new_stream_decoder(None)
    assert d.is_keepalive(ev("ping")) and not d.is_keepalive(start())
    assert d.feed(ev("ping")) == []


def test_decoder_usage_is_cumulative_overwrite_not_sum():
    d = make().new_stream_decoder(None)
    chunks = feed_all(d, [
        start({"input_tokens": 10, "output_tokens": 1, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100}),
        ev("message_delta", delta={"stop_reason": None}, usage={"output_tokens": 10}),
        ev("message_delta", delta={"stop_reason": "max_tokens"}, usage={"output_tokens": 25, "input_tokens": 12}),
        ev("message_stop"),
    ])  # fmt: skip
    final = chunks[-1]
    assert (final.finish_reason, final.native_finish_reason) == ("length", "max_tokens")
    u = final.usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens) == (12 + 5 + 100, 25, 100, 5)


@pytest.mark.parametrize(
    "etype, cls",
    [("overloaded_error", OverloadedError), ("rate_limit_error", RateLimitError), ("api_error", ServerError),
     ("invalid_request_error", InvalidRequestError), ("timeout_error", ProviderTimeoutError), ("brand_new_error", ServerError)],
)  # fmt: skip
def test_decoder_mid_stream_error_event_raises_mapped_error(etype, cls):
    d = make().new_stream_decoder(None)
    assert feed_all(d, [start(), ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
                        ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "par"})])[0].text == "par"  # fmt: skip
    with pytest.raises(cls) as info:
        d.feed(ev("error", error={"type": etype, "message": "Overloaded"}, request_id="req_e"))
    assert type(info.value) is cls
    assert (info.value.provider, info.value.request_id, info.value.message) == ("anthropic", "req_e", "Overloaded")


def test_decoder_skips_unknown_events_and_keeps_thinking_out_of_the_text():
    d = make().new_stream_decoder(None)
    chunks = feed_all(d, [
        start(),
        ev("brand_new_event", payload={"x": 1}),
        ev("content_block_start", index=0, content_block={"type": "thinking", "thinking": "", "signature": ""}),
        ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "secret reasoning"}),
        ev("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "sig"}),
        ev("content_block_stop", index=0),
        ev("content_block_start", index=1, content_block={"type": "text", "text": ""}),
        ev("content_block_delta", index=1, delta={"type": "citations_delta", "citation": {}}),
        ev("content_block_delta", index=1, delta={"type": "text_delta", "text": "Answer"}),
        SSEEvent(data=json.dumps({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}})),
        SSEEvent(data=json.dumps({"type": "message_stop"})),  # no event: line -> type from the data
    ])  # fmt: skip
    assert "".join(c.text for c in chunks) == "Answer" and chunks[-1].text == ""
    assert "".join(c.reasoning for c in chunks) == "secret reasoning"
    assert chunks[-1].finish_reason == "stop" and d.done


def test_decoder_truncated_stream_raises_response_error():
    d = make().new_stream_decoder(None)
    feed_all(d, [start(), ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
                 ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 2})])  # fmt: skip
    with pytest.raises(ResponseError, match="truncated"):
        d.finish()


def test_decoder_bad_json_raises_response_error():
    with pytest.raises(ResponseError, match="invalid JSON"):
        make().new_stream_decoder(None).feed(SSEEvent(event="content_block_delta", data="{not json"))


def test_decoder_fed_by_fake_server_bytes():
    from modelprov.streaming import SSEParser

    parser, d = SSEParser(), make().new_stream_decoder(None)
    chunks = []
    for write in split_utf8(protocols.chat_stream("anthropic", "Grüße", [{"id": "toolu_1", "name": "f", "arguments": {"q": "ß"}}])):
        chunks.extend(feed_all(d, parser.feed(write)))
    res = collect(chunks)
    assert res.text == "Grüße" and res.tool_calls[0].arguments == {"q": "ß"} and res.finish_reason == "tool_calls"


# --------------------------------------------------------------------- models
def test_list_models_follows_cursor_paging(rsps):
    ids = [{"id": f"claude-{i}", "display_name": f"Claude {i}", "created_at": "2025-02-19T00:00:00Z"} for i in range(3)]
    models_url = BASE + "/v1/models"
    rsps.add(responses.GET, models_url, json=protocols.models_body("anthropic", ids, limit=2),
             match=[responses.matchers.query_string_matcher("limit=1000")])  # fmt: skip
    rsps.add(responses.GET, models_url, json=protocols.models_body("anthropic", ids, after_id="claude-1", limit=2),
             match=[responses.matchers.query_string_matcher("limit=1000&after_id=claude-1")])  # fmt: skip
    models = make().list_models()
    assert [m.id for m in models] == ["claude-0", "claude-1", "claude-2"]
    assert models[0].name == "Claude 0" and models[0].provider == "anthropic"
    assert models[0].created_at == 1739923200.0
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    assert rsps.calls[0].request.headers["anthropic-version"] == "2026-10-21"


def test_parse_models_page_shapes():
    p = make()
    page, cursor = p.parse_models_response({"data": [{"id": "m", "created_at": "bad", "max_input_tokens": 200000}], "has_more": False, "last_id": "m"})
    assert cursor is None and page[0].created_at is None and page[0].context_length == 200000
    with pytest.raises(ResponseError):
        p.parse_models_response({"models": []})
