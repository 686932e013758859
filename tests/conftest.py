"""Test isolation: every test gets a clean environment, config file and keyring.

No test sees the developer's keys, config file, proxies or keyring; each starts
with fresh process-wide singletons (registry, config, async bridge, default
client) where those modules are already loaded.
"""

import os
import sys

import pytest

# Shared test helpers (sdk_conformance) live next to this file; test files sit in sub-folders.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_ENV_PREFIXES = ("OPENAI_", "ANTHROPIC_", "OPENROUTER_", "OLLAMA_", "MODELPROV_", "LLAMA_")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _reset_singletons() -> None:
    for modname, hook in (
        ("modelprov.registry", "reset_registry"),
        ("modelprov.config.manager", "reset_config"),
        ("modelprov.client", "reset_default_client"),
        ("modelprov.async_bridge", "reset_bridge"),
    ):
        mod = sys.modules.get(modname)
        fn = getattr(mod, hook, None) if mod else None
        if fn is not None:
            fn()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """Strip provider env vars and proxies; point config at a temp file; null keyring."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELPROV_CONFIG", str(tmp_path / "modelprov-config.ini"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _reset_singletons()
    yield tmp_path
    _reset_singletons()
