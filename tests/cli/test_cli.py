"""The command line: the README command, stdin prompts, errors, keys and config."""

import json
import subprocess
import sys

from modelprov.cli.main import main

SENTINEL = "sk-proj-SENTINEL0123456789abcdef"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_chat_streams_mock_echo(capsys):
    assert run(capsys, "chat", "-m", "mock/echo", "Hello") == (0, "Hello\n", "")


def test_chat_no_stream_and_json(capsys):
    assert run(capsys, "chat", "-m", "mock/echo", "--no-stream", "Hi there")[1] == "Hi there\n"
    code, out, _ = run(capsys, "chat", "-m", "mock/echo", "--json", "Hi")
    data = json.loads(out)
    assert code == 0 and data["text"] == "Hi" and data["provider"] == "mock" and data["usage"]["output_tokens"] == 1


def test_chat_reads_piped_stdin(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("from a pipe\n"))
    assert run(capsys, "chat", "-m", "mock/echo")[1] == "from a pipe\n"


def test_errors_are_one_friendly_line(capsys):
    code, out, err = run(capsys, "chat", "-m", "nope/x", "hi")
    assert code == 2 and out == ""
    assert err.startswith("modelprov: error: unknown provider 'nope'") and err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_key_exit_code_and_hint(capsys):
    code, _, err = run(capsys, "chat", "-m", "openai/gpt-5.4-mini", "hi")
    assert code == 2 and "OPENAI_API_KEY" in err and "modelprov keys set openai" in err


def test_an_unquoted_prompt_is_explained(capsys):
    # `modelprov Say hello` (the shortcut) and `modelprov chat Say hello`: say to quote it, not "unrecognized arguments"
    for argv in (["-m", "mock/echo", "Say", "hello"], ["chat", "-m", "mock/echo", "Say", "hello", "there"]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        assert err.startswith("modelprov: error: chat takes one prompt, got ") and 'quote it: modelprov chat "your whole prompt"' in err.lower()
        assert "unrecognized" not in err and "usage:" not in err
    code, _, err = run(capsys, "chat", "-m", "mock/echo", "hi", "--nosuch")
    assert code == 2 and "usage: modelprov chat" in err and "unrecognized arguments: --nosuch" in err
    code, _, err = run(capsys, "models", "mock", "extra")
    assert code == 2 and "usage: modelprov models" in err and "unrecognized arguments: extra" in err


class _Terminal:
    def isatty(self):
        return True

    def read(self, *a):  # pragma: no cover - a terminal is never read without a prompt
        raise AssertionError("read a terminal")


def test_usage_errors_exit_2(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Terminal())
    code, out, err = run(capsys, "modles")
    assert code == 2 and "unknown command 'modles'; did you mean 'models'?" in err
    assert run(capsys)[0] == 2
    assert run(capsys, "chat", "--frobnicate")[0] == 2


def test_providers_lists_configuration(capsys):
    code, out, _ = run(capsys, "providers")
    assert code == 0 and "mock" in out and "OPENAI_API_KEY" in out


def test_keys_never_printed(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(SENTINEL + "\n"))
    code, out, err = run(capsys, "keys", "set", "openai", "--store", "file")
    assert code == 0 and SENTINEL not in out + err
    code, out, err = run(capsys, "keys", "get", "openai")
    assert code == 0 and SENTINEL not in out and "openai" in out
    code, out, err = run(capsys, "config", "show", "openai")
    assert code == 0 and SENTINEL not in out
    monkeypatch.setenv("MODELPROV_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens: no real network
    code, out, err = run(capsys, "doctor")
    assert code == 1 and SENTINEL not in out + err
    assert run(capsys, "config", "get", "provider.openai.api_key")[0] == 2


def test_config_set_get_path(capsys):
    assert run(capsys, "config", "set", "default_model", "mock/echo")[0] == 0
    assert run(capsys, "config", "get", "default_model")[1] == "mock/echo\n"
    assert run(capsys, "chat", "default model")[1] == "default model\n"
    assert run(capsys, "config", "set", "aliases.fast", "mock/echo")[0] == 0
    assert run(capsys, "chat", "-m", "fast", "alias")[1] == "alias\n"
    assert run(capsys, "config", "path")[1].strip().endswith("modelprov-config.ini")


def test_batch_jsonl(capsys, tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text('"first"\n{"messages": "second"}\n\n')
    code, out, _ = run(capsys, "batch", "-m", "mock/echo", str(f))
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and [x["text"] for x in sorted(lines, key=lambda r: r["line"])] == ["first", "second"]


def test_models_command(capsys):
    assert run(capsys, "models", "mock")[1].splitlines() == ["mock/echo", "mock/scripted"]


def test_console_script_via_python_m():
    out = subprocess.run([sys.executable, "-m", "modelprov", "chat", "-m", "mock/echo", "Hello"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "Hello\n"
