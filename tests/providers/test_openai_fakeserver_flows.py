"""Whole flows through the Client over real sockets (FakeServer): unsupported options and the reasoning tool loop.

* An OpenAI ``unsupported_value`` 400 is resent once without the option with
  ``drop_unsupported=True`` and never sent again to that model; without it the
  call raises :class:`UnsupportedFeatureError` naming the option, and a
  fallback chain moves on to its next model.
* The issue's tool loop passes for OpenAI and OpenRouter with reasoning on,
  for whole answers and streams; OpenRouter gets its ``reasoning_details``
  back on the assistant turn.
"""

import pytest

from modelprov import Client, Message, UnsupportedFeatureError, collect
from modelprov.testing import FakeServer
from modelprov.testing._openai import openai_unsupported_body

KEY = "sk-fake-0123456789abcdef"
MODELS = {"openai": "openai/gpt-5.4-mini", "openrouter": "openrouter/anthropic/claude-sonnet-5"}
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}  # fmt: skip


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


def client_for(server, protocols=("openai",), **kw):
    kw.setdefault("sleep", lambda s: None)
    providers = {p: {"api_key": KEY, "base_url": server.base_url(p)} for p in protocols}
    return Client(providers=providers, **kw)


def ask(client, model, stream, messages, **kw):
    if stream:
        return collect(client.stream(model, messages, **kw))
    return client.complete(model, messages, **kw)


# ------------------------------------------------------------ unsupported options
@pytest.mark.parametrize("stream", [False, True])
def test_unsupported_value_is_dropped_once_and_remembered(server, stream):
    server.add_error(400, openai_unsupported_body("temperature", 0.2), protocol="openai", request_id="req_unsup")
    server.add_chat("openai", "first")
    server.add_chat("openai", "second")
    client = client_for(server, drop_unsupported=True)
    r = ask(client, "openai/gpt-5.4-mini", stream, "Hi", temperature=0.2)
    assert (r.text, r.dropped_options) == ("first", ["temperature"])
    sent = [req.json for req in server.requests]
    assert sent[0]["temperature"] == 0.2 and "temperature" not in sent[1] and len(sent) == 2
    again = ask(client, "openai/gpt-5.4-mini", stream, "Hi again", temperature=0.2)
    assert (again.text, again.dropped_options) == ("second", ["temperature"])
    assert len(server.requests) == 3 and "temperature" not in server.requests[2].json  # no second 400
    client.close()


def test_unsupported_value_raises_naming_the_option_without_drop(server):
    server.add_error(400, openai_unsupported_body("temperature", 0.2), protocol="openai", request_id="req_unsup")
    client = client_for(server)
    with pytest.raises(UnsupportedFeatureError) as info:
        client.complete("openai/gpt-5.4-mini", "Hi", temperature=0.2)
    exc = info.value
    assert (exc.extra["option"], exc.extra["param"], exc.status_code, exc.request_id, exc.provider) == (
        "temperature", "temperature", 400, "req_unsup", "openai")
    assert len(server.requests) == 1  # not retried
    client.close()


def test_unsupported_parameter_for_max_tokens_names_the_modelprov_option(server):
    server.add_error(400, openai_unsupported_body("max_completion_tokens", code="unsupported_parameter"))
    server.add_chat("openai", "ok")
    client = client_for(server, drop_unsupported=True)
    r = client.complete("openai/gpt-5.4-mini", "Hi", max_tokens=50)
    assert r.dropped_options == ["max_tokens"] and "max_completion_tokens" not in server.requests[1].json
    client.close()


@pytest.mark.parametrize("stream", [False, True])
def test_fallbacks_move_on_after_an_unsupported_option(server, stream):
    server.add_error(400, openai_unsupported_body("top_p", 0.5))
    server.add_chat("openrouter", "from the fallback")
    client = client_for(server, ("openai", "openrouter"), fallbacks=["openrouter/openai/gpt-5.4"])
    r = ask(client, "openai/gpt-5.4-mini", stream, "Hi", top_p=0.5)
    assert (r.text, r.provider) == ("from the fallback", "openrouter")
    assert [req.json["model"] for req in server.requests] == ["gpt-5.4-mini", "openai/gpt-5.4"]
    client.close()


def test_a_documented_refusal_never_reaches_the_server(server):
    client = client_for(server)
    with pytest.raises(UnsupportedFeatureError, match="temperature"):
        client.complete("openai/gpt-5.4", "Hi", temperature=0.2, reasoning="high")
    with pytest.raises(UnsupportedFeatureError, match="/v1/responses"):
        client.complete("openai/gpt-5-pro", "Hi")
    assert server.requests == []
    client.close()


# ------------------------------------------------------------------ tool loop
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("protocol", ["openai", "openrouter"])
def test_tool_loop_with_reasoning(server, protocol, stream):
    call = {"id": "call_w1", "name": "get_weather", "arguments": {"city": "Paris"}}
    server.add_chat(protocol, "", tool_calls=[call], reasoning="Need the Paris weather first.", signature="EqQBsig")
    server.add_chat(protocol, "Sunny and 21 C in Paris.", reasoning="The tool says sunny.")
    client = client_for(server, (protocol,))
    model = MODELS[protocol]
    messages = [{"role": "user", "content": "Weather in Paris?"}]

    r = ask(client, model, stream, messages, tools=[WEATHER], reasoning="high")
    turns = 0
    while r.tool_calls:
        messages.append(r.message)
        for c in r.tool_calls:
            messages.append(Message.tool_result(c, {"temp": 21, "sky": "sunny"}))
        r = ask(client, model, stream, messages, tools=[WEATHER], reasoning="high")
        turns += 1
    assert (turns, r.text, r.finish_reason) == (1, "Sunny and 21 C in Paris.", "stop")
    assert r.usage.reasoning_tokens == 4

    first, second = (req.json for req in server.requests)
    assistant = second["messages"][1]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["id"] == "call_w1"
    assert second["messages"][2] == {"role": "tool", "tool_call_id": "call_w1", "content": '{"temp": 21, "sky": "sunny"}'}
    if protocol == "openrouter":
        assert first["reasoning"] == second["reasoning"] == {"effort": "high"}
        assert assistant["reasoning_details"] == [{"type": "reasoning.text", "text": "Need the Paris weather first.",
                                                   "signature": "EqQBsig", "format": "anthropic-claude-v1", "index": 0}]  # fmt: skip
        assert r.reasoning == "The tool says sunny." and r.usage.cost is not None
        assert "stream_options" not in second
    else:
        assert first["reasoning_effort"] == second["reasoning_effort"] == "high"
        assert "reasoning_details" not in assistant and r.reasoning == ""  # Chat Completions returns only a count
    client.close()


@pytest.mark.parametrize("protocol", ["openai", "openrouter", "openai_compatible"])
def test_refusal_over_the_wire(server, protocol):
    server.add_chat(protocol, refusal="I can't help with that.")
    server.add_chat(protocol, refusal="I can't help with that.")
    client = client_for(server, (protocol,))
    model = {"openai_compatible": "openai_compatible/llama"}.get(protocol, MODELS.get(protocol))
    whole = client.complete(model, "Do something bad")
    streamed = collect(client.stream(model, "Do something bad"))
    for r in (whole, streamed):
        assert (r.text, r.finish_reason, r.native_finish_reason, r.refusal) == ("", "refusal", "stop", "I can't help with that.")
    client.close()
