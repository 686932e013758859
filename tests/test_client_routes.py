"""The client's per-call fast path: remembered routes and when they are dropped, and nothing built for unset hooks.

A route (model string -> provider and model) is remembered while the config
stays the same: the same manager, the same parsed file, and, looked at every
``ROUTE_RECHECK_S`` seconds (a fake monotonic clock here), the same file on
disk. Hook payloads are built only for hooks that are set; a client stream
drives its provider's generator directly.
"""

import threading

import pytest

import modelprov
from modelprov import Client, ConfigurationError, ProviderTimeoutError, ValidationError
from modelprov import fallback as fallback_mod
from modelprov.config.manager import ConfigManager, get_config, reset_config
from modelprov.hooks import HookSet
from modelprov.providers.mock import MockProvider
from modelprov.registry import get_registry
from modelprov.stream_handle import ProviderStream
from modelprov.testing import MockTransport, chat_body

THREE = {"a": {"type": "mock"}, "b": {"type": "mock"}, "c": {"type": "mock"}}


class Monotonic:
    """Stands in for ``time.monotonic`` in :mod:`modelprov.fallback` (the route cache's clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mono(monkeypatch):
    clock = Monotonic()
    monkeypatch.setattr(fallback_mod, "monotonic", clock)
    return clock


def counting(monkeypatch, obj, name):
    """Wrap ``obj.name`` so that calls are counted (the list grows by one per call)."""
    calls = []
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, wrapper)
    return calls


def write_config(path, text):
    path.write_text(text)


# ------------------------------------------------------------------ routes
def test_a_route_is_resolved_once_and_the_config_not_read_per_call(monkeypatch, mono):
    c = Client(providers=THREE)
    assert c.complete("a/echo", "first").provider == "a"
    resolved = counting(monkeypatch, c, "resolve")
    looked = counting(monkeypatch, ConfigManager, "provider_names")
    aliases = counting(monkeypatch, ConfigManager, "resolve_alias")
    for i in range(20):
        assert c.complete("a/echo", f"call {i}").text == f"call {i}"
    assert resolved == [] and looked == [] and aliases == []
    mono.now += fallback_mod.ROUTE_RECHECK_S  # time to look at the file again: one look, no new resolution
    assert c.complete("a/echo", "later").provider == "a"
    assert len(looked) == 1 and resolved == []


def test_an_alias_changed_through_the_config_shows_at_once(mono):
    cfg = get_config()
    cfg.set_value("aliases", "fast", "a/echo")
    c = Client(providers=THREE)
    assert c.complete("fast", "x").provider == "a"
    cfg.set_value("aliases", "fast", "b/echo")  # no time passes: the manager's new parse is noticed
    assert c.complete("fast", "x").provider == "b"
    cfg.unset_value("aliases", "fast")
    with pytest.raises(ConfigurationError, match="no provider prefix"):
        c.complete("fast", "x")


def test_an_invalidated_config_drops_the_routes(monkeypatch, mono, tmp_path):
    path = tmp_path / "modelprov-config.ini"
    write_config(path, "[aliases]\nfast = a/echo\n")
    c = Client(providers=THREE)
    assert c.complete("fast", "x").provider == "a"
    write_config(path, "[aliases]\nfast = c/echo\n# another process edited it\n")
    get_config().invalidate()
    assert c.complete("fast", "x").provider == "c"


def test_a_file_edited_by_another_process_shows_after_the_recheck_period(mono, tmp_path):
    path = tmp_path / "modelprov-config.ini"
    write_config(path, "[aliases]\nfast = a/echo\n")
    c = Client(providers=THREE)
    assert c.complete("fast", "x").provider == "a"
    write_config(path, "[aliases]\nfast = b/echo\n# edited elsewhere, longer\n")
    assert c.resolve("fast") == ("b", "echo")  # resolve() itself always reads the config now
    assert c.complete("fast", "x").provider == "b"  # resolve() re-read the file: the routes went with it
    write_config(path, "[aliases]\nfast = c/echo\n")
    mono.now += fallback_mod.ROUTE_RECHECK_S
    assert c.complete("fast", "x").provider == "c"


def test_an_edit_is_seen_on_the_next_call_once_the_period_passed(monkeypatch, mono, tmp_path):
    path = tmp_path / "modelprov-config.ini"
    write_config(path, "[aliases]\nfast = a/echo\n")
    c = Client(providers=THREE)
    assert c.complete("fast", "x").provider == "a"
    write_config(path, "[aliases]\nfast = b/echo\n# edited elsewhere\n")
    monkeypatch.setattr(fallback_mod, "ROUTE_RECHECK_S", 0.0)  # look at the file on every call
    assert c.complete("fast", "x").provider == "b"


def test_a_new_config_manager_drops_the_routes(monkeypatch, mono, tmp_path):
    first, second = tmp_path / "one.ini", tmp_path / "two.ini"
    write_config(first, "[aliases]\nfast = a/echo\n")
    write_config(second, "[aliases]\nfast = b/echo\n")
    monkeypatch.setenv("MODELPROV_CONFIG", str(first))
    reset_config()
    c = Client(providers=THREE)
    assert c.complete("fast", "x").provider == "a"
    monkeypatch.setenv("MODELPROV_CONFIG", str(second))
    reset_config()  # the process-wide manager is replaced
    assert c.complete("fast", "x").provider == "b"


def test_a_provider_registered_later_is_routed(mono):
    c = Client()
    with pytest.raises(ConfigurationError, match="unknown provider"):
        c.complete("latecomer/echo", "x")
    get_registry().register("latecomer", MockProvider)
    resp = c.complete("latecomer/echo", "now known")
    assert resp.text == "now known" and resp.provider == "latecomer"


def test_the_default_model_follows_the_environment_on_every_call(monkeypatch, mono):
    c = Client(providers=THREE)
    monkeypatch.setenv("MODELPROV_MODEL", "a/echo")
    assert c.complete(None, "x").provider == "a"
    monkeypatch.setenv("MODELPROV_MODEL", "b/echo")
    assert c.complete(None, "x").provider == "b"
    monkeypatch.delenv("MODELPROV_MODEL")
    with pytest.raises(ConfigurationError, match="no model given"):
        c.complete(None, "x")
    c.default_model = "c/echo"
    assert c.complete(None, "x").provider == "c"


def test_fallbacks_and_timeout_changed_on_the_client_take_effect(clock):
    c = Client(providers=THREE, clock=clock, sleep=clock.sleep, retry=modelprov.RetryPolicy(max_retries=0))
    c.provider("a").push(modelprov.ServerError("down"), modelprov.ServerError("down"))
    with pytest.raises(modelprov.ServerError):
        c.complete("a/echo", "x")
    c.fallbacks.append("b/echo")  # the list is read on every call
    assert c.complete("a/echo", "x").provider == "b"

    def slow(request):
        clock.advance(5)
        return chat_body("openai", "late")

    t = Client(providers={"openai": {"api_key": "sk-test"}}, transport=MockTransport(slow), clock=clock, sleep=clock.sleep)
    assert t.complete("openai/m", "x").text == "late"
    t.timeout = 1
    with pytest.raises(ProviderTimeoutError):
        t.complete("openai/m", "x")


def test_bad_model_values_still_raise_clear_errors(mono):
    c = Client(providers=THREE)
    c.complete("a/echo", "warm")
    for bad in ("", "  ", 42, ["a/echo"]):
        with pytest.raises(ValidationError, match="model must be"):
            c.complete(bad, "x")
    for _ in range(2):  # an error is not remembered: the same error again
        with pytest.raises(ConfigurationError, match="no provider prefix"):
            c.complete("gpt-5.4", "x")
    assert c.complete("a", "x").model == "echo"  # a provider name alone: its default model


def test_the_route_table_stays_bounded(monkeypatch, mono):
    monkeypatch.setattr(fallback_mod, "MAX_ROUTES", 8)
    c = Client(providers=THREE)
    for i in range(30):
        assert c.complete(f"a/model-{i}", "x").model == f"model-{i}"
        assert len(c._routes._table.routes) <= 8
    assert c.complete("a/model-3", "x").model == "model-3"


def test_routes_are_thread_safe_while_the_config_changes(mono):
    cfg = get_config()
    cfg.set_value("aliases", "fast", "a/echo")
    c = Client(providers=THREE)
    errors, seen = [], set()
    stop = threading.Event()

    def caller(n):
        try:
            for i in range(60):
                resp = c.complete("fast" if i % 2 else f"b/m{n}-{i % 5}", "x")
                seen.add(resp.provider)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def flipper():
        for i in range(30):
            if stop.is_set():
                return
            cfg.set_value("aliases", "fast", "c/echo" if i % 2 else "a/echo")

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)] + [threading.Thread(target=flipper)]
    for t in threads:
        t.start()
    for t in threads[:4]:
        t.join(timeout=60)
    stop.set()
    threads[-1].join(timeout=60)
    assert errors == [] and seen <= {"a", "b", "c"}
    cfg.set_value("aliases", "fast", "c/echo")
    results = []
    finals = [threading.Thread(target=lambda: results.append(c.complete("fast", "x").provider)) for _ in range(4)]
    for t in finals:
        t.start()
    for t in finals:
        t.join(timeout=60)
    assert results == ["c"] * 4  # once the config settled, every thread sees it


# ------------------------------------------------------------------ hooks
def test_no_hook_payload_is_built_without_hooks(monkeypatch):
    emitted = counting(monkeypatch, HookSet, "emit")
    c = Client(providers=THREE, fallbacks=["b/echo"], retry=modelprov.RetryPolicy(max_retries=1), sleep=lambda s: None)
    c.provider("a").push(modelprov.ServerError("down"), modelprov.ServerError("down"))
    assert c.complete("a/echo", "x").provider == "b"  # a retry and a fallback, with no hook set
    assert "".join(ch.text for ch in c.stream("a/echo", "streamed")) == "streamed"
    c.provider("b").push(modelprov.InvalidRequestError("bad"))
    with pytest.raises(modelprov.InvalidRequestError):
        c.complete("b/echo", "x")
    assert emitted == []


def test_hooks_set_after_construction_receive_events():
    c = Client(providers=THREE, fallbacks=["b/echo"], retry=modelprov.RetryPolicy(max_retries=0))
    events = []
    c.hooks.on_request = lambda info: events.append(("request", info["provider"]))
    c.hooks.on_response = lambda info: events.append(("response", info["provider"], info.get("stream", False)))
    c.hooks.on_fallback = lambda info: events.append(("fallback", info["from"], info["to"]))
    c.provider("a").push(modelprov.ServerError("down"))
    assert c.complete("a/echo", "x").provider == "b"
    assert "".join(ch.text for ch in c.stream("a/echo", "s")) == "s"
    assert events == [
        ("request", "a"), ("fallback", "a/echo", "b/echo"), ("request", "b"), ("response", "b", False),
        ("request", "a"), ("response", "a", True),
    ]  # fmt: skip


def test_the_attempt_records_are_unchanged():
    c = Client(providers=THREE, retry=modelprov.RetryPolicy(max_retries=1), sleep=lambda s: None)
    c.provider("a").push(modelprov.ServerError("down"))
    resp = c.complete("a/echo", "x")
    assert [(r["provider"], r["model"], r["outcome"]) for r in resp.attempts] == [("a", "echo", "error"), ("a", "echo", "ok")]
    assert set(resp.attempts[1]) == {"provider", "model", "outcome", "latency_s"}


# ------------------------------------------------------------------ streams
def test_a_client_stream_drives_the_provider_generator_directly(monkeypatch):
    nexts = counting(monkeypatch, ProviderStream, "__next__")
    c = Client(providers=THREE)
    words = " ".join(f"w{i}" for i in range(30))
    chunks = list(c.stream("a/echo", words))
    assert "".join(ch.text for ch in chunks) == words and len(chunks) > 10
    assert len(nexts) == 1  # only the first chunk (which decides on a fallback) goes through the provider's handle


def test_closing_a_client_stream_midway_closes_the_provider_stream():
    c = Client(providers=THREE)
    s = c.stream("a/echo", " ".join(f"w{i}" for i in range(30)))
    first = next(s)
    inner = s._chain.current
    assert first.text and inner is not None and not inner._closed
    s.close()
    assert inner._closed and list(s) == []
    assert list(inner.rest()) == []  # a closed handle has nothing left
