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
        ["Hi", {"role": "assistant", "content": "Hello."}, "Bye", {"role": "system", "content": "French now."},
         {"role": "developer", "content": "Short."}], {"model": "claude-opus-4-8"}),  # fmt: skip
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
    assert new["messages"][3] == {"role": "system", "content": [{"type": "text", "text": "French now."}, {"type": "text", "text": "Short."}]}
    assert "system" not in new and len(new["messages"]) == 4
    old = build("2023-06-01", messages, options, False)
    assert old["system"] == "French now.\n\nShort." and [m["role"] for m in old["messages"]] == ["user", "assistant", "user"]
    haiku = build("2026-10-21", messages, {}, False)
    assert haiku["system"] == "French now.\n\nShort."


SYS = {"role": "system", "content": "Use metric units."}
CALL = ToolCall("toolu_9", "get_weather", {"city": "Paris"})
CALL2 = ToolCall("toolu_10", "get_time", {})


@pytest.mark.parametrize(
    "messages, roles, top",
    [
        # right after a user turn and last, or followed by an assistant turn: kept in place
        (["Hi", SYS], ["user", "system"], None),
        (["Hi", SYS, {"role": "assistant", "content": "Hello."}, "Bye"], ["user", "system", "assistant", "user"], None),
        # after a tool result that answers every call, before the assistant's next turn: kept
        (["Weather?", Message("assistant", "", tool_calls=[CALL]), Message.tool_result(CALL, "18C"), SYS,
          Message("assistant", "18C.")], ["user", "assistant", "user", "system", "assistant"], None),
        # right after an assistant turn: joined into the top-level system
        (["Hi", {"role": "assistant", "content": "Hello."}, SYS, "Bye"], ["user", "assistant", "user"], "Use metric units."),
        (["Hi", {"role": "assistant", "content": "Hello."}, SYS], ["user", "assistant"], "Use metric units."),
        # between a tool_use and its tool_result: joined, the result still follows the call
        (["Weather?", Message("assistant", "", tool_calls=[CALL]), SYS, Message.tool_result(CALL, "18C")],
         ["user", "assistant", "user"], "Use metric units."),
        # between two tool results of one turn (a result is still pending): joined, the results stay one turn
        (["Weather?", Message("assistant", "", tool_calls=[CALL, CALL2]), Message.tool_result(CALL, "18C"), SYS,
          Message.tool_result(CALL2, "14:00")], ["user", "assistant", "user"], "Use metric units."),
        # between two user turns: joined, the user turns merge
        (["Hi", SYS, "Bye"], ["user"], "Use metric units."),
    ],
)  # fmt: skip
def test_later_system_messages_stay_in_place_only_where_the_api_allows(messages, roles, top):
    body = build("2026-10-21", messages, {"model": "claude-opus-4-8", "tools": TOOLS}, False)
    assert [m["role"] for m in body["messages"]] == roles
    assert body.get("system") == top
    if top is None:
        assert {"role": "system", "content": "Use metric units."} in body["messages"]
    for i, m in enumerate(body["messages"]):
        if m["role"] == "assistant" and isinstance(m["content"], list) and any(b["type"] == "tool_use" for b in m["content"]):
            nxt = body["messages"][i + 1]  # every tool_use is answered right after, results first
            assert nxt["role"] == "user" and nxt["content"][0]["type"] == "tool_result"
    assert_valid(TYPES[False], body)


def test_an_assistant_turn_with_nothing_to_send_is_left_out():
    foreign = Message("assistant", [ReasoningPart("elsewhere", signature="x", provider="openrouter")])
    body = build("2026-10-21", ["Hi", foreign, "Still there?"], {}, False)
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Still there?"}]}]
    unsigned = Message("assistant", [ReasoningPart("no signature", provider="anthropic"), TextPart("")])
    body = build("2026-10-21", ["Hi", unsigned, "Again?", Message("assistant", "Yes.")], {}, False)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"] and body["messages"][1]["content"] == "Yes."
    # a system message after a dropped assistant turn follows the user turn before it
    body = build("2026-10-21", ["Hi", foreign, SYS], {"model": "claude-opus-4-8"}, False)
    assert body["messages"] == [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Use metric units."}]
    assert_valid(TYPES[False], body)


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
