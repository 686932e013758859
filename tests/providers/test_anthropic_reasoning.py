"""Anthropic reasoning out and back in, refusals and paused turns, JSON and streams through real sockets.

The FakeServer emits thinking blocks (``thinking_delta`` fragments and a ``signature_delta``),
``redacted_thinking`` blocks, ``output_tokens_details.thinking_tokens`` and refusals with
``stop_details``; every stream must ``collect()`` to what the JSON answer parses to.
"""

import json

import pytest

from modelprov import Client, Message, collect
from modelprov.engine import bind
from modelprov.providers.anthropic.provider import AnthropicProvider
from modelprov.streaming import SSEEvent
from modelprov.testing import FakeServer, anthropic_message, anthropic_stream_events
from modelprov.types import ProviderConfig, ProviderPart, ReasoningDelta, ReasoningPart, TextPart, ToolCall

KEY = "sk-ant-test-0123456789abcdef"
MODEL = "claude-haiku-4-5"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]  # fmt: skip
CALL = {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}
THOUGHT = "User wants Paris weather; call get_weather."


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


def make(server=None, name="anthropic"):
    cfg = ProviderConfig(name=name, type="anthropic", api_key=KEY, base_url=server.url if server else "http://127.0.0.1:9")
    return bind(AnthropicProvider(cfg), sleep=lambda s: None)


def sse(events):
    return {"headers": {"Content-Type": "text/event-stream"}, "chunks": events}


def comparable(res):
    return (res.text, res.content, [(c.id, c.name, c.arguments) for c in res.tool_calls], res.finish_reason,
            res.native_finish_reason, res.refusal, res.reasoning, res.usage.reasoning_tokens, res.usage.output_tokens)  # fmt: skip


# ----------------------------------------------------------------- reasoning out
def test_json_thinking_becomes_reasoning_parts_before_the_text(server):
    server.add_chat("anthropic", "Sunny.", reasoning=THOUGHT, signature="EuYBsig", usage={"output_tokens": 40, "reasoning_tokens": 30})
    r = make(server).generate("Weather?", model=MODEL, reasoning="high")
    assert r.content == [ReasoningPart(THOUGHT, signature="EuYBsig", provider="anthropic"), TextPart("Sunny.")]
    assert (r.text, r.reasoning, r.usage.reasoning_tokens, r.usage.output_tokens) == ("Sunny.", THOUGHT, 30, 40)
    assert r.message.content == r.content


def test_default_signature_and_thinking_tokens_from_the_fake_server():
    body = anthropic_message("Hi", reasoning="Hmm, let me see")
    block = body["content"][0]
    assert block["type"] == "thinking" and block["signature"].startswith("sig-") and len(block["signature"]) > 8
    assert body["usage"]["output_tokens_details"] == {"thinking_tokens": 4}
    assert "output_tokens_details" not in anthropic_message("Hi")["usage"]


def test_stream_thinking_deltas_signature_and_usage(server):
    server.add_chat("anthropic", "Sunny today.", reasoning=THOUGHT, signature="EuYBsig",
                    usage={"output_tokens": 50, "reasoning_tokens": 33})  # fmt: skip
    chunks = list(make(server).stream("Weather?", model=MODEL, reasoning="high"))
    deltas = [d for c in chunks for d in c.reasoning_deltas]
    assert {d.index for d in deltas} == {0}
    assert "".join(d.text for d in deltas) == THOUGHT == "".join(c.reasoning for c in chunks)
    assert [d.signature for d in deltas if d.signature] == ["EuYBsig"]
    assert all(c.reasoning == "".join(d.text for d in c.reasoning_deltas) for c in chunks)
    assert chunks[-1].usage.reasoning_tokens == 33
    res = collect(chunks)
    assert res.content == [ReasoningPart(THOUGHT, signature="EuYBsig", provider="anthropic"), TextPart("Sunny today.")]


@pytest.mark.parametrize(
    "kw",
    [
        dict(text="Sunny.", reasoning=THOUGHT),
        dict(text="", tool_calls=[CALL], reasoning=THOUGHT, signature="abc"),
        dict(text="Grüße 👋", reasoning="Dänk — ß", redacted="EnCrYpTeD=="),
        dict(text="", reasoning="", signature="only-a-signature"),
        dict(text="partial", refusal="This request was declined.", refusal_category="cyber"),
        dict(text="", refusal="Declined."),
        dict(text="cut", finish_reason="pause_turn"),
        dict(text="long", finish_reason="model_context_window_exceeded", reasoning="x"),
    ],
)
def test_stream_collects_to_the_json_answer(server, kw):
    server.add_raw(200, body=json.dumps(anthropic_message(**kw)).encode(), headers={"Content-Type": "application/json"})
    server.add_raw(200, **sse(anthropic_stream_events(**kw)))
    p = make(server)
    whole = p.generate("q", model=MODEL)
    streamed = collect(p.stream("q", model=MODEL))
    assert comparable(streamed) == comparable(whole)


def test_redacted_thinking_json_and_stream(server):
    events = anthropic_stream_events("Answer", reasoning="visible", redacted="EnCrYpTeD")
    server.add_raw(200, **sse(events))
    chunks = list(make(server).stream("q", model=MODEL))
    redacted = [d for c in chunks for d in c.reasoning_deltas if d.redacted_data]
    assert redacted == [ReasoningDelta(index=1, redacted_data="EnCrYpTeD")]
    res = collect(chunks)
    assert res.content[1] == ReasoningPart(redacted_data="EnCrYpTeD", provider="anthropic")
    assert res.content[1].redacted and res.reasoning == "visible"


def test_reasoning_blocks_are_counted_apart_from_content_indexes():
    d = make().new_stream_decoder(None)
    ev = lambda name, **data: SSEEvent(name, json.dumps(dict({"type": name}, **data)))
    out = []
    for e in [ev("message_start", message={"id": "m", "model": "c", "usage": {"input_tokens": 1, "output_tokens": 1}}),
              ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
              ev("content_block_start", index=1, content_block={"type": "thinking", "thinking": "", "signature": ""}),
              ev("content_block_delta", index=1, delta={"type": "thinking_delta", "thinking": "a"}),
              ev("content_block_start", index=2, content_block={"type": "tool_use", "id": "t", "name": "f", "input": {}}),
              ev("content_block_start", index=3, content_block={"type": "redacted_thinking", "data": "R"}),
              ev("content_block_start", index=4, content_block={"type": "thinking", "thinking": "", "signature": ""}),
              ev("content_block_delta", index=4, delta={"type": "thinking_delta", "thinking": "b"}),
              ev("content_block_delta", index=4, delta={"type": "signature_delta", "signature": "S"})]:  # fmt: skip
        out.extend(d.feed(e))
    deltas = [x for c in out for x in c.reasoning_deltas]
    assert [(x.index, x.text, x.signature, x.redacted_data) for x in deltas] == [
        (0, "", None, None), (0, "a", None, None), (1, "", None, "R"), (2, "", None, None), (2, "b", None, None), (2, "", "S", None)]  # fmt: skip
    assert [t.index for c in out for t in c.tool_calls] == [0]


# --------------------------------------------------------------- refusals, pause
def test_refusal_json_and_stream(server):
    server.add_chat("anthropic", "", refusal="I can't help with that.")
    r = make(server).generate("bad", model=MODEL)
    assert (r.finish_reason, r.native_finish_reason, r.refusal, r.text) == ("refusal", "refusal", "I can't help with that.", "")
    assert r.raw["stop_details"] == {"type": "refusal", "category": None, "explanation": "I can't help with that."}
    server.add_chat("anthropic", "", refusal="I can't help with that.")
    chunks = list(make(server).stream("bad", model=MODEL))
    assert chunks[-1].refusal == "I can't help with that." and chunks[-1].finish_reason == "refusal"
    assert collect(chunks).refusal == "I can't help with that."


def test_refusal_without_stop_details_has_no_explanation():
    r = make().parse_chat_response({"content": [{"type": "text", "text": "par"}], "stop_reason": "refusal", "stop_details": None, "usage": {}})
    assert (r.finish_reason, r.refusal, r.text) == ("refusal", None, "par")


SERVER_USE = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "weather"}}
RESULT = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}


def paused_body():
    return {"id": "msg_p", "type": "message", "role": "assistant", "model": MODEL, "stop_reason": "pause_turn",
            "content": [{"type": "thinking", "thinking": "Search.", "signature": "sigP"},
                        {"type": "text", "text": "Searching. "}, SERVER_USE, RESULT, {"type": "text", "text": "Found."}],
            "usage": {"input_tokens": 5, "output_tokens": 9}}  # fmt: skip


def test_server_blocks_become_provider_parts_in_content_order():
    r = make().parse_chat_response(paused_body())
    assert (r.finish_reason, r.native_finish_reason, r.text) == ("pause", "pause_turn", "Searching. Found.")
    assert r.content == [ReasoningPart("Search.", signature="sigP", provider="anthropic"), TextPart("Searching. "),
                         ProviderPart("anthropic", SERVER_USE), ProviderPart("anthropic", RESULT), TextPart("Found.")]  # fmt: skip


def test_a_paused_turn_resumes_when_its_message_is_sent_back(server):
    server.add_raw(200, body=json.dumps(paused_body()).encode(), headers={"Content-Type": "application/json"})
    server.add_chat("anthropic", "It is sunny.")
    p = make(server)
    messages = ["Weather in Paris?"]
    r = p.generate(messages, model=MODEL)
    while r.finish_reason == "pause":
        messages.append(r.message)
        r = p.generate(messages, model=MODEL)
    assert r.text == "It is sunny."
    assert server.requests[1].json["messages"][1] == {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Search.", "signature": "sigP"}, {"type": "text", "text": "Searching. "},
        SERVER_USE, RESULT, {"type": "text", "text": "Found."}]}  # fmt: skip


def test_provider_parts_round_trip_through_to_dict(server):
    r = make().parse_chat_response(paused_body())
    again = Message.from_dict(json.loads(json.dumps(r.message.to_dict())))
    p = make()
    sent = p.build_chat_request(p.make_request(["q", again], model=MODEL)).json
    assert sent["messages"][1]["content"][2:4] == [SERVER_USE, RESULT]


# ------------------------------------------------------------------- back in
def test_reasoning_parts_go_first_and_foreign_or_unsigned_ones_are_dropped():
    p = make()
    msg = Message("assistant", [TextPart("Let me check."), ReasoningPart("mine", signature="S1", provider="anthropic"),
                                ReasoningPart("unsigned", provider="anthropic"), ReasoningPart("theirs", signature="X", provider="openrouter"),
                                ReasoningPart(redacted_data="RD", provider="anthropic"), ProviderPart("other", {"type": "x"}),
                                ReasoningPart("anyone's", signature="S2")], tool_calls=[ToolCall("t1", "get_weather", {"city": "P"})])  # fmt: skip
    sent = p.build_chat_request(p.make_request(["q", msg, Message("tool", "18C", tool_call_id="t1")], model=MODEL)).json
    assert sent["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "mine", "signature": "S1"},
        {"type": "redacted_thinking", "data": "RD"},
        {"type": "thinking", "thinking": "anyone's", "signature": "S2"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "P"}},
    ]
    assert sent["messages"][2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "18C"}]}


def test_another_instance_does_not_receive_this_instances_reasoning():
    other = make(name="claude-eu")
    msg = Message("assistant", [ReasoningPart("mine", signature="S1", provider="anthropic"), TextPart("Hi")])
    sent = other.build_chat_request(other.make_request(["q", msg, "more"], model=MODEL)).json
    assert sent["messages"][1] == {"role": "assistant", "content": "Hi"}


@pytest.mark.parametrize("stream", [False, True])
def test_tool_loop_with_thinking_sends_the_signed_block_first(server, stream):
    server.add_chat("anthropic", "", tool_calls=[CALL], reasoning=THOUGHT, signature="EuYBCkQYAiJA")
    server.add_chat("anthropic", "18C and sunny.", reasoning="Answer now.")
    c = Client(providers={"anthropic": {"api_key": "k", "base_url": server.url}})

    def complete(messages):
        if stream:
            return collect(c.stream(f"anthropic/{MODEL}", messages, tools=TOOLS, reasoning="high"))
        return c.complete(f"anthropic/{MODEL}", messages, tools=TOOLS, reasoning="high")

    messages = ["Weather in Paris?"]
    r = complete(messages)
    while r.tool_calls:
        messages.append(r.message)
        for call in r.tool_calls:
            messages.append(Message.tool_result(call, {"temp": 18}))
        r = complete(messages)
    assert (r.text, r.reasoning) == ("18C and sunny.", "Answer now.")
    second = server.requests[1].json
    assert second["thinking"] == {"type": "enabled", "budget_tokens": 12000}
    assert second["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": THOUGHT, "signature": "EuYBCkQYAiJA"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp": 18}'}]},
    ]  # fmt: skip

