"""``modelprov models`` and ``modelprov providers``: all configured providers, notes for failures, honest statuses."""

import json
import socket

from modelprov.cli.main import main
from modelprov.testing import FakeServer

SENTINEL = "sk-proj-SENTINEL0123456789abcdef"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def config(tmp_path, text):
    path = tmp_path / "modelprov-config.ini"
    path.write_text(text)
    path.chmod(0o600)
    return path


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_models_of_one_provider(capsys):
    assert run(capsys, "models", "mock") == (0, "mock/echo\nmock/scripted\n", "")
    data = json.loads(run(capsys, "models", "mock", "--json")[1])
    assert [m["model"] for m in data] == ["mock/echo", "mock/scripted"] and data[0]["deprecated"] is None


def test_models_of_every_configured_provider_with_a_note_per_failure(capsys, tmp_path):
    port = closed_port()
    with FakeServer() as srv:
        srv.add_models("openai_compatible", [{"id": "old-1", "deprecated": True}, "new-2"])
        config(tmp_path, f"[provider:good]\ntype = openai_compatible\nbase_url = {srv.base_url('openai_compatible')}\n"
                         f"[provider:down]\ntype = openai_compatible\nbase_url = http://127.0.0.1:{port}/v1\n")
        code, out, err = run(capsys, "models")
    assert code == 1  # one provider failed
    assert "good/old-1" in out and "good/new-2" in out and "mock/" not in out  # mock is not "configured" unless in the file
    assert err.startswith("modelprov: note: down: ") and err.count("\n") == 1 and f"127.0.0.1:{port}" in err


def test_models_lifecycle_shown(capsys, tmp_path):
    import modelprov.providers.mock as mock
    from modelprov.types import ModelInfo

    orig = mock.MockProvider.local_models
    mock.MockProvider.local_models = lambda self: [ModelInfo(id="old", provider="mock", deprecated=True,
                                                             deprecation_date="2026-01-01", retirement_date="2026-06-30")]
    try:
        assert run(capsys, "models", "mock")[1] == "mock/old  (deprecated since 2026-01-01, retires 2026-06-30)\n"
    finally:
        mock.MockProvider.local_models = orig


def test_models_nothing_configured_and_unknown(capsys):
    code, _, err = run(capsys, "models")
    assert code == 2 and "no provider is configured" in err
    code, _, err = run(capsys, "models", "opnai")
    assert code == 2 and "did you mean 'openai'?" in err.lower()
    code, _, err = run(capsys, "models", "openai")
    assert code == 2 and "OPENAI_API_KEY" in err


def test_providers_table_is_honest(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    config(tmp_path, "[provider:vllm]\ntype = openai_compat\n[provider:bad]\ntype = openai_compatible\nbase_url = http://x y\n")
    code, out, err = run(capsys, "providers")
    assert code == 0 and SENTINEL not in out + err and err == ""
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "configured" in rows["openai"] and "env:OPENAI_API_KEY" in rows["openai"]
    assert "no key" in rows["anthropic"] and "ANTHROPIC_API_KEY" in rows["anthropic"]
    assert "not needed" in rows["ollama"] and "http://localhost:11434" in rows["ollama"]
    assert "invalid" in rows["vllm"] and "invalid" in rows["bad"]
    assert " ok " not in out and "vllm: unknown provider type 'openai_compat'" in out
    assert "missing ()" not in rows["vllm"] and rows["vllm"].split()[3] == "-"  # no key column for an unknown type
    assert "chat,stream" in rows["openai"] and rows["openai"].rstrip().endswith("-")  # no breaker state in a new process


def test_providers_json(capsys, monkeypatch):
    monkeypatch.setenv("MODELPROV_OPENROUTER_API_KEY", SENTINEL)
    data = {p["name"]: p for p in json.loads(run(capsys, "providers", "--json")[1])}
    assert data["openrouter"]["key_source"] == "env:MODELPROV_OPENROUTER_API_KEY" and data["openrouter"]["status"] == "configured"
    assert data["mock"]["key_source"] == "not needed" and "embeddings" in data["mock"]["capabilities"]
    assert data["anthropic"]["key_env"] == ["ANTHROPIC_API_KEY", "MODELPROV_ANTHROPIC_API_KEY"] and data["anthropic"]["breaker"] is None
    assert SENTINEL not in json.dumps(data)


def test_help_and_providers_do_not_import_requests():
    import subprocess
    import sys

    code = ("import sys; from modelprov.cli.main import main; main(['providers']); "
            "print('requests' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip().splitlines()[-1] == "False"
