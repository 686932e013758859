"""Bad input at the public API (issue 11, deliverable 4).

Pass criterion of every case: the call raises the expected typed error
(:class:`~modelprov.ValidationError`, :class:`~modelprov.ConfigurationError` or
:class:`~modelprov.UnsupportedFeatureError`), its message contains the listed
key words (it names what to fix), and no network I/O happened: the
MockTransport handler was never called (it would also raise) or the
FakeServer recorded no request and accepted no connection.
"""

import sys
import types

import pytest

from modelprov import Client, ConfigurationError, ModelProvError, UnsupportedFeatureError, ValidationError
from modelprov.parts import ImagePart
from modelprov.testing import FakeServer, MockTransport

KEY = "sk-BAD-INPUT-0123456789"
MODEL = "openai/gpt-test"
MISSING_IMAGE = "/nonexistent-dir-for-modelprov-tests/cat.png"


class NoNetwork(MockTransport):
    """A MockTransport whose handler fails the test if it is ever reached."""

    def __init__(self):
        self.reached = []

        def handler(request):
            self.reached.append(request)
            raise AssertionError("network I/O attempted for %s" % request.url)

        super().__init__(handler)


def _image_msg(image):
    return [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]


# (id, call(client) , expected type, key words the message must contain (lower-cased))
CASES = [
    # messages
    ("empty-prompt", lambda c: c.complete(MODEL, ""), ValidationError, ["prompt", "empty"]),
    ("empty-list", lambda c: c.complete(MODEL, []), ValidationError, ["messages", "empty"]),
    ("message-not-dict", lambda c: c.complete(MODEL, [42]), ValidationError, ["messages[0]", "dict", "int"]),
    ("message-no-content", lambda c: c.complete(MODEL, [{"role": "user"}]), ValidationError, ["messages[0]", "content"]),
    ("unknown-role", lambda c: c.complete(MODEL, [{"role": "wizard", "content": "hi"}]), ValidationError,
     ["messages[0]", "role", "wizard", "user"]),
    ("content-wrong-type", lambda c: c.complete(MODEL, [{"role": "user", "content": 5}]), ValidationError,
     ["messages[0].content", "string"]),
    ("messages-int", lambda c: c.complete(MODEL, 5), ValidationError, ["messages", "string", "list", "int"]),
    ("messages-none", lambda c: c.complete(MODEL, None), ValidationError, ["messages", "nonetype"]),
    ("unknown-part-type", lambda c: c.complete(MODEL, [{"role": "user", "content": [{"type": "video", "url": "x"}]}]),
     ValidationError, ["messages[0].content[0]", "video"]),
    # model strings and providers
    ("unknown-provider", lambda c: c.complete("nosuch/model", "hi"), ConfigurationError,
     ["unknown provider", "nosuch", "openai"]),
    ("model-without-provider", lambda c: c.complete("gpt4", "hi"), ConfigurationError,
     ["gpt4", "provider/model"]),
    ("model-empty", lambda c: c.complete("", "hi"), ValidationError, ["model", "provider/model"]),
    ("model-not-a-string", lambda c: c.complete(5, "hi"), ValidationError, ["model", "provider/model"]),
    ("model-empty-provider", lambda c: c.complete("/gpt", "hi"), ConfigurationError, ["provider", "openai"]),
    ("unknown-provider-stream", lambda c: c.stream("nosuch/model", "hi"), ConfigurationError, ["nosuch"]),
    # parameters
    ("temperature-5", lambda c: c.complete(MODEL, "hi", temperature=5), ValidationError, ["temperature", "0", "2", "5"]),
    ("temperature-str", lambda c: c.complete(MODEL, "hi", temperature="hot"), ValidationError, ["temperature", "number"]),
    ("temperature-nan", lambda c: c.complete(MODEL, "hi", temperature=float("nan")), ValidationError, ["temperature"]),
    ("max_tokens-negative", lambda c: c.complete(MODEL, "hi", max_tokens=-1), ValidationError, ["max_tokens", ">= 1", "-1"]),
    ("max_tokens-zero", lambda c: c.complete(MODEL, "hi", max_tokens=0), ValidationError, ["max_tokens", ">= 1"]),
    ("max_tokens-float", lambda c: c.complete(MODEL, "hi", max_tokens=1.5), ValidationError, ["max_tokens", "integer"]),
    ("top_p-2", lambda c: c.complete(MODEL, "hi", top_p=2), ValidationError, ["top_p", "between 0 and 1"]),
    ("timeout-negative", lambda c: c.complete(MODEL, "hi", timeout=-1), ValidationError, ["timeout", "positive", "-1"]),
    ("timeout-zero", lambda c: c.complete(MODEL, "hi", timeout=0), ValidationError, ["timeout", "positive"]),
    ("timeout-str", lambda c: c.complete(MODEL, "hi", timeout="soon"), ValidationError, ["timeout", "seconds"]),
    ("reasoning-ultra", lambda c: c.complete(MODEL, "hi", reasoning="ultra"), ValidationError,
     ["reasoning", "ultra", "high"]),
    ("seed-str", lambda c: c.complete(MODEL, "hi", seed="x"), ValidationError, ["seed", "integer"]),
    ("stop-int", lambda c: c.complete(MODEL, "hi", stop=5), ValidationError, ["stop", "string"]),
    ("tool_choice-int", lambda c: c.complete(MODEL, "hi", tool_choice=5), ValidationError, ["tool_choice", "auto"]),
    ("response_format-int", lambda c: c.complete(MODEL, "hi", response_format=5), ValidationError,
     ["response_format", "json"]),
    ("stream-temperature-5", lambda c: c.stream(MODEL, "hi", temperature=5), ValidationError, ["temperature"]),
    # images
    ("image-path-missing", lambda c: c.complete(MODEL, _image_msg(ImagePart(path=MISSING_IMAGE))), ValidationError,
     ["image", "cat.png", "no such file"]),
    ("image-dict-path-missing", lambda c: c.complete(MODEL, _image_msg({"type": "image", "path": MISSING_IMAGE})),
     ValidationError, ["image", "cat.png"]),
    # tools
    ("tool-schema-list", lambda c: c.complete(MODEL, "hi", tools=[
        {"type": "function", "function": {"name": "f", "parameters": [1, 2]}}]), ValidationError,
     ["tools[0].parameters", "object"]),
    ("tool-schema-str", lambda c: c.complete(MODEL, "hi", tools=[{"name": "f", "parameters": "object"}]),
     ValidationError, ["tools[0].parameters", "object"]),
    ("tools-not-a-list", lambda c: c.complete(MODEL, "hi", tools="f"), ValidationError, ["tools", "list"]),
    ("tool-bad-name", lambda c: c.complete(MODEL, "hi", tools=[{"name": "has space", "parameters": {}}]),
     ValidationError, ["tools[0]", "name"]),
    # embeddings
    ("embed-int", lambda c: c.embed("openai/text-embedding-test", 5), ValidationError, ["inputs", "string"]),
    ("embed-empty", lambda c: c.embed("openai/text-embedding-test", []), ValidationError, ["inputs", "non-empty"]),
]


def _check(exc_info, expected, words):
    exc = exc_info.value
    assert type(exc) is expected or isinstance(exc, expected), f"expected {expected.__name__}, got {exc!r}"
    text = str(exc).lower()
    missing = [w for w in words if w.lower() not in text]
    assert not missing, f"message {str(exc)!r} does not name {missing}"
    assert "\n" not in str(exc).strip(), f"message is not one line: {str(exc)!r}"


@pytest.mark.parametrize("call, expected, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_the_transport(call, expected, words):
    """Typed error, message naming what to fix, and the transport's handler never reached."""
    transport = NoNetwork()
    client = Client(providers={"openai": {"api_key": KEY}}, transport=transport, sleep=lambda s: None)
    with pytest.raises(ModelProvError) as info:
        call(client)
    assert not transport.reached, "the request reached the transport"
    _check(info, expected, words)


@pytest.mark.parametrize("case_id", ["unknown-role", "temperature-5", "max_tokens-negative", "top_p-2", "timeout-negative",
                                     "reasoning-ultra", "image-path-missing", "tool-schema-list", "model-without-provider"])
def test_bad_input_never_reaches_a_real_socket(case_id):
    """Same cases over the real transport: the FakeServer records no request and accepts no connection."""
    call, expected, words = next(c[1:] for c in CASES if c[0] == case_id)
    with FakeServer() as server:
        server.set_default("openai", "should not be asked")
        client = Client(providers={"openai": {"api_key": KEY, "base_url": server.base_url("openai")}}, sleep=lambda s: None)
        try:
            with pytest.raises(ModelProvError) as info:
                call(client)
        finally:
            client.close()
        assert server.requests == [] and server.accepted == 0, f"network I/O happened: {server!r}"
    _check(info, expected, words)


@pytest.mark.parametrize("kwargs, words", [
    (dict(providers=["openai"]), ["providers", "dict"]),
    (dict(providers={"openai": "sk-x"}), ["providers['openai']", "dict"]),
    (dict(fallbacks=[5]), ["fallbacks", "provider/model"]),
    (dict(timeout=-3), ["timeout", "positive"]),
    (dict(breaker={"failure_threshold": 0}), ["breaker", "failure_threshold"]),
    (dict(breaker="yes"), ["breaker"]),
    (dict(drop_unsupported="maybe"), ["drop_unsupported", "true", "false"]),
    (dict(retry=3), ["retry", "retrypolicy"]),
    (dict(transport=42), ["transport", "send"]),
], ids=["providers-list", "provider-settings-str", "fallback-int", "timeout", "breaker-threshold", "breaker-str",
        "drop_unsupported", "retry-int", "transport-int"])
def test_bad_client_arguments(kwargs, words):
    """``Client(...)`` with a wrong argument raises ValidationError at construction, naming the argument."""
    with pytest.raises(ValidationError) as info:
        Client(**kwargs)
    _check(info, ValidationError, words)


@pytest.mark.parametrize("setting, value, words", [
    ("timeout", -5, ["timeout", "-5"]),
    ("timeout", "soon", ["timeout", "soon"]),
])
def test_bad_provider_setting_is_a_configuration_error(setting, value, words):
    """A bad provider setting: ConfigurationError naming the setting and value, transport never reached."""
    transport = NoNetwork()
    with pytest.raises(ModelProvError) as info:
        client = Client(providers={"openai": {"api_key": KEY, setting: value}}, transport=transport)
        client.complete(MODEL, "hi")
    assert not transport.reached
    _check(info, (ConfigurationError, ValidationError), words)


@pytest.mark.parametrize("call, words", [
    (lambda c: c.complete("openai/o3", "hi", temperature=0.5), ["temperature", "o3", "drop_unsupported"]),
    (lambda c: c.complete("openai/o3-pro", "hi"), ["o3-pro", "/v1/responses", "chat completions model"]),
    (lambda c: c.complete("anthropic/claude-test", "hi", temperature=0.5), ["temperature", "drop_unsupported"]),
    (lambda c: c.embed("anthropic/claude-test", "hi"), ["anthropic", "embeddings"]),
], ids=["openai-reasoning-temperature", "openai-responses-only-model", "anthropic-temperature", "anthropic-embed"])
def test_unsupported_feature_is_refused_before_the_transport(call, words):
    """An option or feature the target does not take: UnsupportedFeatureError naming it (and the way out), no I/O."""
    transport = NoNetwork()
    client = Client(providers={"openai": {"api_key": KEY}, "anthropic": {"api_key": KEY}}, transport=transport)
    with pytest.raises(ModelProvError) as info:
        call(client)
    assert not transport.reached
    _check(info, UnsupportedFeatureError, words)


# ----------------------------------------------------------------- config file


@pytest.mark.parametrize("text, words", [
    ("[modelprov\ndefault_model = openai/x\n", ["config file", "line 1"]),
    ("default_model = openai/x\n", ["config file", "line 1", "section"]),
    ("[modelprov]\ndefault_model = a\ndefault_model = b\n", ["config file", "line 3"]),
    ("[provider:openai]\napi_key = sk-x\n[provider:openai]\n", ["config file", "line 3"]),
    ("[modelprov]\njust some words\n", ["config file", "line 2"]),
    ("[provider:openai]\ntimeout = forever\n", ["timeout", "forever"]),
], ids=["unclosed-section", "no-section", "duplicate-key", "duplicate-section", "no-equals", "bad-timeout"])
def test_malformed_config_file(isolated_env, monkeypatch, text, words):
    """A malformed config file: ConfigurationError naming the file (path) and line or setting; no network I/O."""
    path = isolated_env / "broken.ini"
    path.write_text(text)
    monkeypatch.setenv("MODELPROV_CONFIG", str(path))
    transport = NoNetwork()
    with pytest.raises(ModelProvError) as info:
        Client(transport=transport).complete(MODEL, "hi")
    assert not transport.reached
    _check(info, ConfigurationError, words)
    if "config file" in words:
        assert str(path) in str(info.value), f"the file is not named: {info.value}"
    assert "sk-x" not in str(info.value), "the config line (which may hold a key) is quoted"


# ----------------------------------------------------------------- keyring


class _RaisingBackend:
    priority = 5

    def get_password(self, service, name):
        raise RuntimeError("keyring daemon exploded: SECRET-KEYRING-DETAIL")

    def set_password(self, service, name, value):
        raise RuntimeError("keyring daemon exploded: SECRET-KEYRING-DETAIL")

    def delete_password(self, service, name):
        raise RuntimeError("keyring daemon exploded: SECRET-KEYRING-DETAIL")


def _fake_keyring(get_keyring):
    module = types.ModuleType("keyring")
    module.get_keyring = get_keyring
    return module


def _broken_loader():
    raise RuntimeError("no backend: SECRET-KEYRING-DETAIL")


@pytest.mark.parametrize("module", [_fake_keyring(_RaisingBackend), _fake_keyring(_broken_loader)],
                         ids=["backend-raises", "get_keyring-raises"])
def test_raising_keyring_means_no_key_not_a_crash(monkeypatch, module):
    """A keyring that raises is skipped: with no other key the call raises ConfigurationError naming how to set one
    (env var and ``modelprov keys set``), not the keyring's RuntimeError; no network I/O."""
    monkeypatch.setitem(sys.modules, "keyring", module)
    transport = NoNetwork()
    with pytest.raises(ModelProvError) as info:
        Client(transport=transport).complete(MODEL, "hi")
    assert not transport.reached
    _check(info, ConfigurationError, ["api key", "openai_api_key", "keys set openai"])
    assert "SECRET-KEYRING-DETAIL" not in str(info.value)


def test_raising_keyring_does_not_hide_an_env_key(monkeypatch):
    """With a raising keyring and ``OPENAI_API_KEY`` set, the env key is used: the call reaches the server once."""
    monkeypatch.setitem(sys.modules, "keyring", _fake_keyring(_RaisingBackend))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeServer() as server:
        server.add_chat("openai", "fine")
        client = Client(providers={"openai": {"base_url": server.base_url("openai")}})
        try:
            assert client.complete(MODEL, "hi").text == "fine"
        finally:
            client.close()
        assert len(server.requests) == 1
        assert server.requests[0].headers["Authorization"] == "Bearer " + KEY
