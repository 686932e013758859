"""``chat -c`` / ``--cid``: the full history (reasoning signatures included) is sent; plus the console script in a subprocess."""

import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from modelprov.cli.main import main
from modelprov.conversation_log import ConversationLog
from modelprov.testing import FakeServer


@pytest.fixture(autouse=True)
def logs_db(monkeypatch, tmp_path):
    monkeypatch.setenv("MODELPROV_LOGS_PATH", str(tmp_path / "logs.db"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return ConversationLog(tmp_path / "logs.db")


@pytest.fixture
def anthropic(monkeypatch):
    with FakeServer() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url("anthropic"))
        yield server


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_continue_sends_the_history_with_the_signed_thinking_block(capsys, anthropic, logs_db):
    anthropic.add_chat("anthropic", "Four.", reasoning="2 plus 2 is 4", signature="sig-XYZ")
    assert run(capsys, "chat", "-m", "anthropic/claude-haiku-4-5", "-s", "Be terse", "What is 2+2?")[:2] == (0, "Four.\n")
    anthropic.add_chat("anthropic", "Eight.")
    assert run(capsys, "chat", "-c", "Double it")[:2] == (0, "Eight.\n")  # the model and system prompt of the conversation
    body = anthropic.last_request.json
    assert body["model"] == "claude-haiku-4-5" and body["system"] in ("Be terse", [{"type": "text", "text": "Be terse"}])
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "2 plus 2 is 4", "signature": "sig-XYZ"}
    assert body["messages"][1]["content"][1] == {"type": "text", "text": "Four."}
    assert body["messages"][2]["content"] in ("Double it", [{"type": "text", "text": "Double it"}])
    first, second = logs_db.entries(n=0)[::-1]
    assert first.conversation_id == second.conversation_id and second.system == "Be terse"
    assert first.response_message["content"][0]["signature"] == "sig-XYZ"


def test_cid_picks_a_conversation_and_m_overrides_its_model(capsys, anthropic, logs_db):
    anthropic.add_chat("anthropic", "A1")
    run(capsys, "chat", "-m", "anthropic/claude-haiku-4-5", "first conversation")
    cid = logs_db.latest_cid()
    run(capsys, "chat", "-m", "mock/echo", "second conversation")
    code, out, _ = run(capsys, "chat", "--cid", cid[:10], "-m", "mock/echo", "back to the first")
    assert code == 0 and out == "back to the first\n"
    assert [e.prompt for e in logs_db.entries(n=0, cid=cid)] == ["back to the first", "first conversation"]
    assert run(capsys, "chat", "--cid", cid, "still mock")[1] == "still mock\n"  # the model of the conversation's last turn
    anthropic.add_chat("anthropic", "A2")
    assert run(capsys, "chat", "--cid", cid, "-m", "anthropic/claude-haiku-4-5", "and again")[1] == "A2\n"
    sent = anthropic.last_request.json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant"] * 3 + ["user"]
    assert sent[-1]["content"] in ("and again", [{"type": "text", "text": "and again"}])


def test_unknown_cid_and_nothing_to_continue_exit_2(capsys):
    code, out, err = run(capsys, "chat", "-c", "hello")
    assert code == 2 and out == "" and "there is no conversation to continue" in err
    run(capsys, "chat", "-m", "mock/echo", "x")
    code, _, err = run(capsys, "chat", "--cid", "nosuchconversation", "hello")
    assert code == 2 and "no conversation 'nosuchconversation'" in err and "modelprov logs" in err
    assert run(capsys, "chat", "-c", "--cid", "x", "hello")[0] == 2  # one or the other


def test_failed_turns_are_not_resent(capsys, logs_db, monkeypatch):
    from modelprov import AuthenticationError
    from modelprov.providers.mock import MockProvider

    seen = []
    original = MockProvider.local_chat

    def local_chat(self, req, attempt):
        seen.append([m.text for m in req.messages])
        if req.messages[-1].text == "fail":
            raise AuthenticationError("no")
        return original(self, req, attempt)

    monkeypatch.setattr(MockProvider, "local_chat", local_chat)
    run(capsys, "chat", "-m", "mock/echo", "--no-stream", "one")
    assert run(capsys, "chat", "-c", "--no-stream", "fail")[0] == 1
    run(capsys, "chat", "-c", "--no-stream", "two")
    assert seen[-1] == ["one", "one", "two"]


# ------------------------------------------------------------ console script
def _env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELPROV_", "OPENAI_", "ANTHROPIC_"))}
    env.update(MODELPROV_CONFIG=str(tmp_path / "config.ini"), MODELPROV_LOGS_PATH=str(tmp_path / "sub.db"), PYTHONIOENCODING="utf-8")
    return env


def _commands():
    cmds = [[sys.executable, "-m", "modelprov"]]
    script = shutil.which("modelprov") or shutil.which("modelprov", path=os.path.dirname(sys.executable))
    if script:
        cmds.append([script])
    return cmds


@pytest.mark.parametrize("command", _commands(), ids=lambda c: os.path.basename(c[-1]))
def test_console_script_chat_joins_stdin_logs_and_continues(tmp_path, command):
    env = _env(tmp_path)
    first = subprocess.run(command + ["chat", "-m", "mock/echo", "Summarize:"], input="piped text\n", capture_output=True,
                           text=True, timeout=60, env=env)  # fmt: skip
    assert (first.returncode, first.stdout, first.stderr) == (0, "piped text\n Summarize:\n", "")
    again = subprocess.run(command + ["-c", "--json", "more"], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert again.returncode == 0 and json.loads(again.stdout)["text"] == "more"
    listed = subprocess.run(command + ["logs", "--json", "-n", "0"], capture_output=True, text=True, timeout=60, env=env)
    entries = json.loads(listed.stdout)
    assert [e["prompt"] for e in entries] == ["more", "piped text\n Summarize:"] and entries[0]["conversation_id"] == entries[1]["conversation_id"]
    bad = subprocess.run(command + ["chat", "-m", "mock/echo", "  "], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and bad.stderr.startswith("modelprov: error: the prompt is empty") and "Traceback" not in bad.stderr
