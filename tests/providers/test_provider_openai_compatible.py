"""OpenAICompatibleProvider: optional key, vLLM / llama.cpp / LM Studio shapes, lenient stream end."""

import json

import pytest
import responses

from modelprov.engine import bind
from modelprov.exceptions import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    ResponseError,
    ServerError,
    TokenLimitError,
    UnsupportedFeatureError,
)
from modelprov.providers.openai_compat.compatible import OpenAICompatibleProvider
from modelprov.types import ProviderConfig

try:
    from modelprov.streaming import SSEEvent
except ImportError:  # pragma: no cover
    from collections import namedtuple

    SSEEvent = namedtuple("SSEEvent", ("event", "data", "id", "retry"), defaults=("message", "", "", None))

BASE = "http://127.0.0.1:8000/v1"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def make(api_key=None, name="vllm", **options):
    cfg = ProviderConfig(name=name, type="openai_compatible", api_key=api_key, base_url=BASE, options=tuple(sorted(options.items())))
    return bind(OpenAICompatibleProvider(cfg), sleep=lambda s: None)


def ev(data, event="message"):
    return SSEEvent(event=event, data=data if isinstance(data, str) else json.dumps(data))


def chunk(delta=None, finish=None, **extra):
    obj = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
           "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]}  # fmt: skip
    obj.update(extra)
    return ev(obj)


def decode(events, provider=None):
    dec = (provider or make()).new_stream_decoder(None)
    out = []
    for e in events:
        out.extend(dec.feed(e))
        if dec.done:
            break
    out.extend(dec.finish())
    return out


def test_class_attributes():
    P = OpenAICompatibleProvider
    assert (P.name, P.default_base_url, P.default_model) == ("openai_compatible", "http://localhost:8000/v1", None)
    assert (P.api_key_env, P.base_url_env, P.requires_api_key, P.stream_format) == ((), (), False, "sse")


def test_no_key_no_authorization_header():
    assert make().auth_headers() == {}
    assert make(api_key="token-abc").auth_headers() == {"Authorization": "Bearer token-abc"}
    make().validate_config()  # a key is optional


def test_body_uses_max_tokens_and_passes_sampling_extras():
    p = make()
    req = p.make_request("Hi", model=MODEL, max_tokens=32, top_k=20, min_p=0.05, repeat_penalty=1.1, stream=True)
    http = p.build_chat_request(req)
    assert http.json == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 32,
        "stream": True,
        "stream_options": {"include_usage": True},
        "top_k": 20,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
    }


def test_none_provider_option_removes_a_key():
    p = make()
    body = p.build_chat_request(p.make_request("Hi", model=MODEL, stream=True, stream_options=None, seed=None)).json
    assert body == {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def test_missing_model_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="no model"):
        make().make_request("Hi")


def test_capability_overrides_fail_before_io():
    p = make(capabilities={"tools": False, "vision": False})
    assert p.capabilities.tools is False and OpenAICompatibleProvider.capabilities.tools is True
    with pytest.raises(UnsupportedFeatureError, match="tools"):
        p.generate("Hi", model=MODEL, tools=[{"name": "f", "parameters": {"type": "object"}}])
    with pytest.raises(UnsupportedFeatureError, match="vision"):
        p.generate([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}], model=MODEL)
    q = make(capabilities="embeddings=false, list_models=no")
    with pytest.raises(UnsupportedFeatureError):
        q.embed("x", model="e5")
    with pytest.raises(UnsupportedFeatureError):
        q.list_models()
    with pytest.raises(ConfigurationError, match="unknown capability"):
        make(capabilities={"telepathy": True})
    with pytest.raises(ConfigurationError, match="true or false"):
        make(capabilities="tools=maybe")


def test_parse_llamacpp_response_with_timings_and_reasoning():
    body = {"id": "chatcmpl-l", "object": "chat.completion", "created": 1735000000, "model": "qwen2.5",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "4", "reasoning_content": "2+2"}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
            "timings": {"prompt_n": 12, "predicted_n": 1, "prompt_ms": 10.5, "predicted_ms": 3.0}}  # fmt: skip
    r = make().parse_chat_response(body)
    assert (r.text, r.finish_reason, r.usage.total_tokens, r.provider) == ("4", "stop", 13, "vllm")
    assert r.raw["timings"]["prompt_n"] == 12


def test_tool_arguments_given_as_object_are_accepted():
    body = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}}]}  # fmt: skip
    call = make().parse_chat_response(body).tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("c1", "f", {"a": 1})


def test_stream_closed_after_finish_reason_without_done_is_complete():
    chunks = decode([chunk({"content": "Hi"}), chunk({}, "stop")])
    assert [c.text for c in chunks] == ["Hi", ""] and chunks[-1].finish_reason == "stop"


def test_stream_closed_without_finish_reason_is_truncated():
    with pytest.raises(ResponseError, match="truncated"):
        decode([chunk({"content": "Hi"})])


def test_stream_stop_after_tool_calls_is_reported_as_tool_calls():
    chunks = decode([chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}),
                     chunk({}, "stop"), ev("[DONE]")])  # fmt: skip
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == ("tool_calls", "stop")


def test_stream_tool_call_without_index_uses_position():
    chunks = decode([chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}},
                                           {"id": "b", "function": {"name": "g", "arguments": "{}"}}]}), chunk({}, "tool_calls")])  # fmt: skip
    assert [(d.index, d.id) for d in chunks[0].tool_calls] == [(0, "a"), (1, "b")]


@pytest.mark.parametrize(
    "event, cls",
    [
        (ev({"error": {"message": "CUDA out of memory", "type": "InternalServerError", "param": None, "code": 500}}), ServerError),
        (ev({"object": "error", "message": "bad logits", "type": "BadRequestError", "param": None, "code": 400}), InvalidRequestError),
        (ev({"error": {"code": 500, "message": "slot unavailable", "type": "server_error"}}, event="error"), ServerError),
    ],
)
def test_stream_errors(event, cls):
    with pytest.raises(cls) as info:
        decode([chunk({"content": "a"}), event])
    assert type(info.value) is cls and info.value.provider == "vllm"


@pytest.mark.parametrize(
    "status, body, cls",
    [
        (400, {"error": {"message": "bad", "type": "BadRequestError", "param": None, "code": 400}}, InvalidRequestError),
        (400, {"object": "error", "message": "bad", "type": "BadRequestError", "param": None, "code": 400}, InvalidRequestError),
        (401, {"error": {"message": "Unauthorized", "type": "Unauthorized", "code": 401}}, AuthenticationError),
        (401, {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}}, AuthenticationError),
        (404, {"error": {"message": "The model `llama` does not exist.", "type": "NotFoundError", "param": "model", "code": 404}}, ModelNotFoundError),
        (404, {"object": "error", "message": "The model `llama` does not exist.", "type": "NotFoundError", "param": None, "code": 404}, ModelNotFoundError),
        (404, {"detail": "Not Found"}, ModelNotFoundError),
        (422, {"detail": [{"loc": ["body", "messages"], "msg": "field required", "type": "missing"}]}, InvalidRequestError),
        (400, {"error": "Unexpected endpoint or method. (POST /v1/chat)"}, InvalidRequestError),
        (500, {"error": {"message": "boom", "type": "InternalServerError", "code": 500}}, ServerError),
        (503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}, OverloadedError),
    ],
)
def test_error_shapes(status, body, cls):
    exc = make().parse_error(status, body, json.dumps(body), {})
    assert type(exc) is cls and exc.status_code == status


def test_fastapi_validation_detail_is_summarised():
    body = {"detail": [{"loc": ["body", "messages", 0, "content"], "msg": "field required", "type": "missing"}]}
    assert make().parse_error(422, body, "", {}).message == "messages.0.content: field required"


def test_llamacpp_context_overflow():
    body = {"error": {"code": 400, "message": "request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it",
                      "type": "exceed_context_size_error", "n_prompt_tokens": 4476, "n_ctx": 4096}}  # fmt: skip
    exc = make().parse_error(400, body, "", {})
    assert isinstance(exc, TokenLimitError) and (exc.limit, exc.requested) == (4096, 4476)


@pytest.mark.parametrize(
    "message, limit, requested",
    [
        ("This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).", 4096, 5000),
        ("'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is 4096 tokens "
         "and your request has 2778 input tokens (8000 > 4096 - 2778).", 4096, 2778),
    ],
)
def test_vllm_context_overflow_messages(message, limit, requested):
    body = {"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}}
    exc = make().parse_error(400, body, "", {})
    assert isinstance(exc, TokenLimitError) and (exc.limit, exc.requested) == (limit, requested)


def test_hints_name_the_instance():
    missing = make().parse_error(404, {"detail": "Not Found"}, "", {})
    assert "served" in missing.hint and "modelprov models vllm" in missing.hint and "/v1" in missing.hint
    auth = make().parse_error(401, {"error": {"message": "Unauthorized", "code": 401}}, "", {})
    assert "modelprov keys set vllm" in auth.hint


def test_non_json_error_body():
    exc = make().parse_error(502, None, "<html><body>Bad Gateway</body></html>", {})
    assert type(exc) is ServerError and exc.message == "HTTP 502 from the provider (HTML error page)"
    exc = make().parse_error(502, None, "<html><head><title>502 Bad Gateway</title></head></html>", {})
    assert exc.message == "HTTP 502 from the provider: 502 Bad Gateway"
    exc = make().parse_error(404, None, "", {})
    assert type(exc) is ModelNotFoundError and exc.message == "HTTP 404 from the provider"
    exc = make().parse_error(500, None, "upstream connect error", {})
    assert exc.message == "upstream connect error"


def test_models_vllm_and_llamacpp():
    body = {"object": "list", "data": [
        {"id": MODEL, "object": "model", "created": 1735000000, "owned_by": "vllm", "root": MODEL, "parent": None, "max_model_len": 32768, "permission": []},
        {"id": "qwen.gguf", "object": "model", "created": 1735000001, "owned_by": "llamacpp", "meta": {"n_ctx_train": 32768}},
    ]}  # fmt: skip
    models, cursor = make().parse_models_response(body)
    assert [(m.id, m.context_length, m.owned_by) for m in models] == [(MODEL, 32768, "vllm"), ("qwen.gguf", None, "llamacpp")]
    assert cursor is None and models[0].provider == "vllm"


# -------------------------------------------------------------- over HTTP
COMPLETION = {"id": "chatcmpl-v", "object": "chat.completion", "created": 1, "model": MODEL,
              "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}  # fmt: skip


def sse(*events):
    return "".join("data: %s\n\n" % (e if isinstance(e, str) else json.dumps(e)) for e in events).encode()


@pytest.mark.parametrize("key", [None, "token-abc"])
def test_chat_over_http_with_and_without_key(key):
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", json=COMPLETION)
        r = make(api_key=key).generate("Hi", model=MODEL, max_tokens=10, temperature=0)
        request = mock.calls[0].request
    assert r.text == "ok" and r.usage.total_tokens == 4 and r.provider == "vllm"
    assert json.loads(request.body) == {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.0, "max_tokens": 10}
    if key:
        assert request.headers["Authorization"] == "Bearer token-abc"
    else:
        assert "Authorization" not in request.headers


def test_unsupported_feature_makes_no_request():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, BASE + "/chat/completions", json=COMPLETION)
        with pytest.raises(UnsupportedFeatureError):
            make(capabilities={"json_schema": False}).generate("Hi", model=MODEL, response_format={"type": "object", "properties": {}})
        with pytest.raises(UnsupportedFeatureError):
            make(capabilities={"streaming": False}).stream("Hi", model=MODEL)
        assert len(mock.calls) == 0


def test_stream_over_http_without_done():
    from modelprov import collect

    body = sse({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]},
               {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})  # fmt: skip
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", body=body, content_type="text/event-stream")
        r = collect(make().stream("Hi", model=MODEL))
    assert (r.text, r.finish_reason) == ("Hi", "length")


def test_llamacpp_error_field_in_stream_is_raised():
    body = b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\nerror: {"code":500,"message":"slot failed","type":"server_error"}\n\n'
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", body=body, content_type="text/event-stream")
        with pytest.raises(ServerError, match="slot failed"):
            list(make().stream("Hi", model=MODEL))


def test_context_overflow_over_http_is_not_retried():
    body = {"error": {"code": 400, "message": "request (9000 tokens) exceeds the available context size (8192 tokens)",
                      "type": "exceed_context_size_error", "n_prompt_tokens": 9000, "n_ctx": 8192}}  # fmt: skip
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BASE + "/chat/completions", status=400, json=body)
        with pytest.raises(TokenLimitError) as info:
            make().generate("Hi", model=MODEL)
        assert len(mock.calls) == 1
    assert (info.value.limit, info.value.requested, info.value.status_code) == (8192, 9000, 400)


def test_models_and_embeddings_over_http():
    with responses.RequestsMock() as mock:
        models = [{"id": MODEL, "object": "model", "owned_by": "vllm", "max_model_len": 8192}]
        mock.add(responses.GET, BASE + "/models", json={"object": "list", "data": models})
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        mock.add(responses.POST, BASE + "/embeddings", json={"data": [{"index": 0, "embedding": [1, 2]}], "model": "e5", "usage": usage})
        assert [(m.id, m.context_length) for m in make().list_models()] == [(MODEL, 8192)]
        assert make().embed(["q"], model="e5").embeddings == [[1.0, 2.0]]
        assert "Authorization" not in mock.calls[0].request.headers
