"""ModelProvider plumbing shared by every HTTP provider: deadlines, hints, defaults, headers."""

import time

import pytest

from modelprov import ConfigurationError, ProviderConnectionError, ProviderTimeoutError, RetryPolicy, ServerError
from modelprov.engine import bind
from modelprov.providers.ollama.provider import OllamaProvider
from modelprov.providers.openai_compat.compatible import OpenAICompatibleProvider
from modelprov.providers.openai_compat.openai import OpenAIProvider
from modelprov.testing import FakeServer
from modelprov.testing.factories import error_reply
from modelprov.types import ProviderConfig


def compat(server, **kw):
    cfg = ProviderConfig(name="local", type="openai_compatible", base_url=server.base_url("openai_compatible"))
    return bind(OpenAICompatibleProvider(cfg), **kw)


def test_per_call_timeout_bounds_all_retries():
    with FakeServer() as server:
        server.set_default(error_reply(500, protocol="openai_compatible", delay=0.15))
        p = compat(server, retry=RetryPolicy(max_retries=50, initial_backoff=0.01, max_backoff=0.01))
        start = time.monotonic()
        with pytest.raises((ProviderTimeoutError, ServerError)) as info:
            p.generate("x", model="m", timeout=0.5)
        assert time.monotonic() - start < 1.5
        assert 1 <= len(server.requests) <= 5
        assert len(info.value.attempts) == len(server.requests)


def test_default_model_comes_from_the_class():
    p = OpenAIProvider(ProviderConfig(name="openai", api_key="sk-test-123456789"))
    assert p.config.default_model == "gpt-5.4-mini" and p.config.base_url == "https://api.openai.com/v1"


def test_connection_errors_carry_the_provider_hint():
    p = bind(OllamaProvider(ProviderConfig(name="ollama", base_url="http://127.0.0.1:9")), retry=RetryPolicy.none())
    with pytest.raises(ProviderConnectionError) as info:
        p.generate("x", model="llama")
    assert "ollama serve" in str(info.value)


def test_streams_ask_for_their_media_type():
    with FakeServer() as server:
        server.add_chat("openai_compatible", "hi")
        list(compat(server).stream("x", model="m"))
        assert server.last_request.headers["accept"] == "text/event-stream"
        server.add_chat("ollama", "hi")
        list(bind(OllamaProvider(ProviderConfig(name="ollama", base_url=server.base_url("ollama")))).stream("x", model="m"))
        assert server.last_request.headers["accept"] == "application/x-ndjson"


def test_missing_base_url_is_a_configuration_error():
    class NoURL(OpenAICompatibleProvider):
        default_base_url = None

    with pytest.raises(ConfigurationError, match="no base_url"):
        bind(NoURL(ProviderConfig(name="x"))).generate("hi", model="m")
