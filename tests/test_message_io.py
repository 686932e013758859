"""Reasoning parts, provider parts, tool results and the lossless message round trip."""

import json
import pickle

import pytest

from modelprov import (
    ImagePart,
    Message,
    ModelResponse,
    ProviderPart,
    ReasoningDelta,
    ReasoningPart,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
    ValidationError,
    collect,
)
from modelprov.types import FINISH_REASONS, ROLES
from modelprov.validation import normalize_messages


def _history():
    call = ToolCall.from_json_text("toolu_1", "get_weather", '{"city": "Paris"}')
    return [
        Message("system", "Be brief."),
        Message("developer", "Answer in French."),
        Message("user", [TextPart("What is this?"), ImagePart(data=b"\x89PNG\r\n", media_type="image/png")]),
        Message(
            "assistant",
            [
                ReasoningPart("Need the weather; ", signature="sig-1", provider="anthropic"),
                ReasoningPart(redacted_data="EnCrYpTeD", provider="anthropic"),
                ReasoningPart("or", details=({"type": "reasoning.text", "text": "or", "index": 0},), provider="openrouter"),
                ProviderPart("anthropic", {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}}),
                TextPart("Let me check."),
            ],
            tool_calls=[call],
        ),
        Message.tool_result(call, {"temp_c": 21, "sky": "clear"}),
        Message("user", "thanks"),
    ]


def test_developer_role_is_accepted_and_listed():
    assert "developer" in ROLES
    assert normalize_messages([{"role": "developer", "content": "x"}])[0].role == "developer"


def test_new_finish_reasons_are_listed():
    assert "refusal" in FINISH_REASONS and "pause" in FINISH_REASONS


def test_tool_result_serialises_json_values_and_keeps_strings():
    call = ToolCall("c1", "lookup", {})
    msg = Message.tool_result(call, {"a": [1, "é"]})
    assert (msg.role, msg.tool_call_id, msg.name) == ("tool", "c1", "lookup")
    assert json.loads(msg.content) == {"a": [1, "é"]} and "é" in msg.content
    assert Message.tool_result(call, "plain").content == "plain"
    assert Message.tool_result(call, 3).content == "3"


@pytest.mark.parametrize(
    "call, content, words",
    [
        ("c1", "x", "needs the ToolCall"),
        (ToolCall("", "f", {}), "x", "has no id"),
        (ToolCall("c", "f", {}), object(), "not a string or JSON-serialisable"),
    ],
)
def test_tool_result_rejects_bad_input(call, content, words):
    with pytest.raises(ValidationError, match=words):
        Message.tool_result(call, content)


def test_round_trip_through_json_is_lossless():
    history = _history()
    saved = json.dumps([m.to_dict() for m in history])
    restored = [Message.from_dict(d) for d in json.loads(saved)]
    assert restored == history
    assistant = restored[3]
    assert [p.signature for p in assistant.reasoning_parts] == ["sig-1", None, None]
    assert assistant.reasoning_parts[1].redacted and assistant.reasoning == "Need the weather; or"
    assert assistant.tool_calls[0].raw_arguments == '{"city": "Paris"}'
    assert restored[2].images[0].base64_data() == history[2].images[0].base64_data()


def test_messages_with_reasoning_pickle():
    history = _history()
    assert pickle.loads(pickle.dumps(history)) == history


def test_saved_dicts_are_accepted_by_calls_too():
    normalized = normalize_messages([m.to_dict() for m in _history()])
    assert normalized[3].reasoning_parts[0].signature == "sig-1"
    assert isinstance(normalized[3].content[3], ProviderPart)


@pytest.mark.parametrize(
    "data, words",
    [
        ("nope", "a message dict is needed"),
        ({"role": "user", "content": "x", "extra": 1}, "unknown key"),
        ({"role": "user", "content": 5}, "must be a string, a list of parts or null"),
        ({"role": "user", "content": [{"type": "video"}]}, "unknown part type 'video'"),
        ({"role": "assistant", "content": [{"type": "reasoning", "text": 1}]}, r"content\[0\].text must be a string"),
        ({"role": "assistant", "content": [{"type": "reasoning", "details": "x"}]}, "details must be a list"),
        ({"role": "user", "content": [{"type": "image", "data": "***"}]}, "not valid base64"),
        ({"role": "assistant", "content": None, "tool_calls": [{"id": "c", "name": "f", "arguments": "x"}]}, "arguments must be a dict"),
        ({"role": "wizard", "content": "x"}, "unknown role 'wizard'"),
        ({"role": "user", "content": [{"type": "reasoning", "text": "t"}]}, "only assistant messages may"),
    ],
)
def test_from_dict_names_what_is_wrong(data, words):
    with pytest.raises(ValidationError, match=words):
        Message.from_dict(data)


def test_reasoning_part_validates_its_fields():
    with pytest.raises(ValidationError, match="signature must be a string"):
        ReasoningPart("t", signature=5)
    with pytest.raises(ValidationError, match="list of dicts"):
        ReasoningPart("t", details=["x"])
    assert ReasoningPart("t", details=[{"a": 1}]).details == ({"a": 1},)
    assert ReasoningPart("t", provider="a").sendable_to("a") and not ReasoningPart("t", provider="a").sendable_to("b")
    assert ReasoningPart("t").sendable_to("anyone")
    assert "sig" not in repr(ReasoningPart("t", signature="sig-secret"))


def test_provider_part_validates():
    with pytest.raises(ValidationError):
        ProviderPart("", {})
    with pytest.raises(ValidationError):
        ProviderPart("x", [])  # type: ignore[arg-type]


def test_parts_with_dicts_are_hashable_and_hash_like_they_compare():
    details = ({"type": "reasoning.encrypted", "data": "x", "index": 0},)
    a = ReasoningPart("t", signature="s", details=details, provider="openrouter")
    b = ReasoningPart("t", signature="s", details=[dict(details[0])], provider="openrouter")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    other = ReasoningPart("t", signature="s", details=({"type": "reasoning.text", "text": "t"},), provider="openrouter")
    assert other != a and len({a, other}) == 2  # details are compared even though they are not hashed
    assert len({ReasoningPart(redacted_data="r"), ReasoningPart(redacted_data="q")}) == 2
    block = {"type": "server_tool_use", "id": "srv_1", "input": {"query": "x"}}
    p, q = ProviderPart("anthropic", block), ProviderPart("anthropic", dict(block))
    assert p == q and hash(p) == hash(q) and len({p, q, ProviderPart("other", block)}) == 2
    assert {p: 1}[q] == 1 and len({ProviderPart("a", {"input": [1]}), ProviderPart("a", {"input": [2]})}) == 2


def test_response_message_keeps_reasoning_and_tool_calls():
    call = ToolCall("c", "f", {"x": 1})
    r = ModelResponse(text="ok", content=[ReasoningPart("think", signature="s", provider="p")], tool_calls=[call])
    assert [type(p) for p in r.content] == [ReasoningPart, TextPart]
    assert r.reasoning == "think"
    msg = r.message
    assert msg.role == "assistant" and msg.tool_calls == [call] and msg.reasoning_parts[0].signature == "s"
    assert msg.text == "ok"
    assert normalize_messages([msg])[0] is msg
    plain = ModelResponse(text="hi").message
    assert plain.content == "hi" and r.to_message() == msg
    assert ModelResponse(tool_calls=[call]).message.content is None
    assert ModelResponse().reasoning == "" and ModelResponse().refusal is None and ModelResponse().dropped_options == []


def test_collect_rebuilds_reasoning_blocks_signatures_and_details():
    details = ({"type": "reasoning.text", "text": "ab", "signature": "S", "index": 0},)
    chunks = [
        StreamChunk(reasoning="a", reasoning_deltas=[ReasoningDelta(0, text="a")]),
        StreamChunk(reasoning="b", reasoning_deltas=[ReasoningDelta(0, text="b")]),
        StreamChunk(reasoning_deltas=[ReasoningDelta(0, signature="si"), ReasoningDelta(0, signature="g")]),
        StreamChunk(reasoning_deltas=[ReasoningDelta(1, redacted_data="R")]),
        StreamChunk(reasoning_deltas=[ReasoningDelta(2, details=details)]),
        StreamChunk(text="Hel"),
        StreamChunk(text="lo", tool_calls=[ToolCallDelta(0, id="c", name="f", arguments='{"x": 1}')]),
        StreamChunk(finish_reason="tool_calls", usage=Usage(1, 2, reasoning_tokens=2), provider="p", dropped_options=["temperature"]),
    ]
    r = collect(chunks)
    assert [(p.text, p.signature, p.redacted_data, p.details) for p in r.content[:3]] == [
        ("ab", "sig", None, ()),
        ("", None, "R", ()),
        ("", None, None, details),
    ]
    assert all(p.provider == "p" for p in r.content[:3])
    assert r.text == "Hello" and r.content[3] == TextPart("Hello") and r.reasoning == "ab"
    assert r.tool_calls[0].arguments == {"x": 1} and r.usage.reasoning_tokens == 2
    assert r.dropped_options == ["temperature"] and r.refusal is None


def test_collect_plain_reasoning_text_and_refusal():
    r = collect([StreamChunk(reasoning="hm"), StreamChunk(reasoning="m"), StreamChunk(refusal="No, "),
                 StreamChunk(refusal="sorry.", finish_reason="refusal")])
    assert r.reasoning == "hmm" and r.refusal == "No, sorry." and r.finish_reason == "refusal" and r.text == ""


def test_collect_keeps_reasoning_first_with_native_finish_reasons_and_late_details():
    details = ({"type": "reasoning.encrypted", "data": "E", "index": 0},)
    r = collect([
        StreamChunk(reasoning="a", reasoning_deltas=[ReasoningDelta(0, text="a")]),
        StreamChunk(text="A"),
        StreamChunk(reasoning="b", reasoning_deltas=[ReasoningDelta(1, text="b")]),
        StreamChunk(text="B"),
        StreamChunk(reasoning_deltas=[ReasoningDelta(2, details=details)], finish_reason="stop", native_finish_reason="end_turn"),
    ])
    assert [type(p).__name__ for p in r.content] == ["ReasoningPart", "ReasoningPart", "ReasoningPart", "TextPart"]
    assert r.text == "AB" and r.native_finish_reason == "end_turn" and r.content[2].details == details
    assert collect([StreamChunk(text="hi")]).native_finish_reason is None


@pytest.mark.parametrize("answer", [
    ModelResponse(text="", refusal="Sorry, I can't.", finish_reason="refusal"),
    ModelResponse(text="", finish_reason="length"),
])
def test_message_of_an_empty_answer_is_a_valid_turn(answer):
    msg = answer.message
    assert msg.content == "" and msg.role == "assistant"
    assert Message.from_dict(msg.to_dict()) == msg
    assert normalize_messages(["hi", msg, "and now?"])[1] == msg
