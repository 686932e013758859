"""Tests for modelprov.config.manager: precedence, provenance, keyring, file I/O, validation, secrets."""

import logging
import os
import stat
import subprocess
import sys
import threading
import types
import warnings
from pathlib import Path

import pytest

from modelprov.config import file as _configfile
from modelprov.config.manager import (
    KEYRING_SERVICE,
    ConfigManager,
    default_config_path,
    env_var_name,
    get_config,
    platform_config_path,
    reset_config,
)
from modelprov.exceptions import ConfigurationError

REPO = Path(__file__).resolve().parents[2]
SENTINEL = "SENTINEL-KEY-7f3a9c1e5b"  # does not look like a vendor key, so nothing but our care hides it
POSIX = os.name != "nt"

OPENAI = {
    "type": "openai",
    "base_url": "https://api.openai.com/v1",
    "default_model": "gpt-5.4-mini",
    "api_key_env": ("OPENAI_API_KEY",),
    "base_url_env": ("OPENAI_BASE_URL",),
}
COMPAT = {"type": "openai_compatible", "base_url": None, "default_model": None, "api_key_env": (), "base_url_env": ()}


def write(path, text, mode=0o600):
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


@pytest.fixture
def path(tmp_path):
    return tmp_path / "config.ini"


@pytest.fixture
def cfg(path):
    return ConfigManager(path, environ={})


# ------------------------------------------------------------------ keyring helpers
keyring = pytest.importorskip("keyring")
from keyring.backend import KeyringBackend  # noqa: E402
from keyring.backends import fail as fail_backend  # noqa: E402
from memory_keyring import MemoryKeyring  # noqa: E402


class RaisingKeyring(KeyringBackend):
    """A backend that fails on every call (a locked or broken system keyring)."""

    priority = 5

    def get_password(self, service, username):
        raise RuntimeError("the keyring daemon is not running")

    def set_password(self, service, username, password):
        raise RuntimeError("the keyring daemon is not running")

    def delete_password(self, service, username):
        raise RuntimeError("the keyring daemon is not running")


class ZeroPriorityKeyring(MemoryKeyring):
    priority = 0


@pytest.fixture
def use_backend():
    """Install a keyring backend for the test; restore the previous one afterwards."""
    previous = keyring.get_keyring()

    def install(backend):
        keyring.set_keyring(backend)
        return backend

    yield install
    keyring.set_keyring(previous)


@pytest.fixture
def memkr(use_backend):
    return use_backend(MemoryKeyring())


# ----------------------------------------------------------------------- paths
def test_platform_paths():
    assert platform_config_path({"HOME": "/h"}, "linux") == "/h/.config/modelprov/config.ini"
    assert platform_config_path({"HOME": "/h", "XDG_CONFIG_HOME": "/x"}, "linux") == "/x/modelprov/config.ini"
    assert platform_config_path({"HOME": "/h", "XDG_CONFIG_HOME": "rel"}, "linux") == "/h/.config/modelprov/config.ini"
    assert platform_config_path({"HOME": "/Users/u"}, "darwin") == "/Users/u/Library/Application Support/modelprov/config.ini"
    win = platform_config_path({"APPDATA": r"C:\Users\u\AppData\Roaming"}, "win32")
    assert win == r"C:\Users\u\AppData\Roaming\modelprov\config.ini"


def test_default_path_from_env(tmp_path, monkeypatch):
    assert ConfigManager().path == str(tmp_path / "modelprov-config.ini")  # set by conftest
    assert default_config_path({"MODELPROV_CONFIG": "~/c.ini", "HOME": "/h"}).endswith("c.ini")
    assert default_config_path({"MODELPROV_CONFIG": "  ", "HOME": "/h"}, "linux") == "/h/.config/modelprov/config.ini"
    monkeypatch.setenv("MODELPROV_CONFIG", str(tmp_path / "other.ini"))
    assert ConfigManager().path == str(tmp_path / "other.ini")  # read live


def test_env_var_name():
    assert env_var_name("vllm", "API_KEY") == "MODELPROV_VLLM_API_KEY"
    assert env_var_name("my-server.2", "BASE_URL") == "MODELPROV_MY_SERVER_2_BASE_URL"


def test_singleton_and_reset():
    first = get_config()
    assert get_config() is first
    reset_config()
    assert get_config() is not first


def test_get_config_is_a_thread_safe_singleton():
    reset_config()
    barrier = threading.Barrier(8)
    seen = []

    def grab():
        barrier.wait()
        seen.append(get_config())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in seen}) == 1 and seen[0] is get_config()


# ------------------------------------------------------------------ precedence
def test_defaults_only(cfg):
    pc = cfg.provider_config("openai", defaults=OPENAI)
    assert (pc.name, pc.type, pc.base_url, pc.default_model, pc.api_key) == (
        "openai", "openai", "https://api.openai.com/v1", "gpt-5.4-mini", None)
    assert pc.connect_timeout == 5.0 and pc.pool_size == 256
    assert set(cfg.provenance("openai", defaults=OPENAI).values()) == {"default"}


def test_file_values_and_global_inheritance(path):
    write(path, "[modelprov]\ntimeout = 40\nread_timeout = 100\npool_size = 4\n\n"
                "[provider:openai]\nbase_url = https://proxy.corp/v1\nread_timeout = 200\n")
    cfg = ConfigManager(path, environ={})
    pc = cfg.provider_config("openai", defaults=OPENAI)
    assert (pc.base_url, pc.timeout, pc.read_timeout, pc.pool_size) == ("https://proxy.corp/v1", 40.0, 200.0, 4)
    prov = cfg.provenance("openai", defaults=OPENAI)
    assert prov["base_url"] == f"file:{path} [provider:openai]"
    assert prov["read_timeout"] == f"file:{path} [provider:openai]"  # provider section beats [modelprov]
    assert prov["timeout"] == f"file:{path} [modelprov]"
    assert prov["default_model"] == "default"


def test_full_precedence_chain(path, memkr):
    write(path, "[provider:openai]\napi_key = from-file-key\nbase_url = https://file.example/v1\n")
    env = {}
    cfg = ConfigManager(path, environ=env)
    assert cfg.provider_config("openai", defaults=OPENAI).api_key == "from-file-key"
    assert cfg.provenance("openai", defaults=OPENAI)["api_key"] == f"file:{path} [provider:openai]"

    memkr.set_password(KEYRING_SERVICE, "openai", "from-keyring-key")
    assert cfg.provider_config("openai", defaults=OPENAI).api_key == "from-keyring-key"
    assert cfg.provenance("openai", defaults=OPENAI)["api_key"] == "keyring"

    env["OPENAI_API_KEY"] = "from-vendor-env"
    assert cfg.provider_config("openai", defaults=OPENAI).api_key == "from-vendor-env"
    assert cfg.provenance("openai", defaults=OPENAI)["api_key"] == "env:OPENAI_API_KEY"

    env["MODELPROV_OPENAI_API_KEY"] = "from-modelprov-env"
    assert cfg.provider_config("openai", defaults=OPENAI).api_key == "from-modelprov-env"
    assert cfg.provenance("openai", defaults=OPENAI)["api_key"] == "env:MODELPROV_OPENAI_API_KEY"

    pc = cfg.provider_config("openai", defaults=OPENAI, api_key="explicit-key", base_url="https://x.example")
    assert (pc.api_key, pc.base_url) == ("explicit-key", "https://x.example")
    prov = cfg.provenance("openai", defaults=OPENAI, api_key="explicit-key")
    assert prov["api_key"] == "explicit"


def test_base_url_env_order(cfg):
    env = {"OPENAI_BASE_URL": "https://vendor.example/v1"}
    cfg = ConfigManager(cfg.path, environ=env)
    assert cfg.provider_config("openai", defaults=OPENAI).base_url == "https://vendor.example/v1"
    env["MODELPROV_OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
    assert cfg.provider_config("openai", defaults=OPENAI).base_url == "http://127.0.0.1:9/v1"
    assert cfg.provenance("openai", defaults=OPENAI)["base_url"] == "env:MODELPROV_OPENAI_BASE_URL"


def test_empty_values_are_unset(path):
    write(path, "[provider:openai]\napi_key =\nbase_url =\n")
    cfg = ConfigManager(path, environ={"OPENAI_API_KEY": "  "})
    pc = cfg.provider_config("openai", defaults=OPENAI, api_key="")
    assert pc.api_key is None and pc.base_url == OPENAI["base_url"]


def test_environ_is_read_live(path, monkeypatch):
    cfg = ConfigManager(path)
    assert cfg.provider_config("openai", defaults=OPENAI).api_key is None
    monkeypatch.setenv("OPENAI_API_KEY", "live-env-key")
    assert cfg.provider_config("openai", defaults=OPENAI).api_key == "live-env-key"


def test_named_instance(path):
    write(path, "[provider:vllm]\ntype = openai_compatible\nbase_url = http://localhost:8000/v1\n"
                "default_model = llama-3\n\n[provider:lmstudio]\ntype = openai_compatible\n"
                "base_url = http://localhost:1234/v1\n")
    cfg = ConfigManager(path, environ={"MODELPROV_VLLM_API_KEY": "vllm-key-123"})
    assert cfg.provider_names() == ["vllm", "lmstudio"]
    assert cfg.provider_type("vllm") == "openai_compatible"
    assert cfg.provider_type("openai") is None
    pc = cfg.provider_config("vllm", defaults=COMPAT)
    assert (pc.name, pc.type, pc.provider_type) == ("vllm", "openai_compatible", "openai_compatible")
    assert (pc.base_url, pc.default_model, pc.api_key) == ("http://localhost:8000/v1", "llama-3", "vllm-key-123")
    assert cfg.provenance("vllm", defaults=COMPAT)["api_key"] == "env:MODELPROV_VLLM_API_KEY"
    assert cfg.provider_config("lmstudio", defaults=COMPAT).base_url == "http://localhost:1234/v1"


def test_headers_options_and_file_fields(path, tmp_path):
    ca = write(tmp_path / "ca.pem", "x")
    crt, key = write(tmp_path / "c.pem", "x"), write(tmp_path / "c.key", "x")
    write(path, f"[provider:openrouter]\nheader.X-Title = From File\nheader.HTTP-Referer = https://a.example\n"
                f"app_url = https://app.example\nverify = {ca}\ncert = {crt}, {key}\ntrust_env = no\n"
                f"use_truststore = yes\nproxy = http://user:pw@proxy.corp:3128\nidle_timeout = none\n")
    cfg = ConfigManager(path, environ={})
    pc = cfg.provider_config("openrouter", headers={"x-title": "Explicit"}, app_title="T")
    assert dict(pc.headers) == {"HTTP-Referer": "https://a.example", "x-title": "Explicit"}
    assert pc.option("app_url") == "https://app.example" and pc.option("app_title") == "T"
    assert (pc.verify, pc.cert) == (str(ca), (str(crt), str(key)))
    assert (pc.trust_env, pc.use_truststore, pc.idle_timeout) == (False, True, None)
    prov = cfg.provenance("openrouter", headers={"x-title": "Explicit"})
    assert prov["header.x-title"] == "explicit"
    assert prov["header.HTTP-Referer"] == f"file:{path} [provider:openrouter]"
    assert prov["option.app_url"] == f"file:{path} [provider:openrouter]"
    shown = cfg.explain("openrouter")
    assert "pw" not in str(shown["proxy"]["value"])


def test_verify_bool_and_explicit_types(cfg):
    pc = cfg.provider_config("x", verify="false", timeout=10, pool_size="3", connect_timeout="2.5")
    assert (pc.verify, pc.timeout, pc.pool_size, pc.connect_timeout) == (False, 10.0, 3, 2.5)
    assert cfg.provider_config("x", verify=True).verify is True


def test_bare_host_base_url_left_for_provider_and_normalizer(cfg):
    env = {"OLLAMA_HOST": "0.0.0.0"}
    cfg = ConfigManager(cfg.path, environ=env)
    defaults = {"type": "ollama", "base_url": "http://127.0.0.1:11434", "base_url_env": ("OLLAMA_HOST",)}
    assert cfg.provider_config("ollama", defaults=defaults).base_url == "0.0.0.0"
    defaults["normalize_base_url"] = lambda v: "http://127.0.0.1:11434" if v == "0.0.0.0" else v
    assert cfg.provider_config("ollama", defaults=defaults).base_url == "http://127.0.0.1:11434"
    assert "normalize_base_url" not in dict(cfg.provider_config("ollama", defaults=defaults).options)


# ------------------------------------------------------------------- keyring
def test_null_backend_from_conftest_is_skipped(path, caplog):
    write(path, "[provider:openai]\napi_key = file-key-123\n")
    cfg = ConfigManager(path, environ={})
    caplog.set_level(logging.DEBUG, logger="modelprov.config")
    assert cfg.provider_config("openai").api_key == "file-key-123"
    assert cfg.keyring_status()["usable"] is False
    assert "keyring skipped" in caplog.text


@pytest.mark.parametrize("backend", [ZeroPriorityKeyring, fail_backend.Keyring])
def test_unusable_backends(path, use_backend, backend):
    kr = use_backend(backend())
    write(path, "[provider:openai]\napi_key = file-key-123\n")
    cfg = ConfigManager(path, environ={})
    assert cfg.provider_config("openai").api_key == "file-key-123"
    assert cfg.keyring_status()["usable"] is False
    assert cfg.set_key("openai", "new-key-456").startswith("file:")
    assert getattr(kr, "store", {}) == {}


def test_keyring_package_absent(path, monkeypatch):
    monkeypatch.setitem(sys.modules, "keyring", None)  # makes `import keyring` raise ImportError
    write(path, "[provider:openai]\napi_key = file-key-123\n")
    cfg = ConfigManager(path, environ={})
    assert cfg.provider_config("openai").api_key == "file-key-123"
    status = cfg.keyring_status()
    assert status["usable"] is False and status["installed"] is False and status["backend"] == "the keyring package is not installed"
    assert "pip install 'modelprov[keyring]'" in status["fix"]
    with pytest.raises(ConfigurationError, match="not installed"):
        cfg.set_key("openai", "new-key-456", store="keyring")


def test_keyring_injected_module(path):
    calls = []

    def get_password(service, user):
        calls.append((service, user))
        return "injected-key-1"

    fake = types.SimpleNamespace(get_password=get_password)
    cfg = ConfigManager(path, environ={}, keyring_module=fake)
    assert cfg.provider_config("vllm").api_key == "injected-key-1"
    assert calls == [("modelprov", "vllm")]
    assert ConfigManager(path, environ={}, use_keyring=False, keyring_module=fake).provider_config("vllm").api_key is None


def test_injected_module_that_raises(path, caplog):
    def broken(*a):
        raise OSError("dbus said no")

    write(path, "[provider:openai]\napi_key = file-key-123\n")
    cfg = ConfigManager(path, environ={}, keyring_module=types.SimpleNamespace(get_password=broken))
    caplog.set_level(logging.DEBUG, logger="modelprov.config")
    assert cfg.provider_config("openai").api_key == "file-key-123"
    assert "OSError" in caplog.text


def test_backend_raising_falls_back(path, use_backend, caplog):
    use_backend(RaisingKeyring())
    write(path, "[provider:openai]\napi_key = " + SENTINEL + "\n")
    cfg = ConfigManager(path, environ={})
    caplog.set_level(logging.DEBUG, logger="modelprov.config")
    assert cfg.provider_config("openai").api_key == SENTINEL
    assert cfg.provenance("openai")["api_key"].startswith("file:")
    assert "RuntimeError" in caplog.text and SENTINEL not in caplog.text
    assert cfg.set_key("openai", "other-key-1").startswith("file:")  # auto falls back to the file
    with pytest.raises(ConfigurationError, match="keyring"):
        cfg.set_key("openai", "other-key-2", store="keyring")
    assert cfg.delete_key("openai") == [f"file:{path} [provider:openai]"]


def test_keys_in_keyring(path, memkr):
    cfg = ConfigManager(path, environ={})
    assert cfg.set_key("openai", "kr-key-123") == "keyring"
    assert memkr.store == {("modelprov", "openai"): "kr-key-123"}
    assert not path.exists()
    assert cfg.get_key("openai") == "kr-key-123"
    assert cfg.key_sources(["openai", "anthropic"]) == {"openai": "keyring"}
    assert cfg.delete_key("openai") == ["keyring"]
    assert cfg.get_key("openai") is None and cfg.delete_key("openai") == []


def test_keys_in_file_without_keyring(path):
    cfg = ConfigManager(path, environ={})
    where = cfg.set_key("vllm", "file-key-123")
    assert where == f"file:{path} [provider:vllm]"
    if POSIX:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cfg.get_key("vllm") == "file-key-123"
    assert cfg.key_sources() == {"vllm": where}
    with pytest.raises(ConfigurationError, match="no usable keyring backend"):
        cfg.set_key("vllm", "x-key-123", store="keyring")
    assert cfg.delete_key("vllm") == [where]
    assert cfg.get_key("vllm") is None and "[provider:vllm]" not in path.read_text()  # no empty section left


def test_store_file_removes_shadowing_keyring_entry(path, memkr):
    memkr.set_password("modelprov", "openai", "old-kr-key")
    cfg = ConfigManager(path, environ={})
    cfg.set_key("openai", "new-file-key", store="file")
    assert memkr.store == {}
    assert cfg.get_key("openai") == "new-file-key"


def test_key_sources_env(path):
    env = {"OPENAI_API_KEY": "env-key-123", "MODELPROV_MY_SRV_API_KEY": "k-123456"}
    cfg = ConfigManager(path, environ=env)
    assert cfg.key_sources(defaults={"openai": OPENAI}) == {
        "openai": "env:OPENAI_API_KEY", "my_srv": "env:MODELPROV_MY_SRV_API_KEY"}
    assert cfg.get_key("openai", defaults=OPENAI) == "env-key-123"
    with pytest.raises(ConfigurationError):
        cfg.set_key("openai", "x", store="vault")


def test_invalid_key_not_echoed(cfg):
    with pytest.raises(ConfigurationError) as info:
        cfg.set_key("openai", SENTINEL + " trailing words")
    assert SENTINEL not in str(info.value) and "printable ASCII" in str(info.value)


# -------------------------------------------------------------------- aliases
def test_aliases(path):
    write(path, "[aliases]\nfast = openai/gpt-5.4-mini\nSmart = anthropic/claude-sonnet-4-6\n")
    cfg = ConfigManager(path, environ={})
    assert cfg.aliases() == {"fast": "openai/gpt-5.4-mini", "smart": "anthropic/claude-sonnet-4-6"}
    assert cfg.resolve_alias("fast") == "openai/gpt-5.4-mini"
    assert cfg.resolve_alias("SMART") == "anthropic/claude-sonnet-4-6"
    assert cfg.resolve_alias("openai/gpt-5.4") == "openai/gpt-5.4"


@pytest.mark.parametrize("body, words", [
    ("a = b\nb = a\n", ["loop", "a -> b -> a"]),
    ("x = x\n", ["loop"]),
    ("c = fast\nfast = openai/gpt-5.4-mini\n", ["another alias", "one level"]),
])
def test_alias_loops_and_chains_refused(path, body, words):
    write(path, "[aliases]\n" + body)
    cfg = ConfigManager(path, environ={})
    with pytest.raises(ConfigurationError) as info:
        cfg.resolve_alias(body.split(" ")[0])
    for word in words:
        assert word in str(info.value)


def test_default_model_order(path):
    env = {}
    cfg = ConfigManager(path, environ=env)
    assert (cfg.default_model(), cfg.default_model_source()) == (None, "default")
    write(path, "[modelprov]\ndefault_model = openai/gpt-5.4-mini\n")
    assert (cfg.default_model(), cfg.default_model_source()) == ("openai/gpt-5.4-mini", f"file:{path} [modelprov]")
    env["MODELPROV_MODEL"] = "ollama/llama3.2"
    assert (cfg.default_model(), cfg.default_model_source()) == ("ollama/llama3.2", "env:MODELPROV_MODEL")
    assert (cfg.default_model("mock/echo"), cfg.default_model_source("mock/echo")) == ("mock/echo", "explicit")
    # the global default_model is the library default, not every provider's default model
    assert cfg.provider_config("openai", defaults=OPENAI).default_model == "gpt-5.4-mini"


# ---------------------------------------------------------------- permissions
@pytest.mark.skipif(not POSIX, reason="POSIX permission bits")
def test_world_readable_file_with_key_warns_once(path, caplog):
    write(path, "[provider:openai]\napi_key = " + SENTINEL + "\n", mode=0o644)
    cfg = ConfigManager(path, environ={})
    with pytest.warns(UserWarning, match=r"chmod 600") as record:
        cfg.provider_config("openai")
    message = str(record[0].message)
    assert str(path) in message and SENTINEL not in message
    assert f"chmod 600 {path}" in caplog.text
    cfg.invalidate()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg.provider_config("openai")  # same file and mtime: no second warning
        os.chmod(path, 0o600)
        cfg.provider_config("openai")


@pytest.mark.skipif(not POSIX, reason="POSIX permission bits")
@pytest.mark.parametrize("text, mode", [
    ("[provider:openai]\napi_key = k-123456\n", 0o600),
    ("[provider:openai]\nbase_url = https://a.example\n", 0o644),
])
def test_no_warning(path, text, mode):
    write(path, text, mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ConfigManager(path, environ={}).provider_config("openai")


@pytest.mark.skipif(not POSIX, reason="POSIX permission bits")
def test_credential_header_counts_as_key(path):
    write(path, "[provider:x]\nheader.Authorization = Bearer abcdefgh\n", mode=0o640)
    with pytest.warns(UserWarning, match="chmod 600"):
        ConfigManager(path, environ={}).provider_names()


# -------------------------------------------------------------------- writing
def test_set_value_creates_private_file_and_dir(tmp_path):
    path = tmp_path / "new" / "dir" / "config.ini"
    cfg = ConfigManager(path, environ={})
    cfg.set_value("provider:vllm", "base_url", "http://localhost:8000/v1")
    cfg.set_value("provider:vllm", "timeout", 30)
    cfg.set_value("modelprov", "verify", False)
    assert cfg.provider_config("vllm").base_url == "http://localhost:8000/v1"
    assert cfg.provider_config("vllm").timeout == 30.0 and cfg.provider_config("vllm").verify is False
    if POSIX:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(path.parent) == ["config.ini"]


def test_set_value_preserves_other_sections_and_comments(path):
    original = ("# my settings\n[modelprov]\n; global\ntimeout = 30\n\n"
                "[provider:openai]\nbase_url = https://a.example/v1\n  # note\ndefault_model = gpt-5.4\n\n"
                "[aliases]\nfast = openai/gpt-5.4-mini\n")
    write(path, original)
    cfg = ConfigManager(path, environ={})
    cfg.set_value("provider:openai", "base_url", "https://b.example/v1")
    cfg.set_value("provider:openai", "header.X-Team", "ml")
    cfg.set_value("provider:anthropic", "default_model", "claude-haiku-4-5")
    text = path.read_text()
    assert text.startswith("# my settings\n[modelprov]\n; global\ntimeout = 30\n")
    assert "base_url = https://b.example/v1\n  # note\ndefault_model = gpt-5.4\nheader.X-Team = ml\n" in text
    assert "[aliases]\nfast = openai/gpt-5.4-mini\n" in text
    assert text.endswith("[provider:anthropic]\ndefault_model = claude-haiku-4-5\n")
    assert cfg.unset_value("provider:openai", "default_model") is True
    assert cfg.unset_value("provider:openai", "default_model") is False
    assert cfg.get_value("provider:openai", "default_model") is None
    assert cfg.get_value("modelprov", "TIMEOUT") == "30"
    assert cfg.resolve_alias("fast") == "openai/gpt-5.4-mini"


def test_multiline_value_replaced_whole(path):
    write(path, "[provider:x]\nsystem_hint = line one\n  line two\n\n  line three\nother = 1\n")
    cfg = ConfigManager(path, environ={})
    assert cfg.get_value("provider:x", "system_hint") == "line one\nline two\n\nline three"
    cfg.set_value("provider:x", "system_hint", "short")
    assert path.read_text() == "[provider:x]\nsystem_hint = short\nother = 1\n"


@pytest.mark.skipif(not POSIX, reason="POSIX permission bits")
def test_rewrite_modes(path):
    write(path, "[modelprov]\ntimeout = 3\n", mode=0o644)
    cfg = ConfigManager(path, environ={})
    cfg.set_value("modelprov", "timeout", 4)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # no secret: the user's mode is kept
    cfg.set_value("provider:openai", "api_key", "k-1234567")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a secret: group/other bits dropped
    cfg.set_value("modelprov", "timeout", 5)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(not POSIX, reason="symlinks")
def test_write_through_symlink(tmp_path):
    real = write(tmp_path / "dotfiles-config.ini", "[modelprov]\ntimeout = 3\n")
    link = tmp_path / "config.ini"
    link.symlink_to(real)
    ConfigManager(link, environ={}).set_value("modelprov", "timeout", 9)
    assert link.is_symlink() and "timeout = 9" in real.read_text()


def test_set_value_validates_before_writing(path):
    cfg = ConfigManager(path, environ={})
    with pytest.raises(ConfigurationError, match="timeout"):
        cfg.set_value("provider:openai", "timeout", "soon")
    with pytest.raises(ConfigurationError, match="invalid key"):
        cfg.set_value("provider:openai", "a=b", "1")
    with pytest.raises(ConfigurationError, match="section"):
        cfg.set_value("provider:", "x", "1")
    with pytest.raises(ConfigurationError):
        cfg.set_value("aliases", "x", "one\ntwo")
    assert not path.exists()


def test_malformed_file_not_overwritten(path):
    write(path, "[modelprov]\nbroken line\n")
    with pytest.raises(ConfigurationError, match="line 2"):
        ConfigManager(path, environ={}).set_value("modelprov", "timeout", 3)
    assert path.read_text() == "[modelprov]\nbroken line\n"


def test_concurrent_writers(path):
    errors = []

    def writer(i):
        try:
            cfg = ConfigManager(path, environ={}) if i % 2 else shared
            for j in range(3):
                cfg.set_value(f"provider:p{i}", f"k{j}", f"v{i}-{j}")
                cfg.set_value("modelprov", f"w{i}", str(j))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    shared = ConfigManager(path, environ={})
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    shared.invalidate()
    for i in range(8):
        assert shared.get_value("modelprov", f"w{i}") == "2"
        for j in range(3):
            assert shared.get_value(f"provider:p{i}", f"k{j}") == f"v{i}-{j}"
    assert sorted(os.listdir(path.parent)) == ["config.ini"]


def test_failed_write_leaves_no_temp_file(path, monkeypatch):
    write(path, "[modelprov]\ntimeout = 3\n")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_configfile.os, "replace", boom)
    with pytest.raises(ConfigurationError, match="cannot write"):
        ConfigManager(path, environ={}).set_value("modelprov", "timeout", 4)
    assert os.listdir(path.parent) == ["config.ini"] and "timeout = 3" in path.read_text()


# --------------------------------------------------------------- bad files
@pytest.mark.parametrize("text, line, words", [
    ("timeout = 3\n[modelprov]\n", 1, "before any [section]"),
    ("[modelprov]\ntimeout = 3\n\n[modelprov]\n", 4, "appears twice"),
    ("[provider:a]\nx = 1\nX = 2\n", 3, "appears twice"),
    ("[provider:a]\nx = 1\n[Provider: a]\n", 3, "appears twice"),
    ("[provider:]\nx = 1\n", 1, "needs a name"),
    ("[provider:openai]\nbase_url = https://a.example\napi_key " + SENTINEL + "\n", 3, "key = value"),
])
def test_malformed_file_names_file_and_line(path, text, line, words):
    write(path, text)
    with pytest.raises(ConfigurationError) as info:
        ConfigManager(path, environ={}).provider_config("openai")
    msg = str(info.value)
    assert str(path) in msg and f"line {line}" in msg and words in msg
    assert SENTINEL not in msg and SENTINEL not in repr(info.value)
    exc = info.value
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)  # no chained line text


def test_not_utf8(path):
    path.write_bytes(b"[modelprov]\ntimeout = 3\nproxy = \xff\xfe\n")
    with pytest.raises(ConfigurationError, match="line 3.*UTF-8"):
        ConfigManager(path, environ={}).default_model()


def test_default_section_does_not_leak(path):
    write(path, "[DEFAULT]\napi_key = leaked-key-1\n[provider:openai]\nbase_url = https://a.example\n")
    assert ConfigManager(path, environ={}).provider_config("openai").api_key is None


# ----------------------------------------------------------------- validation
@pytest.mark.parametrize("body, words", [
    ("[provider:openai]\ntimeout = abc\n", ["timeout", "'abc'", "[provider:openai] line 2", "greater than 0"]),
    ("[provider:openai]\nread_timeout = -1\n", ["read_timeout", "'-1'", "greater than 0"]),
    ("[modelprov]\nconnect_timeout = 0\n", ["connect_timeout", "[modelprov] line 2"]),
    ("[provider:openai]\npool_size = 0\n", ["pool_size", "1 or more"]),
    ("[provider:openai]\npool_size = 2.5\n", ["pool_size", "whole number"]),
    ("[provider:openai]\nbase_url = ftp://files.example\n", ["base_url", "http:// or https://"]),
    ("[provider:openai]\nbase_url = https://\n", ["base_url", "naming a host"]),
    ("[provider:openai]\nbase_url = http://host:notaport/\n", ["base_url"]),
    ("[provider:openai]\nverify = /no/such/ca.pem\n", ["verify", "true, false, or the path"]),
    ("[provider:openai]\ncert = /no/such.pem\n", ["cert", "client certificate"]),
    ("[provider:openai]\ntrust_env = maybe\n", ["trust_env", "true or false"]),
    ("[provider:openai]\nproxy = proxy.corp:3128\n", ["proxy", "socks5://"]),
    ("[provider:openai]\nheader.Bad Name = x\n", ["header name"]),
])
def test_invalid_file_values(path, body, words):
    write(path, body)
    with pytest.raises(ConfigurationError) as info:
        ConfigManager(path, environ={}).provider_config("openai", defaults=OPENAI)
    for word in words:
        assert word in str(info.value)
    assert f"file:{path}" in str(info.value)


def test_invalid_explicit_and_env_values(path):
    cfg = ConfigManager(path, environ={"OPENAI_BASE_URL": "ftp://x.example"})
    with pytest.raises(ConfigurationError, match="env:OPENAI_BASE_URL"):
        cfg.provider_config("openai", defaults=OPENAI)
    with pytest.raises(ConfigurationError, match="timeout -5 in explicit"):
        cfg.provider_config("openai", timeout=-5, base_url="https://ok.example")
    with pytest.raises(ConfigurationError, match="pool_size True"):
        cfg.provider_config("openai", pool_size=True, base_url="https://ok.example")
    with pytest.raises(ConfigurationError, match="provider name"):
        cfg.provider_config("bad]name")


def test_invalid_key_from_env_hidden(path):
    cfg = ConfigManager(path, environ={"OPENAI_API_KEY": SENTINEL + "\u201d"})
    with pytest.raises(ConfigurationError) as info:
        cfg.provider_config("openai", defaults=OPENAI)
    assert "env:OPENAI_API_KEY" in str(info.value) and SENTINEL not in str(info.value)


# -------------------------------------------------------------------- secrets
def test_secrets_never_in_repr_messages_or_logs(path, use_backend, caplog):
    caplog.set_level(logging.DEBUG, logger="modelprov")
    use_backend(RaisingKeyring())
    cfg = ConfigManager(path, environ={})
    where = cfg.set_key("openai", SENTINEL)
    pc = cfg.provider_config("openai", defaults=OPENAI)
    assert pc.api_key == SENTINEL
    shown = cfg.explain("openai", defaults=OPENAI)
    assert shown["api_key"] == {"value": "SEN...5b", "source": where}
    texts = [repr(pc), str(pc), repr(cfg), str(shown), str(cfg.provenance("openai")), str(cfg.key_sources()),
             caplog.text]
    cfg.delete_key("openai")
    texts.append(caplog.text)
    for text in texts:
        assert SENTINEL not in text


def test_explain_masks_credential_headers(cfg):
    shown = cfg.explain("x", headers={"Authorization": "Bearer " + SENTINEL, "X-Team": "ml"})
    assert shown["header.Authorization"]["value"] == "***"
    assert shown["header.X-Team"] == {"value": "ml", "source": "explicit"}
    assert shown["api_key"]["value"] == "<not set>"


# ---------------------------------------------------------------------- cache
def test_cache_rereads_on_change_and_invalidate(path, monkeypatch):
    loads = []
    real = _configfile.load_snapshot
    monkeypatch.setattr(_configfile, "load_snapshot", lambda p: loads.append(p) or real(p))
    write(path, "[modelprov]\ntimeout = 3\n")
    cfg = ConfigManager(path, environ={})
    assert cfg.provider_config("a").timeout == 3.0
    assert cfg.provider_config("b").timeout == 3.0
    assert len(loads) == 1
    write(path, "[modelprov]\ntimeout = 30\n")  # size changes
    assert cfg.provider_config("a").timeout == 30.0 and len(loads) == 2
    path.unlink()
    assert cfg.provider_config("a").timeout is None and len(loads) == 2
    write(path, "[modelprov]\ntimeout = 7\n")
    assert cfg.provider_config("a").timeout == 7.0 and len(loads) == 3
    # a change the stat signature cannot see: only invalidate() picks it up
    monkeypatch.setattr(_configfile, "stat_signature", lambda p: ("fixed",))
    cfg.invalidate()
    assert cfg.provider_config("a").timeout == 7.0
    write(path, "[modelprov]\ntimeout = 8\n")
    assert cfg.provider_config("a").timeout == 7.0
    cfg.invalidate()
    assert cfg.provider_config("a").timeout == 8.0


def test_thread_safety_smoke(path):
    write(path, "[modelprov]\ntimeout = 1\n")
    cfg = ConfigManager(path, environ={})
    errors = []
    start = threading.Barrier(5)

    def reader():
        try:
            start.wait()
            for _ in range(150):
                assert cfg.provider_config("openai", defaults=OPENAI).timeout in (1.0, 2.0, 3.0)
                cfg.aliases()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def writer():
        try:
            start.wait()
            for i in range(10):
                cfg.set_value("modelprov", "timeout", 1 + i % 3)
                if i % 4 == 0:
                    cfg.invalidate()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_import_is_cheap():
    code = ("import sys, modelprov.config.manager as c; c.ConfigManager('/nonexistent/x.ini', use_keyring=False)"
            ".provider_config('x'); bad = {'keyring', 'requests', 'asyncio'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=str(REPO), check=True)


def test_provider_options_read_from_the_environment_rank_between_explicit_and_file(tmp_path):
    path = tmp_path / "c.ini"
    path.write_text("[provider:p]\napi_version = from-file\n")
    defaults = {"option_env": {"api_version": ("P_API_VERSION",)}, "api_version": "from-default"}
    cm = ConfigManager(str(path), environ={}, use_keyring=False)
    assert cm.provider_config("p", defaults=defaults).option("api_version") == "from-file"
    cm = ConfigManager(str(path), environ={"P_API_VERSION": " from-env "}, use_keyring=False)
    assert cm.provider_config("p", defaults=defaults).option("api_version") == "from-env"
    assert cm.provenance("p", defaults=defaults)["option.api_version"] == "env:P_API_VERSION"
    assert cm.provider_config("p", defaults=defaults, options={"api_version": "x"}).option("api_version") == "x"
    cm = ConfigManager(str(tmp_path / "none.ini"), environ={}, use_keyring=False)
    assert cm.provider_config("p", defaults=defaults).option("api_version") == "from-default"
