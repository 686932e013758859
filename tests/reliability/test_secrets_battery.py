"""Secrets battery (issue 11, deliverable 5): a sentinel key never appears anywhere observable.

A fresh random sentinel key (``sk-SENTINEL-<32 hex>``) is configured for
every provider kind (openai, anthropic, openrouter, ollama with a bearer key,
an ``openai_compatible`` instance). A battery of calls runs against a
FakeServer: successes (complete and stream), 401s and 500s whose bodies and
headers echo the key, 500s retried then answered, streams cut mid-way,
connection refused, a redirect to another host, fallbacks. Everything
observable is collected: every DEBUG record of every logger (root at DEBUG,
formatted with tracebacks), every hook payload (on_request, on_response,
on_retry, on_error, on_fallback), exception ``str``/``repr``/``to_dict``
and formatted tracebacks, reprs of the client, provider, config, engine and
transport, the repr of an unpickled client, and the CLI's output.

Pass criterion (every test): neither the sentinel nor its random hex part
occurs in the collected text, while the FakeServer proves the key was sent.
"""

import functools
import logging
import os
import pickle
import secrets
import socket
import traceback
from pathlib import Path

import pytest

from modelprov import Client, ModelProvError, RetryPolicy, collect
from modelprov.cli.main import main
from modelprov.testing import FakeServer

HEX = secrets.token_hex(16)
SENTINEL = "sk-SENTINEL-" + HEX
FAST = RetryPolicy(max_retries=2, initial_backoff=0.001, max_backoff=0.002)
PROVIDERS = ["openai", "anthropic", "openrouter", "ollama", "openai_compatible"]
ENV_KEY = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "openrouter": "OPENROUTER_API_KEY",
           "ollama": "OLLAMA_API_KEY"}


def no_sleep(seconds):
    pass


PAYLOADS = []  # (hook name, repr of its arguments); module-level so that hooked clients pickle


def _record(hook, *args):
    PAYLOADS.append((hook, repr(args)))


HOOKS = {h: functools.partial(_record, h) for h in ("on_request", "on_response", "on_retry", "on_error", "on_fallback")}


class Collector(logging.Handler):
    """Formats every record (with its traceback) at DEBUG, from every logger."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@pytest.fixture
def logs():
    root = logging.getLogger()
    handler = Collector()
    old_level = root.level
    touched = [lg for lg in (logging.getLogger("modelprov"),) if lg.level]
    saved = {lg: lg.level for lg in touched}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for lg in touched:
        lg.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)
    for lg, level in saved.items():
        lg.setLevel(level)


def _exc_text(exc):
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    for attr in ("to_dict", "attempts", "hint", "message"):
        value = getattr(exc, attr, None)
        if value is not None:
            parts.append(repr(value() if callable(value) else value))
    try:
        parts.append(repr(pickle.loads(pickle.dumps(exc))))
    except Exception as err:  # an unpicklable exception is a finding of its own
        parts.append(f"unpicklable: {err!r}")
    return "\n".join(parts)


def _assert_clean(text, where):
    assert SENTINEL not in text, f"the sentinel key leaked through {where}"
    assert HEX not in text, f"the sentinel key's random part leaked through {where}"


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _settings(protocol, base_url):
    cfg = {"api_key": SENTINEL, "base_url": base_url}
    if protocol == "openai_compatible":
        cfg["type"] = "openai_compatible"
    return cfg


def _next_step(server, sent):
    """Keep the request headers seen so far, then drop replies a step left queued (retries vary by protocol)."""
    sent.extend(dict(r.headers) for r in server.requests)
    server.reset()


def _name(protocol):
    return "localllm" if protocol == "openai_compatible" else protocol


@pytest.mark.parametrize("protocol", PROVIDERS)
def test_sentinel_never_leaks_through_the_battery(protocol, logs):
    """Pass: after success, stream, 401/500 echoing the key, retried 500s, a cut stream, a refused
    connection, a cross-host redirect and a fallback (all at DEBUG, all hooks on), the sentinel occurs in no
    log line, hook payload, exception text/traceback, object repr or unpickled-client repr; the server saw it
    in the auth header (so it was really configured)."""
    PAYLOADS.clear()
    payloads, hooks = PAYLOADS, HOOKS
    texts = []
    sent = []
    name = _name(protocol)
    model = f"{name}/m"
    with FakeServer() as server, FakeServer() as other:
        client = Client(providers={name: _settings(protocol, server.base_url(protocol))},
                        retry=FAST, sleep=no_sleep, fallbacks=["mock/echo"], **hooks)
        plain = Client(providers={name: _settings(protocol, server.base_url(protocol))},
                       retry=FAST, sleep=no_sleep, **hooks)
        # 1. success, complete and stream
        server.add_chat(protocol, "ok")
        texts.append(repr(client.complete(model, "hi")))
        server.add_chat(protocol, "streamed ok")
        texts.append(repr(collect(client.stream(model, "hi"))))
        _next_step(server, sent)
        # 2. 500 twice (key echoed), then success: retried
        echo = f"Incorrect API key provided: {SENTINEL}"
        server.add_error(500, protocol=protocol, message=echo, headers={"x-echo": SENTINEL})
        server.add_error(500, protocol=protocol, message=echo)
        server.add_chat(protocol, "after retries")
        assert plain.complete(model, "hi").text == "after retries"
        _next_step(server, sent)
        # 3. 401 echoing the key: typed error, no fallback for plain
        server.add_error(401, protocol=protocol, message=echo, headers={"www-authenticate": f"Bearer {SENTINEL}"})
        with pytest.raises(ModelProvError) as info:
            plain.complete(model, "hi")
        texts.append(_exc_text(info.value))
        _next_step(server, sent)
        # 4. 500 until retries are exhausted
        for _ in range(3):
            server.add_error(500, protocol=protocol, message=echo)
        with pytest.raises(ModelProvError) as info:
            plain.complete(model, "hi")
        texts.append(_exc_text(info.value))
        _next_step(server, sent)
        # 5. a stream cut mid-way
        server.add_chat(protocol, "one two three four five six", drop_after=2, stream=True)
        with pytest.raises(ModelProvError) as info:
            for _ in plain.stream(model, "hi"):
                pass
        texts.append(_exc_text(info.value))
        _next_step(server, sent)
        # 6. a redirect to another host (the key must not follow)
        server.add_raw(307, headers={"Location": other.base_url(protocol) + "/chat", "x-echo": SENTINEL})
        other.set_default(protocol, "redirected")
        try:
            texts.append(repr(plain.complete(model, "hi")))
        except ModelProvError as exc:
            texts.append(_exc_text(exc))
        for req in other.requests:
            _assert_clean(repr(dict(req.headers)), "a redirect to another host")
        _next_step(server, sent)
        # 7. fallback: the primary fails with 503 three times, mock/echo answers
        for _ in range(3):
            server.add_error(503, protocol=protocol, message=echo)
        texts.append(repr(client.complete(model, "fallback please")))
        assert any(h == "on_fallback" for h, _ in payloads), "the fallback hook did not fire"
        _next_step(server, sent)
        # 8. connection refused
        refused = Client(providers={name: _settings(protocol, f"http://127.0.0.1:{_closed_port()}/v1")},
                         retry=RetryPolicy(max_retries=1, initial_backoff=0.001, max_backoff=0.002),
                         sleep=no_sleep, **hooks)
        with pytest.raises(ModelProvError) as info:
            refused.complete(model, "hi")
        texts.append(_exc_text(info.value))
        # the key was really sent
        _next_step(server, sent)
        assert SENTINEL in repr(sent), "the FakeServer never received the sentinel key: the battery tested nothing"
        # object reprs, before and after pickling
        for c in (client, plain, refused):
            provider = c.provider(name)
            engine = getattr(provider, "engine", None)
            texts.extend([repr(c), str(c), repr(provider), str(provider), repr(provider.config), str(provider.config),
                          repr(engine), repr(getattr(engine, "_transport", None))])
            copy = pickle.loads(pickle.dumps(c))
            texts.extend([repr(copy), repr(copy.provider(name)), repr(copy.provider(name).config)])
            copy.close()
            c.close()
    assert any(h == "on_retry" for h, _ in payloads) and any(h == "on_error" for h, _ in payloads)
    assert any(h == "on_request" for h, _ in payloads) and any(h == "on_response" for h, _ in payloads)
    assert len(logs.lines) > 10, "DEBUG logging captured almost nothing: the capture is broken"
    _assert_clean("\n".join(logs.lines), "a log record")
    _assert_clean("\n".join(p for _, p in payloads), "a hook payload")
    _assert_clean("\n".join(texts), "an exception, a result or a repr")


CLI_COMMANDS = [
    ["chat", "-m", "{model}", "hi"],
    ["chat", "--no-stream", "-m", "{model}", "hi"],
    ["--debug", "chat", "-m", "{model}", "hi"],
    ["--debug", "chat", "--no-stream", "-m", "{model}", "hi"],
    ["chat", "--json", "-m", "{model}", "-o", "temperature", "0.2", "hi"],
    ["chat", "-c", "--json", "hi"],
    ["-m", "{model}", "--schema", "name, age int", "hi"],
    ["logs"],
    ["logs", "-n", "0", "--json"],
    ["logs", "path"],
    ["models", "{name}"],
    ["models"],
    ["embed", "-m", "{model}", "--json", "hello"],
    ["batch", "-m", "{model}", "{batch_file}"],
    ["doctor", "{name}", "--json"],
    ["config", "path"],
    ["config", "get", "provider.{name}.base_url"],
    ["keys", "path"],
    ["providers"],
    ["doctor"],
    ["config", "show"],
    ["config", "show", "{name}"],
    ["keys", "get", "{name}"],
    ["keys", "list"],
]


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "openrouter", "ollama"])
def test_cli_output_never_shows_the_key(protocol, monkeypatch, capsys, logs, tmp_path):
    """Pass: with the sentinel in the provider's environment variable and the server alternately answering and
    echoing the key in a 401, chat/providers/doctor/config show/keys print neither the sentinel nor its hex
    part, on stdout, stderr or in DEBUG logs (``--debug`` included)."""
    monkeypatch.setenv(ENV_KEY[protocol], SENTINEL)
    outputs = []
    with FakeServer() as server:
        monkeypatch.setenv(f"MODELPROV_{protocol.upper()}_BASE_URL", server.base_url(protocol))
        server.set_default(protocol, "cli answer")
        for argv in CLI_COMMANDS:
            batch_file = tmp_path / "batch.jsonl"
            batch_file.write_text('"hi"\n{"id": "x", "prompt": "hi"}\n')
            argv = [a.format(model=f"{protocol}/m", name=protocol, batch_file=batch_file) for a in argv]
            if argv[-1] == "hi":
                server.add_error(401, protocol=protocol, message=f"bad key {SENTINEL}")
            for _ in range(2 if argv[-1] == "hi" else 1):
                try:
                    main(argv)
                except SystemExit:
                    pass
                out, err = capsys.readouterr()
                outputs.append(f"$ {argv}\n{out}\n{err}")
        sent = repr([dict(r.headers) for r in server.requests])
    assert SENTINEL in sent, "the CLI never sent the key: the test exercised nothing"
    assert any("cli answer" in o for o in outputs), "no CLI chat succeeded"
    _assert_clean("\n".join(outputs), "CLI output")
    _assert_clean("\n".join(logs.lines), "a log record during the CLI run")
    db = Path(os.environ["MODELPROV_LOGS_PATH"])
    stored = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))  # the database, its WAL and journal
    assert b"cli answer" in stored, "the CLI's chats were not logged: the log check tested nothing"
    _assert_clean(stored.decode("latin-1"), "the CLI's conversation log")
