"""``modelprov logs``: listing newest first, -n, -q, --cid, -c, --json, and the path/status/on/off actions."""

import io
import json
import sys

import pytest

from modelprov.cli.main import main
from modelprov.conversation_log import ConversationLog


@pytest.fixture(autouse=True)
def logs_db(monkeypatch, tmp_path):
    monkeypatch.setenv("MODELPROV_LOGS_PATH", str(tmp_path / "logs.db"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return ConversationLog(tmp_path / "logs.db")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _chats(capsys, *prompts, extra=()):
    for prompt in prompts:
        assert run(capsys, "chat", "-m", "mock/echo", *extra, prompt)[0] == 0


def test_empty_log(capsys, logs_db):
    code, out, err = run(capsys, "logs")
    assert code == 0 and out == "" and "no chats are logged yet" in err and logs_db.path in err
    assert run(capsys, "logs", "--json")[1] == "[]\n"
    assert run(capsys, "logs", "-c", "--json")[1] == "[]\n"
    assert not logs_db.exists()  # reading never creates the file


def test_list_newest_first_default_three(capsys):
    _chats(capsys, "first", "second", "third", "fourth")
    code, out, _ = run(capsys, "logs")
    assert code == 0 and out.count("## Prompt") == 3
    assert out.index("fourth") < out.index("third") < out.index("second") and "first" not in out
    assert "mock/echo" in out and "## Answer (stop · 1 in / 1 out tokens" in out
    assert run(capsys, "logs", "-n", "0")[1].count("## Prompt") == 4
    assert run(capsys, "logs", "-n", "1")[1].count("## Prompt") == 1
    code, _, err = run(capsys, "logs", "-n", "-1")
    assert code == 2 and "-n must be 0" in err


def test_query_cid_current_and_json(capsys, logs_db):
    _chats(capsys, "about the invoice", "weather today")
    cid_a = logs_db.latest_cid()
    _chats(capsys, "more INVOICE questions", extra=("-c",))
    _chats(capsys, "unrelated")
    data = json.loads(run(capsys, "logs", "--json", "-n", "0", "-q", "invoice")[1])
    assert [e["prompt"] for e in data] == ["more INVOICE questions", "about the invoice"]
    data = json.loads(run(capsys, "logs", "--json", "--cid", cid_a)[1])
    assert [e["prompt"] for e in data] == ["more INVOICE questions", "weather today"]
    assert set(data[0]) >= {
        "conversation_id",
        "created_at",
        "model",
        "provider",
        "messages",
        "response",
        "reasoning",
        "usage",
        "finish_reason",
        "latency_s",
        "error",
        "response_message",
        "cost",
    }
    assert data[0]["messages"] == [{"role": "user", "content": "more INVOICE questions"}]
    current = json.loads(run(capsys, "logs", "--json", "-c")[1])
    assert [e["prompt"] for e in current] == ["unrelated"]
    code, _, err = run(capsys, "logs", "--cid", "nosuchconversation")
    assert code == 2 and "no conversation" in err


def test_text_shows_system_reasoning_images_and_errors(capsys, monkeypatch, tmp_path):
    from modelprov import AuthenticationError
    from modelprov.providers.mock import MockProvider

    replies = [{"text": "ok", "reasoning": "thinking it over"}, AuthenticationError("bad key")]
    original = MockProvider.__init__

    def init(self, config=None):
        original(self, config)
        self.push(replies.pop(0))

    monkeypatch.setattr(MockProvider, "__init__", init)
    run(capsys, "chat", "-m", "mock/echo", "-s", "Be nice", "-a", "https://example.com/x.png", "look")
    assert run(capsys, "chat", "-m", "mock/echo", "fails")[0] == 1
    out = run(capsys, "logs", "-n", "2")[1]
    assert "## System\n\nBe nice" in out and "## Reasoning\n\nthinking it over" in out
    assert "(image: https://example.com/x.png)" in out and "## Error\n\nAuthenticationError: " in out


def test_path_status_on_off(capsys, logs_db, monkeypatch):
    assert run(capsys, "logs", "path") == (0, logs_db.path + "\n", "")
    out = run(capsys, "logs", "status")[1]
    assert "logging: on" in out and "entries: 0" in out
    _chats(capsys, "x")
    assert "entries: 1 in 1 conversations" in run(capsys, "logs", "status")[1]
    assert run(capsys, "logs", "off")[1] == "logging is off (the log file is kept)\n"
    assert "logging: off" in run(capsys, "logs", "status")[1]
    _chats(capsys, "not logged")
    assert len(logs_db.entries(n=0)) == 1
    assert run(capsys, "logs", "on")[1].startswith("logging is on: chats are written to ")
    monkeypatch.setenv("MODELPROV_LOGS", "off")
    code, out, err = run(capsys, "logs", "on")
    assert code == 0 and "MODELPROV_LOGS=off in the environment overrides this" in err
    assert "(MODELPROV_LOGS=off)" in run(capsys, "logs", "status")[1]


def test_help_and_unknown_action(capsys):
    code, out, _ = run(capsys, "logs", "--help")
    assert code == 0 and "-n N" in out and "path" in out and "status" in out
    assert run(capsys, "logs", "frobnicate")[0] == 2


def test_a_usage_error_is_not_a_turn_and_c_continues_the_real_conversation(capsys, logs_db):
    _chats(capsys, "first")
    code, _, err = run(capsys, "chat", "-m", "mock/echo", "-o", "temperature", "9", "bad option")
    assert code == 2 and "temperature" in err
    entries = json.loads(run(capsys, "logs", "-n", "0", "--json")[1])
    assert len(entries) == 1  # only the chat that ran
    code, out, _ = run(capsys, "chat", "-c", "--json", "again")
    assert code == 0 and json.loads(out)["conversation_id"] == entries[0]["conversation_id"]
