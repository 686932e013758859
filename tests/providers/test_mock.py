"""MockProvider: echo, streaming word by word, usage, scripted replies and errors."""

import pytest

from modelprov import RateLimitError, ServerError, ToolCall, ValidationError, collect
from modelprov.engine import bind
from modelprov.providers.mock import MockProvider
from modelprov.retry import RetryPolicy


def make(**kw):
    return bind(MockProvider(), sleep=lambda s: None, **kw)


def test_echo_answers_last_user_message():
    history = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"}, {"role": "user", "content": "Hello there"}]
    resp = make().generate(history, model="echo")
    assert resp.text == "Hello there" and resp.finish_reason == "stop" and resp.provider == "mock"
    assert resp.usage.output_tokens == 2 and resp.usage.input_tokens == 4


def test_stream_word_by_word_with_final_usage():
    chunks = list(make().stream("one two three", model="echo"))
    assert [c.text for c in chunks[:-1]] == ["one ", "two ", "three"]
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage.output_tokens == 3
    assert collect(make().stream("a b", model="echo")).text == "a b"


def test_max_tokens_and_stop_respected():
    p = make()
    r = p.generate("a b c d", model="echo", max_tokens=2)
    assert r.text == "a b" and r.finish_reason == "length"
    assert p.generate("hello STOP world", model="echo", stop="STOP").text == "hello "


def test_scripted_replies_in_order_then_echo():
    p = make().push("first", ToolCall("c1", "lookup", {"q": 1}), {"text": "third", "finish_reason": "length"})
    assert p.generate("x", model="scripted").text == "first"
    r = p.generate("x", model="scripted")
    assert r.tool_calls[0].name == "lookup" and r.finish_reason == "tool_calls"
    assert p.generate("x", model="scripted").finish_reason == "length"
    assert p.generate("back to echo", model="echo").text == "back to echo"
    assert len(p.requests) == 4


def test_scripted_tool_call_streams_and_collects():
    p = make().push(ToolCall("c1", "lookup", {"q": "paris"}))
    resp = collect(p.stream("x", model="scripted"))
    assert resp.tool_calls[0].arguments == {"q": "paris"}


def test_scripted_errors_raise_after_retries():
    p = make(retry=RetryPolicy(max_retries=1)).push(ServerError("boom"), "recovered")
    assert p.generate("x", model="scripted").text == "recovered"
    p.push(RateLimitError("slow"), RateLimitError("slow"))
    with pytest.raises(RateLimitError) as info:
        p.generate("x", model="scripted")
    assert info.value.provider == "mock" and len(info.value.attempts) == 2


def test_replies_option_and_bad_script():
    from modelprov.types import ProviderConfig

    p = bind(MockProvider(ProviderConfig(name="mock", options=(("replies", ("a", "b")),))))
    assert [p.generate("x", model="m").text for _ in range(3)] == ["a", "b", "x"]
    with pytest.raises(ValidationError, match="scripted reply 0"):
        p.push(object())
    with pytest.raises(ValidationError, match="needs a 'name'"):
        p.push({"tool_calls": [{"arguments": {}}]})
    with pytest.raises(ValidationError, match="unknown key"):
        p.push({"txt": "typo"})
    p.push({"tool_calls": [{"name": "f", "arguments": '{"a": 1}'}]})
    assert p.generate("x", model="m").tool_calls[0].arguments == {"a": 1}


def test_validation_before_any_work():
    p = make()
    with pytest.raises(ValidationError):
        p.generate([], model="echo")
    with pytest.raises(ValidationError, match="temperature"):
        p.generate("x", model="echo", temperature="hot")
    with pytest.raises(ValidationError, match="tool_choice"):
        p.generate("x", model="echo", tool_choice="missing_tool")
    assert p.requests == []


def test_embed_and_models_are_deterministic():
    p = make()
    a = p.embed(["hello", "world"], model="echo")
    b = p.embed("hello", model="echo")
    assert len(a.embeddings) == 2 and a.embeddings[0] == b.embeddings[0]
    assert [m.id for m in p.list_models()] == ["echo", "scripted"]
