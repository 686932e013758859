"""Bad input at the CLI (issue 11, deliverable 4).

``modelprov.cli.main([...])`` is called in-process with bad arguments. Pass
criterion of every case: exit code 2; stderr holds exactly one line
``modelprov: error: ...`` naming what to fix (argparse's own errors: a usage
block and one ``error:`` line); no ``Traceback`` anywhere; nothing on stdout
that looks like an answer; and no network I/O (the FakeServer the environment
points the providers at records no request and accepts no connection).
"""

import io
import sys
import types

import pytest

from modelprov.cli import main
from modelprov.testing import FakeServer

KEY = "sk-CLI-BAD-INPUT-0123456789"


class _TTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def guarded_server(monkeypatch):
    """A FakeServer that the env points openai at, with a key: a request would succeed, so none must be sent."""
    with FakeServer() as srv:
        srv.set_default("openai", "should not be asked")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("MODELPROV_OPENAI_BASE_URL", srv.base_url("openai"))
        yield srv
        assert srv.requests == [] and srv.accepted == 0, f"network I/O happened: {srv!r}"


def _run(capsys, argv, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", stdin)
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out, err
    return code, out, err


def _assert_one_line(err, words):
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith("modelprov: error: "), lines[0]
    missing = [w for w in words if w.lower() not in lines[0].lower()]
    assert not missing, f"{lines[0]!r} does not name {missing}"


MODELPROV_ERRORS = [
    ("unknown-provider", ["chat", "-m", "nosuch/model", "hi"], None, ["unknown provider", "nosuch", "openai"]),
    ("model-without-provider", ["chat", "-m", "gpt4", "hi"], None, ["gpt4", "provider/model"]),
    ("model-empty", ["chat", "-m", "", "hi"], None, ["model", "provider/model"]),
    ("temperature-5", ["chat", "-m", "openai/gpt-test", "-t", "5", "hi"], None, ["temperature", "between 0 and 2"]),
    ("temperature-5-no-stream", ["chat", "--no-stream", "-m", "openai/gpt-test", "-t", "5", "hi"], None, ["temperature"]),
    ("max-tokens-negative", ["chat", "-m", "openai/gpt-test", "--max-tokens", "-1", "hi"], None, ["max_tokens", ">= 1"]),
    ("unknown-fallback", ["chat", "-m", "openai/gpt-test", "--fallback", "nosuch/x", "hi"], None, ["nosuch"]),
    ("prompt-missing-empty-stdin", ["chat", "-m", "openai/gpt-test"], "", ["prompt", "stdin", "empty"]),
    ("prompt-dash-empty-stdin", ["chat", "-m", "openai/gpt-test", "-"], "  \n", ["prompt", "empty"]),
    ("models-unknown-provider", ["models", "nosuch"], None, ["unknown provider", "nosuch"]),
    ("batch-concurrency-0", ["batch", "-m", "openai/gpt-test", "-c", "0"], '"hi"\n', ["--concurrency", "whole number of 1 or more"]),
    ("batch-concurrency-negative", ["batch", "-m", "openai/gpt-test", "-c", "-3"], '"hi"\n', ["concurrency"]),
    ("batch-stdin-tty", ["batch", "-m", "openai/gpt-test"], "tty", ["stdin is a terminal", "INPUT.jsonl"]),
]


@pytest.mark.parametrize("argv, stdin, words", [c[1:] for c in MODELPROV_ERRORS], ids=[c[0] for c in MODELPROV_ERRORS])
def test_cli_bad_input_exits_2_with_one_line(guarded_server, capsys, monkeypatch, argv, stdin, words):
    """Exit 2, one ``modelprov: error:`` line naming what to fix, no traceback, no request sent."""
    if stdin == "tty":
        stdin = _TTY("")
    elif stdin is not None:
        stdin = io.StringIO(stdin)
    code, out, err = _run(capsys, argv, stdin, monkeypatch)
    assert code == 2, (code, err)
    _assert_one_line(err, words)
    assert "should not be asked" not in out


def test_cli_models_with_nothing_configured_exits_2(capsys):
    """``models`` with no provider named and none configured: exit 2, one line saying so, nothing contacted."""
    code, out, err = _run(capsys, ["models"])
    assert code == 2 and out == ""
    _assert_one_line(err, ["no provider is configured"])


ARGPARSE_ERRORS = [
    ("temperature-not-a-number", ["chat", "-m", "openai/gpt-test", "-t", "hot", "hi"], ["-t/--temperature", "hot"]),
    ("max-tokens-not-an-int", ["chat", "-m", "openai/gpt-test", "--max-tokens", "lots", "hi"], ["--max-tokens", "lots"]),
    ("unknown-option", ["chat", "--frobnicate", "hi"], ["unrecognized", "--frobnicate"]),
    ("unknown-command", ["keys", "frobnicate"], ["invalid choice", "frobnicate", "set"]),
    ("keys-set-bad-store", ["keys", "set", "openai", "--store", "vault"], ["--store", "vault", "keyring"]),
]


@pytest.mark.parametrize("argv, words", [c[1:] for c in ARGPARSE_ERRORS], ids=[c[0] for c in ARGPARSE_ERRORS])
def test_cli_argument_errors_exit_2(guarded_server, capsys, argv, words):
    """argparse errors: exit 2, usage plus exactly one ``error:`` line (the last) naming the argument, no traceback."""
    code, out, err = _run(capsys, argv)
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage: modelprov"), lines
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1 and errors[0] == lines[-1], lines
    missing = [w for w in words if w.lower() not in errors[0].lower()]
    assert not missing, f"{errors[0]!r} does not name {missing}"
    assert out == ""


def test_cli_no_command_exits_2_with_help(capsys):
    """No command: exit 2 and the help on stderr (not stdout), no traceback."""
    code, out, err = _run(capsys, [])
    assert code == 2
    assert out == "" and "usage: modelprov" in err and "chat" in err


@pytest.mark.parametrize("text, words", [
    ("[modelprov\ndefault_model = openai/x\n", ["config file", "line 1"]),
    ("[modelprov]\njust some words\n", ["config file", "line 2"]),
    ("[provider:openai]\ntimeout = forever\n", ["timeout", "forever"]),
], ids=["unclosed-section", "no-equals", "bad-timeout"])
@pytest.mark.parametrize("argv", [["chat", "-m", "openai/gpt-test", "hi"], ["config", "show"]], ids=["chat", "config-show"])
def test_cli_malformed_config_file(guarded_server, capsys, monkeypatch, isolated_env, text, words, argv):
    """A malformed config file: exit 2, one line naming the file and the line or setting, no request sent."""
    path = isolated_env / "broken.ini"
    path.write_text(text)
    monkeypatch.setenv("MODELPROV_CONFIG", str(path))
    code, out, err = _run(capsys, argv)
    assert code == 2, (code, err)
    _assert_one_line(err, words)
    if "config file" in words:
        assert str(path) in err


class _RaisingBackend:
    priority = 5

    def get_password(self, service, name):
        raise RuntimeError("keyring daemon exploded: SECRET-KEYRING-DETAIL")

    set_password = delete_password = get_password


def test_cli_keys_set_with_a_raising_keyring(capsys, monkeypatch):
    """``keys set --store keyring`` on a keyring that raises: exit 2, one line saying it could not store the key and
    what to do instead; neither the key nor the backend's exception text is printed."""
    module = types.ModuleType("keyring")
    module.get_keyring = _RaisingBackend
    monkeypatch.setitem(sys.modules, "keyring", module)
    code, out, err = _run(capsys, ["keys", "set", "openai", "--store", "keyring"], io.StringIO(KEY + "\n"), monkeypatch)
    assert code == 2, (code, err)
    _assert_one_line(err, ["cannot store", "openai", "keyring", "file"])
    assert KEY not in out + err and "SECRET-KEYRING-DETAIL" not in out + err


def test_cli_chat_with_a_raising_keyring_and_no_key(capsys, monkeypatch):
    """A raising keyring and no key anywhere: exit 2, one line naming how to set the key (not the keyring's error)."""
    module = types.ModuleType("keyring")
    module.get_keyring = _RaisingBackend
    monkeypatch.setitem(sys.modules, "keyring", module)
    with FakeServer() as srv:
        monkeypatch.setenv("MODELPROV_OPENAI_BASE_URL", srv.base_url("openai"))
        code, out, err = _run(capsys, ["chat", "-m", "openai/gpt-test", "hi"])
        assert srv.accepted == 0
    assert code == 2, (code, err)
    _assert_one_line(err, ["no api key", "OPENAI_API_KEY", "modelprov keys set openai"])
    assert "SECRET-KEYRING-DETAIL" not in err
