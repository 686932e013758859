"""``modelprov chat`` through main([...]): streaming, stdin joining, -o, -a, --schema, --json, notes, exit codes, logging."""

import io
import json
import sys

import pytest

from modelprov.cli.main import main
from modelprov.conversation_log import ConversationLog
from modelprov.providers.mock import MockProvider

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


@pytest.fixture(autouse=True)
def logs_db(monkeypatch, tmp_path):
    """The conversation log of this test (never the user's), and piped empty stdin (never a terminal)."""
    monkeypatch.setenv("MODELPROV_LOGS_PATH", str(tmp_path / "logs" / "logs.db"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return ConversationLog(tmp_path / "logs" / "logs.db")


@pytest.fixture
def mock(monkeypatch):
    """Script the mock provider: ``mock.push(*replies)``; ``mock.requests`` are the ChatRequests it received."""

    class Script:
        replies = []
        instances = []

        def push(self, *replies):
            self.replies.extend(replies)

        @property
        def requests(self):
            return [r for inst in self.instances for r in inst.requests]

    script = Script()
    original = MockProvider.__init__

    def init(self, config=None):
        original(self, config)
        self.push(*script.replies)
        script.replies.clear()
        script.instances.append(self)

    monkeypatch.setattr(MockProvider, "__init__", init)
    return script


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ basics
def test_streams_each_chunk_as_it_arrives(capsys, monkeypatch, logs_db):
    import modelprov.cli.chat as chat

    pieces = []
    real_out = chat.out
    monkeypatch.setattr(chat, "out", lambda text="", end="\n": (pieces.append(text), real_out(text, end)))
    assert run(capsys, "chat", "-m", "mock/echo", "Hello big world") == (0, "Hello big world\n", "")
    assert pieces == ["Hello ", "big ", "world"]
    [entry] = logs_db.entries()
    assert (entry.prompt, entry.response, entry.model, entry.provider) == ("Hello big world", "Hello big world", "mock/echo", "mock")


def test_bare_prompt_shortcut_and_no_stream(capsys):
    assert run(capsys, "-m", "mock/echo", "Hi there") == (0, "Hi there\n", "")
    assert run(capsys, "chat", "-m", "mock/echo", "--no-stream", "whole") == (0, "whole\n", "")


def test_piped_stdin_comes_first_then_a_space_and_the_prompt(capsys, monkeypatch, mock):
    monkeypatch.setattr(sys, "stdin", io.StringIO("def f():\n    return 1\n"))
    code, out, _ = run(capsys, "chat", "-m", "mock/echo", "Explain:")
    assert code == 0 and mock.requests[0].messages[0].content == "def f():\n    return 1\n Explain:"
    monkeypatch.setattr(sys, "stdin", io.StringIO("only stdin"))
    assert run(capsys, "chat", "-m", "mock/echo")[1] == "only stdin\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO("dash"))
    assert run(capsys, "chat", "-m", "mock/echo", "-")[1] == "dash\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))  # blank stdin is not glued to the prompt
    assert run(capsys, "chat", "-m", "mock/echo", "plain")[1] == "plain\n"


@pytest.mark.parametrize("argv", [["   "], ["\n\t"]])
def test_whitespace_prompt_is_refused_before_any_call(capsys, mock, logs_db, argv):
    code, out, err = run(capsys, "chat", "-m", "mock/echo", *argv)
    assert code == 2 and out == "" and "the prompt is empty" in err and mock.requests == [] and logs_db.entries() == []


def test_no_prompt_with_empty_pipe_is_a_usage_error(capsys):
    code, _, err = run(capsys, "chat", "-m", "mock/echo")
    assert code == 2 and "no prompt given" in err


def test_two_prompt_words_are_refused(capsys):
    code, _, err = run(capsys, "chat", "-m", "mock/echo", "-o", "seed", "1", "one", "two")
    assert code == 2 and "Quote it: modelprov chat" in err


# --------------------------------------------------------------------- -o
def test_option_forms_and_json_values(capsys, mock):
    code, out, _ = run(
        capsys,
        "chat",
        "-m",
        "mock/echo",
        "-o",
        "temperature",
        "0.2",
        "-o",
        "max_tokens=50",
        "-o",
        "stop",
        '["END"]',
        "-o",
        "seed",
        "7",
        "-o",
        "reasoning",
        "high",
        "-o",
        "top_p=1",
        "Hello END there",
    )
    req = mock.requests[0]
    assert code == 0 and out == "Hello \n"
    assert (req.temperature, req.max_tokens, req.stop, req.seed, req.reasoning, req.top_p) == (0.2, 50, ["END"], 7, "high", 1.0)


def test_option_key_value_then_prompt_and_flags_win(capsys, mock):
    assert run(capsys, "chat", "-m", "mock/echo", "-o", "temperature=0.5", "after the option")[1] == "after the option\n"
    run(capsys, "chat", "-m", "mock/echo", "-o", "temperature", "0.5", "-t", "0.9", "--max-tokens", "3", "x")
    assert (mock.requests[1].temperature, mock.requests[1].max_tokens) == (0.9, 3)


def test_provider_specific_options_pass_through(capsys, mock):
    assert run(capsys, "chat", "-m", "mock/echo", "-o", "options", '{"num_ctx": 8192, "top_k": 5}', "x")[0] == 0
    assert mock.requests[0].provider_options == {"num_ctx": 8192, "top_k": 5}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-o", "temprature", "0.2"], "Did you mean 'temperature'?"),
        (["-o", "frobnicate=1"], "provider-specific settings go in -o options"),
        (["-o", "options", "[1]"], "JSON object"),
        (["-o", "options", '{"temperature": 1}'], "not provider-specific"),
        (["-o", "temperature", "7"], "temperature must be between 0 and 2"),
        (["-o", "reasoning", "extreme"], "reasoning must be one of"),
    ],
)
def test_bad_options_exit_2_with_the_fix(capsys, mock, argv, message):
    code, out, err = run(capsys, "chat", "-m", "mock/echo", *argv, "hello")
    assert code == 2 and out == "" and message in err and err.startswith("modelprov: error:") and mock.requests == []


def test_option_without_value_is_an_argparse_error(capsys):
    assert run(capsys, "chat", "-m", "mock/echo", "-o", "temperature")[0] == 2


# --------------------------------------------------------------------- -a
def test_image_file_and_url_attachments(capsys, mock, tmp_path):
    from modelprov.parts import ImagePart

    img = tmp_path / "photo.bin"  # the type comes from the bytes, not the name
    img.write_bytes(PNG)
    code, out, _ = run(capsys, "chat", "-m", "mock/echo", "-a", str(img), "-a", "https://example.com/cat.jpg", "Describe")
    content = mock.requests[0].messages[0].content
    assert code == 0 and out == "Describe\n"
    assert content[0].text == "Describe" and isinstance(content[1], ImagePart)
    assert content[1].path == str(img) and content[1].media_type == "image/png"
    assert content[2].url == "https://example.com/cat.jpg"


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("notes.txt", b"hello", "is not an image"),
        ("fake.png", b"just some text", "is not an image"),
        ("missing.png", None, "cannot read attachment"),
    ],
)
def test_bad_attachments_are_refused(capsys, mock, tmp_path, name, data, message):
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    code, out, err = run(capsys, "chat", "-m", "mock/echo", "-a", str(path), "Describe")
    assert code == 2 and message in err and mock.requests == []


def test_a_directory_and_a_bad_data_url_are_refused(capsys, tmp_path):
    assert "is a directory" in run(capsys, "chat", "-m", "mock/echo", "-a", str(tmp_path), "x")[2]
    assert "not a base64 image data URL" in run(capsys, "chat", "-m", "mock/echo", "-a", "data:text/plain,hi", "x")[2]


def test_image_reaches_the_wire_as_a_data_url(capsys, monkeypatch, tmp_path):
    from modelprov.testing import FakeServer

    img = tmp_path / "a.png"
    img.write_bytes(PNG)
    with FakeServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
        server.add_chat("openai", "A black square")
        code, out, _ = run(capsys, "chat", "-m", "openai/gpt-5.4-mini", "-a", str(img), "What is it?")
        parts = server.last_request.json["messages"][0]["content"]
    assert code == 0 and out == "A black square\n"
    assert parts[0] == {"type": "text", "text": "What is it?"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")


# ----------------------------------------------------------------- --schema
def test_schema_concise_form(capsys, mock):
    code, out, _ = run(capsys, "chat", "-m", "mock/echo", "--schema", "name, age int, bio: a short bio", "Invent")
    schema = mock.requests[0].response_format["json_schema"]["schema"]
    assert code == 0 and json.loads(out) == {"echo": "Invent"} and out.startswith("{\n  ")
    assert schema == {
        "type": "object",
        "required": ["name", "age", "bio"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "bio": {"type": "string", "description": "a short bio"}},
    }


def test_schema_concise_form_by_lines(capsys, mock):
    run(capsys, "chat", "-m", "mock/echo", "--schema", "title: a title, with a comma\nscore float\nok bool", "x")
    props = mock.requests[0].response_format["json_schema"]["schema"]["properties"]
    assert props == {"title": {"type": "string", "description": "a title, with a comma"}, "score": {"type": "number"}, "ok": {"type": "boolean"}}


def test_schema_inline_json_and_file(capsys, mock, tmp_path):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    assert run(capsys, "chat", "-m", "mock/echo", "--schema", json.dumps(schema), "x")[0] == 0
    f = tmp_path / "schema.json"
    f.write_text(json.dumps(schema))
    assert run(capsys, "chat", "-m", "mock/echo", "--schema", str(f), "y")[0] == 0
    assert [r.response_format["json_schema"]["schema"] for r in mock.requests] == [schema, schema]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{not json", "not valid JSON"),
        ("age integer", "Did you mean 'int'?"),
        (" , ", "the schema is empty"),
        ("[1]", "must be letters, digits"),
        ("a b c", "not 'name [type][: description]'"),
        ("a int, a str", "given twice"),
    ],
)
def test_bad_schemas_exit_2(capsys, mock, spec, message):
    code, _, err = run(capsys, "chat", "-m", "mock/echo", "--schema", spec, "x")
    assert code == 2 and message in err and mock.requests == []


def test_non_json_answer_is_exit_1_and_kept_in_the_log(capsys, mock, logs_db):
    mock.push("Sorry, I cannot do JSON")
    code, out, err = run(capsys, "chat", "-m", "mock/echo", "--schema", "name", "x")
    assert code == 1 and out == "" and "not valid JSON" in err and "modelprov logs -n 1" in err
    [entry] = logs_db.entries()
    assert entry.response == "Sorry, I cannot do JSON" and entry.error.startswith("the answer is not valid JSON")


def test_schema_answer_in_a_code_fence_is_accepted(capsys, mock):
    mock.push('```json\n{"name": "Ada"}\n```')
    assert json.loads(run(capsys, "chat", "-m", "mock/echo", "--schema", "name", "x")[1]) == {"name": "Ada"}


def test_schema_goes_on_the_wire(capsys, monkeypatch):
    from modelprov.testing import FakeServer

    with FakeServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
        server.add_chat("openai", '{"name": "Ada", "age": 36}')
        code, out, _ = run(capsys, "chat", "-m", "openai/gpt-5.4-mini", "--schema", "name, age int", "Who?")
        sent = server.last_request.json["response_format"]
    assert code == 0 and json.loads(out) == {"name": "Ada", "age": 36}
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["properties"]["age"] == {"type": "integer"}


# ------------------------------------------------------------------- --json
def test_json_object_fields(capsys, mock, logs_db):
    mock.push({"text": "Paris", "reasoning": "capital of France"})
    code, out, err = run(capsys, "chat", "-m", "mock/echo", "--json", "Capital?")
    data = json.loads(out)
    assert code == 0 and err == ""
    assert {
        "text",
        "reasoning",
        "model",
        "provider",
        "finish_reason",
        "usage",
        "dropped_options",
        "latency_s",
        "conversation_id",
        "tool_calls",
        "request_id",
    } <= set(data)
    assert (data["text"], data["reasoning"], data["model"], data["provider"], data["finish_reason"]) == ("Paris", "capital of France", "echo", "mock", "stop")
    assert data["usage"]["output_tokens"] == 4 and "cost" in data["usage"] and data["dropped_options"] == []
    assert data["conversation_id"] == logs_db.latest_cid() and data["fallback"] is False and data["latency_s"] >= 0


def test_json_with_cost_tool_calls_and_schema(capsys, monkeypatch, tmp_path, mock):
    from modelprov.testing import FakeServer

    with FakeServer() as server:
        (tmp_path / "modelprov-config.ini").write_text(f"[provider:openrouter]\nbase_url = {server.base_url('openrouter')}\n")
        monkeypatch.setenv("OPENROUTER_API_KEY", "test-key")
        server.add_chat(
            "openrouter", "", tool_calls=[{"name": "lookup", "arguments": {"q": "x"}}], usage={"input_tokens": 3, "output_tokens": 2, "cost": 0.0042}
        )
        code, out, _ = run(capsys, "chat", "-m", "openrouter/openai/gpt-5.4-mini", "--json", "x")
    data = json.loads(out)
    assert code == 0 and data["usage"]["cost"] == 0.0042 and data["tool_calls"][0]["name"] == "lookup"
    assert data["finish_reason"] == "tool_calls" and data["provider"] == "openrouter"
    data = json.loads(run(capsys, "chat", "-m", "mock/echo", "--json", "--schema", "a", "y")[1])
    assert data["data"] == {"echo": "y"} and json.loads(data["text"]) == {"echo": "y"}


# -------------------------------------------------------------------- notes
def test_note_when_cut_off(capsys):
    code, out, err = run(capsys, "chat", "-m", "mock/echo", "--max-tokens", "2", "one two three")
    assert code == 0 and out == "one two\n" and "cut off" in err and "--max-tokens" in err and err.startswith("modelprov: note:")


def test_note_when_refused(capsys, mock):
    mock.push({"refusal": "I cannot help with that."})
    code, out, err = run(capsys, "chat", "-m", "mock/echo", "x")
    assert code == 0 and out == "" and "modelprov: note: the model refused: I cannot help with that." in err


def test_note_when_a_fallback_answered(capsys, mock):
    code, out, err = run(capsys, "chat", "-m", "openai/gpt-5.4-mini", "--fallback", "mock/echo", "hello")
    assert code == 0 and out == "hello\n"
    assert "openai/gpt-5.4-mini failed (no API key for openai" in err and "the answer came from the fallback mock/echo" in err
    assert "Error" not in err  # the failure in words, not a Python class name
    code, out, _ = run(capsys, "chat", "-m", "openai/gpt-5.4-mini", "--fallback", "mock/echo", "--json", "hello")
    assert json.loads(out)["fallback"] is True


def test_reasoning_hidden_unless_asked(capsys, mock, monkeypatch):
    mock.push({"text": "42", "reasoning": "six times seven"})
    assert run(capsys, "chat", "-m", "mock/echo", "q") == (0, "42\n", "")
    mock.push({"text": "42", "reasoning": "six times seven"})
    code, out, err = run(capsys, "chat", "-m", "mock/echo", "--reasoning", "q")
    assert (code, out) == (0, "42\n") and "six times seven" in err and "\033[" not in err
    import modelprov.cli.chat as chat

    monkeypatch.setattr(chat, "err_is_terminal", lambda: True)
    mock.push({"text": "42", "reasoning": "six times seven"})
    err = run(capsys, "chat", "-m", "mock/echo", "--reasoning", "q")[2]
    assert err.startswith("\033[2msix times seven\033[0m")
    mock.push({"text": "42", "reasoning": "six times seven"})
    code, out, err = run(capsys, "chat", "-m", "mock/echo", "--reasoning", "--no-stream", "q")
    assert out == "42\n" and "six times seven" in err


# --------------------------------------------------------------- exit codes
def test_exit_codes(capsys, mock, logs_db):
    from modelprov import AuthenticationError

    mock.push(AuthenticationError("invalid key"))
    code, out, err = run(capsys, "chat", "-m", "mock/echo", "x")
    assert code == 1 and out == "" and "invalid key" in err
    assert "AuthenticationError" in logs_db.entries(n=1)[0].error
    assert run(capsys, "chat", "-m", "nosuch/model", "x")[0] == 2
    assert run(capsys, "chat", "-m", "openai/gpt-5.4-mini", "x")[0] == 2  # no key configured


def test_ctrl_c_mid_stream_exits_130_on_a_fresh_line(capsys, monkeypatch, logs_db):
    from modelprov.types import StreamChunk

    def chunks(self, req, response):
        yield StreamChunk(text="partial ", model=response.model, provider="mock")
        raise KeyboardInterrupt

    monkeypatch.setattr(MockProvider, "local_chunks", chunks)
    code, out, err = run(capsys, "chat", "-m", "mock/echo", "Hello there")
    assert (code, out, err) == (130, "partial \n", "modelprov: interrupted\n")
    [entry] = logs_db.entries()
    assert entry.response == "partial " and entry.error.startswith("interrupted")


def test_ctrl_c_during_a_fakeserver_stream(capsys, monkeypatch):
    import modelprov.cli.chat as chat
    from modelprov.testing import FakeServer

    real_out = chat.out

    def out(text="", end="\n"):
        real_out(text, end)
        if end == "":
            raise KeyboardInterrupt  # the user presses Ctrl-C once the first words are on screen

    monkeypatch.setattr(chat, "out", out)
    with FakeServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
        server.add_chat("openai", "slow answer never ends", stall_after=2)
        code, out_text, err = run(capsys, "chat", "-m", "openai/gpt-5.4-mini", "-o", "timeout", "10", "go")
    assert (code, out_text, err) == (130, "slow\n", "modelprov: interrupted\n")


# ------------------------------------------------------------------ logging
def test_no_log_logs_off_and_env(capsys, monkeypatch, logs_db):
    run(capsys, "chat", "-m", "mock/echo", "--no-log", "a")
    assert logs_db.entries() == []
    run(capsys, "logs", "off")
    run(capsys, "chat", "-m", "mock/echo", "b")
    assert logs_db.entries() == []
    monkeypatch.setenv("MODELPROV_LOGS", "on")
    run(capsys, "chat", "-m", "mock/echo", "c")
    monkeypatch.delenv("MODELPROV_LOGS")
    run(capsys, "logs", "on")
    run(capsys, "chat", "-m", "mock/echo", "d")
    assert [e.prompt for e in logs_db.entries(n=0)] == ["d", "c"]


def test_a_failing_log_is_a_warning_not_an_error(capsys, monkeypatch, tmp_path):
    (tmp_path / "bad.db").write_bytes(b"not a database" * 200)
    monkeypatch.setenv("MODELPROV_LOGS_PATH", str(tmp_path / "bad.db"))
    code, out, err = run(capsys, "chat", "-m", "mock/echo", "still answers")
    assert code == 0 and out == "still answers\n"
    assert err.startswith("modelprov: warning: cannot use the conversation log") and err.count("\n") == 1


def test_the_log_never_holds_a_key(capsys, monkeypatch, logs_db):
    from modelprov.testing import FakeServer

    sentinel = "sk-proj-SENTINEL0123456789abcdef"
    with FakeServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", sentinel)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
        server.add_chat("openai", "fine")
        server.add_error(401, protocol="openai", message=f"Incorrect API key provided: {sentinel}")
        assert run(capsys, "chat", "-m", "openai/gpt-5.4-mini", "a")[0] == 0
        code, out, err = run(capsys, "chat", "-m", "openai/gpt-5.4-mini", "-c", "b")
    assert code == 1 and sentinel not in out + err
    assert len(logs_db.entries()) == 2 and sentinel.encode() not in open(logs_db.path, "rb").read()
