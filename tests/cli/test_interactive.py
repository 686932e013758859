"""The interactive session: history, /reset, /exit, Ctrl-D, Ctrl-C during an answer and at the prompt; and under a real pty."""

import builtins
import os
import sys

import pytest

from modelprov.cli.main import main
from modelprov.conversation_log import ConversationLog
from modelprov.providers.mock import MockProvider


class _Terminal:
    def isatty(self):
        return True

    def read(self, *a):  # pragma: no cover - the session reads with input(), never read()
        raise AssertionError("read a terminal")


@pytest.fixture(autouse=True)
def logs_db(monkeypatch, tmp_path):
    monkeypatch.setenv("MODELPROV_LOGS_PATH", str(tmp_path / "logs.db"))
    monkeypatch.setattr(sys, "stdin", _Terminal())
    return ConversationLog(tmp_path / "logs.db")


@pytest.fixture
def typed(monkeypatch):
    """``typed(*lines)``: what the user types; a BaseException instance is raised instead (Ctrl-C); then Ctrl-D."""
    markers = []

    def feed(*lines):
        queue = list(lines)

        def fake_input(marker=""):
            markers.append(marker)
            if not queue:
                raise EOFError
            item = queue.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item

        monkeypatch.setattr(builtins, "input", fake_input)
        return markers

    return feed


@pytest.fixture
def sent(monkeypatch):
    """The texts of the messages of every request the mock received."""
    seen = []
    original = MockProvider.local_chat

    def local_chat(self, req, attempt):
        seen.append([m.text for m in req.messages])
        return original(self, req, attempt)

    monkeypatch.setattr(MockProvider, "local_chat", local_chat)
    return seen


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_reset_and_exit(capsys, typed, sent, logs_db):
    markers = typed("one", "", "  ", "two", "/reset", "three", "/exit", "never sent")
    code, out, err = run(capsys, "chat", "-m", "mock/echo")
    assert code == 0 and out == "one\ntwo\nthree\n"
    assert sent == [["one"], ["one", "one", "two"], ["three"]]
    assert "chatting with mock/echo" in err and "new conversation" in err
    assert set(markers) == {""}  # stdout is not a terminal here: no marker in the transcript
    entries = logs_db.entries(n=0)
    assert [e.prompt for e in entries] == ["three", "two", "one"]
    assert entries[1].conversation_id == entries[2].conversation_id != entries[0].conversation_id


def test_ctrl_d_ends_and_help_lists_commands(capsys, typed):
    typed("/help")
    code, out, err = run(capsys, "chat", "-m", "mock/echo")
    assert code == 0 and out == "" and "/exit" in err and "/reset" in err


def test_ctrl_c_stops_an_answer_and_the_session_goes_on(capsys, typed, sent, monkeypatch, logs_db):
    from modelprov.types import StreamChunk

    original = MockProvider.local_chunks

    def chunks(self, req, response):
        if response.text == "stop me please":
            yield StreamChunk(text="stop ", model=response.model, provider="mock")
            raise KeyboardInterrupt
        yield from original(self, req, response)

    monkeypatch.setattr(MockProvider, "local_chunks", chunks)
    typed("first", "stop me please", "third", "/quit")
    code, out, err = run(capsys, "chat", "-m", "mock/echo")
    assert code == 0 and out == "first\nstop \nthird\n"
    assert "answer stopped" in err
    assert sent[-1] == ["first", "first", "third"]  # the stopped turn is not in the history
    assert [e.error is not None for e in logs_db.entries(n=0)] == [False, True, False]


def test_ctrl_c_at_the_prompt_gives_a_fresh_line(capsys, typed):
    typed(KeyboardInterrupt(), "after", "/exit")
    code, out, _ = run(capsys, "chat", "-m", "mock/echo")
    assert code == 0 and out == "\nafter\n"


def test_a_failed_turn_is_reported_and_the_session_goes_on(capsys, typed, monkeypatch):
    from modelprov import AuthenticationError

    original = MockProvider.local_chat

    def local_chat(self, req, attempt):
        if req.messages[-1].text == "bad":
            raise AuthenticationError("invalid key", provider="mock")
        return original(self, req, attempt)

    monkeypatch.setattr(MockProvider, "local_chat", local_chat)
    typed("bad", "good")
    code, out, err = run(capsys, "chat", "-m", "mock/echo")
    assert code == 0 and out == "good\n" and "modelprov: error: [mock] invalid key" in err


def test_continue_into_an_interactive_session(capsys, typed, sent, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    run(capsys, "chat", "-m", "mock/echo", "earlier")
    monkeypatch.setattr(sys, "stdin", _Terminal())
    typed("later")
    code, out, err = run(capsys, "chat", "-c")
    assert code == 0 and out == "later\n" and "1 earlier turns" in err
    assert sent[-1] == ["earlier", "earlier", "later"]


# ------------------------------------------------------------------ real pty
class _Screen:
    """What the child wrote to the pty; :meth:`wait` reads until a text appears after the previous match (bounded)."""

    def __init__(self, fd):
        self.fd, self.text, self.pos = fd, "", 0

    def wait(self, wanted, timeout=20.0):
        import select
        import time

        end = time.monotonic() + timeout
        while wanted not in self.text[self.pos :]:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{wanted!r} not seen in {self.text!r}")
            if select.select([self.fd], [], [], left)[0]:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    data = b""
                if not data:
                    raise AssertionError(f"{wanted!r} not seen before the end: {self.text!r}")
                self.text += data.decode("utf-8", "replace")
        self.pos = self.text.index(wanted, self.pos) + len(wanted)


def _controlling_terminal():  # pragma: no cover - runs in the child
    """In the child: a new session whose controlling terminal is the pty (so Ctrl-C and Ctrl-D behave as on a real one)."""
    import fcntl
    import termios

    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminal test: Linux only")
def test_session_under_a_pseudo_terminal(tmp_path):
    import pty
    import subprocess

    from modelprov.testing import FakeServer

    with FakeServer() as server:
        server.add_chat("openai", "Hello from the server")
        server.add_chat("openai", "this answer stalls here", stall_after=2)
        server.add_chat("openai", "Still here")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELPROV_", "OPENAI_"))}
        env.update(MODELPROV_CONFIG=str(tmp_path / "c.ini"), MODELPROV_LOGS_PATH=str(tmp_path / "logs.db"), OPENAI_API_KEY="test-key",
                   OPENAI_BASE_URL=server.base_url("openai"), TERM="dumb", PYTHONIOENCODING="utf-8")  # fmt: skip
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "modelprov", "chat", "-m", "openai/gpt-5.4-mini"], stdin=slave, stdout=slave,
                                stderr=slave, env=env, preexec_fn=_controlling_terminal)  # fmt: skip
        os.close(slave)
        screen = _Screen(master)
        try:
            screen.wait("> ")
            os.write(master, b"hi there\r")
            screen.wait("Hello from the server")
            screen.wait("> ")
            os.write(master, b"second\r")
            screen.wait("this")
            os.write(master, b"\x03")  # Ctrl-C while the answer is stuck: the terminal sends SIGINT
            screen.wait("answer stopped")
            screen.wait("> ")
            os.write(master, b"third\r")
            screen.wait("Still here")
            screen.wait("> ")
            os.write(master, b"\x04")  # Ctrl-D
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:  # pragma: no cover - only when an assertion failed
                proc.kill()
                proc.wait(timeout=10)
            os.close(master)
        third = server.requests[-1].json["messages"]
    assert [m["content"] for m in third] == ["hi there", "Hello from the server", "third"]
    entries = ConversationLog(tmp_path / "logs.db").entries(n=0)
    assert [e.prompt for e in entries] == ["third", "second", "hi there"] and entries[1].error.startswith("interrupted")
    assert len({e.conversation_id for e in entries}) == 1
