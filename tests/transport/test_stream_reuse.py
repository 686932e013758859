"""Streams give their connection back to the pool, and the bulk chunked reader behind that.

A stream ends at the protocol's terminator (``[DONE]``, ``message_stop``,
``done: true``), which may come before the final zero-length HTTP chunk: the
runner drains that rest briefly so the keep-alive connection is reused, and
never waits long on a server that does not send it. Over real loopback
sockets (FakeServer); no sleeps.
"""

import gzip
import threading
import time

import pytest
from urllib3.exceptions import ProtocolError

from modelprov import Client
from modelprov.engine import bind
from modelprov.exceptions import ProviderConnectionError, ResponseError
from modelprov.providers.anthropic.provider import AnthropicProvider
from modelprov.providers.ollama.provider import OllamaProvider
from modelprov.providers.openai_compat.openai import OpenAIProvider
from modelprov.testing import FakeServer, anthropic_stream_events, ollama_stream_lines, openai_stream_events
from modelprov.transport.chunked import _read, iter_chunked
from modelprov.types import ProviderConfig

KEY = "sk-test-0123456789abcdef"
PROVIDERS = {"openai": OpenAIProvider, "anthropic": AnthropicProvider, "ollama": OllamaProvider}
SSE = {"Content-Type": "text/event-stream"}
#: Units (events / lines) each protocol sends before its second piece of text.
SECOND_TEXT = {"openai": 3, "anthropic": 5, "ollama": 2}


class Counted:
    """A FakeServer (it counts the connections it accepted) and providers bound to it."""

    def __init__(self) -> None:
        self.server = FakeServer()

    @property
    def accepted(self):
        return self.server.accepted

    def provider(self, protocol, **cfg):
        cfg.setdefault("read_timeout", 10.0)  # a regression fails instead of hanging
        config = ProviderConfig(name=protocol, api_key=KEY, base_url=self.server.base_url(protocol), **cfg)
        return bind(PROVIDERS[protocol](config), sleep=lambda s: None)


@pytest.fixture
def counted():
    c = Counted()
    try:
        yield c
    finally:
        c.server.close()


# ----------------------------------------------------------------- reuse
@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_sequential_streams_reuse_one_connection(counted, protocol):
    counted.server.set_default(protocol, "one two three four five", usage={"input_tokens": 3, "output_tokens": 5})
    provider = counted.provider(protocol)
    for _ in range(6):
        chunks = list(provider.stream("Hi", model="m"))
        assert "".join(c.text for c in chunks) == "one two three four five"
        assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    provider.generate("Hi", model="m")  # JSON calls share the same connection
    assert counted.accepted == 1
    assert counted.server.disconnects == 0


@pytest.mark.parametrize("protocol", ["anthropic", "ollama"])
def test_stopping_at_the_final_chunk_keeps_the_connection(counted, protocol):
    # Anthropic and Ollama mark the end on the final chunk itself: a caller that
    # breaks out right there still leaves a reusable connection.
    counted.server.set_default(protocol, "alpha beta gamma")
    provider = counted.provider(protocol)
    for _ in range(4):
        stream = provider.stream("Hi", model="m")
        for chunk in stream:
            if chunk.finish_reason:
                break
        stream.close()
    assert counted.accepted == 1


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_client_streams_reuse_one_connection(counted, protocol):
    counted.server.set_default(protocol, "via the client")
    client = Client(providers={protocol: {"api_key": KEY, "base_url": counted.server.base_url(protocol)}})
    try:
        for _ in range(4):
            assert "".join(c.text for c in client.stream(protocol + "/m", "Hi")) == "via the client"
    finally:
        client.close()
    assert counted.accepted == 1


def test_gzip_stream_uses_urllib3_reader_and_still_reuses(counted):
    body = b"".join(openai_stream_events("zipped words here", include_usage=False))
    packed = gzip.compress(body)
    pieces = [packed[i : i + 40] for i in range(0, len(packed), 40)]
    provider = counted.provider("openai")
    for _ in range(3):
        counted.server.add_raw(headers=dict(SSE, **{"Content-Encoding": "gzip"}), chunks=pieces)
        assert "".join(c.text for c in provider.stream("Hi", model="m")) == "zipped words here"
    assert counted.accepted == 1


# ------------------------------------------------------------ bounded drain
def test_missing_final_chunk_ends_promptly_and_is_not_reused(counted):
    events = openai_stream_events("no terminator", include_usage=False)
    provider = counted.provider("openai")
    counted.server.add_raw(headers=SSE, chunks=events, stall_after=len(events))  # [DONE], then silence
    start = time.monotonic()
    assert "".join(c.text for c in provider.stream("Hi", model="m")) == "no terminator"
    assert time.monotonic() - start < 1.0  # the drain waits 0.05 s, not the read timeout
    counted.server.set_default("openai", "next")
    assert "".join(c.text for c in provider.stream("Hi", model="m")) == "next"
    assert counted.accepted == 2  # the stalled connection was closed, not pooled


def test_data_after_the_terminator_is_bounded(counted):
    events = openai_stream_events("then junk", include_usage=False)
    junk = [b": " + b"x" * 16000 + b"\n\n"] * 12  # ~190 KB of comments after [DONE], then silence
    provider = counted.provider("openai")
    counted.server.add_raw(headers=SSE, chunks=events + junk, stall_after=len(events) + len(junk))
    start = time.monotonic()
    assert "".join(c.text for c in provider.stream("Hi", model="m")) == "then junk"
    assert time.monotonic() - start < 1.0
    counted.server.set_default("openai", "again")
    assert "".join(c.text for c in provider.stream("Hi", model="m")) == "again"
    assert counted.accepted == 2


# ------------------------------------------------------------ mid-stream faults
@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_dropped_connection_raises_and_the_next_stream_reconnects(counted, protocol):
    provider = counted.provider(protocol)
    counted.server.add_chat(protocol, "a b c d e f", drop_after=SECOND_TEXT[protocol])
    got = []
    with pytest.raises(ProviderConnectionError):
        for chunk in provider.stream("Hi", model="m"):
            got.append(chunk.text)
    assert got  # output arrived first, so the failure is raised, not retried
    counted.server.set_default(protocol, "fine")
    assert "".join(c.text for c in provider.stream("Hi", model="m")) == "fine"
    assert counted.accepted == 2


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_cut_before_the_protocol_end(counted, protocol):
    events = {"openai": openai_stream_events("cut short here", include_usage=False),
              "anthropic": anthropic_stream_events("cut short here"),
              "ollama": ollama_stream_lines("cut short here")}[protocol]  # fmt: skip
    provider = counted.provider(protocol)
    # closed without the zero-length chunk: a broken connection
    counted.server.add_raw(headers=SSE, chunks=events[:-1], truncate=True)
    with pytest.raises(ProviderConnectionError, match="mid-stream"):
        list(provider.stream("Hi", model="m"))
    # a complete HTTP body without the protocol's end: a truncated answer
    counted.server.add_raw(headers=SSE, chunks=events[:-1])
    with pytest.raises(ResponseError, match="truncated"):
        list(provider.stream("Hi", model="m"))


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_stall_then_abort_from_another_thread(counted, protocol):
    provider = counted.provider(protocol)
    counted.server.add_chat(protocol, "first second third fourth", stall_after=SECOND_TEXT[protocol])
    stream = provider.stream("Hi", model="m")
    assert next(stream).text is not None
    outcome = []

    def reader():
        try:
            for _ in stream:
                pass
            outcome.append("ended")
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    stream.abort()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(outcome[0], ProviderConnectionError) and outcome[0].extra.get("aborted") is True
    counted.server.set_default(protocol, "after abort")
    assert "".join(c.text for c in provider.stream("Hi", model="m")) == "after abort"
    assert counted.accepted == 2


# ------------------------------------------------------- the bulk chunked reader
class _FP:
    """A socket file that returns scripted pieces from read1()."""

    def __init__(self, pieces):
        self.pieces = list(pieces)

    def read1(self, size):
        return self.pieces.pop(0) if self.pieces else b""

    def readline(self, limit):
        data = b"".join(self.pieces)
        eol = data.find(b"\n")
        line, rest = (data, b"") if eol < 0 else (data[: eol + 1], data[eol + 1 :])
        self.pieces = [rest] if rest else []
        return line


class _Closable:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


def read(pieces, join=False):
    raw, original = _Closable(), _Closable()
    out = list(_read(raw, original, _FP(pieces), 65536, [join]))
    return out, original.closed, raw.closed


def test_reader_keeps_one_item_per_chunk_across_any_split():
    wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n1\r\n!\r\n0\r\n\r\n"
    for cut in range(1, len(wire)):
        assert read([wire[:cut], wire[cut:]]) == ([b"hello", b" world", b"!"], True, False), cut
    assert read([bytes([b]) for b in wire]) == ([b"hello", b" world", b"!"], True, False)


def test_reader_joins_chunks_of_one_read_when_asked():
    assert read([b"2\r\nab\r\n2\r\ncd\r\n", b"1\r\ne\r\n0\r\n\r\n"], join=True) == ([b"abcd", b"e"], True, False)


def test_reader_trailers_bare_lf_and_eof_after_last_chunk():
    assert read([b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n", b"\r\n"]) == ([b"abc"], True, False)
    assert read([b"3\nabc\r\n0\n\n"]) == ([b"abc"], True, False)
    assert read([b"3\r\nabc\r\n0\r\n"]) == ([b"abc"], True, False)  # server closed after the last chunk


def test_reader_bytes_after_the_response_close_the_connection():
    assert read([b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"]) == ([b"abc"], True, True)


@pytest.mark.parametrize("wire", [b"zz\r\nabc\r\n", b"-3\r\nabc\r\n", b"3\r\nab", b"3\r\nabc\r\n"])
def test_reader_protocol_errors(wire):
    with pytest.raises(ProtocolError):
        read([wire])


def test_reader_only_takes_what_it_understands():
    class Raw:
        chunk_left = None
        _decoder = None
        headers = {"content-encoding": "gzip"}

    assert iter_chunked(Raw(), 1024) is None  # not an http.client response
