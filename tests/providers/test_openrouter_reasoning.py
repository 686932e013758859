"""OpenRouter reasoning out (JSON and stream) and back in, usage cost, prompt caching, no include_usage."""

import json

import pytest

from modelprov import collect
from modelprov.providers.openai_compat.openai import OpenAIProvider
from modelprov.providers.openai_compat.openrouter import OpenRouterProvider
from modelprov.providers.openai_compat.wire import DetailMerger
from modelprov.streaming import SSEEvent
from modelprov.testing._openai import openai_completion, openai_stream_events
from modelprov.types import Message, ProviderConfig, ReasoningPart, ToolCall

KEY = "sk-or-v1-0123456789abcdef"
MODEL = "anthropic/claude-sonnet-5"
SIG = "EqQBCkgIARABGAIiQL"


def make(name="openrouter", cls=OpenRouterProvider):
    return cls(ProviderConfig(name=name, api_key=KEY, base_url="https://openrouter.ai/api/v1"))


def decode(provider, writes):
    dec = provider.new_stream_decoder(None)
    chunks = []
    for raw in writes:
        text = raw.decode() if isinstance(raw, bytes) else raw
        if not text.startswith("data: "):
            continue
        for chunk in dec.feed(SSEEvent("message", text[len("data: "):].rstrip("\n"))):
            chunk.provider = provider.instance_name
            chunks.append(chunk)
    chunks.extend(dec.finish())
    return chunks


def data(obj):
    return "data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n"


# ------------------------------------------------------------------ JSON out
def test_json_reasoning_and_details_become_one_reasoning_part():
    body = openai_completion("It is sunny.", protocol="openrouter", reasoning="Need Paris weather.", signature=SIG, model=MODEL)
    r = make().parse_chat_response(body)
    [part] = r.message.reasoning_parts
    assert r.content[0] is part and r.text == "It is sunny." and r.reasoning == "Need Paris weather."
    assert part.provider == "openrouter" and part.signature is None
    assert part.details == ({"type": "reasoning.text", "text": "Need Paris weather.", "signature": SIG,
                             "format": "anthropic-claude-v1", "index": 0},)  # fmt: skip


def test_json_details_only_text_is_joined_from_texts_and_summaries():
    details = [{"type": "reasoning.summary", "summary": "Plan: ", "id": "s1", "format": "openai-responses-v1", "index": 0},
               {"type": "reasoning.encrypted", "data": "gAAAA==", "id": "e1", "format": "openai-responses-v1", "index": 1},
               {"type": "reasoning.text", "text": "check.", "signature": None, "id": "t1", "format": "unknown", "index": 2}]  # fmt: skip
    body = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok", "reasoning": None,
                                                                         "reasoning_details": details}}]}  # fmt: skip
    part = make().parse_chat_response(body).content[0]
    assert (part.text, part.details) == ("Plan: check.", tuple(details))


def test_json_without_reasoning_has_no_part():
    r = make().parse_chat_response(openai_completion("Hi", protocol="openrouter"))
    assert [type(p).__name__ for p in r.content] == ["TextPart"] and r.reasoning == ""


# ---------------------------------------------------------------- stream out
WIRE_STREAM = [  # WIRE.md §5.7's example stream
    ": OPENROUTER PROCESSING\n\n",
    data({"id": "gen-1", "object": "chat.completion.chunk", "created": 1765000000, "model": MODEL, "provider": "Anthropic",
          "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "reasoning": "Need Paris weather; ",
                                             "reasoning_details": [{"type": "reasoning.text", "text": "Need Paris weather; ",
                                                                    "format": "anthropic-claude-v1", "index": 0}]},
                       "finish_reason": None}]}),
    data({"id": "gen-1", "choices": [{"index": 0, "delta": {"content": "", "reasoning_details": [
        {"type": "reasoning.text", "text": "", "signature": SIG, "format": "anthropic-claude-v1", "index": 0}]}, "finish_reason": None}]}),
    data({"id": "gen-1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "toolu_01B", "type": "function",
                                                                            "function": {"name": "get_weather",
                                                                                         "arguments": "{\"city\":\"Paris\"}"}}]},
                                      "finish_reason": None}]}),
    data({"id": "gen-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls", "native_finish_reason": "tool_use"}]}),
    data({"id": "gen-1", "choices": [], "usage": {"prompt_tokens": 512, "completion_tokens": 96, "total_tokens": 608, "cost": 0.00197,
                                                  "completion_tokens_details": {"reasoning_tokens": 61}}}),
    data("[DONE]"),
]  # fmt: skip


def test_wire_example_stream():
    chunks = decode(make(), WIRE_STREAM)
    assert [c.reasoning for c in chunks if c.reasoning] == ["Need Paris weather; "]  # counted once, not twice
    finish = [c for c in chunks if c.finish_reason][0]
    assert finish.reasoning_deltas[-1].details == ({"type": "reasoning.text", "text": "Need Paris weather; ", "signature": SIG,
                                                    "format": "anthropic-claude-v1", "index": 0},)  # fmt: skip
    r = collect(chunks)
    assert (r.finish_reason, r.native_finish_reason, r.usage.cost, r.usage.reasoning_tokens) == ("tool_calls", "tool_use", 0.00197, 61)
    assert r.tool_calls[0].arguments == {"city": "Paris"} and r.reasoning == "Need Paris weather; "
    assert r.content[0] == ReasoningPart("Need Paris weather; ", details=finish.reasoning_deltas[-1].details, provider="openrouter")


@pytest.mark.parametrize("signature", [None, SIG])
@pytest.mark.parametrize("calls", [None, [{"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}]])
def test_stream_collects_to_the_json_answer(signature, calls):
    kw = dict(protocol="openrouter", reasoning="Need the weather in Paris first.", signature=signature, model=MODEL)
    r = make().parse_chat_response(openai_completion("Sunny.", calls, **kw))
    s = collect(decode(make(), openai_stream_events("Sunny.", calls, **kw)))
    assert (s.text, s.content, s.reasoning, s.finish_reason, s.tool_calls) == (r.text, r.content, r.reasoning, r.finish_reason, r.tool_calls)
    assert s.usage == r.usage and s.usage.cost and s.usage.reasoning_tokens == 6


def test_details_only_deltas_give_text_and_merge_per_index():
    frags = [
        [{"type": "reasoning.summary", "summary": "Plan ", "id": "s", "format": "openai-responses-v1", "index": 0}],
        [{"type": "reasoning.summary", "summary": "ahead.", "format": "openai-responses-v1", "index": 0},
         {"type": "reasoning.encrypted", "data": "gAAA", "id": "e", "format": "openai-responses-v1", "index": 1}],
        [{"type": "reasoning.encrypted", "data": "BBBB", "format": "openai-responses-v1", "index": 1}],
    ]  # fmt: skip
    writes = [data({"choices": [{"index": 0, "delta": {"reasoning_details": f}}]}) for f in frags]
    writes += [data({"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}), data("[DONE]")]
    chunks = decode(make(), writes)
    assert [c.reasoning for c in chunks] == ["Plan ", "ahead.", ""] and chunks[-1].text == "ok"
    part = collect(chunks).content[0]
    assert part.text == "Plan ahead." and part.details == (
        {"type": "reasoning.summary", "summary": "Plan ahead.", "id": "s", "format": "openai-responses-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "gAAABBBB", "id": "e", "format": "openai-responses-v1", "index": 1})


def test_details_arriving_without_a_finish_chunk_are_sent_at_done():
    writes = [data({"choices": [{"index": 0, "delta": {"reasoning": "x", "reasoning_details": [
        {"type": "reasoning.text", "text": "x", "index": 0}]}}]}), data("[DONE]")]  # fmt: skip
    chunks = decode(make(), writes)
    assert chunks[-1].reasoning_deltas[0].details == ({"type": "reasoning.text", "text": "x", "index": 0},)


def test_detail_merger_without_indexes():
    m = DetailMerger()
    m.add([{"type": "reasoning.text", "text": "a"}, {"type": "reasoning.text", "text": "b", "signature": "s1"}])
    m.add([{"type": "reasoning.encrypted", "data": "z"}, {"type": "reasoning.text", "text": "c", "signature": "s2"}, "junk"])
    assert m.take() == ({"type": "reasoning.text", "text": "ab", "signature": "s1"}, {"type": "reasoning.encrypted", "data": "z"},
                        {"type": "reasoning.text", "text": "c", "signature": "s2"})  # fmt: skip
    assert m.take() is None  # nothing new


# ------------------------------------------------------------- back in
def _history(part):
    call = ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"})
    assistant = Message(role="assistant", content=[part], tool_calls=[call])
    return ["Weather in Paris?", assistant, Message.tool_result(call, {"temp": 21})]


def test_reasoning_details_go_back_unchanged_and_in_order():
    details = ({"type": "reasoning.text", "text": "Need weather.", "signature": SIG, "format": "anthropic-claude-v1", "index": 0},
               {"type": "reasoning.encrypted", "data": "x", "format": "anthropic-claude-v1", "index": 1})  # fmt: skip
    p = make()
    sent = p.build_chat_request(p.make_request(_history(ReasoningPart("Need weather.", details=details, provider="openrouter")),
                                               model=MODEL)).json  # fmt: skip
    assert sent["messages"][1] == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
        "reasoning_details": list(details),
    }  # fmt: skip
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": '{"temp": 21}'}


@pytest.mark.parametrize("origin", ["anthropic", "other-router"])
def test_parts_from_other_providers_are_dropped(origin):
    part = ReasoningPart("t", signature="sig", details=({"type": "reasoning.text", "text": "t", "index": 0},), provider=origin)
    p = make()
    assert "reasoning_details" not in p.build_chat_request(p.make_request(_history(part), model=MODEL)).json["messages"][1]


def test_a_named_openrouter_instance_takes_only_its_own_parts():
    p = make("router-eu")
    own = ReasoningPart("t", details=({"type": "reasoning.text", "text": "t", "index": 0},), provider="router-eu")
    assert "reasoning_details" in p.build_chat_request(p.make_request(_history(own), model=MODEL)).json["messages"][1]
    foreign = ReasoningPart("t", details=own.details, provider="openrouter")
    assert "reasoning_details" not in p.build_chat_request(p.make_request(_history(foreign), model=MODEL)).json["messages"][1]


def test_openai_takes_no_reasoning_back():
    p = make("openai", OpenAIProvider)
    part = ReasoningPart("t", details=({"type": "reasoning.text", "text": "t", "index": 0},), provider="openai")
    msg = p.build_chat_request(p.make_request(_history(part), model="gpt-5.4")).json["messages"][1]
    assert set(msg) == {"role", "content", "tool_calls"}


# --------------------------------------------------------- cache and usage
@pytest.mark.parametrize(
    "model, cache, expected",
    [("anthropic/claude-sonnet-5", True, {"type": "ephemeral"}), ("~anthropic/claude-sonnet-latest", True, {"type": "ephemeral"}),
     ("openai/gpt-5.4", True, None), ("anthropic/claude-sonnet-5", False, None), ("anthropic/claude-sonnet-5", None, None)],
)  # fmt: skip
def test_cache_marks_only_anthropic_models(model, cache, expected):
    p = make()
    sent = p.build_chat_request(p.make_request("Hi", model=model, cache=cache)).json
    assert sent.get("cache_control") == expected


def test_streams_ask_no_include_usage():
    p = make()
    sent = p.build_chat_request(p.make_request("Hi", model=MODEL, stream=True)).json
    assert sent == {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def test_cost_absent_is_none():
    body = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"content": "x"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip
    assert make().parse_chat_response(body).usage.cost is None
