"""The engine records every call in its UsageTotals (``bind(usage=)``): JSON calls and streams (once, at the end,
with the final usage), errors, OpenRouter's reported cost and the price table, the offline mock provider."""

import pytest

from modelprov import InvalidRequestError, ProviderConfig, RetryPolicy
from modelprov.engine import bind
from modelprov.providers.mock import MockProvider
from modelprov.providers.openai_compat.openai import OpenAIProvider
from modelprov.providers.openai_compat.openrouter import OpenRouterProvider
from modelprov.testing import MockReply, MockTransport, chat_body, chat_stream
from modelprov.usage import UsageTotals

OPENROUTER_USAGE = {"prompt_tokens": 12, "completion_tokens": 8, "cost": 0.00042}
OPENAI_USAGE = {"prompt_tokens": 1000, "completion_tokens": 500}
PRICES = {"openai/gpt-x": {"input": 2.0, "output": 8.0}}


def openrouter(handler, totals):
    config = ProviderConfig(name="openrouter", api_key="sk-or-test")
    return bind(OpenRouterProvider(config), transport=MockTransport(handler), usage=totals, retry=RetryPolicy.none(), sleep=lambda s: None)


def openai(handler, totals):
    config = ProviderConfig(name="openai", api_key="sk-test")
    return bind(OpenAIProvider(config), transport=MockTransport(handler), usage=totals, retry=RetryPolicy.none(), sleep=lambda s: None)


def test_openrouter_cost_is_taken_from_its_usage_field():
    totals = UsageTotals(PRICES)  # no price for it: the provider's own figure is used
    p = openrouter(lambda r: chat_body("openrouter", "hi", usage=OPENROUTER_USAGE), totals)
    p.generate("hi", model="anthropic/claude-x")
    p.generate("hi", model="anthropic/claude-x")
    row = totals.snapshot()["openrouter/anthropic/claude-x"]
    assert (row.calls, row.input_tokens, row.output_tokens, row.uncosted) == (2, 24, 16, 0)
    assert row.cost == pytest.approx(2 * 0.00042)


def test_openrouter_stream_cost_is_recorded_when_the_usage_chunk_arrives():
    totals = UsageTotals()
    p = openrouter(lambda r: MockReply(chunks=chat_stream("openrouter", "hi there", usage=OPENROUTER_USAGE)), totals)
    stream = p.stream("hi", model="a/b")
    assert "".join(c.text for c in stream) == "hi there"
    row = totals.snapshot()["openrouter/a/b"]
    assert (row.calls, row.errors, row.input_tokens, row.cost) == (1, 0, 12, pytest.approx(0.00042))


def test_price_table_cost_for_json_calls_and_streams():
    totals = UsageTotals(PRICES)

    def handler(request):
        if request.stream:
            return MockReply(chunks=chat_stream("openai", "hi", usage=OPENAI_USAGE, include_usage=True))
        return chat_body("openai", "hi", usage=OPENAI_USAGE)

    p = openai(handler, totals)
    assert p.generate("hi", model="gpt-x").usage.cost == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)  # shown on the response
    chunks = list(p.stream("hi", model="gpt-x"))
    assert chunks[-1].usage.cost == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
    row = totals.snapshot()["openai/gpt-x"]
    assert (row.calls, row.input_tokens, row.output_tokens) == (2, 2000, 1000)
    assert row.cost == pytest.approx(2 * (1000 * 2.0 + 500 * 8.0) / 1e6)


def test_a_model_without_a_price_has_an_unknown_cost():
    totals = UsageTotals(PRICES)
    openai(lambda r: chat_body("openai", "hi", usage=OPENAI_USAGE), totals).generate("hi", model="gpt-other")
    row = totals.snapshot()["openai/gpt-other"]
    assert row.cost is None and row.uncosted == 1 and row.input_tokens == 1000


def test_failed_calls_and_streams_are_counted_as_errors():
    totals = UsageTotals()
    bad = MockReply(400, {"error": {"message": "bad", "type": "invalid_request_error"}})
    p = openai(lambda r: bad, totals)
    with pytest.raises(InvalidRequestError):
        p.generate("hi", model="gpt-x")
    with pytest.raises(InvalidRequestError):
        list(p.stream("hi", model="gpt-x"))
    cut = MockReply(chunks=chat_stream("openai", "hi there you")[:2])  # ends before the answer does
    p2 = openai(lambda r: cut, totals)
    with pytest.raises(Exception):
        list(p2.stream("hi", model="gpt-x"))
    row = totals.snapshot()["openai/gpt-x"]
    assert (row.calls, row.errors) == (3, 3)


def test_a_stream_the_caller_stops_early_is_one_call_with_an_unknown_cost():
    totals = UsageTotals(PRICES)
    p = openai(lambda r: MockReply(chunks=chat_stream("openai", "one two three", include_usage=True)), totals)
    stream = p.stream("hi", model="gpt-x")
    next(iter(stream))
    stream.close()
    row = totals.snapshot()["openai/gpt-x"]
    assert (row.calls, row.errors, row.uncosted, row.cost) == (1, 0, 1, None)


def test_a_stream_never_started_is_not_counted():
    totals = UsageTotals()
    p = openai(lambda r: MockReply(chunks=chat_stream("openai", "hi")), totals)
    p.stream("hi", model="gpt-x").close()
    assert totals.snapshot().rows == {}


def test_the_offline_mock_provider_is_counted_too():
    totals = UsageTotals({"mock/echo": {"input": 1.0, "output": 1.0}})
    p = bind(MockProvider(ProviderConfig(name="mock")), usage=totals)
    p.generate("one two", model="echo")
    list(p.stream("three", model="echo"))
    row = totals.snapshot()["mock/echo"]
    assert row.calls == 2 and row.input_tokens > 0 and row.cost is not None


def test_without_usage_totals_nothing_is_recorded():
    p = openai(lambda r: chat_body("openai", "hi"), None)
    assert p.engine.usage is None and p.generate("hi", model="gpt-x").text == "hi"
