"""Fault battery, streaming calls, over the four protocols (openai, openrouter, anthropic, ollama).

Every case: the stream ends in the stated typed exception (or yields exactly the stated text),
within its time limit, and after ``client.close()`` the server sees no client connection left
open (GC is off; see conftest). No thread is left running (autouse guard).
"""

import pytest

from modelprov import exceptions as E
from modelprov.testing import protocols

pytestmark = pytest.mark.usefixtures("no_gc")  # connections must close without the garbage collector

PROTOCOLS = ("openai", "openrouter", "anthropic", "ollama")
SSE_PROTOCOLS = ("openai", "openrouter", "anthropic")
TEXT = "alpha beta gamma delta epsilon"
#: Writes up to and including the first text piece, per protocol (preamble events differ).
FIRST_TEXT = {p: 1 + next(i for i, w in enumerate(protocols.chat_stream(p, TEXT, None)) if b"alpha" in w) for p in PROTOCOLS}


def drain(stream, got):
    for chunk in stream:
        if chunk.text:
            got.append(chunk.text)


def wire(protocol, text=TEXT, **kw):
    """The exact writes FakeServer would send for a streamed chat reply."""
    return protocols.chat_stream(protocol, text, None, **kw)


def stream_headers(protocol):
    return {"Content-Type": protocols.content_type(protocol, True)}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reset_mid_stream(protocol, server, make_client, closed, timer):
    """RST after the first text piece: ProviderConnectionError raised to the consumer (no silent
    truncation, no replay: 1 request), the partial text seen first, none left open after close()."""
    server.add_chat(protocol, TEXT, drop_after=FIRST_TEXT[protocol])
    client, model = make_client(protocol, server, retries=2)
    got = []
    with timer(2.0), pytest.raises(E.ProviderConnectionError):
        drain(client.stream(model, "hi"), got)
    assert got and TEXT.startswith("".join(got)) and "".join(got) != TEXT
    assert len(server.requests) == 1
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reset_before_the_first_stream_byte_is_retried(protocol, server, make_client, closed, timer):
    """RST right after the headers, before any event: retried, and the 2nd request streams the whole text."""
    server.add_chat(protocol, TEXT, drop_after=0)
    server.add_chat(protocol, TEXT)
    client, model = make_client(protocol, server, retries=2)
    got = []
    with timer(2.0):
        drain(client.stream(model, "hi"), got)
    assert "".join(got) == TEXT
    assert len(server.requests) == 2
    client.close()
    closed(server)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_silent_between_chunks_hits_the_idle_deadline(protocol, server, make_client, closed, timer):
    """The server goes silent after the first text piece: idle_timeout=0.3 raises ProviderTimeoutError
    in < 1.5 s (the read timeout is 30 s, so only the idle deadline can end it); none left open."""
    server.add_chat(protocol, TEXT, stall_after=FIRST_TEXT[protocol])
    client, model = make_client(protocol, server, provider={"idle_timeout": 0.3, "read_timeout": 30.0})
    got = []
    with timer(1.5), pytest.raises(E.ProviderTimeoutError):
        drain(client.stream(model, "hi"), got)
    assert got
    client.close()
    closed(server)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_trickling_stream_cannot_stretch_the_deadline(protocol, server, make_client, closed, timer):
    """One byte every 20 ms (reads never time out), overall timeout 0.4 s: ProviderTimeoutError in < 1.2 s."""
    server.add_chat(protocol, " ".join(["word"] * 60), trickle=0.02)
    client, model = make_client(protocol, server, timeout=0.4)
    with timer(1.2), pytest.raises(E.ProviderTimeoutError):
        drain(client.stream(model, "hi"), [])
    client.close()
    closed(server)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stream_headers_straddling_the_deadline(protocol, server, make_client, closed, timer):
    """Status line and headers trickled past a 0.4 s timeout: ProviderTimeoutError in < 1.2 s."""
    server.add_chat(protocol, TEXT, trickle=0.02, trickle_headers=True)
    client, model = make_client(protocol, server, timeout=0.4)
    with timer(1.2), pytest.raises(E.ProviderTimeoutError):
        drain(client.stream(model, "hi"), [])
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stream_cut_without_its_terminator(protocol, server, make_client, closed, timer):
    """Every event but the protocol's final one ([DONE] / message_stop / done:true), then a clean
    chunked end: a typed error (ResponseError or ProviderConnectionError), never a silent success; none left open."""
    writes = wire(protocol)
    server.add_raw(headers=stream_headers(protocol), chunks=writes[:-1])
    client, model = make_client(protocol, server)
    got = []
    with timer(2.0), pytest.raises((E.ResponseError, E.ProviderConnectionError)):
        drain(client.stream(model, "hi"), got)
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stream_cut_mid_transfer_encoding(protocol, server, make_client, closed, timer):
    """The first two events, then the connection closes without the zero-length chunk (``truncate``):
    ProviderConnectionError or ResponseError, 1 request (a started stream is not replayed), none left open."""
    server.add_raw(headers=stream_headers(protocol), chunks=wire(protocol)[:FIRST_TEXT[protocol]], truncate=True)
    client, model = make_client(protocol, server, retries=2)
    with timer(2.0), pytest.raises((E.ProviderConnectionError, E.ResponseError)):
        drain(client.stream(model, "hi"), [])
    assert len(server.requests) == 1
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_terminator_received_but_transfer_encoding_unfinished(protocol, server, make_client, closed):
    """Every event including the protocol's terminator, then no zero-length chunk: the answer is
    complete, so the exact text is returned (the unfinished framing after it is not an error)."""
    server.add_chat(protocol, TEXT, truncate=True)
    client, model = make_client(protocol, server)
    got = []
    drain(client.stream(model, "hi"), got)
    assert "".join(got) == TEXT
    client.close()
    closed(server)


STREAM_ERRORS = {
    # protocol -> (error_type, expected exception)
    "openai": ("server_error", E.ServerError),
    "openrouter": ("server_error", E.ProviderError),
    "anthropic": ("overloaded_error", E.OverloadedError),
    "ollama": (None, E.ProviderError),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_in_stream_error_event(protocol, server, make_client, closed, timer):
    """The protocol's own mid-stream error after partial text: the mapped typed exception (message
    kept), raised after the partial text, 1 request (no replay of a started stream), none left open."""
    error_type, expected = STREAM_ERRORS[protocol]
    server.add_stream_error(protocol, after_chunks=2, error_type=error_type, message="engine melted", text="some partial")
    client, model = make_client(protocol, server, retries=2)
    got = []
    with timer(2.0), pytest.raises(expected) as info:
        drain(client.stream(model, "hi"), got)
    assert "engine melted" in str(info.value), str(info.value)
    assert "".join(got) and "some partial".startswith("".join(got).strip()) or "".join(got) == "some partial"
    assert len(server.requests) == 1
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_in_stream_error_before_any_text(protocol, server, make_client, closed):
    """The mid-stream error right after the preamble (nothing yielded yet): a typed ProviderError."""
    error_type, expected = STREAM_ERRORS[protocol]
    server.set_default(server.add_stream_error(protocol, after_chunks=0, error_type=error_type, message="cold start"))
    client, model = make_client(protocol, server)
    with pytest.raises(expected):
        drain(client.stream(model, "hi"), [])
    client.close()
    closed(server)


UNICODE = "héllo wörld 日本語 😀 end"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_code_points_split_across_writes(protocol, server, make_client, closed):
    """Multi-byte code points cut between TCP writes (``split_utf8``) reassemble exactly."""
    server.add_chat(protocol, UNICODE, split_utf8=True, chunk_delay=0.001)
    client, model = make_client(protocol, server)
    got = []
    drain(client.stream(model, "hi"), got)
    assert "".join(got) == UNICODE
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_code_points_split_byte_by_byte(protocol, server, make_client, closed):
    """The whole stream written one byte per chunk (every code point split): exact text."""
    data = b"".join(wire(protocol, UNICODE))
    server.add_raw(headers=stream_headers(protocol), chunks=[data[i:i + 1] for i in range(len(data))])
    client, model = make_client(protocol, server)
    got = []
    drain(client.stream(model, "hi"), got)
    assert "".join(got) == UNICODE
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_invalid_utf8_in_a_stream(protocol, server, make_client, closed):
    """Bytes that are not UTF-8 (0xFF, a lone continuation byte) inside a text delta: either a
    ResponseError, or the text with U+FFFD in their place; never UnicodeDecodeError or a crash."""
    marker = "BADBYTES"
    data = b"".join(wire(protocol, "ok " + marker + " end")).replace(marker.encode(), b"\xff\x80bad")
    server.add_raw(headers=stream_headers(protocol), chunks=[data])
    client, model = make_client(protocol, server)
    got = []
    try:
        drain(client.stream(model, "hi"), got)
    except E.ResponseError:
        pass
    else:
        text = "".join(got)
        assert text.startswith("ok ") and text.endswith(" end") and "\ufffd" in text, repr(text)
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_invalid_utf8_in_a_json_body(protocol, server, make_client, closed):
    """A non-streamed body with invalid UTF-8: ResponseError, or the text with U+FFFD; nothing else."""
    body = protocols.encode_json(protocols.chat_body(protocol, "ok BADBYTES end", None, model="m"))
    server.add_raw(headers={"Content-Type": "application/json"}, body=body.replace(b"BADBYTES", b"\xff\xfe"))
    client, model = make_client(protocol, server)
    try:
        text = client.complete(model, "hi").text
    except E.ResponseError:
        pass
    else:
        assert text.startswith("ok ") and text.endswith(" end") and "\ufffd" in text, repr(text)
    client.close()
    closed(server)


@pytest.mark.parametrize("ending", ["crlf", "cr"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_crlf_and_lone_cr_line_endings(protocol, ending, server, make_client, closed):
    """The same stream with every LF turned into CRLF or a lone CR (both legal SSE line ends;
    NDJSON with CRLF): exactly the same text. Ollama with lone CR is not a line end for NDJSON and is skipped."""
    if protocol == "ollama" and ending == "cr":
        pytest.skip("NDJSON has no lone-CR line ending")
    sep = b"\r\n" if ending == "crlf" else b"\r"
    writes = [w.replace(b"\n", sep) for w in wire(protocol)]
    server.add_raw(headers=stream_headers(protocol), chunks=writes)
    client, model = make_client(protocol, server)
    got = []
    drain(client.stream(model, "hi"), got)
    assert "".join(got) == TEXT
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", SSE_PROTOCOLS)
def test_crlf_split_between_writes(protocol, server, make_client, closed):
    """CRLF line ends with the CR and the LF in different writes: the same text, no empty events."""
    data = b"".join(wire(protocol)).replace(b"\n", b"\r\n")
    cuts = [i + 1 for i in range(len(data)) if data[i:i + 1] == b"\r"]
    writes, start = [], 0
    for cut in cuts:
        writes.append(data[start:cut])
        start = cut
    writes.append(data[start:])
    server.add_raw(headers=stream_headers(protocol), chunks=[w for w in writes if w])
    client, model = make_client(protocol, server)
    got = []
    drain(client.stream(model, "hi"), got)
    assert "".join(got) == TEXT
    client.close()
    closed(server)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stream_accepted_and_never_answered(protocol, server, make_client, closed, timer):
    """A streamed call the server accepts and never answers: ProviderTimeoutError within read_timeout=0.2 (< 1.5 s)."""
    server.add_chat(protocol, TEXT, delay=30)
    client, model = make_client(protocol, server, provider={"read_timeout": 0.2})
    with timer(1.5), pytest.raises(E.ProviderTimeoutError):
        drain(client.stream(model, "hi"), [])
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_abandoned_half_read_stream_is_closed_by_client_close(protocol, server, make_client, closed):
    """A stream the caller reads once and keeps (not exhausted, not closed): client.close() still ends its socket."""
    server.add_chat(protocol, TEXT, stall_after=FIRST_TEXT[protocol])
    client, model = make_client(protocol, server)
    stream = client.stream(model, "hi")
    first = None
    for chunk in stream:
        if chunk.text:
            first = chunk.text
            break
    assert first
    assert server.open_connections == 1
    client.close()
    closed(server)
    assert stream is not None
