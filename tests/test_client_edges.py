"""Edge cases of the client and the stream runner: config, aborts, deadlines, validation, records."""

import gc
import pickle
import threading
import time

import pytest

from modelprov import (
    CircuitBreaker,
    Client,
    ConfigManager,
    ConfigurationError,
    Message,
    ProviderConnectionError,
    ProviderTimeoutError,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from modelprov.cli.main import main
from modelprov.engine import bind
from modelprov.providers.openai_compat.compatible import OpenAICompatibleProvider
from modelprov.testing import FakeServer
from modelprov.types import HTTPRequest, ImagePart, ProviderConfig

SENTINEL = "sk-proj-SENTINEL0123456789abcdef"


def no_sleep(seconds):
    pass


def compat(server, breaker=None, retries=0, **cfg):
    config = ProviderConfig(name="local", type="openai_compatible", base_url=server.base_url("openai_compatible"), **cfg)
    return bind(OpenAICompatibleProvider(config), retry=RetryPolicy(max_retries=retries), breaker=breaker)


def test_client_config_reaches_provider_settings(tmp_path):
    ini = tmp_path / "other.ini"
    ini.write_text("[modelprov]\ndefault_model = local/m\n[provider:local]\ntype = mock\n")
    client = Client(config=ConfigManager(str(ini)))
    assert client.resolve(None) == ("local", "m")
    assert type(client.provider("local")).__name__ == "MockProvider"
    assert client.complete(None, "from the other file").text == "from the other file"


def test_pickled_client_keeps_its_config_manager(tmp_path):
    ini = tmp_path / "c.ini"
    ini.write_text("[provider:local]\ntype = mock\n")
    client = Client(config=ConfigManager(str(ini), environ={"MODELPROV_MODEL": "local/echo"}, use_keyring=False))
    back = pickle.loads(pickle.dumps(client))
    assert back.complete(None, "still configured").text == "still configured"


def test_caller_abort_never_counts_as_breaker_failure():
    breaker = CircuitBreaker("local", failure_threshold=1)
    with FakeServer() as server:
        for _ in range(3):
            server.add_chat("openai_compatible", "a b c d", stall_after=2)
            stream = compat(server, breaker).stream("x", model="m")
            next(stream)
            threading.Timer(0.05, stream.abort).start()
            with pytest.raises(ProviderConnectionError):
                for _ in stream:
                    pass
    stats = breaker.stats()
    assert stats.failures == 0 and stats.state.value == "closed" and stats.ignored == 3


def test_dropped_stream_releases_connection_and_permit_at_once():
    breaker = CircuitBreaker("local", failure_threshold=1, half_open_max_calls=1)
    with FakeServer() as server:
        server.add_chat("openai_compatible", "a b c d", stall_after=2)

        def consume_one():
            stream = compat(server, breaker).stream("x", model="m")
            return next(stream).text

        gc.disable()
        try:
            assert consume_one()
            assert server.wait_for_disconnect(1.0), "the dropped stream kept its connection"
            assert breaker.stats().half_open_in_flight == 0 and breaker.stats().ignored == 1
        finally:
            gc.enable()


def test_stream_timeout_spans_retries():
    with FakeServer() as server:
        server.add_error(500, protocol="openai_compatible", delay=0.6)
        server.add_chat("openai_compatible", "too late", delay=0.6)
        start = time.monotonic()
        with pytest.raises((ProviderTimeoutError, ServerError)):
            list(compat(server, retries=3).stream("x", model="m", timeout=0.9))
        assert time.monotonic() - start < 1.5


def test_idle_deadline_catches_a_silent_server():
    with FakeServer() as server:
        server.add_chat("openai_compatible", "a b c", stall_after=2)
        start = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            list(compat(server, idle_timeout=0.3, read_timeout=10).stream("x", model="m"))
        assert time.monotonic() - start < 2


def test_abort_cuts_a_retry_wait_short():
    with FakeServer() as server:
        server.add_error(429, protocol="openai_compatible", retry_after=5)
        config = ProviderConfig(name="local", type="openai_compatible", base_url=server.base_url("openai_compatible"))
        stream = bind(OpenAICompatibleProvider(config), retry=RetryPolicy(max_retries=2)).stream("x", model="m")
        threading.Timer(0.3, stream.abort).start()
        start = time.monotonic()
        with pytest.raises(ProviderConnectionError):
            next(stream)
        assert time.monotonic() - start < 2


def test_closed_provider_reopens():
    with FakeServer() as server:
        p = compat(server)
        server.add_chat("openai_compatible", "one")
        assert p.generate("x", model="m").text == "one"
        p.close()
        server.add_chat("openai_compatible", "two")
        assert p.generate("x", model="m").text == "two"


def test_break_after_the_final_chunk_counts_as_success():
    breaker = CircuitBreaker("local")
    with FakeServer() as server:
        server.add_chat("openai_compatible", "done")
        stream = compat(server, breaker).stream("x", model="m")
        for chunk in stream:
            if chunk.finish_reason:
                break
        stream.close()
    assert breaker.stats().successes == 1


def test_retries_are_recorded_on_a_successful_response():
    client = Client(retry=RetryPolicy(max_retries=3), sleep=no_sleep)
    client.provider("mock").push(ServerError("a"), ServerError("b"), "finally")
    resp = client.complete("mock/echo", "x")
    assert [(r["outcome"], r.get("error")) for r in resp.attempts] == [("error", "ServerError"), ("error", "ServerError"), ("ok", None)]
    assert {r["model"] for r in resp.attempts} == {"echo"}


def test_unknown_fallback_provider_is_an_error_not_a_silent_skip():
    client = Client(fallbacks=["opnai/gpt"], sleep=no_sleep)
    with pytest.raises(ConfigurationError, match="unknown provider 'opnai'"):
        client.complete("mock/echo", "x")


def test_fallback_missing_key_does_not_hide_the_real_failure():
    client = Client(
        providers={"local": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}},
        fallbacks=["openai/gpt-5.4-mini"],
        retry=RetryPolicy(max_retries=0),
        sleep=no_sleep,
    )
    with pytest.raises(ProviderConnectionError) as info:
        client.complete("local/m", "x")
    assert [r["error"] for r in info.value.attempts] == ["ProviderConnectionError", "ConfigurationError"]


def test_stream_falls_back_past_an_unsupported_feature():
    client = Client(providers={"a": {"type": "anthropic", "api_key": "sk-ant-xxxxxxxx"}}, fallbacks=["mock/echo"])
    assert "".join(c.text for c in client.stream("a/claude", "seeded", seed=1)) == "seeded"
    assert client.complete("a/claude", "seeded", seed=1).provider == "mock"


@pytest.mark.parametrize(
    "kwargs",
    [{"breaker": {"bogus": 1}}, {"retry": 3}, {"timeout": "3"}, {"fallbacks": [1]}, {"on_error": "print"}],
)
def test_client_constructor_rejects_bad_arguments(kwargs):
    with pytest.raises(ValidationError):
        Client(**kwargs)


def test_client_accepts_breaker_true_and_no_fallbacks():
    assert Client(breaker=True, fallbacks=None).complete("mock/echo", "ok").text == "ok"


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.complete("mock/echo", "x", stream=True),
        lambda c: c.complete("mock/echo", "x", timeout=0),
        lambda c: c.complete("mock/echo", "x", timeout="3"),
        lambda c: c.stream("mock/echo", "x", stream=False),
        lambda c: c.embed("mock/echo", None),
        lambda c: c.complete("mock/echo", "x", response_format={"type": "json_schema", "json_schema": "oops"}),
        lambda c: c.complete("mock/echo", "x", tools=[{"name": "f", "parameters": "x"}]),
        lambda c: c.complete("mock/echo", "x", provider_options="abc"),
        lambda c: c.complete("mock/echo", "x", max_tokens=0),
        lambda c: c.complete("mock/echo", "x", max_tokens=True),
        lambda c: c.complete("mock/echo", "x", max_tokens=1.5),
        lambda c: c.complete("mock/echo", [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}]),
        lambda c: c.batch([{"messages": None}]),
        lambda c: c.batch({"a": "b"}),
    ],
)
def test_bad_call_arguments_raise_validation_errors(call):
    with pytest.raises(ValidationError):
        call(Client())


def test_message_objects_are_normalised_too():
    client = Client()
    msg = Message("user", [{"type": "text", "text": "parts"}])
    assert client.complete("mock/echo", [msg]).text == "parts"
    calls_none = Message("assistant", "x", tool_calls=None)  # type: ignore[arg-type]
    assert client.complete("mock/echo", [calls_none, {"role": "user", "content": "after"}]).text == "after"
    with pytest.raises(ValidationError):
        ImagePart(url=5)  # type: ignore[arg-type]


def test_batch_progress_arrives_in_order():
    seen = []

    def slow_first(done, total):
        if done == 1:
            time.sleep(0.05)
        seen.append(done)

    Client().batch([("mock/echo", f"q{i}") for i in range(6)], max_concurrency=3, on_progress=slow_first)
    assert seen == [1, 2, 3, 4, 5, 6]


def test_breaker_error_names_the_provider():
    client = Client(providers={"a": {"type": "mock"}}, retry=RetryPolicy(max_retries=0), breaker={"failure_threshold": 1})
    client.provider("a").push(ServerError("down"))
    with pytest.raises(ServerError):
        client.complete("a/echo", "x")
    with pytest.raises(Exception) as info:
        client.complete("a/echo", "x")
    assert info.value.provider == "a"


def test_reprs_hide_credentials():
    req = HTTPRequest("POST", "/x", {"Authorization": f"Bearer {SENTINEL}", "api-key": SENTINEL})
    cfg = ProviderConfig(name="x", headers=(("api-key", SENTINEL),))
    assert SENTINEL not in repr(req) and SENTINEL not in repr(cfg)


def test_cli_refuses_secret_config_keys(capsys):
    for argv in (["config", "get", "provider.openai.API_KEY"], ["config", "set", "provider.openai.Api_Key", SENTINEL],
                 ["config", "get", "provider.openai.header.Authorization"]):
        assert main(argv) == 2
    out, err = capsys.readouterr()
    assert SENTINEL not in out + err
