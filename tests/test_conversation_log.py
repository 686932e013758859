"""ConversationLog: records, history rebuilt with reasoning signatures, queries, on/off, paths, migrations, concurrency."""

import os
import sqlite3
import stat
import sys
import threading

import pytest

from modelprov import ConfigurationError, ValidationError
from modelprov.conversation_log import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ConversationLog,
    default_logs_path,
    new_conversation_id,
)
from modelprov.messages import Message
from modelprov.types import ModelResponse, ReasoningPart, Usage

SENTINEL = "sk-proj-SENTINEL0123456789abcdef"


@pytest.fixture
def log(tmp_path):
    return ConversationLog(tmp_path / "sub" / "logs.db")


def _answer(text, reasoning=None, signature=None, **kw):
    content = [ReasoningPart(text=reasoning, signature=signature, provider="anthropic")] if reasoning else []
    return ModelResponse(
        text=text,
        content=content,
        finish_reason="stop",
        model="claude-haiku-4-5",
        provider="anthropic",
        usage=Usage(input_tokens=3, output_tokens=5, cost=0.0012),
        latency_s=0.25,
        request_id="req_1",
        **kw,
    )


def test_nothing_is_written_until_asked(log):
    assert log.entries() == [] and log.latest_cid() is None and log.stats() == {"responses": 0, "conversations": 0}
    assert not log.exists() and log.schema_version() == 0


def test_record_and_rebuild_a_conversation_with_reasoning_signatures(log):
    cid = log.record(
        model="anthropic/claude-haiku-4-5",
        messages=["What is 2+2?"],
        response=_answer("4", "add them", "sig-abc"),
        system="Be brief",
        options={"temperature": 0.2},
    )
    assert len(cid) == 26 and log.latest_cid() == cid
    log.record(model="anthropic/claude-haiku-4-5", messages=["And 3+3?"], response=_answer("6"), conversation_id=cid)
    history = log.conversation(cid)
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[1].reasoning_parts == [ReasoningPart(text="add them", signature="sig-abc", provider="anthropic")]
    assert history[1].text == "4" and history[2].text == "And 3+3?"
    newest, first = log.entries()
    assert newest.prompt == "And 3+3?" and first.prompt == "What is 2+2?"
    assert first.system == "Be brief" and first.options == {"temperature": 0.2} and first.reasoning == "add them"
    assert first.usage["cost"] == 0.0012 and first.cost == 0.0012 and first.latency_s == 0.25
    assert first.finish_reason == "stop" and first.request_id == "req_1" and first.error is None
    assert (first.model, first.provider, first.response_model) == ("anthropic/claude-haiku-4-5", "anthropic", "claude-haiku-4-5")
    assert first.created_at.endswith("Z") and first.to_dict()["conversation_id"] == cid


def test_failed_turns_are_logged_redacted_and_left_out_of_the_history(log):
    cid = log.record(model="mock/echo", messages=["hi"], response=_answer("hello"))
    log.record(model="mock/echo", messages=["boom?"], conversation_id=cid, error=RuntimeError(f"bad key {SENTINEL}"), text="partial")
    entry = log.entries(n=1)[0]
    assert entry.error.startswith("RuntimeError: bad key") and SENTINEL not in entry.error and entry.response == "partial"
    assert [m.text for m in log.conversation(cid)] == ["hi", "hello"]
    with open(log.path, "rb") as fh:
        assert SENTINEL.encode() not in fh.read()


def test_entries_query_count_and_cid(log):
    a = log.record(model="mock/echo", messages=["alpha invoice"], response=_answer("one"))
    b = log.record(model="mock/echo", messages=["beta"], response=_answer("INVOICE two"))
    log.record(model="mock/echo", messages=["gamma"], response=_answer("three"), conversation_id=a)
    assert [e.prompt for e in log.entries(n=0)] == ["gamma", "beta", "alpha invoice"]
    assert [e.prompt for e in log.entries(n=None, query="Invoice")] == ["beta", "alpha invoice"]
    assert [e.prompt for e in log.entries(n=1)] == ["gamma"]
    assert [e.prompt for e in log.entries(n=5, cid=a)] == ["gamma", "alpha invoice"]
    assert log.resolve_cid(b[:10]) == b and log.resolve_cid(b) == b
    with pytest.raises(ValidationError, match="no conversation 'nosuch'"):
        log.conversation("nosuch")
    with pytest.raises(ValidationError, match="non-negative"):
        log.entries(n=-1)


def test_ambiguous_prefix_is_refused(log):
    for cid in ("abcdef111", "abcdef222"):
        log.record(model="mock/echo", messages=["x"], response=_answer("y"), conversation_id=cid)
    with pytest.raises(ValidationError, match="ambiguous"):
        log.resolve_cid("abcdef")
    assert log.resolve_cid("abcdef1") == "abcdef111"


def test_messages_with_images_round_trip(log, tmp_path):
    from modelprov.parts import ImagePart, TextPart

    user = Message(role="user", content=[TextPart(text="look"), ImagePart(url="https://example.com/a.png")])
    cid = log.record(model="mock/echo", messages=[user], response=_answer("a cat"))
    assert log.conversation(cid)[0] == user


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX permissions")
def test_file_is_private(log):
    log.record(model="mock/echo", messages=["x"], response=_answer("y"))
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600


def test_on_off_marker_and_environment(log):
    assert log.enabled(environ={})
    log.set_enabled(False)
    assert os.path.exists(log.off_marker) and not log.enabled(environ={})
    assert log.enabled(environ={"MODELPROV_LOGS": "on"})
    log.set_enabled(True)
    assert log.enabled(environ={}) and not log.enabled(environ={"MODELPROV_LOGS": "off"})
    log.set_enabled(True)  # twice is fine


def test_default_paths():
    assert default_logs_path({"MODELPROV_LOGS_PATH": "~/x.db", "HOME": "/h"}) == os.path.expanduser("~/x.db")
    assert default_logs_path({"HOME": "/h"}, "linux") == "/h/.local/share/modelprov/logs.db"
    assert default_logs_path({"HOME": "/h", "XDG_DATA_HOME": "/d"}, "linux") == "/d/modelprov/logs.db"
    assert default_logs_path({"HOME": "/h", "XDG_DATA_HOME": "rel"}, "linux") == "/h/.local/share/modelprov/logs.db"
    assert default_logs_path({"HOME": "/Users/u"}, "darwin") == "/Users/u/Library/Application Support/modelprov/logs.db"
    assert default_logs_path({"LOCALAPPDATA": r"C:\Users\u\AppData\Local"}, "win32") == r"C:\Users\u\AppData\Local\modelprov\logs.db"


def test_conversation_ids_are_unique_and_sort_by_time():
    ids = [new_conversation_id() for _ in range(200)]
    assert len(set(ids)) == 200 and all(len(i) == 26 and i.isalnum() for i in ids)
    assert ids[0][:8] <= ids[-1][:8]


def _old_file(path, version):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
    for n in range(version):
        for statement in MIGRATIONS[n]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, '2026-01-01T00:00:00Z')", (n + 1,))
    conn.commit()
    return conn


def test_a_file_from_the_first_release_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = _old_file(path, 1)
    conn.execute("INSERT INTO conversations VALUES ('c1', 'hi', 'mock/echo', '2026-01-01T00:00:00Z')")
    conn.execute(
        "INSERT INTO responses (conversation_id, created_at, model, prompt, messages, response, response_message) VALUES "
        "('c1', '2026-01-01T00:00:00Z', 'mock/echo', 'hi', '[{\"role\": \"user\", \"content\": \"hi\"}]', 'hello', "
        '\'{"role": "assistant", "content": "hello"}\')'
    )
    conn.commit()
    conn.close()
    log = ConversationLog(path)
    assert SCHEMA_VERSION >= 2 and log.schema_version() == SCHEMA_VERSION
    assert [m.text for m in log.conversation("c1")] == ["hi", "hello"]
    log.record(model="mock/echo", messages=["again"], response=_answer("yes"), conversation_id="c1", options={"seed": 1})
    assert log.entries(n=1)[0].options == {"seed": 1}
    versions = sqlite3.connect(path).execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))


def test_a_file_from_a_newer_release_is_refused(tmp_path):
    path = tmp_path / "new.db"
    conn = _old_file(path, SCHEMA_VERSION)
    conn.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(ConfigurationError, match="newer modelprov"):
        ConversationLog(path).entries()


def test_not_a_database_is_a_configuration_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigurationError, match="cannot use the conversation log") as info:
        ConversationLog(path).record(model="mock/echo", messages=["x"], response=_answer("y"))
    assert "MODELPROV_LOGS_PATH" in info.value.hint


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "logs.db"
    errors = []

    def write(n):
        try:
            log = ConversationLog(path)  # one instance per writer, as two processes would be
            for i in range(10):
                log.record(model="mock/echo", messages=[f"w{n}-{i}"], response=_answer("ok"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and ConversationLog(path).stats() == {"responses": 40, "conversations": 40}


def test_bad_arguments():
    with pytest.raises(ValidationError):
        ConversationLog("")
    with pytest.raises(ValidationError):
        ConversationLog("x.db").resolve_cid("  ")
