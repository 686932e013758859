"""``modelprov embed``: TEXT or piped stdin, --lines, --json, against the mock provider and FakeServer."""

import io
import json
import sys

from modelprov.cli.main import main
from modelprov.testing import FakeServer


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_one_text_prints_one_vector(capsys):
    code, out, err = run(capsys, "embed", "-m", "mock/echo", "hello world")
    vector = json.loads(out)
    assert code == 0 and err == "" and len(vector) == 8 and all(isinstance(x, float) for x in vector)
    assert run(capsys, "embed", "-m", "mock/echo", "hello world")[1] == out  # deterministic


def test_stdin_lines_and_json(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("first\n\nsecond\n"))
    code, out, _ = run(capsys, "embed", "-m", "mock/echo", "--lines")
    assert code == 0 and len(out.splitlines()) == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("first\nsecond\n"))
    data = json.loads(run(capsys, "embed", "-m", "mock/echo", "--json")[1])  # one text: both lines
    assert data["count"] == 1 and data["dimensions"] == 8 and data["usage"]["input_tokens"] == 2
    assert data["model"] == "echo" and data["provider"] == "mock" and len(data["vectors"]) == 1


def test_empty_input_and_unsupported(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("   \n"))
    code, _, err = run(capsys, "embed", "-m", "mock/echo")
    assert code == 2 and "empty" in err
    code, _, err = run(capsys, "embed", "-m", "anthropic/claude-haiku-4-5", "x")
    assert code == 2 and err.count("\n") == 1


def test_embed_against_fakeserver(capsys, tmp_path):
    with FakeServer() as srv:
        srv.add_embeddings("openai_compatible", [[0.5, -0.25, 1.0]])
        path = tmp_path / "modelprov-config.ini"
        path.write_text(f"[provider:local]\ntype = openai_compatible\nbase_url = {srv.base_url('openai_compatible')}\n")
        code, out, err = run(capsys, "embed", "-m", "local/emb-1", "a text")
        assert srv.last_request.json["input"] in (["a text"], "a text")
    assert (code, out, err) == (0, "[0.5, -0.25, 1.0]\n", "")
