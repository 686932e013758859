"""``modelprov batch --provider-batch``: submit to the OpenAI and Anthropic batch APIs (FakeServer), wait, write the lines."""

import json

import pytest

import modelprov
from modelprov.batch_jobs import BatchJob
from modelprov.cli.main import main
from modelprov.testing import FakeServer

MODELS = {"openai": "openai/gpt-5.4-mini", "anthropic": "anthropic/claude-haiku-4-5"}
KEY = "sk-provider-batch-secret-0123456789"


@pytest.fixture
def fake(monkeypatch):
    with FakeServer() as server:
        for protocol in MODELS:
            monkeypatch.setenv(f"{protocol.upper()}_API_KEY", KEY)
            monkeypatch.setenv(f"MODELPROV_{protocol.upper()}_BASE_URL", server.base_url(protocol))
        yield server


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def batch_posts(fake):
    return [r for r in fake.requests if r.method == "POST" and r.path.rstrip("/").endswith("batches")]


@pytest.mark.parametrize("protocol", sorted(MODELS))
def test_submits_waits_and_writes_the_live_batch_format(fake, capsys, tmp_path, protocol):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('"first"\n\n{"id": "q3", "prompt": "please FAIL"}\n{"custom_id": "c4", "prompt": "fourth", "max_tokens": 9}\n')
    code, stdout, err = run(capsys, "batch", str(src), "-o", str(out), "-m", MODELS[protocol], "--provider-batch", "--poll-interval", "0.001")
    assert code == 1 and stdout == ""
    assert f"submitted 3 requests to {protocol} as batch " in err and "--attach " + protocol + ":" in err
    assert "2 done, 1 failed" in err and KEY not in err
    by_line = {r["line"]: r for r in records(out)}
    assert sorted(by_line) == [1, 3, 4]
    assert by_line[1]["id"] == 1 and by_line[1]["text"] == "echo: first" and by_line[1]["model"].startswith(protocol + "/")
    assert by_line[1]["usage"]["output_tokens"] >= 1 and by_line[1]["finish_reason"] == "stop"
    assert by_line[3]["id"] == "q3" and by_line[3]["error"]["type"] == "InvalidRequestError"
    assert by_line[4]["id"] == "c4" and by_line[4]["custom_id"] == "c4" and by_line[4]["text"] == "echo: fourth"
    assert len(batch_posts(fake)) == 1  # one batch for the three lines


def test_resume_submits_only_the_lines_not_done(fake, capsys, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('"first"\n"second"\n"third"\n')
    out.write_text('{"id": 1, "line": 1, "text": "earlier"}\n{"id": 2, "line": 2, "error": {"type": "X", "message": "m"}}\n')
    code, _, err = run(capsys, "batch", str(src), "-o", str(out), "-m", MODELS["anthropic"], "--provider-batch", "--poll-interval", "0.001")
    assert code == 0 and "submitted 2 requests" in err and "1 skipped" in err
    (post,) = batch_posts(fake)
    assert [r["custom_id"] for r in post.json["requests"]] == ["line-2", "line-3"]
    assert sorted((r["id"], r.get("text")) for r in records(out)) == [(1, "earlier"), (2, "echo: second"), (3, "echo: third")]


def test_attach_waits_for_a_batch_submitted_earlier(fake, capsys, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('"alpha"\n"beta"\n')
    client = modelprov.Client()
    job = client.submit_batch(MODELS["openai"], [{"prompt": "alpha", "custom_id": "line-1"}, {"prompt": "beta", "custom_id": "line-2"}])
    code, _, err = run(capsys, "batch", str(src), "-o", str(out), "-m", MODELS["openai"], "--attach", f"openai:{job.id}", "--poll-interval", "0.001")
    assert code == 0 and "submitted" not in err
    assert len(batch_posts(fake)) == 1  # nothing submitted again
    assert sorted((r["line"], r["text"]) for r in records(out)) == [(1, "echo: alpha"), (2, "echo: beta")]


def test_ctrl_c_while_waiting_names_the_batch_to_re_attach(fake, capsys, tmp_path, monkeypatch):
    src = tmp_path / "in.jsonl"
    src.write_text('"first"\n')

    def interrupted(self, *a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(BatchJob, "wait", interrupted)
    code, _, err = run(capsys, "batch", str(src), "-m", MODELS["openai"], "--provider-batch")
    assert code == 130
    assert "the provider keeps running openai:" in err and "--attach PROVIDER:ID" in err and err.rstrip().endswith("modelprov: interrupted")


@pytest.mark.parametrize("argv, words", [
    (["--attach", "openai"], ["--attach", "PROVIDER:BATCH_ID"]),
    (["--provider-batch", "--poll-interval", "0"], ["--poll-interval"]),
    (["--provider-batch", "-m", "mock/echo"], ["batch", "openai", "anthropic"]),
], ids=["attach-without-id", "poll-interval-0", "provider-without-batch-api"])
def test_usage_errors_exit_2_before_anything_is_sent(fake, capsys, tmp_path, argv, words):
    src = tmp_path / "in.jsonl"
    src.write_text('"first"\n')
    if "-m" not in argv:
        argv = argv + ["-m", MODELS["openai"]]
    code, _, err = run(capsys, "batch", str(src), *argv)
    assert code == 2, err
    assert all(w.lower() in err.lower() for w in words), err
    assert batch_posts(fake) == []
