"""Every ``/v1/messages`` body the Anthropic codec builds, checked against the official SDK's request types.

``anthropic`` 2.17's ``MessageCreateParamsNonStreaming`` / ``MessageCreateParamsStreaming``
describe API version 2026-10-21, with unknown keys forbidden by ``sdk_conformance.assert_valid``.
Under 2023-06-01 the same types apply, except that ``temperature``/``top_p``/``top_k`` (dropped
from the SDK at 1.0, still taken by that API version on older models) may also be present: those
bodies are validated without them, and they must be the only extra keys. Skipped without the SDK.
"""

import base64
import copy

import pytest
from sdk_conformance import assert_valid, require_sdk

from modelprov.providers.anthropic.provider import AnthropicProvider
from modelprov.types import ImagePart, Message, ProviderConfig, ProviderPart, ReasoningPart, TextPart, Tool, ToolCall

require_sdk("anthropic")

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = [Tool("get_weather", "Weather for a city", WEATHER), Tool("get_time", None, {"type": "object", "properties": {}})]
VERSIONS = ["2026-10-21", "2023-06-01"]
TYPES = {False: "anthropic.types.message_create_params.MessageCreateParamsNonStreaming",
         True: "anthropic.types.message_create_params.MessageCreateParamsStreaming"}  # fmt: skip
SAMPLING = ("temperature", "top_p", "top_k")

SERVER_USE = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "Paris weather"}}
SEARCH_RESULT = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
    {"type": "web_search_result", "url": "https://example.com/w", "title": "Weather", "encrypted_content": "EqgB", "page_age": None}]}  # fmt: skip


def provider(version):
    return AnthropicProvider(ProviderConfig(name="anthropic", api_key="k", options=(("api_version", version),)))


def history_with_reasoning():
    call = ToolCall("toolu_1", "get_weather", {"city": "Paris"})
    return [
        "Weather in Paris?",
        Message("assistant", [ReasoningPart("User wants weather.", signature="EuYBsig", provider="anthropic"),
                              ReasoningPart(redacted_data="EnCrYpTeD", provider="anthropic"),
                              ReasoningPart("from elsewhere", signature="x", provider="openrouter"),
                              TextPart("Checking.")], tool_calls=[call]),  # fmt: skip
        Message.tool_result(call, {"temp": 18}),
        Message("assistant", [ReasoningPart("Now answer.", signature="EuYBsig2", provider="anthropic"), TextPart("18C.")]),
        "And tomorrow?",
    ]


CASES = {
    "plain": ("Hello", {}),
    "system and later system messages": (
        [{"role": "system", "content": "Be terse."}, "Hi", {"role": "assistant", "content": "Hello."},
         {"role": "system", "content": "Answer in French."}, "Bye"], {"system": "You are a bot."}),  # fmt: skip
    "system messages kept in place": (
        ["Hi", {"role": "assistant", "content": "Hello."}, {"role": "system", "content": "French now."},
         {"role": "developer", "content": "Short."}, "Bye"], {"model": "claude-opus-4-8"}),  # fmt: skip
    "developer role": ([{"role": "developer", "content": "No emoji."}, "Hi", {"role": "assistant", "content": "Hey"},
                        {"role": "developer", "content": "Shorter."}, "Bye"], {}),  # fmt: skip
    "tools auto": ("Weather?", {"tools": TOOLS, "tool_choice": "auto"}),
    "tools required": ("Weather?", {"tools": TOOLS, "tool_choice": "required"}),
    "tools named": ("Weather?", {"tools": TOOLS, "tool_choice": "get_weather"}),
    "tools none": ("Weather?", {"tools": TOOLS, "tool_choice": "none"}),
    "images": ([{"role": "user", "content": [TextPart("What is this?"), ImagePart(url="https://example.com/cat.jpg"),
                                              ImagePart(data=PNG)]}], {}),  # fmt: skip
    "reasoning effort adaptive": ("Think.", {"reasoning": "xhigh", "model": "claude-opus-4-7"}),
    "reasoning effort 4.6": ("Think.", {"reasoning": "xhigh", "model": "claude-opus-4-6"}),
    "reasoning effort enabled-only": ("Think.", {"reasoning": "medium", "model": "claude-haiku-4-5"}),
    "reasoning none": ("Think.", {"reasoning": "none", "model": "claude-sonnet-4-6"}),
    "reasoning none always-on": ("Think.", {"reasoning": "none", "model": "claude-fable-5"}),
    "reasoning minimal": ("Think.", {"reasoning": "minimal", "model": "claude-sonnet-5"}),
    "reasoning budget enabled": ("Think.", {"reasoning": 5000, "model": "claude-haiku-4-5"}),
    "reasoning budget adaptive": ("Think.", {"reasoning": 5000, "model": "claude-opus-4-8"}),
    "cache": ("Hello", {"cache": True, "system": "Long instructions."}),
    "json schema": ("City?", {"response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": WEATHER}}}),
    "json schema and effort": ("City?", {"response_format": WEATHER, "reasoning": "low", "model": "claude-opus-5"}),
    "stop": ("Count", {"stop": ["END", "STOP"], "max_tokens": 100}),
    "history with reasoning and tools": (history_with_reasoning(), {"tools": TOOLS, "reasoning": "high"}),
    "redacted thinking only": (["q", Message("assistant", [ReasoningPart(redacted_data="abc", provider="anthropic")],
                                             tool_calls=[ToolCall("toolu_2", "get_time", {})]),
                                Message("tool", "14:00", tool_call_id="toolu_2")], {"tools": TOOLS}),  # fmt: skip
    "provider parts (paused turn)": (
        ["Search the weather", Message("assistant", [
            ReasoningPart("Search first.", signature="sigA", provider="anthropic"), TextPart("Let me search."),
            ProviderPart("anthropic", SERVER_USE), ProviderPart("anthropic", SEARCH_RESULT),
            ProviderPart("other", {"type": "mystery"}), TextPart("Found it.")])], {}),  # fmt: skip
    "metadata and service tier": ("Hi", {"provider_options": {"metadata": {"user_id": "u-1"}, "service_tier": "auto"}}),
}


def build(version, messages, options, stream):
    p = provider(version)
    opts = dict(options)
    model = opts.pop("model", "claude-haiku-4-5")
    return p.build_chat_request(p.make_request(copy.deepcopy(messages), model=model, stream=stream, **opts)).json


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_every_body_matches_the_sdk_request_type(case, version, stream):
    messages, options = CASES[case]
    body = build(version, messages, options, stream)
    assert_valid(TYPES[stream], body)


@pytest.mark.parametrize("stream", [False, True])
def test_legacy_sampling_options_are_the_only_extras(stream):
    body = build("2023-06-01", "Hi", {"temperature": 0.2, "top_p": 0.9, "provider_options": {"top_k": 40},
                                      "model": "claude-sonnet-4-6"}, stream)  # fmt: skip
    assert {k: body[k] for k in SAMPLING} == {"temperature": 0.2, "top_p": 0.9, "top_k": 40}
    assert_valid(TYPES[stream], {k: v for k, v in body.items() if k not in SAMPLING})
    with pytest.raises(AssertionError, match="unknown key 'temperature'"):
        assert_valid(TYPES[stream], body)  # the 2026-10-21 types do not take them


def test_system_messages_in_place_only_under_2026_and_on_models_that_take_them():
    messages, options = CASES["system messages kept in place"]
    new = build("2026-10-21", messages, options, False)
    assert new["messages"][2] == {"role": "system", "content": [{"type": "text", "text": "French now."}, {"type": "text", "text": "Short."}]}
    assert "system" not in new
    old = build("2023-06-01", messages, options, False)
    assert old["system"] == "French now.\n\nShort." and [m["role"] for m in old["messages"]] == ["user", "assistant", "user"]
    haiku = build("2026-10-21", messages, {}, False)
    assert haiku["system"] == "French now.\n\nShort."


def test_history_body_content_order():
    body = build("2026-10-21", history_with_reasoning(), {"tools": TOOLS}, False)
    assistant = body["messages"][1]["content"]
    assert [b["type"] for b in assistant] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert assistant[0] == {"type": "thinking", "thinking": "User wants weather.", "signature": "EuYBsig"}
    assert body["messages"][3]["content"][0] == {"type": "thinking", "thinking": "Now answer.", "signature": "EuYBsig2"}


def test_paused_turn_goes_back_in_native_order():
    body = build("2026-10-21", *CASES["provider parts (paused turn)"], False)
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Search first.", "signature": "sigA"},
        {"type": "text", "text": "Let me search."}, SERVER_USE, SEARCH_RESULT, {"type": "text", "text": "Found it."},
    ]  # fmt: skip


def test_image_base64_block_shape():
    body = build("2026-10-21", *CASES["images"], False)
    png = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()}}
    assert body["messages"][0]["content"][2] == png
