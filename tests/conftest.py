"""Test isolation and shared fakes.

Every test gets a clean environment, config file and keyring: no test sees
the developer's keys, config file, proxies or keyring; each starts with fresh
process-wide singletons (registry, config, async bridge, default client)
where those modules are already loaded.

Shared fakes: the ``clock`` fixture (a :class:`FakeClock`, also a fake
``sleep``) and ``make_provider(cls, config, **engine_kwargs)``, a provider
bound to an engine (``modelprov.engine.bind``).
"""

import os
import sys

import pytest

# Shared test helpers (sdk_conformance) live next to this file; test files sit in sub-folders.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_ENV_PREFIXES = ("OPENAI_", "ANTHROPIC_", "OPENROUTER_", "OLLAMA_", "MODELPROV_", "LLAMA_")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy")


class FakeClock:
    """A monotonic clock moved by hand (:meth:`advance`) or by :meth:`sleep`, which records each wait."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.slept = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    """A :class:`FakeClock`: pass it as ``clock=`` and its ``sleep`` as ``sleep=``."""
    return FakeClock()


@pytest.fixture
def make_provider():
    """``make_provider(cls, config=None, **engine_kwargs)``: a provider of ``cls`` bound to an engine."""
    from modelprov.engine import bind

    def make(cls, config=None, **engine_kwargs):
        return bind(cls(config), **engine_kwargs)

    return make


def _reset_singletons() -> None:
    for modname, hook in (
        ("modelprov.registry", "reset_registry"),
        ("modelprov.config.manager", "reset_config"),
        ("modelprov.api", "reset_default_client"),
        ("modelprov.async_bridge", "reset_bridge"),
    ):
        mod = sys.modules.get(modname)
        fn = getattr(mod, hook, None) if mod else None
        if fn is not None:
            fn()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """Strip provider env vars and proxies; point config and the CLI log at temp files; null keyring."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELPROV_CONFIG", str(tmp_path / "modelprov-config.ini"))
    monkeypatch.setenv("MODELPROV_LOGS_PATH", str(tmp_path / "modelprov-logs.db"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _reset_singletons()
    yield tmp_path
    _reset_singletons()
