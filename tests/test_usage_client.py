"""``client.usage``: one totals object across all the client's providers, prices from ``Client(prices=)``,
OpenRouter's own cost, errors and fallbacks counted, exact under 64 threads, reset, fresh after pickling."""

import pickle

import pytest

from modelprov import Client, ValidationError
from modelprov.testing import MockReply, MockTransport, chat_body
from modelprov.usage import UsageSnapshot

PRICES = {"openai/gpt-x": {"input": 2.0, "output": 8.0, "cached": 0.5}}


def handler(request):
    if "openrouter" in request.url:
        return chat_body("openrouter", "hi", usage={"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.003})
    if request.json.get("model") == "broken":
        return MockReply(500, {"error": {"message": "down", "type": "server_error"}})
    return chat_body("openai", "hi", usage={"prompt_tokens": 1000, "completion_tokens": 100})


def make_client(**kw):
    providers = {"openai": {"api_key": "sk-test"}, "openrouter": {"api_key": "sk-or-test"}}
    return Client(providers=providers, transport=MockTransport(handler), prices=PRICES, sleep=lambda s: None, **kw)


def test_one_totals_object_across_providers_with_both_kinds_of_cost():
    client = make_client()
    r = client.complete("openai/gpt-x", "hi")
    assert r.usage.cost == pytest.approx((1000 * 2.0 + 100 * 8.0) / 1e6)  # from the price table, shown on the response
    client.complete("openrouter/a/b", "hi")  # OpenRouter's own figure
    client.complete("mock/echo", "hi")  # no price: unknown
    snap = client.usage.snapshot()
    assert set(snap.rows) == {"openai/gpt-x", "openrouter/a/b", "mock/echo"}
    assert snap["openrouter/a/b"].cost == pytest.approx(0.003)
    assert snap["mock/echo"].cost is None and snap["mock/echo"].uncosted == 1
    assert snap.total.calls == 3 and snap.total.uncosted == 1
    assert snap.total.cost == pytest.approx(0.0028 + 0.003)
    assert client.usage is client.usage


def test_errors_and_fallbacks_are_counted_per_model():
    client = make_client(fallbacks=["openai/gpt-x"])
    client.complete("openai/broken", "hi")
    snap = client.usage.snapshot()
    assert (snap["openai/broken"].calls, snap["openai/broken"].errors) == (1, 1)
    assert (snap["openai/gpt-x"].calls, snap["openai/gpt-x"].errors) == (1, 0)


def test_streams_are_counted():
    client = Client(prices={"mock/echo": {"input": 1.0, "output": 1.0}})
    chunks = list(client.stream("mock/echo", "one two three"))
    row = client.usage.snapshot()["mock/echo"]
    assert row.calls == 1 and row.output_tokens == chunks[-1].usage.output_tokens > 0


def test_usage_totals_are_exact_under_64_threads():
    client = make_client()
    results = client.batch([("openai/gpt-x", f"hi {i}") for i in range(640)], max_concurrency=64)
    assert all(r.text == "hi" for r in results)
    row = client.usage.snapshot()["openai/gpt-x"]
    assert (row.calls, row.errors, row.input_tokens, row.output_tokens) == (640, 0, 640_000, 64_000)
    assert row.cost == pytest.approx(640 * 0.0028)


def test_reset_and_snapshot_pickle():
    client = make_client()
    client.complete("openai/gpt-x", "hi")
    snap = pickle.loads(pickle.dumps(client.usage.snapshot()))
    assert isinstance(snap, UsageSnapshot) and snap.total.calls == 1
    client.usage.reset()
    assert client.usage.snapshot().total.calls == 0


def test_a_pickled_client_starts_with_fresh_totals_and_the_same_prices():
    client = Client(prices=PRICES)
    client.complete("mock/echo", "hi")
    copy = pickle.loads(pickle.dumps(client))
    assert copy.usage.snapshot().total.calls == 0
    assert copy.usage.prices == client.usage.prices == PRICES


@pytest.mark.parametrize(
    "prices", [{"gpt-x": {"input": 1, "output": 1}}, {"openai/gpt-x": {"input": 1}}, {"openai/gpt-x": {"input": -1, "output": 1}}, "cheap"]
)
def test_a_bad_price_table_is_a_clear_validation_error_at_construction(prices):
    with pytest.raises(ValidationError) as info:
        Client(prices=prices)
    assert "prices" in str(info.value)


def test_prices_from_the_config_file_with_client_prices_winning(isolated_env):
    (isolated_env / "modelprov-config.ini").write_text("[prices]\nopenai/gpt-x = input=1 output=1\nmock/echo = input=1000000 output=0\n", encoding="utf-8")
    client = make_client()  # Client(prices=PRICES) gives openai/gpt-x its own price
    assert client.usage.prices["openai/gpt-x"] == PRICES["openai/gpt-x"]
    assert client.usage.prices["mock/echo"] == {"input": 1000000.0, "output": 0.0}
    r = client.complete("mock/echo", "one two")
    assert r.usage.cost == pytest.approx(r.usage.input_tokens * 1.0)
