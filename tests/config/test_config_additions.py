"""Config: [prices], rpm/tpm from the environment and the file, lenient explain, global values, tidy deletes, keyring status."""

import pytest

from modelprov.config.manager import ConfigManager
from modelprov.exceptions import ConfigurationError

keyring = pytest.importorskip("keyring")
from keyring.backend import KeyringBackend  # noqa: E402

OPENAI = {"type": "openai", "base_url": "https://api.openai.com/v1", "api_key_env": ("OPENAI_API_KEY",),
          "base_url_env": ("OPENAI_BASE_URL",)}


def write(path, text):
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def path(tmp_path):
    return tmp_path / "config.ini"


def test_prices_parsed(path):
    write(path, "[prices]\nopenai/gpt-5.4-mini = input=0.25 output=2.00 cached=0.025\n"
                "openrouter/anthropic/claude-haiku-4-5 = output=5 input=1\n")
    assert ConfigManager(path, environ={}).prices() == {
        "openai/gpt-5.4-mini": {"input": 0.25, "output": 2.0, "cached": 0.025},
        "openrouter/anthropic/claude-haiku-4-5": {"output": 5.0, "input": 1.0},
    }
    assert ConfigManager(path.with_name("none.ini"), environ={}).prices() == {}


@pytest.mark.parametrize("line, why", [
    ("gpt-5.4-mini = input=1 output=2", "expected 'provider/model'"),
    ("openai/x = input=1", "output missing"),
    ("openai/x = input=1 output=-2", "output must be a number >= 0"),
    ("openai/x = input=1 output=nan", "output must be a number >= 0"),
    ("openai/x = input=1 output=2 extra=3", "'extra=3' is not one of"),
    ("openai/x = input=1 output=2 input=3", "input given twice"),
    ("openai/x = 1 2", "'1' is not one of"),
])
def test_bad_price_lines_name_the_line(path, line, why):
    write(path, "[prices]\nopenai/ok = input=1 output=2\n" + line + "\n")
    with pytest.raises(ConfigurationError) as info:
        ConfigManager(path, environ={}).prices()
    assert why in info.value.message and "line 3" in info.value.message and "USD per million tokens" in info.value.hint


def test_rpm_tpm_from_env_and_file(path):
    write(path, "[provider:openai]\nrpm = 30\ntpm = none\n[provider:my-srv]\ntype = openai_compatible\ntpm = 1000\n")
    cfg = ConfigManager(path, environ={"MODELPROV_OPENAI_TPM": "90000"})
    pc = cfg.provider_config("openai", defaults=OPENAI)
    assert (pc.rpm, pc.tpm) == (30.0, 90000.0)
    assert cfg.provenance("openai", defaults=OPENAI)["tpm"] == "env:MODELPROV_OPENAI_TPM"
    cfg = ConfigManager(path, environ={"MODELPROV_MY_SRV_RPM": "5"})
    pc = cfg.provider_config("my-srv")
    assert (pc.rpm, pc.tpm) == (5.0, 1000.0)
    with pytest.raises(ConfigurationError, match="invalid rpm '0' in env:MODELPROV_OPENAI_RPM"):
        ConfigManager(path, environ={"MODELPROV_OPENAI_RPM": "0"}).provider_config("openai", defaults=OPENAI)


def test_explain_all_marks_invalid_values_and_keeps_the_rest(path):
    write(path, "[provider:openai]\nbase_url = http://bad url\ntimeout = 7\napi_key = file-key-12345\nheader.Bad Name = x\n")
    cfg = ConfigManager(path, environ={}, use_keyring=False)
    with pytest.raises(ConfigurationError):
        cfg.explain("openai", defaults=OPENAI)
    shown = cfg.explain_all("openai", defaults=OPENAI)
    assert shown["base_url"]["value"] is None and "line 2" in shown["base_url"]["invalid"]
    assert shown["base_url"]["source"] == f"file:{path} [provider:openai]"
    assert shown["timeout"]["value"] == 7.0 and shown["api_key"]["value"] == "fil...45"
    assert "invalid" in shown["header.Bad Name"]


def test_invalid_key_never_shown(path):
    write(path, "[provider:openai]\napi_key = SECRET-PART one\n")
    shown = ConfigManager(path, environ={}, use_keyring=False).explain_all("openai", defaults=OPENAI)
    assert "invalid" in shown["api_key"] and "SECRET-PART" not in str(shown)


def test_global_values(path):
    write(path, "[modelprov]\ndefault_model = mock/echo\ntimeout = 20\npool_size = lots\n")
    values = ConfigManager(path, environ={"MODELPROV_MODEL": "mock/scripted"}).global_values()
    assert values["default_model"] == {"value": "mock/scripted", "source": "env:MODELPROV_MODEL"}
    assert values["timeout"] == {"value": 20.0, "source": f"file:{path} [modelprov]"}
    assert values["connect_timeout"] == {"value": 5.0, "source": "default"}
    assert "invalid pool_size 'lots'" in values["pool_size"]["invalid"]


def test_unsetting_the_last_key_removes_the_section(path):
    write(path, "[modelprov]\ndefault_model = mock/echo\n\n[provider:openai]\n# my key\napi_key = k-123456789\n\n[aliases]\nf = mock/echo\n")
    cfg = ConfigManager(path, environ={}, use_keyring=False)
    assert cfg.delete_key("openai") == [f"file:{path} [provider:openai]"]
    text = path.read_text()
    assert "[provider:openai]" not in text and "# my key" in text and "[aliases]\nf = mock/echo" in text
    assert cfg.unset_value("aliases", "f") and "[aliases]" not in path.read_text()
    assert cfg.default_model() == "mock/echo"


class NamedKeyring(KeyringBackend):
    priority = 1

    def get_password(self, service, username):
        return None

    def set_password(self, service, username, password):
        raise RuntimeError("locked")


def test_keyring_status_names_the_backend(path):
    status = ConfigManager(path, environ={}, keyring_module=type("M", (), {"get_keyring": staticmethod(NamedKeyring)})).keyring_status()
    assert status == {"installed": True, "version": None, "usable": True, "backend": "test config additions NamedKeyring", "fix": None}


def test_empty_chainer_is_unusable(path, monkeypatch):
    from keyring.backends import chainer

    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    module = type("M", (), {"get_keyring": staticmethod(chainer.ChainerBackend)})
    status = ConfigManager(path, environ={}, keyring_module=module).keyring_status()
    assert status["usable"] is False and "no usable keyring backend (chainer ChainerBackend" in status["backend"]
    assert "keyrings.alt" in status["fix"] and "modelprov[keyring]" not in status["fix"]


def test_set_key_in_failing_backend_names_it(path):
    module = type("M", (), {"get_keyring": staticmethod(NamedKeyring)})
    with pytest.raises(ConfigurationError, match="the backend test config additions NamedKeyring failed to store it"):
        ConfigManager(path, environ={}, keyring_module=module).set_key("openai", "k-123456789", store="keyring")
