"""OpenRouterProvider: attribution headers, extras passthrough, OpenRouter's response, stream and error shapes."""

import json

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
    ProviderTimeoutError,
    QuotaExceededError,
    RateLimitError,
    ResponseError,
    ServerError,
    TokenLimitError,
)
from modelprov.providers.openai_compat.openrouter import OpenRouterProvider
from modelprov.types import ProviderConfig

try:
    from modelprov.streaming import SSEEvent
except ImportError:  # pragma: no cover
    from collections import namedtuple

    SSEEvent = namedtuple("SSEEvent", ("event", "data", "id", "retry"), defaults=("message", "", "", None))

BASE = "https://openrouter.ai/api/v1"
KEY = "sk-or-v1-0123456789abcdef"
MODEL = "anthropic/claude-sonnet-5"


def make(**options):
    cfg = ProviderConfig(name="openrouter", api_key=KEY, base_url=BASE, options=tuple(sorted(options.items())))
    return bind(OpenRouterProvider(cfg), sleep=lambda s: None)


COMPLETION = {"id": "gen-1", "provider": "Anthropic", "model": MODEL, "object": "chat.completion", "created": 1,
              "choices": [{"index": 0, "finish_reason": "stop", "native_finish_reason": "end_turn",
                           "message": {"role": "assistant", "content": "ok"}}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip


def sent(provider, messages="Hi", **kw):
    """Run ``generate`` against a mocked OpenRouter; return (JSON body, headers) as sent."""
    kw.setdefault("model", MODEL)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", json=COMPLETION)
        provider.generate(messages, **kw)
        request = mock.calls[0].request
    return json.loads(request.body), request.headers


def body_for(provider, messages="Hi", **kw):
    return sent(provider, messages, **kw)[0]


def sse(*parts):
    """SSE bytes: dicts become data events, ``": ..."`` strings are sent as comments."""
    out = []
    for p in parts:
        if isinstance(p, str) and p.startswith(":"):
            out.append(p + "\n\n")
        else:
            out.append("data: %s\n\n" % (p if isinstance(p, str) else json.dumps(p)))
    return "".join(out).encode()


def ev(data, event="message"):
    return SSEEvent(event=event, data=data if isinstance(data, str) else json.dumps(data))


def or_chunk(delta=None, finish=None, native=None, **extra):
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish, "native_finish_reason": native, "logprobs": None}
    obj = {"id": "gen-1", "provider": "Anthropic", "model": MODEL, "object": "chat.completion.chunk", "created": 1, "choices": [choice]}
    obj.update(extra)
    return ev(obj)


def decode(events):
    dec = make().new_stream_decoder(None)
    out = []
    for e in events:
        out.extend(dec.feed(e))
        if dec.done:
            break
    out.extend(dec.finish())
    return out


def test_class_attributes():
    assert OpenRouterProvider.name == "openrouter"
    assert OpenRouterProvider.default_base_url == "https://openrouter.ai/api/v1"
    assert OpenRouterProvider.api_key_env == ("OPENROUTER_API_KEY",)
    assert OpenRouterProvider.base_url_env == ()
    assert OpenRouterProvider.requires_api_key is True and OpenRouterProvider.stream_format == "sse"
    assert all(OpenRouterProvider.capabilities.as_dict().values())


def test_attribution_headers():
    assert make().auth_headers() == {"Authorization": f"Bearer {KEY}"}
    _, headers = sent(make(app_url="https://myapp.example", app_title="My App"))
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert (headers["HTTP-Referer"], headers["X-OpenRouter-Title"], headers["X-Title"]) == ("https://myapp.example", "My App", "My App")
    _, headers = sent(make())
    assert "HTTP-Referer" not in headers and "X-Title" not in headers
    assert make(app_url="https://myapp.example", app_title="My App").auth_headers() == {
        "Authorization": f"Bearer {KEY}",
        "HTTP-Referer": "https://myapp.example",
        "X-OpenRouter-Title": "My App",
        "X-Title": "My App",
    }


def test_body_uses_max_tokens_and_passes_extras_through():
    extras = {
        "provider": {"order": ["Anthropic", "Together"], "allow_fallbacks": False},
        "models": ["anthropic/claude-sonnet-5", "openai/gpt-5.4"],
        "route": "fallback",
        "transforms": ["middle-out"],
        "reasoning": {"effort": "high", "exclude": True},
        "plugins": [{"id": "web"}],
    }
    body = body_for(make(), "Hi", max_tokens=100, temperature=1.0, seed=3, stop="##", provider_options=extras, top_k=40)
    assert body == dict(
        {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "temperature": 1.0, "max_tokens": 100,
         "stop": ["##"], "seed": 3, "top_k": 40},
        **extras,
    )  # fmt: skip


def test_parse_response_prefers_native_finish_reason_and_reads_usage():
    body = {
        "id": "gen-123", "provider": "OpenAI", "model": "openai/gpt-5.4", "object": "chat.completion", "created": 1735000000,
        "choices": [{"index": 0, "finish_reason": "stop", "native_finish_reason": "completed", "logprobs": None,
                     "message": {"role": "assistant", "content": "Hi there", "refusal": None, "reasoning": None}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27, "cost": 0.0001, "is_byok": False,
                  "prompt_tokens_details": {"cached_tokens": 12, "cache_write_tokens": 3, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 4, "image_tokens": 0}},
    }  # fmt: skip
    r = make().parse_chat_response(body)
    assert (r.text, r.finish_reason, r.native_finish_reason, r.id) == ("Hi there", "stop", "completed", "gen-123")
    u = r.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens) == (20, 7, 27, 12, 3, 4)
    assert r.raw["usage"]["cost"] == 0.0001 and r.provider == "openrouter"


def test_non_streaming_finish_reason_error_raises_mapped_error():
    body = {"id": "gen-9", "model": MODEL, "object": "chat.completion", "created": 1,
            "choices": [{"index": 0, "finish_reason": "error", "native_finish_reason": None,
                         "error": {"code": 502, "message": "Upstream provider returned an invalid response"},
                         "message": {"role": "assistant", "content": "partial"}}]}  # fmt: skip
    with pytest.raises(ServerError, match="invalid response") as info:
        make().parse_chat_response(body)
    assert info.value.status_code == 502


def test_stream_with_usage_and_native_finish():
    chunks = decode([
        or_chunk({"role": "assistant", "content": "Hel"}),
        or_chunk({"content": "lo"}),
        or_chunk({}, "stop", "end_turn"),
        ev({"id": "gen-1", "object": "chat.completion.chunk", "model": MODEL, "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "cost": 0.00002}}),
        ev("[DONE]"),
    ])  # fmt: skip
    assert "".join(c.text for c in chunks) == "Hello"
    assert (chunks[2].finish_reason, chunks[2].native_finish_reason) == ("stop", "end_turn")
    assert chunks[3].usage.total_tokens == 7


def test_stream_debug_chunk_is_ignored():
    dec = make().new_stream_decoder(None)
    assert dec.feed(ev({"id": "gen-1", "choices": [], "debug": {"echo_upstream_body": {"model": "x"}}})) == []


@pytest.mark.parametrize(
    "code, error_type, cls, status",
    [
        (429, "rate_limit_exceeded", RateLimitError, 429),
        (502, "provider_unavailable", ServerError, 502),
        (503, "provider_overloaded", OverloadedError, 503),
        ("server_error", None, ServerError, 500),
        (400, "context_length_exceeded", TokenLimitError, 400),
    ],
)
def test_mid_stream_error_after_tokens(code, error_type, cls, status):
    error = {"code": code, "message": "Upstream failure"}
    if error_type:
        error["metadata"] = {"error_type": error_type}
    with pytest.raises(cls) as info:
        decode([
            or_chunk({"content": "partial "}),
            or_chunk({"content": ""}, "error", error=error),
        ])  # fmt: skip
    assert type(info.value) is cls and info.value.status_code == status
    assert info.value.provider == "openrouter" and info.value.message == "Upstream failure"


def test_stream_choice_level_error_without_top_level():
    with pytest.raises(RateLimitError):
        decode([ev({"id": "gen-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "error",
                                               "error": {"code": 429, "message": "limited"}}]})])  # fmt: skip


def test_stream_without_done_is_truncated():
    with pytest.raises(ResponseError, match="truncated"):
        decode([or_chunk({"content": "Hi"}), or_chunk({}, "stop", "stop")])


def or_err(code, message="m", **metadata):
    err = {"code": code, "message": message}
    if metadata:
        err["metadata"] = metadata
    return {"error": err}


@pytest.mark.parametrize(
    "status, body, cls",
    [
        (400, or_err(400, "bad params", error_type="invalid_request"), InvalidRequestError),
        (400, or_err(400, "too long", error_type="context_length_exceeded"), TokenLimitError),
        (400, or_err(400, "too many", error_type="max_tokens_exceeded"), TokenLimitError),
        (400, or_err(400, "limit", error_type="token_limit_exceeded"), TokenLimitError),
        (400, or_err(400, "no", error_type="content_policy_violation"), ContentFilterError),
        (400, or_err(400, "refused", error_type="refusal"), ContentFilterError),
        (401, or_err(401, "No auth credentials found", error_type="authentication"), AuthenticationError),
        (402, or_err(402, "Insufficient credits", error_type="payment_required"), QuotaExceededError),
        (402, or_err(402, "Insufficient credits"), QuotaExceededError),
        (403, or_err(403, "Input flagged", reasons=["violence"], flagged_input="...", provider_name="OpenAI", model_slug="openai/gpt-5.4"), ContentFilterError),
        (403, or_err(403, "Forbidden", error_type="permission_denied"), PermissionDeniedError),
        (404, or_err(404, "No endpoints found", error_type="not_found"), ModelNotFoundError),
        (408, or_err(408, "Request timed out", error_type="timeout"), ProviderTimeoutError),
        (413, or_err(413, "Payload too large", error_type="payload_too_large"), InvalidRequestError),
        (429, or_err(429, "Rate limited", error_type="rate_limit_exceeded"), RateLimitError),
        (500, or_err(500, "Internal", error_type="server"), ServerError),
        (502, or_err(502, "Model down", error_type="provider_unavailable"), ServerError),
        (503, or_err(503, "No provider meets your requirements"), OverloadedError),
        (503, or_err(503, "Overloaded", error_type="provider_overloaded"), OverloadedError),
    ],
)
def test_error_mapping(status, body, cls):
    exc = make().parse_error(status, body, json.dumps(body), {})
    assert type(exc) is cls and exc.status_code == status and exc.message == body["error"]["message"]


def test_quota_hint_and_not_retryable():
    exc = make().parse_error(402, or_err(402, "Insufficient credits"), "", {})
    assert exc.retryable is False and "credits" in exc.hint


def test_availability_decides_retryable_and_wait():
    body = {"error": {"code": 429, "message": "Capacity exhausted",
                      "availability": {"code": "capacity_exhausted", "retryable": True, "retry_after": 3}}}  # fmt: skip
    exc = make().parse_error(429, body, "", {})
    assert type(exc) is RateLimitError and exc.retryable is True and exc.retry_after == 3.0
    body = {"error": {"code": 503, "message": "Temporarily unavailable",
                      "availability": {"code": "temporarily_unavailable", "retryable": False}}}  # fmt: skip
    exc = make().parse_error(503, body, "", {})
    assert type(exc) is OverloadedError and exc.retryable is False
    body = {"error": {"code": 400, "message": "Model not found", "availability": {"code": "model_not_found", "retryable": False}}}
    assert type(make().parse_error(400, body, "", {})) is ModelNotFoundError


def test_models_carry_name_and_context_length():
    body = {"data": [{"id": "openai/gpt-5.4", "canonical_slug": "openai/gpt-5.4-2026-03-05", "name": "OpenAI: GPT-5.4",
                      "created": 1715558400, "context_length": 128000, "pricing": {"prompt": "0.0000025"},
                      "architecture": {"input_modalities": ["text", "image"]}}]}  # fmt: skip
    models, cursor = make().parse_models_response(body)
    assert cursor is None
    m = models[0]
    assert (m.id, m.name, m.context_length, m.created_at, m.provider) == ("openai/gpt-5.4", "OpenAI: GPT-5.4", 128000, 1715558400.0, "openrouter")


def test_missing_key_names_env_and_command():
    provider = OpenRouterProvider(ProviderConfig(name="openrouter", base_url=BASE))
    with pytest.raises(ConfigurationError) as info:
        provider.validate_config()
    assert "OPENROUTER_API_KEY" in str(info.value) and "modelprov keys set openrouter" in str(info.value)


# -------------------------------------------------------------- over HTTP
def test_plain_chat_over_http():
    body, headers = sent(make(), "Hello", system="Be brief.")
    assert body == {"model": MODEL, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}
    assert headers["Content-Type"] == "application/json"


def test_tools_and_schema_over_http():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = body_for(make(), "Hi", tools=[{"name": "f", "description": "F", "parameters": schema}], tool_choice="required",
                    response_format={"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}})  # fmt: skip
    assert body["tools"] == [{"type": "function", "function": {"name": "f", "description": "F", "parameters": schema}}]
    assert body["tool_choice"] == "required"
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}


def test_out_of_credits_is_not_retried():
    slept = []
    provider = bind(OpenRouterProvider(ProviderConfig(name="openrouter", api_key=KEY, base_url=BASE)), sleep=slept.append)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", status=402, json=or_err(402, "Insufficient credits"))
        with pytest.raises(QuotaExceededError) as info:
            provider.generate("Hi", model=MODEL)
        assert len(mock.calls) == 1 and slept == []
    assert info.value.status_code == 402 and info.value.provider == "openrouter"


@pytest.mark.parametrize("status", [408, 429, 502, 503])
def test_transient_errors_are_retried_then_succeed(status):
    slept = []
    provider = bind(OpenRouterProvider(ProviderConfig(name="openrouter", api_key=KEY, base_url=BASE)), sleep=slept.append)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", status=status, json=or_err(status, "try again"))
        mock.add(responses.POST, BASE + "/chat/completions", json=COMPLETION)
        assert provider.generate("Hi", model=MODEL).text == "ok"
        assert len(mock.calls) == 2 and len(slept) == 1


def test_stream_over_http_with_comments_and_usage():
    from modelprov import collect

    body = sse(
        ": OPENROUTER PROCESSING",
        ": OPENROUTER PROCESSING",
        {"id": "gen-1", "model": MODEL, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]},
        {"id": "gen-1", "model": MODEL, "choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop", "native_finish_reason": "end_turn"}]},
        {"id": "gen-1", "model": MODEL, "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6, "cost": 0.1}},
        "[DONE]",
    )  # fmt: skip
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", body=body, content_type="text/event-stream", headers={"X-Generation-Id": "gen-1"})
        r = collect(make().stream("Hi", model=MODEL))
        assert "stream_options" not in json.loads(mock.calls[0].request.body)  # a deprecated no-op: usage always comes
    assert (r.text, r.finish_reason, r.native_finish_reason, r.usage.total_tokens, r.id) == ("Hi there", "stop", "end_turn", 6, "gen-1")
    assert r.usage.cost == 0.1


def test_embed_and_models_over_http():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/embeddings", json={"data": [{"index": 0, "embedding": [0.25]}], "model": "openai/text-embedding-3-small"})
        mock.add(responses.GET, BASE + "/models", json={"data": [{"id": MODEL, "name": "Claude", "context_length": 200000, "created": 2}]})
        assert make().embed("x", model="openai/text-embedding-3-small").embeddings == [[0.25]]
        assert [(m.id, m.context_length) for m in make().list_models()] == [(MODEL, 200000)]
        assert json.loads(mock.calls[0].request.body) == {"model": "openai/text-embedding-3-small", "input": ["x"], "encoding_format": "float"}
