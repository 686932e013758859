"""``modelprov keys``: set/get/delete/list/path with an in-memory keyring, the file store, typos and warnings."""

import io
import sys

import pytest

from modelprov.cli.main import main

keyring = pytest.importorskip("keyring")
from memory_keyring import MemoryKeyring  # noqa: E402

SENTINEL = "sk-proj-SENTINEL0123456789abcdef"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def memkr():
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def null_keyring():
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def run(capsys, *argv, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_set_get_delete_in_keyring(capsys, monkeypatch, memkr):
    code, out, err = run(capsys, "keys", "set", "openai", stdin=SENTINEL + "\n", monkeypatch=monkeypatch)
    assert code == 0 and out == "stored the key for openai in keyring (memory keyring MemoryKeyring)\n" and err == ""
    assert memkr.store[("modelprov", "openai")] == SENTINEL
    code, out, err = run(capsys, "keys", "get", "openai")
    assert code == 0 and SENTINEL not in out + err and out.startswith("openai: sk-...ef (from keyring (memory keyring")
    assert run(capsys, "keys", "get", "openai", "--show") == (0, SENTINEL + "\n", "")
    code, out, _ = run(capsys, "keys", "delete", "openai")
    assert code == 0 and "deleted the key for openai from keyring" in out
    code, out, _ = run(capsys, "keys", "delete", "openai")
    assert code == 0 and out == "no stored key for openai: nothing to delete\n"


def test_set_reads_getpass_on_a_terminal_never_argv(capsys, monkeypatch, memkr):
    prompts = []
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or SENTINEL)
    code, out, _ = run(capsys, "keys", "set", "anthropic")
    assert code == 0 and prompts == ["API key for anthropic (input hidden): "] and memkr.store[("modelprov", "anthropic")] == SENTINEL
    code, _, err = run(capsys, "keys", "set", "anthropic", SENTINEL)  # a key on the command line is a usage error
    assert code == 2 and SENTINEL not in err


def test_set_refuses_empty_and_multiline_input(capsys, monkeypatch, memkr):
    code, _, err = run(capsys, "keys", "set", "openai", stdin="\n", monkeypatch=monkeypatch)
    assert code == 2 and "no key given" in err and "printf %s KEY | modelprov keys set openai" in err
    code, _, err = run(capsys, "keys", "set", "openai", stdin="a-key-1\nb-key-2\n", monkeypatch=monkeypatch)
    assert code == 2 and "more than one line" in err and memkr.store == {}


def test_unknown_provider_refused_with_did_you_mean(capsys, monkeypatch, memkr, tmp_path):
    code, out, err = run(capsys, "keys", "set", "opnai", stdin=SENTINEL, monkeypatch=monkeypatch)
    assert code == 2 and out == "" and "unknown provider 'opnai'" in err and "did you mean 'openai'?" in err.lower()
    code, _, err = run(capsys, "keys", "set", "nosuch", stdin=SENTINEL, monkeypatch=monkeypatch)
    assert code == 2 and "config set provider.nosuch.type openai_compatible" in err
    assert memkr.store == {} and not (tmp_path / "modelprov-config.ini").exists()
    assert run(capsys, "keys", "get", "nosuch")[0] == 2 and run(capsys, "keys", "delete", "nosuch")[0] == 2


def test_configured_instance_is_known(capsys, monkeypatch, memkr):
    assert run(capsys, "config", "set", "provider.vllm.type", "openai_compatible")[0] == 0
    code, out, _ = run(capsys, "keys", "set", "vllm", stdin="vllm-key-123", monkeypatch=monkeypatch)
    assert code == 0 and memkr.store[("modelprov", "vllm")] == "vllm-key-123"


def test_env_override_warning(capsys, monkeypatch, memkr):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-123")
    code, out, err = run(capsys, "keys", "set", "openai", stdin=SENTINEL, monkeypatch=monkeypatch)
    assert code == 0 and "modelprov: warning: OPENAI_API_KEY is set in the environment and wins over the stored key" in err
    code, out, _ = run(capsys, "keys", "get", "openai")
    assert "(from env:OPENAI_API_KEY)" in out
    code, out, err = run(capsys, "keys", "delete", "openai")
    assert "deleted" in out and "OPENAI_API_KEY in the environment still gives openai a key" in err


def test_file_store_and_no_empty_section(capsys, monkeypatch, memkr, tmp_path):
    path = tmp_path / "modelprov-config.ini"
    code, out, _ = run(capsys, "keys", "set", "openai", "--store", "file", stdin=SENTINEL, monkeypatch=monkeypatch)
    assert code == 0 and out == f"stored the key for openai in {path}\n" and SENTINEL in path.read_text()
    assert memkr.store == {}
    code, out, _ = run(capsys, "keys", "delete", "openai")
    assert code == 0 and out == f"deleted the key for openai from {path}\n"
    assert "[provider:openai]" not in path.read_text()


def test_keyring_without_usable_backend(capsys, monkeypatch, null_keyring, tmp_path):
    code, out, err = run(capsys, "keys", "set", "openai", "--store", "keyring", stdin=SENTINEL, monkeypatch=monkeypatch)
    assert code == 2 and out == ""
    assert "no usable keyring backend (fail Keyring)" in err and "keyrings.alt" in err and "--store file" in err
    assert "modelprov[keyring]" not in err
    code, out, err = run(capsys, "keys", "set", "openai", stdin=SENTINEL, monkeypatch=monkeypatch)  # auto: the file
    assert code == 0 and "in " + str(tmp_path) in out and "fail Keyring" in err and "modelprov[keyring]" not in err
    code, out, _ = run(capsys, "keys", "path")
    assert code == 0 and "keyring: not usable: no usable keyring backend (fail Keyring)" in out and "keyrings.alt" in out


def test_keyring_package_missing_advises_the_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "keyring", None)
    code, _, err = run(capsys, "keys", "set", "openai", "--store", "keyring", stdin=SENTINEL, monkeypatch=monkeypatch)
    assert code == 2 and "the keyring package is not installed" in err and "pip install 'modelprov[keyring]'" in err


def test_list_and_path(capsys, monkeypatch, memkr, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env-key-123456")
    run(capsys, "keys", "set", "openai", stdin=SENTINEL, monkeypatch=monkeypatch)
    code, out, _ = run(capsys, "keys", "list")
    rows = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()}
    assert code == 0 and rows["openai"].startswith("keyring (") and rows["anthropic"] == "env:ANTHROPIC_API_KEY"
    assert rows["openrouter"] == "not set" and rows["mock"] == "not needed" and SENTINEL not in out
    code, out, _ = run(capsys, "keys", "path")
    assert out.splitlines() == ["keyring: memory keyring MemoryKeyring (service 'modelprov', user = provider name)",
                                f"file: {tmp_path / 'modelprov-config.ini'}"]


def test_group_alone_prints_help(capsys):
    code, out, err = run(capsys, "keys")
    assert code == 2 and "set" in err and "delete" in err


def test_get_without_key_says_how_to_set_it(capsys, memkr):
    code, out, err = run(capsys, "keys", "get", "openai")
    assert code == 2 and "no key is set for openai" in err and "OPENAI_API_KEY" in err and "modelprov keys set openai" in err
