"""UsageTotals alone: counting, cost from the provider's figure or the price table (never a silent 0),
price-table validation, exact totals under 64 threads, snapshots that pickle, reset and repr."""

import math
import pickle
import threading

import pytest

from modelprov import ValidationError
from modelprov.types import Usage
from modelprov.usage import UsageRow, UsageSnapshot, UsageTotals, call_cost, check_prices

PRICES = {"openai/gpt-x": {"input": 2.0, "output": 8.0, "cached": 0.5}, "anthropic/claude-x": {"input": 3.0, "output": 15.0}}


def test_cost_from_the_price_table_per_million_tokens():
    u = Usage(input_tokens=1_000_000, output_tokens=500_000, cache_read_tokens=200_000)
    # 800k uncached input at $2, 200k cached at $0.5, 500k output at $8
    assert call_cost(u, PRICES["openai/gpt-x"]) == pytest.approx(1.6 + 0.1 + 4.0)
    # without a cached price, cached tokens cost the input price
    assert call_cost(u, PRICES["anthropic/claude-x"]) == pytest.approx(3.0 + 7.5)


def test_the_providers_own_cost_wins_over_the_table():
    totals = UsageTotals(PRICES)
    cost = totals.record("openai", "gpt-x", Usage(input_tokens=1000, output_tokens=1000, cost=0.125))
    assert cost == 0.125 and totals.snapshot()["openai/gpt-x"].cost == 0.125


def test_an_unknown_cost_is_none_and_counted_never_zero():
    totals = UsageTotals()
    assert totals.record("vllm", "llama", Usage(input_tokens=10, output_tokens=5)) is None
    row = totals.snapshot()["vllm/llama"]
    assert row.cost is None and row.uncosted == 1 and row.total_tokens == 15
    totals.record("openrouter", "a/b", Usage(input_tokens=1, output_tokens=1, cost=0.5))
    total = totals.snapshot().total
    assert total.cost == 0.5 and total.uncosted == 1  # a partial sum, and how many calls it leaves out


def test_price_falls_back_to_the_model_the_response_names():
    totals = UsageTotals({"openai/gpt-x-2026-01-01": {"input": 1.0, "output": 1.0}})
    assert totals.record("openai", "gpt-x", Usage(input_tokens=500_000, output_tokens=500_000), served="gpt-x-2026-01-01") == pytest.approx(1.0)
    assert totals.snapshot().rows.keys() == {"openai/gpt-x"}  # rows stay keyed by the model asked for


def test_rows_count_calls_errors_and_every_token_kind():
    totals = UsageTotals(PRICES)
    totals.record("openai", "gpt-x", Usage(input_tokens=100, output_tokens=50, cache_read_tokens=40, reasoning_tokens=20))
    totals.record("openai", "gpt-x", None)  # a stream stopped before its usage: a call, cost unknown
    totals.record_error("openai", "gpt-x")
    row = totals.snapshot()["openai/gpt-x"]
    assert (row.calls, row.errors, row.input_tokens, row.output_tokens, row.cached_tokens, row.reasoning_tokens) == (3, 1, 100, 50, 40, 20)
    assert row.uncosted == 1
    assert row.cost == pytest.approx((60 * 2.0 + 40 * 0.5 + 50 * 8.0) / 1e6)


def test_usage_totals_are_exact_under_64_threads():
    totals = UsageTotals(PRICES)
    start = threading.Barrier(64)
    keys = [("openai", "gpt-x"), ("anthropic", "claude-x")]

    def work(i):
        start.wait()
        provider, model = keys[i % 2]
        for _ in range(200):
            totals.record(provider, model, Usage(input_tokens=3, output_tokens=2, cache_read_tokens=1, reasoning_tokens=1))
        for _ in range(10):
            totals.record_error(provider, model)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = totals.snapshot()
    for key in ("openai/gpt-x", "anthropic/claude-x"):
        row = snap[key]
        assert (row.calls, row.errors, row.input_tokens, row.output_tokens) == (32 * 210, 32 * 10, 32 * 600, 32 * 400)
        assert (row.cached_tokens, row.reasoning_tokens, row.uncosted) == (32 * 200, 32 * 200, 0)
    openai = [(2 * 2.0 + 1 * 0.5 + 2 * 8.0) / 1e6] * (32 * 200)
    anthropic = [(3 * 3.0 + 2 * 15.0) / 1e6] * (32 * 200)
    assert snap.total.calls == 64 * 210
    assert snap["openai/gpt-x"].cost == math.fsum(openai) and snap["anthropic/claude-x"].cost == math.fsum(anthropic)
    assert snap.total.cost == math.fsum(openai + anthropic)  # exact: not a float sum in whatever order the threads ran


def test_snapshot_is_a_plain_picklable_copy():
    totals = UsageTotals(PRICES)
    totals.record("openai", "gpt-x", Usage(input_tokens=1, output_tokens=1))
    snap = totals.snapshot()
    totals.record("openai", "gpt-x", Usage(input_tokens=1, output_tokens=1))
    assert snap["openai/gpt-x"].calls == 1  # a copy, not a view
    back = pickle.loads(pickle.dumps(snap))
    assert isinstance(back, UsageSnapshot) and back == snap
    assert back.to_dict()["total"]["total_tokens"] == 2
    assert back.to_dict()["rows"]["openai/gpt-x"]["provider"] == "openai"


def test_reset_starts_from_zero_and_returns_what_was_there():
    totals = UsageTotals()
    totals.record_error("a", "b")
    before = totals.reset()
    assert before.total.errors == 1
    assert totals.snapshot() == UsageSnapshot({}, UsageRow("*", "*"))


def test_totals_pickle_with_their_prices_and_fresh_counts():
    totals = UsageTotals(PRICES)
    totals.record("openai", "gpt-x", Usage(input_tokens=1, output_tokens=1))
    back = pickle.loads(pickle.dumps(totals))
    assert back.prices == check_prices(PRICES) and back.snapshot().total.calls == 0


def test_repr_shows_totals_only():
    totals = UsageTotals({"openai/gpt-x": {"input": 1, "output": 1}})
    totals.record("openai", "gpt-x", Usage(input_tokens=1_000_000, output_tokens=0))
    text = repr(totals)
    assert "calls=1" in text and "$1" in text
    assert repr(UsageTotals()).endswith("cost=unknown>")


@pytest.mark.parametrize(
    "prices, words",
    [
        ([1, 2], "must be a dict"),
        ({"gpt-x": {"input": 1, "output": 1}}, "'provider/model'"),
        ({"openai/gpt-x": 3}, "must be a dict like"),
        ({"openai/gpt-x": {"input": 1}}, "needs output"),
        ({"openai/gpt-x": {"input": 1, "output": 1, "inptu": 2}}, "unknown field(s) inptu"),
        ({"openai/gpt-x": {"input": -1, "output": 1}}, ">= 0"),
        ({"openai/gpt-x": {"input": "1", "output": 1}}, ">= 0"),
        ({"openai/gpt-x": {"input": True, "output": 1}}, ">= 0"),
        ({"openai/gpt-x": {"input": float("inf"), "output": 1}}, ">= 0"),
    ],
)
def test_a_bad_price_table_raises_a_clear_validation_error(prices, words):
    with pytest.raises(ValidationError) as info:
        UsageTotals(prices)
    assert words in str(info.value)


def test_check_prices_copies_and_converts():
    given = {"openai/gpt-x": {"input": 1, "output": 2}}
    table = check_prices(given)
    given["openai/gpt-x"]["input"] = 99
    assert table == {"openai/gpt-x": {"input": 1.0, "output": 2.0}} and check_prices(None) == {}


def test_with_config_overlays_the_config_prices_with_the_given_ones():
    class Config:
        def prices(self):
            return {"openai/gpt-x": {"input": 9.0, "output": 9.0}, "anthropic/claude-x": {"input": 3.0, "output": 15.0}}

    totals = UsageTotals.with_config(Config(), {"openai/gpt-x": {"input": 1.0, "output": 2.0}})
    assert totals.prices == {"openai/gpt-x": {"input": 1.0, "output": 2.0}, "anthropic/claude-x": {"input": 3.0, "output": 15.0}}
    assert UsageTotals.with_config(object()).prices == {}  # a config without a [prices] reader


def test_costs_are_summed_exactly_whatever_the_order():
    totals = UsageTotals()
    for _ in range(10):
        totals.record("openrouter", "a/b", Usage(input_tokens=1, output_tokens=1, cost=0.1))
    totals.record("openrouter", "c/d", Usage(input_tokens=1, output_tokens=1, cost=0.2))
    snap = totals.snapshot()
    assert snap["openrouter/a/b"].cost == 1.0  # a running float sum gives 0.9999999999999999
    assert snap.total.cost == math.fsum([0.1] * 10 + [0.2])  # the exact sum, rounded once
    assert totals.reset().total.cost == snap.total.cost and totals.snapshot().total.cost is None


def test_a_nonsense_reported_cost_counts_as_unknown():
    totals = UsageTotals()
    assert totals.record("openrouter", "a/b", Usage(input_tokens=1, output_tokens=1, cost=math.nan)) is None
    totals.record("openrouter", "a/b", Usage(input_tokens=1, output_tokens=1, cost=math.inf))
    row = totals.snapshot()["openrouter/a/b"]
    assert row.cost is None and row.uncosted == 2


@pytest.mark.parametrize("prices", [[1, 2], "cheap", {"gpt-x": {"input": 1, "output": 1}}])
def test_with_config_refuses_a_bad_price_table_clearly(prices):
    class Config:
        def prices(self):
            return {}

    with pytest.raises(ValidationError, match="prices"):
        UsageTotals.with_config(Config(), prices)
