"""``modelprov batch`` as a real process: SIGINT keeps the finished lines and exits 130 at once."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from modelprov.testing import FakeServer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX-only")


def _console_script():
    here = os.path.join(os.path.dirname(sys.executable), "modelprov")
    return here if os.path.exists(here) else shutil.which("modelprov")


def _command(kind):
    if kind == "python -m":
        return [sys.executable, "-m", "modelprov"]
    script = _console_script()
    if script is None:
        pytest.skip("the modelprov console script is not installed")
    return [script]


@pytest.mark.parametrize("kind", ["console script", "python -m"])
def test_sigint_keeps_finished_lines_and_exits_130_promptly(tmp_path, kind):
    command = _command(kind)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(f'{{"id": "q{i}", "prompt": "question {i}"}}\n' for i in range(1, 5)))
    out_path = tmp_path / "out.jsonl"
    with FakeServer() as srv:
        srv.add_chat("openai", "answer 1")
        srv.add_chat("openai", "answer 2")
        srv.add_chat("openai", "answer 3", delay=60)  # in flight when Ctrl-C comes: must not hold up the exit
        env = dict(os.environ, OPENAI_API_KEY="sk-test-sigint-0123456789", MODELPROV_OPENAI_BASE_URL=srv.base_url("openai"),
                   MODELPROV_LOGS_PATH=str(tmp_path / "logs.db"), PYTHONUNBUFFERED="1")  # fmt: skip
        proc = subprocess.Popen(command + ["batch", "-m", "openai/gpt-5.4-mini", "-c", "1", str(src), "-o", str(out_path)],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert srv.wait_for_requests(3, timeout=30), srv  # the third request is waiting on its 60-s reply
            for _ in range(500):  # bounded: both finished lines are flushed before the third request is sent
                if out_path.exists() and out_path.read_text().count("\n") >= 2:
                    break
                threading.Event().wait(0.01)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=15)  # far less than the 60-s reply: the in-flight call is abandoned
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, err
    assert out == "" and "Traceback" not in err
    lines = [json.loads(x) for x in out_path.read_text().splitlines()]
    assert [(r["id"], r["text"]) for r in lines] == [("q1", "answer 1"), ("q2", "answer 2")]
    assert "modelprov: batch: 2 done, 0 failed, 2 not finished" in err
    assert err.rstrip().endswith("modelprov: interrupted")
