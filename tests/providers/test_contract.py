"""One contract every registered provider meets, run over real sockets (the mock offline).

Each built-in provider is exercised against ``modelprov.testing.FakeServer``
speaking its wire protocol; the mock is scripted directly. The same
assertions hold for all of them.
"""

import pytest

import modelprov
import modelprov.api
from modelprov import (
    AuthenticationError,
    Client,
    ProviderCapabilities,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ToolCall,
    UnsupportedFeatureError,
    ValidationError,
    collect,
)
from modelprov.registry import ProviderRegistry
from modelprov.testing import FakeServer

PROTOCOL = {
    "openai": "openai",
    "openrouter": "openrouter",
    "openai_compatible": "openai_compatible",
    "anthropic": "anthropic",
    "ollama": "ollama",
    "mock": None,
}
PROVIDERS = ProviderRegistry().list()
ERRORS = {401: AuthenticationError, 429: RateLimitError, 500: ServerError}


def test_every_registered_provider_has_a_contract_harness():
    assert sorted(PROVIDERS) == sorted(PROTOCOL)


class Harness:
    """Arranges replies for one provider, over FakeServer or the mock's script."""

    def __init__(self, name, server):
        self.name = name
        self.protocol = PROTOCOL[name]
        self.server = server
        settings = {}
        if self.protocol:
            settings = {"api_key": "test-key-0123456789", "base_url": server.base_url(self.protocol)}
        self.client = Client(providers={name: settings}, retry=RetryPolicy(max_retries=0), breaker=False)
        self.provider = self.client.provider(name)
        self.model = f"{name}/test-model"

    def chat(self, text, tool_calls=None):
        if self.protocol:
            self.server.add_chat(self.protocol, text, tool_calls=tool_calls, usage={"input_tokens": 3, "output_tokens": 2})
        elif tool_calls:
            self.provider.push([ToolCall(c["id"], c["name"], c["arguments"]) for c in tool_calls])
        else:
            self.provider.push(text)

    def error(self, status):
        if self.protocol:
            self.server.add_error(status, protocol=self.protocol, message="scripted failure")
        else:
            self.provider.push(ERRORS[status]("scripted failure", status_code=status))

    def sent(self):
        return self.server.requests if self.protocol else self.provider.requests


@pytest.fixture(params=PROVIDERS)
def harness(request):
    with FakeServer() as server:
        h = Harness(request.param, server)
        yield h
        h.client.close()


def test_declares_itself(harness):
    cls = type(harness.provider)
    assert cls.name == harness.name
    assert isinstance(cls.capabilities, ProviderCapabilities)
    assert cls.capabilities.chat and cls.capabilities.streaming
    assert (cls.__doc__ or "").strip()


def test_generate(harness):
    harness.chat("Hello world")
    r = harness.client.complete(harness.model, "Say hello")
    assert r.text == "Hello world"
    assert r.finish_reason == "stop" and r.native_finish_reason
    assert r.provider == harness.name and r.model
    assert r.usage.output_tokens > 0 and r.usage.total_tokens >= r.usage.output_tokens
    assert r.latency_s is not None and r.latency_s >= 0


def test_stream_and_collect(harness):
    harness.chat("Hello streaming world")
    chunks = list(harness.client.stream(harness.model, "Say hello"))
    assert len([c for c in chunks if c.text]) >= 2
    assert all(c.provider == harness.name for c in chunks)
    final = collect(chunks)
    assert final.text == "Hello streaming world"
    assert final.finish_reason == "stop" and final.usage.output_tokens > 0


def test_tool_calls_json_and_stream(harness):
    if not harness.provider.capabilities.tools:
        pytest.skip("no tools")
    tools = [{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    call = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    harness.chat("", tool_calls=[call])
    r = harness.client.complete(harness.model, "Weather?", tools=tools)
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert r.finish_reason == "tool_calls"
    harness.chat("", tool_calls=[call])
    s = collect(harness.client.stream(harness.model, "Weather?", tools=tools))
    assert [(c.name, c.arguments) for c in s.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert s.finish_reason == "tool_calls"


@pytest.mark.parametrize("status", sorted(ERRORS))
def test_errors_map_to_the_tree(harness, status):
    harness.error(status)
    with pytest.raises(ERRORS[status]) as info:
        harness.client.complete(harness.model, "x")
    assert info.value.provider == harness.name
    assert info.value.status_code == status
    assert "scripted failure" in str(info.value)


def test_validation_happens_before_io(harness):
    with pytest.raises(ValidationError):
        harness.client.complete(harness.model, [])
    with pytest.raises(ValidationError):
        harness.client.complete(harness.model, "x", temperature=-1)
    assert harness.sent() == []


def test_missing_capabilities_fail_before_io(harness):
    caps = harness.provider.capabilities
    if not caps.embeddings:
        with pytest.raises(UnsupportedFeatureError) as info:
            harness.client.embed(harness.model, ["x"])
        assert harness.name in str(info.value)
    if not caps.seed:
        with pytest.raises(UnsupportedFeatureError):
            harness.client.complete(harness.model, "x", seed=1)
    assert harness.sent() == []


def test_embeddings_when_supported(harness):
    if not harness.provider.capabilities.embeddings:
        pytest.skip("no embeddings")
    if harness.protocol:
        harness.server.add_embeddings(harness.protocol, [[0.5, 0.25], [1.0, 0.0]])
    r = harness.client.embed(harness.model, ["a", "b"])
    assert len(r.embeddings) == 2 and all(isinstance(x, float) for v in r.embeddings for x in v)
    assert r.provider == harness.name


def test_list_models_when_supported(harness):
    if not harness.provider.capabilities.list_models:
        pytest.skip("cannot list models")
    if harness.protocol:
        harness.server.add_models(harness.protocol, ["model-a", "model-b"])
        expected = ["model-a", "model-b"]
    else:
        expected = ["echo", "scripted"]
    assert [m.id for m in harness.client.models(harness.name)] == expected


def test_module_level_api_reaches_it(harness, monkeypatch):
    harness.chat("via module")
    monkeypatch.setattr(modelprov.api, "get_default_client", lambda: harness.client)
    assert modelprov.complete(harness.model, "x").text == "via module"
