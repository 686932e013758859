"""ChunkStream, the runner under every provider stream: retries, aborts, deadlines, error fields."""

import threading
import time

import pytest

from modelprov import ModelProvError, ProviderTimeoutError, RetryPolicy, ServerError
from modelprov.engine import bind
from modelprov.providers.openai_compat.compatible import OpenAICompatibleProvider
from modelprov.testing import FakeServer
from modelprov.types import ProviderConfig


def provider(server, retries=2, **cfg):
    config = ProviderConfig(name="local", type="openai_compatible", base_url=server.base_url("openai_compatible"), **cfg)
    return bind(OpenAICompatibleProvider(config), retry=RetryPolicy(max_retries=retries), sleep=lambda s: None)


def test_llama_cpp_error_field_is_raised():
    with FakeServer() as server:
        chunk = b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
        server.add_raw(headers={"Content-Type": "text/event-stream"}, chunks=[chunk, b'error: {"code":500,"message":"slot crashed"}\n\n'])
        with pytest.raises(ServerError, match="slot crashed"):
            list(provider(server).stream("x", model="m"))


def test_llama_cpp_error_field_without_final_blank_line():
    with FakeServer() as server:
        server.add_raw(headers={"Content-Type": "text/event-stream"}, chunks=[b'error: {"code":503,"message":"loading model"}\n'])
        with pytest.raises(ModelProvError, match="loading model"):
            list(provider(server, retries=0).stream("x", model="m"))


def test_failure_before_first_chunk_is_retried_but_not_after():
    with FakeServer() as server:
        server.add_error(500, protocol="openai_compatible")
        server.add_chat("openai_compatible", "recovered answer")
        assert "".join(c.text for c in provider(server).stream("x", model="m")) == "recovered answer"
        assert len(server.requests) == 2
        server.reset()
        server.add_chat("openai_compatible", "one two three", drop_after=3)
        server.add_chat("openai_compatible", "must not be fetched")
        got = []
        with pytest.raises(ModelProvError):
            for c in provider(server).stream("x", model="m"):
                got.append(c.text)
        assert got and len(server.requests) == 1


def test_abort_from_another_thread_unblocks_a_pending_read():
    with FakeServer() as server:
        server.add_chat("openai_compatible", "first then nothing", stall_after=2)
        stream = provider(server).stream("x", model="m")
        assert next(stream).text
        outcome = []

        def reader():
            try:
                for _ in stream:
                    pass
                outcome.append("ended")
            except Exception as exc:  # the abort surfaces as an error in the reader
                outcome.append(exc)

        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.1)
        start = time.monotonic()
        stream.abort()
        t.join(2)
        assert not t.is_alive() and outcome
        assert time.monotonic() - start < 1.5
        assert server.wait_for_disconnect(1.0)


def test_close_releases_the_connection_early():
    with FakeServer() as server:
        server.add_chat("openai_compatible", "a b c d e", stall_after=2)
        stream = provider(server).stream("x", model="m")
        next(stream)
        stream.close()
        assert server.wait_for_disconnect(1.0)
        assert list(stream) == []


def test_total_deadline_over_a_slow_stream():
    with FakeServer() as server:
        server.add_chat("openai_compatible", " ".join(["w"] * 40), chunk_delay=0.05)
        with pytest.raises(ProviderTimeoutError):
            list(provider(server, timeout=0.3).stream("x", model="m"))
