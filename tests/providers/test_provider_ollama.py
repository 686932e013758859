"""OllamaProvider: exact request bodies/headers on the wire, response, error, NDJSON stream,
embedding and model parsing, and ``OLLAMA_HOST`` normalisation.

HTTP-level tests go through ``responses`` against the real transport; the
stream decoder is also fed parsed JSON lines directly.
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
    RateLimitError,
    ResponseError,
    ServerError,
    TokenLimitError,
    UnsupportedFeatureError,
    ValidationError,
)
from modelprov.providers.ollama.provider import OllamaProvider
from modelprov.retry import RetryPolicy
from modelprov.testing import protocols, split_utf8
from modelprov.types import ImagePart, Message, ProviderConfig, TextPart, Tool, ToolCall

BASE = "http://localhost:11434"
CHAT = BASE + "/api/chat"
MODEL = "llama3.2"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
PNG_B64 = base64.b64encode(PNG).decode()
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def make(retry=None, api_key=None, base_url=BASE):
    return bind(OllamaProvider(ProviderConfig(name="ollama", api_key=api_key, base_url=base_url)), sleep=lambda s: None, retry=retry)


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


def reply(rsps, body=None, status=200, url=CHAT):
    rsps.add(responses.POST, url, json=body if body is not None else protocols.chat_body("ollama", "Hi!"), status=status)


def sent(rsps, n=0):
    return json.loads(rsps.calls[n].request.body)


def chat(**extra):
    return dict({"model": MODEL, "created_at": "2025-07-07T20:22:19.19314Z", "message": {"role": "assistant", "content": ""},
                 "done": True, "done_reason": "stop"}, **extra)  # fmt: skip


# ----------------------------------------------------------------- class facts
def test_class_attributes_and_capabilities():
    assert OllamaProvider.name == "ollama"
    assert OllamaProvider.default_base_url == "http://localhost:11434"
    assert OllamaProvider.base_url_env == ("OLLAMA_HOST",)
    assert OllamaProvider.api_key_env == ("OLLAMA_API_KEY",)
    assert OllamaProvider.requires_api_key is False
    assert OllamaProvider.stream_format == "ndjson"
    caps = OllamaProvider.capabilities.as_dict()
    assert {k for k, v in caps.items() if not v} == set()
    assert "ollama serve" in OllamaProvider.connection_hint


@pytest.mark.parametrize(
    "value, url",
    [
        (None, "http://localhost:11434"),
        ("", "http://localhost:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("http://0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("localhost", "http://localhost:11434"),
        ("192.168.1.5:8080", "http://192.168.1.5:8080"),
        (":9000", "http://127.0.0.1:9000"),
        ("  'gpu-box'  ", "http://gpu-box:11434"),
        ("example.com:56789/path/", "http://example.com:56789/path"),
        ("https://ollama.com/", "https://ollama.com"),
        ("http://example.com", "http://example.com"),
        ("[::]:11434", "http://[::1]:11434"),
        ("[fe80::1]", "http://[fe80::1]:11434"),
        ("http://127.0.0.1:54321", "http://127.0.0.1:54321"),
    ],
)
def test_normalize_base_url(value, url):
    assert OllamaProvider.normalize_base_url(value) == url
    assert OllamaProvider.normalize_base_url(url) == url  # idempotent


def test_constructor_normalizes_base_url_and_bad_port_is_a_configuration_error():
    assert make(base_url="0.0.0.0").config.base_url == "http://127.0.0.1:11434"
    assert make(base_url="http://127.0.0.1:5555").config.base_url == "http://127.0.0.1:5555"
    with pytest.raises(ConfigurationError, match="invalid port"):
        OllamaProvider.normalize_base_url("localhost:notaport")


# ------------------------------------------------------- exact bodies on the wire
def test_plain_chat_exact_body_and_headers(rsps):
    reply(rsps, protocols.chat_body("ollama", "Hello there", usage={"input_tokens": 7, "output_tokens": 2}))
    res = make().generate("Hello", model=MODEL)
    req = rsps.calls[0].request
    assert req.url == CHAT and req.method == "POST"
    assert sent(rsps) == {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "stream": False}
    assert req.headers["Content-Type"] == "application/json" and "Authorization" not in req.headers
    assert (res.text, res.finish_reason, res.native_finish_reason, res.model, res.provider) == ("Hello there", "stop", "stop", "fake-model", "ollama")
    assert (res.usage.input_tokens, res.usage.output_tokens, res.usage.total_tokens) == (7, 2, 9)
    assert res.usage.timings == {"total_s": 0.006, "load_s": 0.001, "prompt_eval_s": 0.002, "eval_s": 0.003}
    assert res.created_at == 1735689600.0


def test_api_key_sends_bearer_for_ollama_com(rsps):
    rsps.add(responses.POST, "https://ollama.com/api/chat", json=protocols.chat_body("ollama", "ok"))
    make(api_key="ollama-key-0123456789", base_url="https://ollama.com").generate("Hi", model="gpt-oss:120b")
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer ollama-key-0123456789"


def test_system_prompt_is_a_leading_system_message(rsps):
    reply(rsps)
    make().generate([{"role": "system", "content": "Be terse."}, "Hi"], model=MODEL, system="You are a bot.")
    assert sent(rsps)["messages"] == [
        {"role": "system", "content": "You are a bot."},
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hi"},
    ]


def test_tools_and_tool_result_round_trip(rsps):
    reply(rsps, protocols.chat_body("ollama", "", [{"name": "get_weather", "arguments": {"city": "Tokyo"}},
                                                  {"name": "get_time", "arguments": {}}]))  # fmt: skip
    tools = [Tool("get_weather", "Weather for a city", WEATHER), Tool("get_time", None, {"type": "object"})]
    first = make().generate("Weather in Tokyo?", model=MODEL, tools=tools, tool_choice="auto")
    assert sent(rsps)["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city", "parameters": WEATHER}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    ]
    assert "tool_choice" not in sent(rsps)
    assert first.finish_reason == "tool_calls" and first.native_finish_reason == "stop"
    assert first.tool_calls == [ToolCall("call_0", "get_weather", {"city": "Tokyo"}), ToolCall("call_1", "get_time", {})]

    reply(rsps)
    history = ["Weather in Tokyo?", first.to_message(),
               {"role": "tool", "tool_call_id": "call_0", "content": "22C"},
               {"role": "tool", "tool_call_id": "call_1", "content": "09:00"},
               Message("tool", "orphan result", tool_call_id="call_x", name="lookup")]  # fmt: skip
    make().generate(history, model=MODEL, tools=tools)
    assert sent(rsps, 1)["messages"] == [  # no call ids, no tool_call_id: Ollama's API defines neither
        {"role": "user", "content": "Weather in Tokyo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}},
            {"function": {"name": "get_time", "arguments": {}}},
        ]},
        {"role": "tool", "content": "22C", "tool_name": "get_weather"},
        {"role": "tool", "content": "09:00", "tool_name": "get_time"},
        {"role": "tool", "content": "orphan result", "tool_name": "lookup"},
    ]  # fmt: skip


def test_tool_choice_none_omits_tools_and_forcing_is_unsupported_before_io(rsps):
    reply(rsps)
    tools = [Tool("get_weather", None, WEATHER)]
    make().generate("Hi", model=MODEL, tools=tools, tool_choice="none")
    assert "tools" not in sent(rsps)
    for choice in ("required", "get_weather", {"type": "function", "function": {"name": "get_weather"}}):
        with pytest.raises(UnsupportedFeatureError, match="cannot force a tool call"):
            make().generate("Hi", model=MODEL, tools=tools, tool_choice=choice)
        with pytest.raises(UnsupportedFeatureError):
            make().stream("Hi", model=MODEL, tools=tools, tool_choice=choice)
    assert len(rsps.calls) == 1


def test_images_bytes_path_and_data_url_are_raw_base64(rsps, tmp_path):
    reply(rsps)
    path = tmp_path / "pic.png"
    path.write_bytes(PNG)
    content = [TextPart("What is in these?"), ImagePart(data=PNG), ImagePart(path=str(path)),
               {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]  # fmt: skip
    make().generate([{"role": "user", "content": content}], model=MODEL)
    assert sent(rsps)["messages"] == [{"role": "user", "content": "What is in these?", "images": [PNG_B64, PNG_B64, "/9j/4AAQ"]}]


def test_remote_image_url_is_unsupported_before_io(rsps):
    msg = [{"role": "user", "content": [TextPart("Look"), ImagePart(url="https://example.com/cat.jpg")]}]
    with pytest.raises(UnsupportedFeatureError, match="cannot fetch image URLs") as info:
        make().generate(msg, model=MODEL)
    assert "data= or path=" in info.value.hint
    with pytest.raises(UnsupportedFeatureError):
        make().stream(msg, model=MODEL)
    assert len(rsps.calls) == 0


def test_json_mode_and_json_schema_use_format(rsps):
    reply(rsps)
    reply(rsps)
    make().generate("JSON please", model=MODEL, response_format={"type": "json_object"})
    make().generate("City?", model=MODEL, response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": WEATHER}})
    assert sent(rsps, 0)["format"] == "json"
    assert sent(rsps, 1)["format"] == WEATHER


def test_every_option_goes_into_options_and_user_options_win(rsps):
    reply(rsps)
    make().generate(
        "Hi", model=MODEL, temperature=1.5, top_p=0.9, max_tokens=64, stop=["END", "STOP"], seed=42,
        provider_options={"options": {"num_ctx": 8192, "temperature": 0.1}, "keep_alive": "10m"}, think=True,
    )  # fmt: skip
    assert sent(rsps) == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": False,
        "options": {"temperature": 0.1, "top_p": 0.9, "num_predict": 64, "stop": ["END", "STOP"], "seed": 42, "num_ctx": 8192},
        "keep_alive": "10m",
        "think": True,
    }


def test_bad_provider_options_fail_before_io(rsps):
    with pytest.raises(ValidationError, match="must be a dict"):
        make().generate("Hi", model=MODEL, options=["num_ctx"])
    with pytest.raises(ValidationError, match="'stream' cannot be a provider option"):
        make().generate("Hi", model=MODEL, provider_options={"stream": True})
    assert len(rsps.calls) == 0


# ------------------------------------------------------------------ responses
def test_parse_tool_calls_with_ids_string_arguments_and_thinking():
    body = chat(message={"role": "assistant", "content": "", "thinking": "hmm", "tool_calls": [
        {"id": "call_abc", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}},
        {"function": {"name": "g", "arguments": '{"b": 2}'}},
        {"function": {"name": "h", "arguments": "{broken"}},
    ]})  # fmt: skip
    res = make().parse_chat_response(body)
    assert res.text == "" and res.reasoning == "hmm"
    assert [(c.id, c.name, c.arguments) for c in res.tool_calls] == [("call_abc", "f", {"a": 1}), ("call_1", "g", {"b": 2}), ("call_2", "h", {})]
    assert res.tool_calls[2].arguments_error and res.tool_calls[2].raw_arguments == "{broken"
    assert res.finish_reason == "tool_calls" and res.raw is body


@pytest.mark.parametrize(
    "native, norm", [("stop", "stop"), ("length", "length"), ("load", "stop"), ("unload", "stop"), ("", "stop"), (None, "stop")]
)
def test_done_reason_mapping_keeps_native(native, norm):
    res = make().parse_chat_response(chat(done_reason=native, message={"role": "assistant", "content": "x"}))
    assert (res.finish_reason, res.native_finish_reason) == (norm, native or None)


def test_missing_metrics_default_to_zero():
    res = make().parse_chat_response(chat(eval_count=3))  # prompt_eval_count omitted (omitempty)
    assert (res.usage.input_tokens, res.usage.output_tokens, res.usage.total_tokens) == (0, 3, 3)
    assert res.usage.timings == {"total_s": 0.0, "load_s": 0.0, "prompt_eval_s": 0.0, "eval_s": 0.0}


@pytest.mark.parametrize("body", [None, [], {"done": True}, {"message": "text"}])
def test_malformed_bodies_raise_response_error(body):
    with pytest.raises(ResponseError):
        make().parse_chat_response(body)


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "status, message, cls",
    [
        (400, "invalid options: bogus", InvalidRequestError),
        (400, 'registry.ollama.ai/library/gemma:2b does not support tools', InvalidRequestError),
        (400, '"llama3.2" does not support thinking', UnsupportedFeatureError),
        (400, "input length exceeds the context length", TokenLimitError),
        (401, "unauthorized", AuthenticationError),
        (403, "cloud access is disabled", PermissionDeniedError),
        (404, "model 'llama9' not found", ModelNotFoundError),
        (429, "too many requests", RateLimitError),
        (500, "llama runner process has terminated", ServerError),
        (502, "cloud model unreachable", ServerError),
        (503, "server busy, please try again. maximum pending requests exceeded", OverloadedError),
    ],
)
def test_error_mapping_over_http(rsps, status, message, cls):
    reply(rsps, protocols.error_body("ollama", status, message), status=status)
    with pytest.raises(cls) as info:
        make(retry=RetryPolicy.none()).generate("Hi", model=MODEL)
    assert type(info.value) is cls
    assert (info.value.status_code, info.value.provider, info.value.message) == (status, "ollama", message)


def test_model_not_found_hints_ollama_pull_and_is_not_retried(rsps):
    reply(rsps, {"error": 'model "qwen3:8b" not found, try pulling it first'}, status=404)
    with pytest.raises(ModelNotFoundError) as info:
        make().generate("Hi", model="qwen3:8b")
    assert "ollama pull qwen3:8b" in info.value.hint
    assert len(rsps.calls) == 1


def test_error_hints_for_capabilities_queue_and_auth():
    p = make()
    assert "ollama show" in p.parse_error(400, {"error": "gemma does not support tools"}, "", {}).hint
    assert "OLLAMA_MAX_QUEUE" in p.parse_error(503, {"error": "server busy"}, "", {}).hint
    assert "OLLAMA_API_KEY" in p.parse_error(401, {"error": "unauthorized"}, "", {}).hint
    assert p.parse_error(400, {"error": {"message": "bad", "type": "invalid_request_error"}}, "", {}).message == "bad"
    assert p.parse_error(500, None, "oops", {}) is None


def test_wrong_base_path_404_points_at_base_url(rsps):
    rsps.add(responses.POST, "http://localhost:11434/v1/api/chat", body="404 page not found", status=404, content_type="text/plain")
    with pytest.raises(InvalidRequestError) as info:
        make(base_url="http://localhost:11434/v1").generate("Hi", model=MODEL)
    assert "without /api or /v1" in info.value.hint


def test_queue_full_is_retried_then_succeeds(rsps):
    reply(rsps, {"error": "server busy"}, status=503)
    reply(rsps, protocols.chat_body("ollama", "ok"))
    slept = []
    p = bind(OllamaProvider(ProviderConfig(name="ollama", base_url=BASE)), sleep=slept.append)
    assert p.generate("Hi", model=MODEL).text == "ok"
    assert len(rsps.calls) == 2 and len(slept) == 1


# ----------------------------------------------------------- stream over HTTP
def test_stream_over_http_sends_stream_true(rsps):
    lines = protocols.chat_stream("ollama", "Hello wörld", usage={"input_tokens": 5, "output_tokens": 2})
    rsps.add(responses.POST, CHAT, body=b"".join(lines), content_type="application/x-ndjson")
    chunks = list(make().stream("Hi", model=MODEL))
    assert sent(rsps) == {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    res = collect(chunks)
    assert (res.text, res.finish_reason, res.usage.input_tokens, res.usage.output_tokens) == ("Hello wörld", "stop", 5, 2)
    assert {c.provider for c in chunks} == {"ollama"}


# --------------------------------------------------- stream decoder (unit level)
def line(content="", done=False, **extra):
    return dict({"model": MODEL, "created_at": "2025-01-01T00:00:00Z", "message": {"role": "assistant", "content": content},
                 "done": done}, **extra)  # fmt: skip


def test_decoder_text_then_done_line_with_usage():
    d = make().new_stream_decoder(None)
    chunks = []
    for obj in (line("Hel"), line("lo"), line(done=True, done_reason="stop", total_duration=1_500_000_000, prompt_eval_count=5,
                                             eval_count=2, eval_duration=500_000_000)):  # fmt: skip
        chunks.extend(d.feed(obj))
    assert [c.text for c in chunks] == ["Hel", "lo", ""]
    final = chunks[-1]
    assert (final.finish_reason, final.native_finish_reason, final.model) == ("stop", "stop", MODEL)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 2)
    assert final.usage.timings == {"total_s": 1.5, "load_s": 0.0, "prompt_eval_s": 0.0, "eval_s": 0.5}
    assert d.done and d.finish() == []


def test_decoder_done_line_with_missing_metrics_and_length():
    d = make().new_stream_decoder(None)
    (final,) = d.feed(line(done=True, done_reason="length"))
    assert final.finish_reason == "length"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (0, 0, 0)


def test_decoder_whole_tool_calls_become_deltas_with_full_arguments():
    d = make().new_stream_decoder(None)
    chunks = d.feed(line(message={"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Zürich"}}},
        {"id": "call_x9", "function": {"index": 1, "name": "get_time", "arguments": {}}},
    ]}))  # fmt: skip
    chunks += d.feed(line(message={"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "third", "arguments": {"n": 1}}}]}))
    chunks += d.feed(line(done=True, done_reason="stop"))
    deltas = [t for c in chunks for t in c.tool_calls]
    assert [(t.index, t.id, t.name, t.arguments) for t in deltas] == [
        (0, "call_0", "get_weather", '{"city": "Zürich"}'), (1, "call_x9", "get_time", "{}"), (2, "call_2", "third", '{"n": 1}'),
    ]  # fmt: skip
    res = collect(chunks)
    assert res.finish_reason == "tool_calls" and res.native_finish_reason == "stop"
    assert [c.arguments for c in res.tool_calls] == [{"city": "Zürich"}, {}, {"n": 1}]


def test_decoder_thinking_lines_become_reasoning_deltas():
    d = make().new_stream_decoder(None)
    (chunk,) = d.feed(line(message={"role": "assistant", "content": "", "thinking": "pondering"}))
    assert (chunk.reasoning, chunk.text, chunk.tool_calls) == ("pondering", "", [])
    assert d.feed(line(message={"role": "assistant", "content": "", "thinking": ""})) == []


@pytest.mark.parametrize(
    "message, cls",
    [
        ("an error was encountered while running the model: unexpected EOF", ServerError),
        ("model 'x' not found", ModelNotFoundError),
        ("gemma does not support thinking", InvalidRequestError),
    ],
)
def test_decoder_error_line_raises_mapped_error(message, cls):
    d = make().new_stream_decoder(None)
    assert d.feed(line("partial"))[0].text == "partial"
    with pytest.raises(cls) as info:
        d.feed({"error": message})
    assert type(info.value) is cls and info.value.provider == "ollama" and info.value.message == message


def test_decoder_truncated_stream_and_non_object_lines():
    d = make().new_stream_decoder(None)
    d.feed(line("Hel"))
    with pytest.raises(ResponseError, match="truncated"):
        d.finish()
    with pytest.raises(ResponseError, match="not an object"):
        d.feed([1, 2])


def test_decoder_fed_by_fake_server_bytes():
    from modelprov.streaming import NDJSONParser

    parser, d, chunks = NDJSONParser(), make().new_stream_decoder(None), []
    for write in split_utf8(protocols.chat_stream("ollama", "Grüße aus Köln", [{"id": "call_7", "name": "f", "arguments": {"q": "ß"}}])):
        for obj in parser.feed(write):
            chunks.extend(d.feed(obj))
    res = collect(chunks)
    assert res.text == "Grüße aus Köln" and res.tool_calls == [ToolCall("call_7", "f", {"q": "ß"}, raw_arguments='{"q": "ß"}')]


# ------------------------------------------------------------ embeddings, models
def test_embed_exact_body_and_response(rsps):
    rsps.add(responses.POST, BASE + "/api/embed", json=protocols.embeddings_body("ollama", [[0.1, 0.2], [0.3, 0.4]]))
    res = make().embed(["a", "b"], model="nomic-embed-text", keep_alive="1m", truncate=False, options={"num_ctx": 512})
    assert sent(rsps) == {"model": "nomic-embed-text", "input": ["a", "b"], "keep_alive": "1m", "truncate": False, "options": {"num_ctx": 512}}
    assert res.embeddings == [[0.1, 0.2], [0.3, 0.4]]
    assert (res.model, res.provider, res.usage.input_tokens) == ("fake-embedding", "ollama", 2)


def test_embed_single_string_and_count_mismatch(rsps):
    rsps.add(responses.POST, BASE + "/api/embed", json={"model": "m", "embeddings": [[1.0]]})
    assert make().embed("one", model="m").embeddings == [[1.0]]
    assert sent(rsps)["input"] == ["one"]
    rsps.add(responses.POST, BASE + "/api/embed", json={"model": "m", "embeddings": [[1.0]]})
    with pytest.raises(ResponseError, match="asked for 2 embeddings, got 1"):
        make().embed(["a", "b"], model="m")
    with pytest.raises(ResponseError):
        make().parse_embed_response({"embedding": [1.0]})


def test_list_models_from_tags(rsps):
    tags = protocols.models_body("ollama", ["llama3.2:latest", {"name": "qwen3:8b", "modified_at": "2024-12-12T19:31:52.395536737-08:00"}])
    rsps.add(responses.GET, BASE + "/api/tags", json=tags)
    models = make().list_models()
    assert [m.id for m in models] == ["llama3.2:latest", "qwen3:8b"]
    assert models[0].created_at == 1735689600.0 and models[0].provider == "ollama"
    assert models[1].created_at == pytest.approx(1734060712.395536)
    assert models[1].raw["details"]["family"] == "llama"
    assert len(rsps.calls) == 1
    with pytest.raises(ResponseError):
        make().parse_models_response({"data": []})
