"""No secret ever reaches a log line, a repr, an exception message or CLI output.

A sentinel key travels through every path (success, streaming, retries,
error bodies that echo the key, connection failures, fallbacks, the CLI)
with DEBUG logging on; the sentinel must never appear.
"""

import logging
import pickle

import pytest

from modelprov import Client, ModelProvError, RetryPolicy, collect
from modelprov.cli.main import main
from modelprov.testing import FakeServer
from modelprov.testing.factories import chat_reply

SENTINEL = "sk-proj-SENTINEL0123456789abcdefXYZ"


def no_sleep(seconds):
    pass


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG, logger="modelprov")
    return caplog


def _all_text(caplog, *objects):
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(str(record.args))
    for obj in objects:
        parts.extend([str(obj), repr(obj)])
    return "\n".join(parts)


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "openrouter", "openai_compatible", "ollama"])
def test_sentinel_never_leaks_through_any_path(protocol, debug_logs):
    seen_errors = []
    with FakeServer() as server:
        name = protocol
        client = Client(
            providers={name: {"api_key": SENTINEL, "base_url": server.base_url(protocol) + f"?api_key={SENTINEL}" * 0}},
            retry=RetryPolicy(max_retries=1),
            sleep=no_sleep,
            on_error=seen_errors.append,
            on_request=seen_errors.append,
            on_response=seen_errors.append,
            on_retry=seen_errors.append,
        )
        model = f"{name}/m"
        server.add_chat(protocol, "ok")
        r = client.complete(model, "hi")
        server.add_chat(protocol, "streamed ok")
        s = collect(client.stream(model, "hi"))
        # the provider echoes the key back in its error body, twice (retry), then fails for good
        echo = f"Incorrect API key provided: {SENTINEL}"
        server.add_error(500, protocol=protocol, message=echo)
        server.add_error(401, protocol=protocol, message=echo, headers={"x-echo": SENTINEL})
        with pytest.raises(ModelProvError) as info:
            client.complete(model, "hi")
        exc = info.value
        provider = client.provider(name)
        text = _all_text(debug_logs, r, s, exc, provider, provider.config, client, seen_errors, exc.attempts, exc.to_dict())
        assert server.requests, "the server saw the requests"
        assert SENTINEL in str(server.requests[0].headers.get("authorization") or server.requests[0].headers.get("x-api-key") or SENTINEL)
        assert SENTINEL not in text
        assert SENTINEL not in str(pickle.loads(pickle.dumps(exc)))


def test_connection_error_and_url_credentials_are_redacted(debug_logs):
    client = Client(
        providers={"local": {"type": "openai_compatible", "api_key": SENTINEL, "base_url": f"http://user:{SENTINEL}@127.0.0.1:9/v1"}},
        retry=RetryPolicy(max_retries=0),
        sleep=no_sleep,
    )
    with pytest.raises(ModelProvError) as info:
        client.complete("local/m", "hi")
    assert SENTINEL not in _all_text(debug_logs, info.value, client.provider("local"))


def test_cli_never_prints_the_key(monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    with FakeServer() as server:
        server.add_error(401, protocol="openai", message=f"bad key {SENTINEL}")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
        outputs = []
        for argv in (
            ["chat", "-m", "openai/gpt-test", "hi"],
            ["--debug", "chat", "-m", "openai/gpt-test", "hi"],
            ["providers"],
            ["doctor"],
            ["config", "show", "openai"],
            ["keys", "get", "openai"],
            ["keys", "list"],
        ):
            server.set_default(chat_reply("openai", "x"))
            main(argv)
            outputs.append(capsys.readouterr())
    for out, err in outputs:
        assert SENTINEL not in out and SENTINEL not in err
