"""Ollama reasoning (``think``), thinking out and back in, tool turns without ids, the developer
role, ``cache``, the run-time "does not support thinking" 400 and the issue's tool loop with
thinking, over real sockets (FakeServer) for JSON and streams."""

import json

import pytest

from modelprov import Client, Message, UnsupportedFeatureError, collect
from modelprov.engine import bind
from modelprov.exceptions import InvalidRequestError
from modelprov.providers.ollama.provider import OllamaProvider
from modelprov.testing import FakeServer, protocols
from modelprov.types import ProviderConfig, ReasoningPart, TextPart, Tool, ToolCall

MODEL = "qwen3"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
NO_THINKING = '"llama3.2" does not support thinking'


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


def ollama(server, name="ollama", **cfg):
    return bind(OllamaProvider(ProviderConfig(name=name, type="ollama", base_url=server.base_url("ollama"), **cfg)), sleep=lambda s: None)


def client(server, **kw):
    return Client(providers={"ollama": {"base_url": server.base_url("ollama")}}, sleep=lambda s: None, **kw)


# ------------------------------------------------------------- reasoning -> think
@pytest.mark.parametrize(
    "reasoning, think",
    [
        ("none", False), ("minimal", "low"), ("low", "low"), ("medium", "medium"), ("high", "high"),
        ("xhigh", "max"), ("max", "max"),
        (1, "low"), (1024, "low"), (4095, "low"), (4096, "medium"), (16383, "medium"), (16384, "high"),
        (32767, "high"), (32768, "max"), (200_000, "max"),
    ],
)  # fmt: skip
def test_reasoning_maps_to_think(server, reasoning, think):
    server.set_default("ollama", "ok")
    ollama(server).generate("Hi", model=MODEL, reasoning=reasoning)
    body = server.last_request.json
    assert body["think"] is think if isinstance(think, bool) else body["think"] == think


def test_no_reasoning_sends_no_think(server):
    server.set_default("ollama", "ok")
    ollama(server).generate("Hi", model=MODEL)
    assert "think" not in server.last_request.json


@pytest.mark.parametrize("model", ["gpt-oss:20b", "gpt-oss:120b-cloud", "library/gpt-oss"])
def test_gpt_oss_cannot_turn_thinking_off_so_none_is_its_lowest_level(server, model):
    server.set_default("ollama", "ok")
    ollama(server).generate("Hi", model=model, reasoning="none")
    assert server.last_request.json["think"] == "low"
    ollama(server).generate("Hi", model=model, reasoning="max")
    assert server.last_request.json["think"] == "max"


def test_a_think_provider_option_wins(server):
    server.set_default("ollama", "ok")
    ollama(server).generate("Hi", model=MODEL, reasoning="high", think=True)
    assert server.last_request.json["think"] is True


def test_cache_is_accepted_and_ignored_and_no_cache_tokens_are_reported(server):
    server.add_chat("ollama", "ok", usage={"input_tokens": 40, "output_tokens": 1})
    r = ollama(server).generate("Hi", model=MODEL, cache=True)
    assert server.last_request.json == {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": False}
    assert (r.usage.cache_read_tokens, r.usage.cache_write_tokens, r.usage.reasoning_tokens) == (None, None, None)
    assert r.dropped_options == []


def test_developer_role_is_sent_as_system(server):
    server.add_chat("ollama", "ok")
    ollama(server).generate([{"role": "developer", "content": "Be terse."}, "Hi"], model=MODEL, system="You are a bot.")
    assert server.last_request.json["messages"] == [
        {"role": "system", "content": "You are a bot."},
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hi"},
    ]


# ------------------------------------------------------------- thinking out
def test_json_thinking_is_the_first_content_part(server):
    server.add_chat("ollama", "17 × 23 = 391.", reasoning="17×20=340, 17×3=51, total 391.")
    r = ollama(server, name="local").generate("17 × 23?", model=MODEL, reasoning="medium")
    assert r.content == [ReasoningPart("17×20=340, 17×3=51, total 391.", provider="local"), TextPart("17 × 23 = 391.")]
    assert (r.reasoning, r.text, r.finish_reason) == ("17×20=340, 17×3=51, total 391.", "17 × 23 = 391.", "stop")
    assert r.raw["message"]["thinking"] == r.reasoning


def test_stream_thinking_lines_come_first_and_collect_like_json(server):
    lines = protocols.chat_stream("ollama", "17 × 23 = 391.", reasoning="17×20=340, total 391.", model=MODEL)
    first = json.loads(lines[0])
    assert first["message"] == {"role": "assistant", "content": "", "thinking": "17×20=340,"} and first["done"] is False
    server.add_chat("ollama", "17 × 23 = 391.", reasoning="17×20=340, total 391.")
    server.add_chat("ollama", "17 × 23 = 391.", reasoning="17×20=340, total 391.")
    p = ollama(server)
    chunks = list(p.stream("17 × 23?", model=MODEL, reasoning="high"))
    assert [c.reasoning for c in chunks if c.reasoning] == ["17×20=340,", " total", " 391."]
    first_text = min(i for i, c in enumerate(chunks) if c.text)
    assert all(not c.reasoning for c in chunks[first_text:])
    streamed, whole = collect(chunks), p.generate("17 × 23?", model=MODEL, reasoning="high")
    assert streamed.content == whole.content == [ReasoningPart("17×20=340, total 391.", provider="ollama"), TextPart("17 × 23 = 391.")]
    assert (streamed.reasoning, streamed.usage.output_tokens) == (whole.reasoning, whole.usage.output_tokens)


def test_thinking_split_across_writes_mid_character_reassembles(server):
    thought = "Grüße — 17×23 ist 391 👋"
    server.add_chat("ollama", "391", reasoning=thought, split_utf8=True)
    r = collect(ollama(server).stream("17 × 23?", model=MODEL))
    assert (r.reasoning, r.text) == (thought, "391")


def test_generate_endpoint_builders_put_thinking_top_level():
    body = protocols.chat_body("ollama", "ok", reasoning="hmm", endpoint="generate")
    assert (body["response"], body["thinking"]) == ("ok", "hmm")
    body = protocols.chat_body("ollama", "ok", reasoning="hmm", signature="ignored", refusal="ignored")
    assert body["message"] == {"role": "assistant", "content": "ok", "thinking": "hmm"}


# ------------------------------------------------------------- thinking back in
def test_reasoning_parts_go_back_as_thinking_only_to_their_provider(server):
    server.set_default("ollama", "ok")
    history = [
        "Q1",
        Message("assistant", [ReasoningPart("mine", provider="ollama"), ReasoningPart(" untagged"),
                              ReasoningPart("theirs", signature="s", provider="anthropic"), TextPart("A1")]),
        "Q2",
        Message("assistant", [ReasoningPart("elsewhere", provider="openrouter"), TextPart("A2")]),
        "Q3",
    ]  # fmt: skip
    ollama(server).generate(history, model=MODEL)
    assert server.last_request.json["messages"] == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1", "thinking": "mine untagged"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2"},
        {"role": "user", "content": "Q3"},
    ]
    ollama(server, name="other-ollama").generate(history, model=MODEL)  # another instance: only untagged parts
    assert server.last_request.json["messages"][1] == {"role": "assistant", "content": "A1", "thinking": " untagged"}


# ------------------------------------------------------------- run-time refusal of think
def test_model_without_thinking_400_is_unsupported_reasoning(server):
    server.add_error(400, protocol="ollama", message=NO_THINKING)
    with pytest.raises(UnsupportedFeatureError) as info:
        ollama(server).generate("Hi", model="llama3.2", reasoning="high")
    exc = info.value
    assert (exc.extra["option"], exc.extra["param"], exc.status_code, exc.provider) == ("reasoning", "think", 400, "ollama")
    assert "drop_unsupported" in exc.hint and len(server.requests) == 1


@pytest.mark.parametrize("streamed", [False, True])
def test_drop_unsupported_resends_without_think_and_remembers(server, streamed):
    server.set_default("ollama", "plain answer")
    server.add_error(400, protocol="ollama", message=NO_THINKING)
    c = client(server, drop_unsupported=True)

    def ask():
        if streamed:
            return collect(c.stream("ollama/llama3.2", "Hi", reasoning="high"))
        return c.complete("ollama/llama3.2", "Hi", reasoning="high")

    first = ask()
    assert (first.text, first.dropped_options) == ("plain answer", ["reasoning"])
    assert [r.json.get("think") for r in server.requests] == ["high", None]
    second = ask()
    assert second.dropped_options == ["reasoning"] and len(server.requests) == 3
    assert "think" not in server.requests[2].json
    c.close()


def test_unknown_think_level_400_is_unsupported_reasoning_too(server):
    server.add_error(400, protocol="ollama", message="invalid think value: \"max\" (must be \"high\", \"medium\", \"low\", true, or false)")
    with pytest.raises(UnsupportedFeatureError) as info:
        ollama(server).generate("Hi", model=MODEL, reasoning="max")
    assert info.value.extra["option"] == "reasoning"
    assert info.value.extra["value_specific"] is True  # the model thinks: only that level is refused


def test_no_thinking_400_is_not_value_specific(server):
    server.add_error(400, protocol="ollama", message=NO_THINKING)
    with pytest.raises(UnsupportedFeatureError) as info:
        ollama(server).generate("Hi", model=MODEL, reasoning="high")
    assert info.value.extra["option"] == "reasoning" and "value_specific" not in info.value.extra


def test_other_capability_400s_stay_invalid_request(server):
    server.add_error(400, protocol="ollama", message='"gemma3" does not support tools')
    with pytest.raises(InvalidRequestError):
        ollama(server).generate("Hi", model="gemma3", tools=[Tool("get_weather", None, WEATHER)])


# ------------------------------------------------------------- the issue's tool loop
def run(call):
    return {"city": call.arguments["city"], "temp_c": 3}


@pytest.mark.parametrize("streamed", [False, True])
def test_issue_tool_loop_with_thinking(server, streamed):
    server.add_chat("ollama", "", reasoning="I need the weather for Oslo.",
                    tool_calls=[{"id": "call_x1", "name": "get_weather", "arguments": {"city": "Oslo"}}])  # fmt: skip
    server.add_chat("ollama", "It is 3 °C in Oslo.", reasoning="The tool says 3 °C.")
    c = client(server)
    model, tools = "ollama/qwen3", [Tool("get_weather", "Weather for a city", WEATHER)]

    def complete(model, messages, tools):
        if streamed:
            return collect(c.stream(model, messages, tools=tools, reasoning="high"))
        return c.complete(model, messages, tools=tools, reasoning="high")

    messages = [Message("user", "Weather in Oslo?")]
    r = complete(model, messages, tools=tools)
    assert r.reasoning == "I need the weather for Oslo." and r.finish_reason == "tool_calls"
    while r.tool_calls:
        messages.append(r.message)
        for call in r.tool_calls:
            messages.append(Message.tool_result(call, run(call)))
        r = complete(model, messages, tools=tools)
    assert (r.text, r.reasoning, r.finish_reason) == ("It is 3 °C in Oslo.", "The tool says 3 °C.", "stop")
    first, second = (req.json for req in server.requests)
    assert first["think"] == second["think"] == "high" and first["stream"] is second["stream"] is streamed
    assert second["messages"] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "thinking": "I need the weather for Oslo.",
         "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": '{"city": "Oslo", "temp_c": 3}', "tool_name": "get_weather"},
    ]  # fmt: skip
    assert messages[1].tool_calls[0] == ToolCall("call_x1", "get_weather", {"city": "Oslo"},
                                                 raw_arguments=messages[1].tool_calls[0].raw_arguments)  # fmt: skip
    c.close()
