"""MockProvider: scripted reasoning and refusals (JSON and stream), the developer role, and the
tool loop with reasoning offline."""

import pickle

import pytest

from modelprov import Message, ModelResponse, ToolCall, ValidationError, collect
from modelprov.engine import bind
from modelprov.providers.mock import MockProvider
from modelprov.types import ProviderConfig, ReasoningPart, TextPart


def make(**kw):
    return bind(MockProvider(), sleep=lambda s: None, **kw)


def test_scripted_reasoning_comes_first_in_content_from_this_provider():
    p = make().push({"text": "391", "reasoning": "17 x 23 = 340 + 51"})
    r = p.generate("17 x 23?", model="scripted", reasoning="high")
    assert r.content == [ReasoningPart("17 x 23 = 340 + 51", provider="mock"), TextPart("391")]
    assert (r.text, r.reasoning, r.finish_reason, r.refusal) == ("391", "17 x 23 = 340 + 51", "stop", None)
    assert r.usage.reasoning_tokens == 7 and r.usage.output_tokens == 8
    assert r.message.content == r.content and r.message.role == "assistant"
    assert p.requests[0].reasoning == "high"


def test_reasoning_part_names_the_instance():
    p = bind(MockProvider(ProviderConfig(name="offline", type="mock")), sleep=lambda s: None)
    p.push({"text": "ok", "reasoning": "think"})
    assert p.generate("x", model="scripted").content[0].provider == "offline"


def test_scripted_reasoning_streams_as_deltas_and_collects_to_the_json_answer():
    reply = {"text": "The answer is 391.", "reasoning": "17 x 20 = 340, plus 51."}
    p = make().push(reply, reply)
    whole = p.generate("x", model="scripted")
    chunks = list(p.stream("x", model="scripted"))
    thinking = [c for c in chunks if c.reasoning]
    assert [c.reasoning for c in thinking] == ["17 ", "x ", "20 ", "= ", "340, ", "plus ", "51."]
    assert all(not c.text for c in thinking) and chunks.index(thinking[-1]) < min(i for i, c in enumerate(chunks) if c.text)
    assert {d.index for c in thinking for d in c.reasoning_deltas} == {0}
    streamed = collect(chunks)
    assert streamed.content == whole.content and streamed.reasoning == whole.reasoning and streamed.text == whole.text


def test_pushed_model_response_with_signed_reasoning_streams_losslessly():
    parts = [ReasoningPart("first block", signature="sig-1", provider="mock"),
             ReasoningPart("", redacted_data="opaque", provider="mock"),
             ReasoningPart("detail", details=({"type": "reasoning.text", "text": "detail"},), provider="mock")]  # fmt: skip
    resp = ModelResponse(text="done", content=list(parts), finish_reason="stop")
    streamed = collect(make().push(resp).stream("x", model="scripted"))
    assert streamed.content == parts + [TextPart("done")]


def test_echo_ignores_reasoning_and_cache_options():
    r = make().generate("hello there", model="echo", reasoning="max", cache=True)
    assert (r.text, r.reasoning, r.content) == ("hello there", "", [TextPart("hello there")])
    assert r.usage.reasoning_tokens is None
    assert collect(make().stream("hi", model="echo", reasoning=2048)).reasoning == ""


def test_developer_role_is_accepted():
    p = make()
    r = p.generate([{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "ping"}], model="echo")
    assert r.text == "ping" and p.requests[0].messages[0].role == "developer"
    assert r.usage.input_tokens == 3


def test_scripted_refusal_json_and_stream():
    refusal = "I can't help with that."
    p = make().push({"refusal": refusal}, {"refusal": refusal})
    r = p.generate("x", model="scripted")
    assert (r.text, r.finish_reason, r.native_finish_reason, r.refusal) == ("", "refusal", "refusal", refusal)
    chunks = list(p.stream("x", model="scripted"))
    assert "".join(c.refusal for c in chunks) == refusal and not any(c.text for c in chunks)
    streamed = collect(chunks)
    assert (streamed.finish_reason, streamed.refusal, streamed.text) == ("refusal", refusal, "")


def test_refusal_keeps_an_explicit_finish_reason():
    r = make().push({"refusal": "no", "finish_reason": "content_filter"}).generate("x", model="scripted")
    assert (r.finish_reason, r.refusal) == ("content_filter", "no")


@pytest.mark.parametrize("key", ["reasoning", "refusal"])
def test_reasoning_and_refusal_must_be_strings(key):
    with pytest.raises(ValidationError, match=f"{key} must be a string"):
        make().push({key: 42})


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_loop_with_reasoning_offline(streamed):
    p = make().push(
        {"reasoning": "Need the weather.", "tool_calls": [{"id": "c1", "name": "weather", "arguments": {"city": "Oslo"}}]},
        {"reasoning": "Got it.", "text": "Oslo: 3C"},
    )
    tools = [{"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    ask = (lambda m: collect(p.stream(m, model="scripted", tools=tools, reasoning="low"))) if streamed else (
        lambda m: p.generate(m, model="scripted", tools=tools, reasoning="low"))  # fmt: skip
    messages = [Message("user", "Weather in Oslo?")]
    r = ask(messages)
    while r.tool_calls:
        messages.append(r.message)
        for call in r.tool_calls:
            messages.append(Message.tool_result(call, {"temp_c": 3}))
        r = ask(messages)
    assert (r.text, r.reasoning) == ("Oslo: 3C", "Got it.")
    sent = p.requests[1].messages
    assert sent[1].reasoning_parts == [ReasoningPart("Need the weather.", provider="mock")]
    assert sent[1].tool_calls == [ToolCall("c1", "weather", {"city": "Oslo"}, raw_arguments=sent[1].tool_calls[0].raw_arguments)]
    assert (sent[2].role, sent[2].tool_call_id, sent[2].content) == ("tool", "c1", '{"temp_c": 3}')
    assert pickle.loads(pickle.dumps(sent)) == sent
    assert [Message.from_dict(m.to_dict()) for m in sent] == sent
