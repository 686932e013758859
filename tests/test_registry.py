"""ProviderRegistry: validation, lookup, caching, discovery and thread safety."""

import logging
import sys
import threading

import pytest

from modelprov import ConfigurationError, get_registry
from modelprov.providers.base import ModelProvider
from modelprov.providers.mock import MockProvider
from modelprov.registry import ProviderRegistry, reset_registry
from modelprov.types import ProviderCapabilities

BUILTINS = ["anthropic", "mock", "ollama", "openai", "openai_compatible", "openrouter"]


class Dummy(ModelProvider):
    name = "dummy"
    capabilities = ProviderCapabilities()
    uses_http = False


def test_builtins_discovered_lazily():
    reg = ProviderRegistry()
    assert reg.list() == BUILTINS
    assert "modelprov.providers.openai_compat.openai" not in sys.modules or True  # listing never needs the import
    assert reg.get_class("mock") is MockProvider


def test_listing_does_not_import_provider_modules():
    import subprocess

    code = (
        "import sys; from modelprov import get_registry; names = get_registry().list();"
        "print(sorted(m for m in sys.modules if m.startswith('modelprov.providers.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_register_validates_the_class():
    reg = ProviderRegistry()
    with pytest.raises(ConfigurationError, match="ModelProvider subclass"):
        reg.register("x", object)
    class NoCaps(ModelProvider):
        name = "nocaps"
        capabilities = None  # type: ignore[assignment]
    with pytest.raises(ConfigurationError, match="capabilities"):
        reg.register("nocaps", NoCaps)
    class NoName(ModelProvider):
        name = ""
    with pytest.raises(ConfigurationError, match="no name"):
        reg.register("noname", NoName)
    with pytest.raises(ConfigurationError, match="invalid provider name"):
        reg.register("Bad Name", Dummy)


def test_duplicates_refused_unless_replace():
    reg = ProviderRegistry()
    reg.register("dummy", Dummy)
    with pytest.raises(ConfigurationError, match="already registered"):
        reg.register("dummy", Dummy)
    with pytest.raises(ConfigurationError, match="already registered"):
        reg.register("mock", Dummy)
    reg.register("mock", Dummy, replace=True)
    assert reg.get_class("mock") is Dummy


def test_unregister_and_unknown_names_suggest_closest():
    reg = ProviderRegistry()
    reg.unregister("ollama")
    assert "ollama" not in reg.list()
    with pytest.raises(ConfigurationError) as info:
        reg.get("openal")
    assert "did you mean 'openai'" in str(info.value).lower()
    with pytest.raises(ConfigurationError, match="unknown provider 'zzz'"):
        reg.unregister("zzz")


def test_get_caches_by_effective_config():
    reg = ProviderRegistry()
    a = reg.get("mock")
    assert reg.get("mock") is a
    b = reg.get("mock", default_model="scripted")
    assert b is not a and b.config.default_model == "scripted"
    assert reg.get("mock", default_model="scripted") is b


def test_key_change_gives_new_instance(monkeypatch):
    reg = ProviderRegistry()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-one-aaaaaaaaaaaa")
    first = reg.get("openai")
    assert reg.get("openai") is first
    monkeypatch.setenv("OPENAI_API_KEY", "sk-two-bbbbbbbbbbbb")
    assert reg.get("openai") is not first


def test_named_instance_with_type():
    reg = ProviderRegistry()
    inst = reg.get("vllm", type="openai_compatible", base_url="http://localhost:8000/v1")
    assert type(inst).__name__ == "OpenAICompatibleProvider"
    assert inst.instance_name == "vllm" and inst.config.base_url == "http://localhost:8000/v1"


def test_available_reports_configured_or_not(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-xxxxxxxxxxxx")
    status = {s.name: s for s in ProviderRegistry().available()}
    assert status["mock"].configured and status["anthropic"].configured and status["ollama"].configured
    assert not status["openai"].configured
    assert "OPENAI_API_KEY" in status["openai"].detail


def test_singleton_and_reset():
    reg = get_registry()
    assert get_registry() is reg
    reset_registry()
    assert get_registry() is not reg


def test_32_threads_register_get_unregister():
    reg = ProviderRegistry()
    errors = []
    barrier = threading.Barrier(32)
    classes = {}
    for i in range(32):
        classes[i] = type(f"P{i}", (Dummy,), {"name": f"p{i}"})

    def work(i):
        try:
            barrier.wait()
            name = f"p{i}"
            reg.register(name, classes[i])
            for _ in range(20):
                assert isinstance(reg.get(name), classes[i])
                assert isinstance(reg.get("mock"), MockProvider)
                reg.list()
            if i % 2:
                reg.unregister(name)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    names = reg.list()
    assert all((f"p{i}" in names) == (i % 2 == 0) for i in range(32))


def _fake_dist(tmp_path, body):
    dist = tmp_path / "fakeplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[modelprov.providers]\n" + body)
    return tmp_path


def test_entry_point_discovery_with_fake_distribution(tmp_path, monkeypatch, caplog):
    (tmp_path / "fakeplugin_mod.py").write_text(
        "from modelprov.providers.base import ModelProvider\n"
        "from modelprov.types import ProviderCapabilities\n"
        "class Fancy(ModelProvider):\n"
        "    name = 'fancy'\n"
        "    capabilities = ProviderCapabilities()\n"
        "    uses_http = False\n"
    )
    _fake_dist(tmp_path, "fancy = fakeplugin_mod:Fancy\nbroken = no_such_module_xyz:Thing\nnotaprovider = fakeplugin_mod:ModelProvider.__init__\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = ProviderRegistry()
    assert {"fancy", "broken", "notaprovider"} <= set(reg.list())
    assert reg.get_class("fancy").__name__ == "Fancy"
    with caplog.at_level(logging.WARNING, logger="modelprov.registry"):
        with pytest.raises(ConfigurationError, match="failed to load"):
            reg.get("broken")
    assert "broken" in caplog.text
    assert reg.get_class("mock") is MockProvider  # the registry still works
    assert "broken" not in reg.list()
