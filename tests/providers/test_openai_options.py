"""OpenAI-family codec: roles, the reasoning option, known and learned unsupported options, refusals, usage, models."""

import json

import pytest

from modelprov import collect
from modelprov.exceptions import InvalidRequestError, UnsupportedFeatureError
from modelprov.providers.openai_compat.compatible import OpenAICompatibleProvider
from modelprov.providers.openai_compat.errors import option_of_param
from modelprov.providers.openai_compat.openai import OpenAIProvider
from modelprov.providers.openai_compat.openrouter import OpenRouterProvider
from modelprov.providers.openai_compat.options import RESPONSES_ONLY, effort_for_budget
from modelprov.streaming import SSEEvent
from modelprov.testing._openai import openai_completion, openai_stream_events, openai_unsupported_body
from modelprov.types import ProviderConfig

KEY = "sk-test-0123456789abcdef"
CLASSES = {"openai": OpenAIProvider, "openrouter": OpenRouterProvider, "openai_compatible": OpenAICompatibleProvider}


def make(protocol="openai", drop=False, **options):
    cfg = ProviderConfig(name=protocol, api_key=KEY, base_url="http://x/v1", drop_unsupported=drop,
                         options=tuple(sorted(options.items())))  # fmt: skip
    return CLASSES[protocol](cfg)


def body(provider, messages="Hi", model="gpt-5.4-mini", **kw):
    return provider.build_chat_request(provider.make_request(messages, model=model, **kw)).json


def events(raw_writes):
    """SSE events from builder writes (comments dropped)."""
    out = []
    for raw in raw_writes:
        text = raw.decode()
        if text.startswith("data: "):
            out.append(SSEEvent("message", text[len("data: "):].rstrip("\n")))
    return out


def decode(provider, raw_writes):
    dec = provider.new_stream_decoder(None)
    chunks = []
    for e in events(raw_writes):
        for chunk in dec.feed(e):
            chunk.provider = provider.instance_name
            chunks.append(chunk)
    chunks.extend(dec.finish())
    return chunks


# ---------------------------------------------------------------------- roles
HISTORY = [{"role": "developer", "content": "Answer in French."}, {"role": "user", "content": "Hi"}]


def test_developer_role_is_developer_for_openai_and_system_elsewhere():
    assert body(make("openai"), HISTORY, system="Be brief.")["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
    ]
    for protocol in ("openrouter", "openai_compatible"):
        assert body(make(protocol), HISTORY)["messages"][0] == {"role": "system", "content": "Answer in French."}


# ------------------------------------------------------------------ reasoning
@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"])
def test_every_effort_passes_through_as_reasoning_effort(effort):
    assert body(make("openai"), reasoning=effort)["reasoning_effort"] == effort
    assert body(make("openai_compatible"), model="qwen3", reasoning=effort)["reasoning_effort"] == effort
    assert body(make("openrouter"), model="openai/gpt-5.4", reasoning=effort)["reasoning"] == {"effort": effort}


@pytest.mark.parametrize(
    "budget, effort",
    [(1, "minimal"), (1023, "minimal"), (1024, "low"), (4095, "low"), (4096, "medium"), (16383, "medium"),
     (16384, "high"), (32767, "high"), (32768, "xhigh"), (65535, "xhigh"), (65536, "max"), (10**6, "max")],
)  # fmt: skip
def test_a_token_budget_maps_to_the_nearest_effort(budget, effort):
    assert effort_for_budget(budget) == effort
    assert body(make("openai"), reasoning=budget)["reasoning_effort"] == effort
    assert body(make("openai_compatible"), model="qwen3", reasoning=budget)["reasoning_effort"] == effort


def test_openrouter_sends_a_budget_as_max_tokens_never_both():
    sent = body(make("openrouter"), model="anthropic/claude-sonnet-5", reasoning=8000)
    assert sent["reasoning"] == {"max_tokens": 8000} and "reasoning_effort" not in sent


def test_no_reasoning_option_sends_nothing():
    for protocol in CLASSES:
        sent = body(make(protocol))
        assert "reasoning" not in sent and "reasoning_effort" not in sent


def test_compatible_capabilities_switch_reasoning_off():
    p = make("openai_compatible", capabilities="reasoning=false,tools=false")
    assert p.capabilities.tools is False and p.capabilities.vision is True
    with pytest.raises(UnsupportedFeatureError) as info:
        p.make_request("Hi", model="llama", reasoning="high")
    assert info.value.extra["option"] == "reasoning" and "capabilities" in str(info.value)
    req = make("openai_compatible", drop=True, capabilities={"reasoning": False}).make_request("Hi", model="llama", reasoning="high")
    assert req.reasoning is None and req.dropped == ["reasoning"]
    assert make("openai_compatible", capabilities={"reasoning": True}).make_request("Hi", model="l", reasoning="low").reasoning == "low"


# --------------------------------------------------- options known beforehand
@pytest.mark.parametrize(
    "model, options, refused",
    [
        ("o3", {"temperature": 0.2}, ["temperature"]),
        ("o4-mini-2025-04-16", {"top_p": 0.5, "stop": ["END"]}, ["stop", "top_p"]),
        ("o3", {"stop": "END"}, ["stop"]),
        ("o3-mini", {"temperature": 1}, []),  # the default value is accepted
        ("o1", {"stop": "END"}, []),  # only o3 and o4-mini are documented without stop
        ("gpt-5", {"temperature": 0.7}, ["temperature"]),
        ("gpt-5-nano-2025-08-07", {"top_p": 0.9}, ["top_p"]),
        ("gpt-5.4", {"temperature": 0.7, "reasoning": "high"}, ["temperature"]),
        ("gpt-6.1-sol", {"top_p": 0.9, "reasoning": 5000}, ["top_p"]),
        ("gpt-5.4", {"temperature": 0.7, "reasoning": "none"}, []),
        ("gpt-5.4-mini", {"temperature": 0.7}, []),  # the model's default effort applies: not refused up front
        ("gpt-5.3-chat-latest", {"temperature": 0.7, "reasoning": "high"}, []),
    ],
)  # fmt: skip
def test_documented_refusals_fail_before_io_and_drop(model, options, refused):
    from modelprov.providers.request import build_chat_request_object

    p = make("openai")
    assert sorted(p.unsupported_options(build_chat_request_object("Hi", model=model, **options))) == refused
    if not refused:
        p.make_request("Hi", model=model, **options)
        return
    with pytest.raises(UnsupportedFeatureError) as info:
        p.make_request("Hi", model=model, **options)
    assert info.value.extra["option"] in refused and info.value.extra["model"] == model
    req = make("openai", drop=True).make_request("Hi", model=model, **options)
    assert sorted(req.dropped) == refused and all(getattr(req, o) is None for o in refused)


@pytest.mark.parametrize("model", ["o1-pro", "o3-pro-2025-06-10", "gpt-5-pro", "gpt-5.5-pro", "gpt-5-codex", "computer-use-preview"])
def test_responses_only_models_fail_before_io(model):
    with pytest.raises(UnsupportedFeatureError) as info:
        make("openai").make_request("Hi", model=model)
    assert "/v1/responses" in str(info.value) and info.value.provider == "openai"
    with pytest.raises(UnsupportedFeatureError):
        make("openai", drop=True).make_request("Hi", model=model)  # a model cannot be dropped


def test_responses_only_list_is_the_sdk_split():
    sdk = pytest.importorskip("openai.types.shared.responses_model", reason="the openai SDK is not installed")
    import typing

    chat = set(typing.get_args(pytest.importorskip("openai.types.shared.chat_model").ChatModel))
    ids = {m for a in typing.get_args(sdk.ResponsesModel) if typing.get_origin(a) is typing.Literal for m in typing.get_args(a)}
    undated = {m for m in ids - chat if not m[-10:-6].isdigit()}
    assert undated == set(RESPONSES_ONLY)
    assert "gpt-5.2-pro" not in RESPONSES_ONLY and make("openai").make_request("Hi", model="gpt-5.2-pro")


def test_openrouter_and_compatible_know_no_model_rules():
    for protocol in ("openrouter", "openai_compatible"):
        req = make(protocol).make_request("Hi", model="o3", temperature=0.2, stop="END")
        assert req.temperature == 0.2 and req.stop == ["END"]


# --------------------------------------------------- options refused at run time
def test_unsupported_value_400_is_unsupported_feature_error():
    p = make("openai")
    exc = p.parse_error(400, openai_unsupported_body("temperature", 0.2), "", {})
    assert isinstance(exc, UnsupportedFeatureError) and not exc.retryable
    assert (exc.extra["option"], exc.extra["param"], exc.status_code, exc.extra["error_code"]) == (
        "temperature", "temperature", 400, "unsupported_value")
    assert "does not support 0.2" in str(exc) and "drop_unsupported=True" in str(exc)
    assert exc.extra["value_specific"] is True  # the model takes temperature, not 0.2


def test_unsupported_parameter_400_is_not_value_specific():
    exc = make("openai").parse_error(400, openai_unsupported_body("max_tokens", code="unsupported_parameter"), "", {})
    assert isinstance(exc, UnsupportedFeatureError) and exc.extra["option"] == "max_tokens"
    assert "value_specific" not in exc.extra


@pytest.mark.parametrize(
    "param, option",
    [("max_completion_tokens", "max_tokens"), ("max_tokens", "max_tokens"), ("reasoning_effort", "reasoning"),
     ("temperature", "temperature"), ("top_p", "top_p"), ("stop", "stop"), ("seed", "seed"),
     ("response_format", "response_format"), ("tool_choice", "tool_choice"), ("logprobs", "logprobs"),
     ("top_k", "top_k"), ("reasoning.effort", "reasoning"), ("messages[0].role", None), ("", None)],
)  # fmt: skip
def test_wire_params_map_to_option_names(param, option):
    assert option_of_param(param) == option
    exc = make("openai").parse_error(400, openai_unsupported_body(param or "x", code="unsupported_parameter") if param else
                                     {"error": {"message": "m", "type": "invalid_request_error", "param": None,
                                                "code": "unsupported_parameter"}}, "", {})  # fmt: skip
    if param:
        assert isinstance(exc, UnsupportedFeatureError) and exc.extra.get("option") == option
    else:
        assert type(exc) is InvalidRequestError  # no param named: an ordinary bad request


def test_unsupported_code_without_4xx_or_param_is_not_mapped():
    assert not isinstance(make("openai").parse_error(500, openai_unsupported_body("temperature", 0.2), "", {}), UnsupportedFeatureError)
    vllm = {"error": {"message": "bad", "type": "BadRequestError", "param": "temperature", "code": 400}}
    assert type(make("openai_compatible").parse_error(400, vllm, "", {})) is InvalidRequestError


# ------------------------------------------------------------------- refusals
@pytest.mark.parametrize("protocol", list(CLASSES))
def test_refusal_json_and_stream_collect_to_the_same_answer(protocol):
    p = make(protocol)
    refusal = "Sorry, I can't help with that."
    r = p.parse_chat_response(openai_completion(protocol=protocol, refusal=refusal))
    assert (r.text, r.finish_reason, r.native_finish_reason, r.refusal) == ("", "refusal", "stop", refusal)
    chunks = decode(p, openai_stream_events(protocol=protocol, refusal=refusal, include_usage=True))
    assert "".join(c.refusal for c in chunks) == refusal and len([c for c in chunks if c.refusal]) == 6
    s = collect(chunks)
    assert (s.text, s.finish_reason, s.native_finish_reason, s.refusal, s.content) == (r.text, r.finish_reason, "stop", refusal, r.content)


def test_wire_example_refusal_stream():
    """WIRE.md §2.11's example stream, verbatim."""
    base = {"id": "c7", "object": "chat.completion.chunk", "created": 1765000000, "model": "gpt-5.4"}
    deltas = [({"role": "assistant", "content": None, "refusal": ""}, None), ({"refusal": "Sorry, I can't help with that."}, None), ({}, "stop")]
    writes = [("data: " + json.dumps(dict(base, choices=[{"index": 0, "delta": d, "finish_reason": f}])) + "\n\n").encode() for d, f in deltas]
    chunks = decode(make("openai"), writes + [b"data: [DONE]\n\n"])
    assert [(c.refusal, c.finish_reason, c.native_finish_reason) for c in chunks] == [
        ("Sorry, I can't help with that.", None, None), ("", "refusal", "stop")]


def test_no_refusal_keeps_stop():
    r = make("openai").parse_chat_response(openai_completion("Hello"))
    assert (r.finish_reason, r.refusal) == ("stop", None)


# ---------------------------------------------------------------------- usage
@pytest.mark.parametrize("protocol", list(CLASSES))
def test_reasoning_tokens_cache_and_cost_json_and_stream(protocol):
    p = make(protocol)
    usage = {"input_tokens": 30, "output_tokens": 12, "cache_read_tokens": 8, "cache_write_tokens": 5, "reasoning_tokens": 9,
             "cost": 0.00197}  # fmt: skip
    r = p.parse_chat_response(openai_completion("Hi", usage=usage, protocol=protocol))
    s = collect(decode(p, openai_stream_events("Hi", usage=usage, protocol=protocol, include_usage=True)))
    for u in (r.usage, s.usage):
        assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens) == (30, 12, 8, 5, 9)
        assert u.cost == (0.00197 if protocol == "openrouter" else None)


def test_openai_reasoning_is_only_a_token_count():
    p = make("openai")
    r = p.parse_chat_response(openai_completion("4", reasoning="two plus two"))
    assert r.reasoning == "" and r.usage.reasoning_tokens == 3 and [type(x).__name__ for x in r.content] == ["TextPart"]


def test_compatible_reasoning_content_becomes_a_reasoning_part():
    p = make("openai_compatible")
    r = p.parse_chat_response(openai_completion("4", protocol="openai_compatible", reasoning="two plus two"))
    s = collect(decode(p, openai_stream_events("4", protocol="openai_compatible", reasoning="two plus two")))
    assert r.reasoning == "two plus two" and s.content == r.content and r.content[0].provider == "openai_compatible"
    ollama_v1 = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "4", "reasoning": "2+2"}}]}
    assert p.parse_chat_response(ollama_v1).reasoning == "2+2"
    # compatible servers get no reasoning back
    sent = body(p, [{"role": "user", "content": "q"}, r.message, {"role": "user", "content": "again"}], model="qwen3")
    assert sent["messages"][1] == {"role": "assistant", "content": "4"}


# ---------------------------------------------------------------------- cache
def test_cache_is_ignored_by_openai_and_compatible_servers():
    assert body(make("openai"), cache=True) == body(make("openai"))
    assert body(make("openai_compatible"), model="m", cache=True) == body(make("openai_compatible"), model="m")


# --------------------------------------------------------------------- models
def test_openai_shutdown_date_is_the_retirement_date():
    models, _ = make("openai").parse_models_response({"object": "list", "data": [
        {"id": "gpt-5.4-mini", "object": "model", "created": 1, "owned_by": "system", "shutdown_date": None},
        {"id": "gpt-5-mini", "object": "model", "created": 1, "owned_by": "system", "shutdown_date": "2026-12-11"},
        {"id": "old", "object": "model", "created": 1, "owned_by": "system"},
    ]})  # fmt: skip
    assert [(m.id, m.deprecated, m.retirement_date) for m in models] == [
        ("gpt-5.4-mini", False, None), ("gpt-5-mini", True, "2026-12-11"), ("old", None, None)]


def test_openrouter_expiration_date_is_the_retirement_date():
    models, _ = make("openrouter").parse_models_response({"data": [
        {"id": "a/b", "expiration_date": "2027-01-14T00:00:00Z"}, {"id": "c/d", "expiration_date": None}]})
    assert [(m.deprecated, m.retirement_date) for m in models] == [(True, "2027-01-14"), (False, None)]


def test_default_models():
    assert OpenAIProvider.default_model == "gpt-5.4-mini" and OpenRouterProvider.default_model is None


# ------------------------------------------------------ decoder fast path
FAST_PATH_EVENTS = [
    {"choices": [{"index": 0, "delta": {"content": "Hi"}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{"}}]}}]},
    {"choices": [{"index": 0, "delta": {"refusal": "No."}}]},
    {"choices": [{"index": 0, "delta": {"content": "", "refusal": "No."}}]},
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "refusal": ""}}]},
    {"choices": [{"index": 0, "delta": {"content": "x", "reasoning": None, "reasoning_details": []}}]},
    {"choices": [{"index": 0, "delta": {"content": "", "reasoning": "hm"}}]},
    {"choices": [{"index": 0, "delta": {"reasoning_content": "hm"}}]},
    {"choices": [{"index": 0, "delta": {"reasoning_details": [{"type": "reasoning.text", "text": "hm", "index": 0}]}}]},
    {"choices": [{"index": 0, "delta": {"content": None}}]},
]


@pytest.mark.parametrize("obj", FAST_PATH_EVENTS, ids=range(len(FAST_PATH_EVENTS)))
@pytest.mark.parametrize("protocol", list(CLASSES))
def test_fast_path_equals_the_general_decoder_for_new_delta_kinds(obj, protocol):
    ev = SSEEvent("message", json.dumps(obj))
    fast, general = make(protocol).new_stream_decoder(None), make(protocol).new_stream_decoder(None)
    assert fast.feed(ev) == general._feed(ev, ev.data, None)
    assert (fast._refused, fast._saw_tool_calls) == (general._refused, general._saw_tool_calls)
