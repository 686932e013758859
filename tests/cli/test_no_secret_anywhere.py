"""Every command, with a sentinel key configured: the key never reaches stdout, stderr or the conversation log.

The only command allowed to print it is ``keys get --show``. Each command also
runs with ``--debug`` (tracebacks and debug logs), where a leak is likeliest.
The server echoes the key back in an error message, as real providers do.
"""

import io
import json
import sys

import pytest

from modelprov.cli.main import main
from modelprov.conversation_log import ConversationLog
from modelprov.testing import FakeServer

SENTINEL = "sk-proj-SENTINELkey0123456789abcdefXYZ"


@pytest.fixture
def setup(monkeypatch, tmp_path):
    """A FakeServer as provider ``openai`` (key in the config file), a log file and an input file; yields the server."""
    logs = tmp_path / "logs.db"
    monkeypatch.setenv("MODELPROV_LOGS_PATH", str(logs))
    with FakeServer() as server:
        cfg = tmp_path / "modelprov-config.ini"
        cfg.write_text(f"[modelprov]\ndefault_model = openai/gpt-5.4-mini\n"
                       f"[provider:openai]\napi_key = {SENTINEL}\nbase_url = {server.base_url('openai')}\n")  # fmt: skip
        cfg.chmod(0o600)
        (tmp_path / "in.jsonl").write_text('"one"\n{"id": "b", "prompt": "two"}\n')
        yield server, tmp_path


def _commands(server, tmp_path):
    """``(argv, queue replies)`` for every command; each reply is queued just before its command runs."""
    leak = f"Incorrect API key provided: {SENTINEL}"
    return [
        (["chat", "hi"], lambda: server.add_chat("openai", "fine")),
        (["chat", "--no-stream", "--json", "-c", "again"], lambda: server.add_chat("openai", "fine again")),
        (["chat", "-c", "fails"], lambda: server.add_error(401, protocol="openai", message=leak)),
        (["chat", "--no-stream", "fails"], lambda: server.add_error(400, protocol="openai", message=leak)),
        (["hi there"], lambda: server.add_chat("openai", "shortcut")),
        (["logs"], None), (["logs", "-n", "0", "--json"], None), (["logs", "status"], None), (["logs", "path"], None),
        (["models"], lambda: server.add_models("openai", ["gpt-a"])),
        (["models", "openai", "--json"], lambda: server.add_error(401, protocol="openai", message=leak)),
        (["providers"], None), (["providers", "--json"], None),
        (["embed", "-m", "openai/text-embedding-3-small", "hello"], lambda: server.add_embeddings("openai", [[0.1, 0.2]])),
        (["embed", "-m", "openai/text-embedding-3-small", "--json", "x"], lambda: server.add_error(401, protocol="openai", message=leak)),
        (["keys", "get", "openai"], None), (["keys", "list"], None), (["keys", "path"], None),
        (["config", "show"], None), (["config", "show", "openai"], None), (["config", "get", "provider.openai.api_key"], None),
        (["config", "path"], None),
        (["doctor"], lambda: server.add_models("openai", ["gpt-a"])),
        (["doctor", "openai", "--json"], lambda: server.add_error(401, protocol="openai", message=leak)),
        (["batch", str(tmp_path / "in.jsonl"), "-c", "1"], lambda: (server.add_chat("openai", "1"), server.add_error(401, protocol="openai", message=leak))),
        (["batch", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl")], lambda: (server.add_chat("openai", "1"), server.add_chat("openai", "2"))),
    ]


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_the_key_never_leaves(capsys, monkeypatch, setup, debug):
    server, tmp_path = setup
    seen = ""
    for argv, queue in _commands(server, tmp_path):
        if queue is not None:
            queue()
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code = main(argv + (["--debug"] if debug else []))
        out, err = capsys.readouterr()
        assert SENTINEL not in out + err, argv
        assert SENTINEL[8:-4] not in out + err, argv  # not even in part (a mask keeps at most a few characters)
        assert code in (0, 1, 2), argv
        seen += out + err
        if not debug:
            assert "Traceback" not in err, argv
    assert seen.count("Incorrect API key provided") >= 4  # the echoed message got through, the key in it did not
    assert server.pending == 0  # every queued reply was asked for: each command really ran against the server
    log = ConversationLog()
    assert len(log.entries(n=0)) == 5 and SENTINEL.encode() not in open(log.path, "rb").read()
    assert SENTINEL not in (tmp_path / "out.jsonl").read_text()
    assert server.last_request.headers.get("Authorization") == "Bearer " + SENTINEL  # the key was in use throughout


def test_keys_get_show_is_the_one_exception(capsys, setup):
    assert main(["keys", "get", "openai", "--show"]) == 0
    assert capsys.readouterr().out == SENTINEL + "\n"
    assert SENTINEL not in json.dumps(ConversationLog().entries(n=0))
