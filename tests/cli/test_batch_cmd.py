"""``modelprov batch`` in-process: input parsing, streamed results, resume, errors, Ctrl-C and progress."""

import io
import json
import sys
import threading

import pytest

from modelprov.cli import batch_cmd
from modelprov.cli.main import main
from modelprov.exceptions import AuthenticationError, InvalidRequestError
from modelprov.testing import FakeServer

KEY = "sk-proj-BATCHSENTINEL0123456789"


class _TTY(io.StringIO):
    def isatty(self):
        return True


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def records(text):
    return [json.loads(line) for line in text.splitlines()]


def write(path, *lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def client_with(monkeypatch):
    """``client_with(**Client kwargs)``: the batch runs on that client; returns its mock provider (to read its requests)."""
    from modelprov import Client

    def make(**kwargs):
        client = Client(**kwargs)
        monkeypatch.setattr(batch_cmd, "make_client", lambda args: client)
        return client.provider("mock")  # made now: the batch uses (and records on) this instance

    return make


@pytest.fixture
def openai_server(monkeypatch):
    with FakeServer() as srv:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("MODELPROV_OPENAI_BASE_URL", srv.base_url("openai"))
        yield srv


# ------------------------------------------------------------------ happy path and output shape
def test_prompts_and_objects_give_one_result_line_each(capsys, tmp_path):
    src = write(tmp_path / "in.jsonl", '"first"', '{"prompt": "second", "id": "b"}', '{"messages": [{"role": "user", "content": "third"}]}')
    code, out, err = run(capsys, "batch", "-m", "mock/echo", src)
    got = {r["id"]: r for r in records(out)}
    assert code == 0
    assert got[1] == {"id": 1, "line": 1, "text": "first", "model": "mock/echo",
                      "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}, "finish_reason": "stop"}
    assert got["b"]["text"] == "second" and got["b"]["line"] == 2
    assert got[3]["text"] == "third"
    assert err == "modelprov: batch: 3 done, 0 failed\n"


def test_line_numbers_count_blank_lines(capsys, tmp_path):
    src = write(tmp_path / "in.jsonl", "", '"a"', "   ", "", '"b"', "")
    code, out, _ = run(capsys, "batch", "-m", "mock/echo", src)
    assert code == 0 and sorted((r["id"], r["line"], r["text"]) for r in records(out)) == [(2, 2, "a"), (5, 5, "b")]


def test_id_and_custom_id_are_echoed_and_never_sent(capsys, tmp_path, openai_server):
    openai_server.set_default("openai", "answer", usage={"prompt_tokens": 3, "completion_tokens": 1})
    src = write(tmp_path / "in.jsonl", '{"custom_id": "req-1", "prompt": "hi"}', '{"id": 42, "prompt": "ho", "model": "openai/gpt-5.4-mini"}')
    code, out, _ = run(capsys, "batch", "-m", "openai/gpt-5.4-mini", "-c", "1", src)
    got = {r["id"]: r for r in records(out)}
    assert code == 0
    assert got["req-1"]["custom_id"] == "req-1" and got["req-1"]["text"] == "answer" and got["req-1"]["line"] == 1
    assert got[42]["model"].startswith("openai/") and got[42]["usage"]["input_tokens"] == 3
    bodies = [r.json for r in openai_server.requests]
    assert len(bodies) == 2
    for body in bodies:
        assert not {"id", "custom_id", "prompt", "options"} & set(body)
    assert KEY not in out


def test_chat_options_and_provider_options_reach_the_request(capsys, tmp_path, client_with):
    mock = client_with()
    src = write(tmp_path / "in.jsonl", json.dumps({"prompt": "one two three", "max_tokens": 2, "stop": ["END"], "system": "be brief",
                                                   "options": {"user_tag": "x"}}))  # fmt: skip
    code, out, _ = run(capsys, "batch", "-m", "mock/echo", src)
    (rec,) = records(out)
    assert code == 0 and rec["text"] == "one two" and rec["finish_reason"] == "length"
    req = mock.requests[0]
    assert req.max_tokens == 2 and req.stop == ["END"] and req.system == "be brief" and req.provider_options == {"user_tag": "x"}


# ------------------------------------------------------------------ bad lines never stop the batch
def test_bad_json_line_is_that_lines_error(capsys, tmp_path, client_with):
    mock = client_with()
    src = write(tmp_path / "in.jsonl", '"before"', "{bad json", '"after"')
    code, out, err = run(capsys, "batch", "-m", "mock/echo", src)
    got = {r["line"]: r for r in records(out)}
    assert code == 1
    assert got[2]["id"] == 2 and got[2]["error"]["type"] == "ValidationError" and "line 2 is not JSON" in got[2]["error"]["message"]
    assert got[1]["text"] == "before" and got[3]["text"] == "after"
    assert len(mock.requests) == 2
    assert "modelprov: warning: line 2 is not JSON" in err and err.endswith("modelprov: batch: 2 done, 1 failed\n")


@pytest.mark.parametrize("line, words", [
    ('{"prompt": "hi", "metadata": {"a": 1}}', ["line 1: unknown key 'metadata'", '"options"']),
    ('{"prompt": "hi", "temprature": 0.2}', ["unknown key 'temprature'", "did you mean 'temperature'?"]),
    ('{"prompt": "hi", "options": {"temperature": 1}}', ["options.temperature", "top level"]),
    ('{"prompt": "hi", "options": {"stream": true}}', ["options.stream", "not streamed"]),
    ('{"prompt": "hi", "messages": ["x"]}', ["'prompt' or 'messages'"]),
    ('{"model": "mock/echo"}', ["'prompt' or 'messages'", "neither"]),
    ('{"prompt": "   "}', ["'prompt' must be a non-empty string"]),
    ('[1, 2]', ["expected a prompt string or an object"]),
    ('{"prompt": "hi", "id": 1.5}', ["'id' must be a non-empty string or an integer"]),
    ('{"prompt": "hi", "id": "a", "custom_id": "b"}', ["'id' or 'custom_id', not both"]),
    ('{"prompt": "hi", "model": ""}', ["'model' must be a 'provider/model' string"]),
], ids=["extra-key", "typo", "option-at-wrong-level", "stream", "both", "neither", "blank-prompt", "array", "float-id", "two-ids", "empty-model"])
def test_invalid_line_is_refused_and_never_sent(capsys, tmp_path, client_with, line, words):
    mock = client_with()
    src = write(tmp_path / "in.jsonl", line, '"ok"')
    code, out, err = run(capsys, "batch", "-m", "mock/echo", src)
    bad, good = sorted(records(out), key=lambda r: r["line"])
    assert code == 1 and good["text"] == "ok"
    for word in words:
        assert word in bad["error"]["message"]
    assert [r.messages[0].text for r in mock.requests] == ["ok"]
    assert "Traceback" not in err and "requests[" not in out + err


def test_library_validation_speaks_cli_terms(capsys, tmp_path):
    src = write(tmp_path / "in.jsonl", '{"prompt": "hi", "temperature": 5}', '{"messages": [{"role": "robot", "content": "x"}]}')
    code, out, err = run(capsys, "batch", "-m", "mock/echo", src)
    first, second = sorted(records(out), key=lambda r: r["line"])
    assert code == 1 and "temperature must be between 0 and 2" in first["error"]["message"]
    assert second["error"]["type"] == "ValidationError" and "requests[" not in out + err and "max_concurrency" not in err
    assert 'line 1 (id 1): temperature' in err


def test_duplicate_ids_are_refused(capsys, tmp_path):
    src = write(tmp_path / "in.jsonl", '{"id": "a", "prompt": "x"}', '{"id": "a", "prompt": "y"}')
    code, out, _ = run(capsys, "batch", "-m", "mock/echo", src)
    first, second = sorted(records(out), key=lambda r: r["line"])
    assert code == 1 and first["text"] == "x" and 'id "a" is also on line 1' in second["error"]["message"]


def test_an_id_equal_to_another_lines_number_is_refused(capsys, tmp_path):
    # line 2 has no id, so its id is its line number, 2; line 3 names id 2 too. Without the check both succeed
    # under id 2 and a resume skips whichever fails later; a bad line's number counts as well (line 4 vs line 5).
    src = write(tmp_path / "in.jsonl", '"first"', '"second"', '{"id": 2, "prompt": "third"}', "{bad json", '{"id": 4, "prompt": "fifth"}')
    out_path = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "batch", "-m", "mock/echo", src, "-o", str(out_path))
    got = {r["line"]: r for r in records(out_path.read_text())}
    assert code == 1 and got[2]["text"] == "second" and got[1]["text"] == "first"
    assert "id 2 is also the id of line 2 (a line without an id is known by its line number)" in got[3]["error"]["message"]
    assert "error" in got[4] and "id 4 is also the id of line 4" in got[5]["error"]["message"]
    assert "3 failed" in err

    (tmp_path / "in.jsonl").write_text('"first"\n"second"\n{"id": "t", "prompt": "third"}\n"fourth"\n{"id": "f", "prompt": "fifth"}\n')
    code, _, err = run(capsys, "batch", "-m", "mock/echo", src, "-o", str(out_path))
    final = {r["id"]: r for r in records(out_path.read_text())}
    assert code == 0 and "3 done, 0 failed, 2 skipped" in err
    assert final[4]["text"] == "fourth" and final["t"]["text"] == "third" and final["f"]["text"] == "fifth"


def test_non_utf8_line_is_that_lines_error(capsys, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'"ok"\n"\xff\xfe"\n')
    code, out, _ = run(capsys, "batch", "-m", "mock/echo", str(path))
    assert code == 1 and {r["line"]: ("text" in r) for r in records(out)} == {1: True, 2: False}


def test_request_errors_are_redacted_and_the_batch_goes_on(capsys, tmp_path, client_with):
    client_with(providers={"mock": {"replies": [InvalidRequestError(f"bad key {KEY} here"), "fine"]}})
    src = write(tmp_path / "in.jsonl", '"one"', '"two"')
    code, out, err = run(capsys, "batch", "-m", "mock/echo", "-c", "1", src)
    got = {r["line"]: r for r in records(out)}
    assert code == 1 and got[1]["error"]["type"] == "InvalidRequestError" and got[2]["text"] == "fine"
    assert KEY not in out and KEY not in err and "***" in got[1]["error"]["message"]


def test_fallback_model_answers(capsys, tmp_path, client_with, monkeypatch):
    from modelprov import Client

    made = {}

    def make(args):
        made["client"] = Client(providers={"mock": {"replies": [AuthenticationError("no")]}}, fallbacks=args.fallback)
        return made["client"]

    monkeypatch.setattr(batch_cmd, "make_client", make)
    src = write(tmp_path / "in.jsonl", '"hello"')
    code, out, _ = run(capsys, "batch", "-m", "mock/echo", "--fallback", "mock/second", src)
    (rec,) = records(out)
    assert code == 0 and rec["model"] == "mock/second" and rec["text"] == "hello"


# ------------------------------------------------------------------ usage errors: exit 2, nothing sent
@pytest.mark.parametrize("value", ["0", "-3", "two", "1.5"])
def test_bad_concurrency_is_a_usage_error_in_cli_terms(capsys, tmp_path, value):
    src = write(tmp_path / "in.jsonl", '"hi"')
    code, out, err = run(capsys, "batch", "-m", "mock/echo", "-c", value, src)
    assert code == 2 and out == ""
    assert err.startswith("modelprov: error: --concurrency must be a whole number of 1 or more") and err.count("\n") == 1
    assert "max_concurrency" not in err


def test_terminal_stdin_is_refused_without_waiting(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _TTY('"never read"\n'))
    for argv in (["batch", "-m", "mock/echo"], ["batch", "-m", "mock/echo", "-"]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == "" and "stdin is a terminal" in err and "INPUT.jsonl" in err
    assert sys.stdin.tell() == 0


def test_stdin_input(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('"from stdin"\n\n{"id": "z", "prompt": "more"}\n'))
    code, out, _ = run(capsys, "batch", "-m", "mock/echo")
    assert code == 0 and sorted((str(r["id"]), r["line"], r["text"]) for r in records(out)) == [("1", 1, "from stdin"), ("z", 3, "more")]


@pytest.mark.parametrize("argv, words", [
    (["-m", "nosuch/model"], ["unknown provider 'nosuch'"]),
    (["--fallback", "nosuch/model", "-m", "mock/echo"], ["unknown provider 'nosuch'"]),
    ([], ["line 1 names no model", "-m provider/model"]),
], ids=["model", "fallback", "no-model"])
def test_model_problems_are_usage_errors_before_sending(capsys, tmp_path, argv, words):
    src = write(tmp_path / "in.jsonl", '"hi"')
    code, out, err = run(capsys, "batch", *argv, src)
    assert code == 2 and out == "" and err.count("\n") == 1
    for word in words:
        assert word in err


def test_missing_input_and_output_equal_to_input(capsys, tmp_path):
    code, _, err = run(capsys, "batch", "-m", "mock/echo", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "cannot read" in err and "nope.jsonl" in err
    src = write(tmp_path / "in.jsonl", '"hi"')
    code, _, err = run(capsys, "batch", "-m", "mock/echo", src, "-o", src)
    assert code == 2 and "output file is the input file" in err
    assert (tmp_path / "in.jsonl").read_text() == '"hi"\n'


def test_empty_input_exits_0(capsys, tmp_path):
    src = write(tmp_path / "in.jsonl", "", "  ")
    assert run(capsys, "batch", "-m", "mock/echo", src) == (0, "", "modelprov: batch: 0 done, 0 failed\n")


# ------------------------------------------------------------------ streaming results and resume
def test_each_result_is_in_the_file_while_a_slow_request_is_pending(capsys, tmp_path, client_with):
    gate, reached = threading.Event(), threading.Event()

    def on_request(info):
        if info["model"] == "slow":
            reached.set()
            assert gate.wait(10)

    client_with(on_request=on_request)
    src = write(tmp_path / "in.jsonl", '{"prompt": "held", "model": "mock/slow"}', '"quick"')
    out_path = tmp_path / "out.jsonl"
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("code", main(["batch", "-m", "mock/echo", "-c", "2", src, "-o", str(out_path)])))
    worker.start()
    try:
        assert reached.wait(10)
        for _ in range(1000):  # bounded: the quick line is written within milliseconds
            if out_path.exists() and out_path.read_text():
                break
            threading.Event().wait(0.01)
        partial = records(out_path.read_text())
        assert [r["text"] for r in partial] == ["quick"]
    finally:
        gate.set()
        worker.join(10)
    assert result["code"] == 0
    assert [r["text"] for r in records(out_path.read_text())] == ["quick", "held"]  # completion order


def test_fakeserver_result_written_before_the_delayed_one(capsys, tmp_path, openai_server):
    openai_server.add_chat("openai", "fast")
    openai_server.add_chat("openai", "slow", delay=1.0)
    src = write(tmp_path / "in.jsonl", '"a"', '"b"')
    out_path = tmp_path / "out.jsonl"
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("code", main(["batch", "-m", "openai/gpt-5.4-mini", "-c", "1", src, "-o", str(out_path)])))
    worker.start()
    try:
        assert openai_server.wait_for_requests(2, timeout=10)  # the second reply is held back for a second
        for _ in range(500):  # bounded: the first line is written within milliseconds of its answer
            if out_path.exists() and out_path.read_text():
                break
            threading.Event().wait(0.01)
        assert [r["text"] for r in records(out_path.read_text())] == ["fast"]
    finally:
        worker.join(10)
    assert result["code"] == 0 and [r["text"] for r in records(out_path.read_text())] == ["fast", "slow"]


def test_resume_skips_done_ids_and_retries_failed_ones(capsys, tmp_path, client_with):
    src = write(tmp_path / "in.jsonl", '{"id": "a", "prompt": "A"}', '{"id": "b", "prompt": "B"}', '"C"')
    out_path = tmp_path / "out.jsonl"
    client_with(providers={"mock": {"replies": ["a-ok", InvalidRequestError("b failed"), "c-ok"]}})
    code, out, _ = run(capsys, "batch", "-m", "mock/echo", "-c", "1", src, "-o", str(out_path))
    assert code == 1 and out == ""
    first = records(out_path.read_text())
    assert {r["id"]: ("error" in r) for r in first} == {"a": False, "b": True, 3: False}
    with out_path.open("a") as f:
        f.write('{"id": 3, "li')  # a line cut off by a crash

    mock = client_with()
    code, out, err = run(capsys, "batch", "-m", "mock/echo", src, "-o", str(out_path))
    assert code == 0
    assert [r.messages[0].text for r in mock.requests] == ["B"]
    final = records(out_path.read_text())
    assert sorted(str(r["id"]) for r in final) == ["3", "a", "b"] and all("error" not in r for r in final)
    assert out_path.read_text().endswith("}\n")
    assert "1 done, 0 failed, 2 skipped (already in" in err

    code, _, err = run(capsys, "batch", "-m", "mock/echo", src, "-o", str(out_path))
    assert code == 0 and "0 done, 0 failed, 3 skipped" in err and len(records(out_path.read_text())) == 3


def test_resume_repairs_a_last_line_without_newline(capsys, tmp_path):
    src = write(tmp_path / "in.jsonl", '"x"', '"y"')
    out_path = tmp_path / "out.jsonl"
    out_path.write_text('{"id": 1, "line": 1, "text": "x"}')
    code, _, _ = run(capsys, "batch", "-m", "mock/echo", src, "-o", str(out_path))
    assert code == 0 and [r["id"] for r in records(out_path.read_text())] == [1, 2]


# ------------------------------------------------------------------ Ctrl-C
def test_keyboard_interrupt_keeps_finished_lines_and_exits_130(capsys, tmp_path, client_with):
    mock = client_with(providers={"mock": {"replies": ["one", "two", KeyboardInterrupt, "four"]}})
    src = write(tmp_path / "in.jsonl", *[f'"p{i}"' for i in range(1, 7)])
    out_path = tmp_path / "out.jsonl"
    code, out, err = run(capsys, "batch", "-m", "mock/echo", "-c", "1", src, "-o", str(out_path))
    assert code == 130
    assert [(r["id"], r["text"]) for r in records(out_path.read_text())] == [(1, "one"), (2, "two")]
    assert len(mock.requests) == 3  # nothing started after the interruption
    assert "modelprov: batch: 2 done, 0 failed, 4 not finished" in err
    assert "run the same command again to resume" in err and err.rstrip().endswith("modelprov: interrupted")


def test_keyboard_interrupt_on_stdout_output(capsys, tmp_path, client_with):
    client_with(providers={"mock": {"replies": ["one", KeyboardInterrupt]}})
    src = write(tmp_path / "in.jsonl", '"a"', '"b"', '"c"')
    code, out, err = run(capsys, "batch", "-m", "mock/echo", "-c", "1", src)
    assert code == 130 and [r["text"] for r in records(out)] == ["one"] and "resume" not in err


# ------------------------------------------------------------------ progress
def test_progress_line_on_a_terminal_stderr(capsys, tmp_path, monkeypatch):
    tty = _TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    src = write(tmp_path / "in.jsonl", '"a"', "{bad", '"c"')
    out_path = tmp_path / "out.jsonl"
    assert main(["batch", "-m", "mock/echo", src, "-o", str(out_path)]) == 1
    shown = tty.getvalue()
    assert "\rbatch: 1/3 done, 1 failed" in shown and "batch: 3/3 done, 1 failed" in shown
    assert shown.endswith("\rmodelprov: batch: 2 done, 1 failed\n")  # the progress line is erased before the summary


def test_no_progress_when_stderr_is_not_a_terminal(capsys, tmp_path):
    src = write(tmp_path / "in.jsonl", '"a"')
    _, _, err = run(capsys, "batch", "-m", "mock/echo", src, "-o", str(tmp_path / "o.jsonl"))
    assert "\r" not in err and err == "modelprov: batch: 1 done, 0 failed\n"


# ------------------------------------------------------------------ the reusable writer
def test_result_writer_lines():
    from modelprov.types import ModelResponse, Usage

    stream = io.StringIO()
    writer = batch_cmd.ResultWriter(stream)
    resp = ModelResponse(text="hi", model="gpt-x", provider="openrouter", finish_reason="stop",
                         usage=Usage(input_tokens=2, output_tokens=1, cost=0.0003, cache_read_tokens=1))  # fmt: skip
    writer.write("r1", 4, resp, custom_id=True)
    writer.write(7, None, RuntimeError(f"boom {KEY}"))
    first, second = records(stream.getvalue())
    assert list(first) == ["id", "custom_id", "line", "text", "model", "usage", "finish_reason"]
    assert first["model"] == "openrouter/gpt-x" and first["usage"]["cost"] == 0.0003 and first["usage"]["cache_read_tokens"] == 1
    assert second == {"id": 7, "line": None, "error": {"type": "RuntimeError", "message": "boom ***"}}


def test_progress_rate_eta_throttle_and_clear(clock):
    from modelprov.cli.progress import Progress, format_duration

    tty = _TTY()
    p = Progress(10, stream=tty, clock=clock, label="batch", min_interval=0.5)
    p.start(already_done=1, already_failed=1)
    assert tty.getvalue() == "\rbatch: 1/10 done, 1 failed, 0s elapsed"
    clock.advance(2.0)
    p.advance(True)
    p.advance(True)  # within min_interval of the last draw: not drawn
    assert p.render() == "batch: 3/10 done, 1 failed, 1.0/s, ETA 7s"
    assert tty.getvalue().count("\r") == 2
    clock.advance(0.5)
    p.update()
    assert tty.getvalue().endswith("\rbatch: 3/10 done, 1 failed, 0.8/s, ETA 9s ")  # padded over the longer line before
    p.clear()
    assert tty.getvalue().endswith("\r" + " " * len("batch: 3/10 done, 1 failed, 0.8/s, ETA 9s") + "\r")
    assert [format_duration(s) for s in (0, 59.4, 185, 3720)] == ["0s", "59s", "3m05s", "1h02m"]


def test_progress_disabled_writes_nothing(clock):
    from modelprov.cli.progress import Progress

    stream = io.StringIO()
    p = Progress(2, stream=stream, clock=clock)
    assert not p.enabled
    p.start()
    p.advance(False)
    p.update(force=True)
    p.clear()
    assert stream.getvalue() == "" and p.done == 1 and p.failed == 1
