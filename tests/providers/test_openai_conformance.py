"""Every request body the OpenAI-family codecs build, checked against the openai SDK's request types (no unknown keys).

OpenAI bodies must match ``CompletionCreateParamsNonStreaming`` / ``Streaming``
exactly. OpenRouter bodies must match them once OpenRouter's documented extras
are taken out (top-level ``reasoning``, ``provider``, ``models``,
``transforms``, ``plugins``, ``cache_control``; ``reasoning_details`` on
assistant messages), and those extras must be the only difference. Skipped
when the SDK is not installed (``pip install -e ".[test,sdk]"``).
"""

import base64
import copy

import pytest
from sdk_conformance import assert_valid

from modelprov.providers.openai_compat.compatible import OpenAICompatibleProvider
from modelprov.providers.openai_compat.openai import OpenAIProvider
from modelprov.providers.openai_compat.openrouter import OpenRouterProvider
from modelprov.types import ImagePart, Message, ProviderConfig, ReasoningPart, TextPart, ToolCall

NON_STREAMING = "openai.types.chat.completion_create_params.CompletionCreateParamsNonStreaming"
STREAMING = "openai.types.chat.completion_create_params.CompletionCreateParamsStreaming"
OPENROUTER_EXTRAS = {"reasoning", "provider", "models", "transforms", "plugins", "cache_control"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}  # fmt: skip
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def _history(provider_name):
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}, raw_arguments='{"city":"Paris"}')
    details = ({"type": "reasoning.text", "text": "Need weather.", "signature": "sig", "format": "anthropic-claude-v1", "index": 0},)
    return [
        Message(role="developer", content="Answer briefly."),
        Message(role="user", content=[TextPart("What is in this image, and the weather?"), ImagePart(data=PNG, detail="low")]),
        Message(role="assistant", content=[ReasoningPart("Need weather.", details=details, provider=provider_name)], tool_calls=[call]),
        Message.tool_result(call, {"temp": 21}),
        Message(role="assistant", content="Sunny, 21 C."),
        Message(role="user", content="Thanks!", name="sam"),
    ]


CASES = {
    "plain": dict(messages="Hello"),
    "system": dict(messages="Hello", system="Be brief.", max_tokens=256, temperature=0.5, top_p=0.9),
    "developer": dict(messages=[{"role": "developer", "content": "Use French."}, {"role": "user", "content": "Hi"}]),
    "tools auto": dict(messages="Weather?", tools=[WEATHER], tool_choice="auto"),
    "tools required": dict(messages="Weather?", tools=[WEATHER], tool_choice="required"),
    "tools none": dict(messages="Weather?", tools=[WEATHER], tool_choice="none"),
    "tools named": dict(messages="Weather?", tools=[WEATHER], tool_choice="get_weather"),
    "image url": dict(messages=[{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                                           {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "high"}}]}]),
    "image bytes": dict(messages=[Message(role="user", content=[ImagePart(data=PNG)])]),
    "json schema": dict(messages="Answer", response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}}),
    "json object": dict(messages="Answer in JSON", response_format="json"),
    "stop and seed": dict(messages="Count", stop=["5", "END"], seed=7),
    "single stop": dict(messages="Count", stop="END"),
    "reasoning budget": dict(messages="Think", reasoning=20000),
    "cache": dict(messages="Hello", cache=True),
}  # fmt: skip
EFFORTS = ["none", "minimal", "low", "medium", "high", "xhigh", "max"]


def provider(cls, name):
    return cls(ProviderConfig(name=name, api_key="sk-test-0123456789", base_url="http://x/v1"))


def build(p, model, stream=False, **kw):
    messages = kw.pop("messages")
    if messages == "history":
        messages = _history(p.instance_name)
    return p.build_chat_request(p.make_request(messages, model=model, stream=stream, **kw)).json


def all_cases():
    cases = dict(CASES)
    cases["history"] = dict(messages="history", tools=[WEATHER])
    for effort in EFFORTS:
        cases["reasoning " + effort] = dict(messages="Think", reasoning=effort)
    return cases


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("case", sorted(all_cases()))
def test_openai_bodies_match_the_sdk(case, stream):
    body = build(provider(OpenAIProvider, "openai"), "gpt-5.4", stream=stream, **copy.deepcopy(all_cases()[case]))
    assert_valid(STREAMING if stream else NON_STREAMING, body)
    if case == "developer":
        assert body["messages"][0]["role"] == "developer"
    if case == "history":
        assert all("reasoning_details" not in m for m in body["messages"])


def split_openrouter_extras(body):
    """(body without OpenRouter's extras, the extra keys found: top level, and per assistant message)."""
    body = copy.deepcopy(body)
    extras = {k for k in list(body) if k in OPENROUTER_EXTRAS and body.pop(k) is not None}
    for msg in body["messages"]:
        if msg.get("role") == "assistant" and "reasoning_details" in msg:
            del msg["reasoning_details"]
            extras.add("messages[].reasoning_details")
    return body, extras


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("case", sorted(all_cases()))
def test_openrouter_bodies_match_the_sdk_plus_documented_extras(case, stream):
    model = "anthropic/claude-sonnet-5"
    body = build(provider(OpenRouterProvider, "openrouter"), model, stream=stream, provider_options={"provider": {"order": ["anthropic"]}},
                 **copy.deepcopy(all_cases()[case]))  # fmt: skip
    rest, extras = split_openrouter_extras(body)
    assert_valid(STREAMING if stream else NON_STREAMING, rest)
    expected = {"provider"}
    if case.startswith("reasoning"):
        expected.add("reasoning")
    if case == "cache":
        expected.add("cache_control")
    if case == "history":
        expected.add("messages[].reasoning_details")
    assert extras == expected
    assert "stream_options" not in body


@pytest.mark.parametrize("case", sorted(all_cases()))
def test_openai_compatible_bodies_match_the_sdk(case):
    body = build(provider(OpenAICompatibleProvider, "vllm"), "Qwen/Qwen3-8B", stream=True, **copy.deepcopy(all_cases()[case]))
    assert_valid(STREAMING, body)


def test_image_bytes_are_a_data_url():
    body = build(provider(OpenAIProvider, "openai"), "gpt-5.4", **CASES["image bytes"])
    url = body["messages"][0]["content"][0]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(PNG).decode()
