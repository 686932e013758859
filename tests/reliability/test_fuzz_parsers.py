"""Fuzzed stream parsers and provider stream decoders (issue 11, deliverable 7).

Property tests (hypothesis, derandomized, bounded example counts) over:

* ``SSEParser`` / ``NDJSONParser`` (``modelprov.streaming``) fed random bytes in random
  chunkings: the SSE parser never raises; the NDJSON parser raises nothing but
  ``ResponseError``; and both give exactly the same result however the bytes are chunked.
* every HTTP provider's stream decoder (openai, openrouter, openai_compatible, anthropic,
  ollama; from ``get_registry().get(name).new_stream_decoder(None)``) fed parsed events that
  are random, or valid events with one part of their JSON replaced, removed or retyped:
  nothing but a ``ProviderError`` (``ResponseError`` for malformed input, its typed
  subclasses for in-stream error events) ever escapes.
* valid streams from ``modelprov.testing.protocols`` (text, tool calls, split UTF-8, in-stream
  errors), re-chunked at random byte boundaries: the same chunks (or the same error) as the
  stream fed in one piece.

"No hang": every example runs under a 2 s SIGALRM guard (POSIX main thread) and the whole file
takes well under 15 s.
"""

import contextlib
import json
import signal
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelprov import get_registry
from modelprov.exceptions import ProviderError, ResponseError
from modelprov.streaming import NDJSONParser, SSEEvent, SSEParser
from modelprov.testing import protocols

PROVIDERS = ("openai", "openrouter", "openai_compatible", "anthropic", "ollama")
#: Seconds one example may take before it counts as a hang.
HANG_LIMIT = 2.0

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
FEW = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
class Hang(Exception):
    pass


@contextlib.contextmanager
def no_hang(limit=HANG_LIMIT):
    """Fail (raise ``Hang``) if the block runs longer than ``limit`` seconds (SIGALRM; a no-op off the main thread)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum, frame):
        raise Hang("example ran longer than %.1fs" % limit)

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- strategies

SSE_TOKENS = [b"data:", b"data: ", b"event: ", b"event:ping", b"id: 7", b"id:\x00", b"retry: 12", b"retry: x", b": keep",
              b"error: {}", b"\n", b"\r", b"\r\n", b"\n\n", b"\r\r", b"{", b"}", b'"', b"[DONE]", b"\xef\xbb\xbf",
              b"\xe2\x82", b"\xac", b"\xff", b"\xf0\x9f", b"\x98\x80", b"a", b" "]
NDJSON_TOKENS = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"1", b"-", b"e5", b"true", b"null", b"NaN", b"\n", b"\r\n", b"\r",
                 b" ", b"\xef\xbb\xbf", b"\xe2\x82", b"\xac", b"\xff", b'{"done": true}', b"[" * 50, b'"a\\u00e9"', b"\\"]


def soup(tokens):
    """Bytes made of protocol-ish tokens mixed with arbitrary bytes."""
    return st.lists(st.sampled_from(tokens) | st.binary(max_size=6), max_size=60).map(b"".join)


def cut(data_strategy, blob):
    """``blob`` split at random byte boundaries (empty pieces allowed)."""
    points = data_strategy.draw(st.lists(st.integers(0, len(blob)), max_size=min(len(blob) + 1, 40)), label="cuts")
    points = sorted(points)
    pieces, start = [], 0
    for p in points:
        pieces.append(blob[start:p])
        start = p
    pieces.append(blob[start:])
    return pieces


json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                          max_leaves=8)


def same_type(data, value, depth):
    """A random JSON value of the same shape as ``value`` (a dict or list is mutated inside, not replaced)."""
    if isinstance(value, bool):
        return data.draw(st.booleans())
    if isinstance(value, int):
        return data.draw(st.integers(-(2**40), 2**40))
    if isinstance(value, float):
        return data.draw(st.floats(allow_nan=False))
    if isinstance(value, str):
        return data.draw(st.text(max_size=8))
    if isinstance(value, (dict, list)):
        return mutate(data, value, depth + 1, typed=True) if value and depth < 5 else value
    return None


def mutate(data, value, depth=0, typed=False):
    """``value`` with one sub-value replaced, removed, or mutated further.

    ``typed``: a replacement keeps the JSON type of what it replaces (the shape a decoder may rely on
    without checking); otherwise it is any JSON value (a string where an object was, ...).
    """
    if isinstance(value, dict) and value and depth < 6:
        key = data.draw(st.sampled_from(sorted(value)))
        out = dict(value)
        action = data.draw(st.sampled_from(["replace", "delete", "recurse", "recurse"]))
        if action == "delete":
            del out[key]
        elif action == "replace" and not typed:
            out[key] = data.draw(json_value)
        else:
            out[key] = same_type(data, value[key], depth) if typed else mutate(data, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and depth < 6:
        i = data.draw(st.integers(0, len(value) - 1))
        out = list(value)
        if typed:
            out[i] = same_type(data, value[i], depth)
        else:
            out[i] = data.draw(json_value) if data.draw(st.booleans()) else mutate(data, value[i], depth + 1)
        return out
    return same_type(data, value, depth) if typed else data.draw(json_value)


# ------------------------------------------------------------------ harness

def provider(name):
    return get_registry().get(name)


def new_parser(name):
    return NDJSONParser(provider=name) if provider(name).stream_format == "ndjson" else SSEParser()


def decode_events(name, events):
    """Feed parsed events to a fresh decoder the way the stream runner does; returns the chunks."""
    decoder = provider(name).new_stream_decoder(None)
    out = []
    for event in events:
        if decoder.is_keepalive(event):
            continue
        out.extend(decoder.feed(event))
        if decoder.done:
            break
    out.extend(decoder.finish())
    return out


def decode_bytes(name, pieces):
    """Parse ``pieces`` and decode the events like the stream runner; returns ``("ok", chunks)`` or ``("error", type, message)``."""
    parser = new_parser(name)
    decoder = provider(name).new_stream_decoder(None)
    out = []
    try:
        for piece in pieces:
            for event in parser.feed(piece):
                if decoder.is_keepalive(event):
                    continue
                out.extend(decoder.feed(event))
                if decoder.done:
                    break
            if decoder.done:
                break
        if not decoder.done:
            parser.close()
        out.extend(decoder.finish())
    except ProviderError as exc:
        return ("error", type(exc), str(exc))
    return ("ok", out)


def sse_run(pieces):
    parser = SSEParser()
    events = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    return events, parser.comments, parser.error_fields, parser.last_event_id, parser.retry


def ndjson_run(pieces):
    """Values and the error line (``None`` if none); values only count when no error was raised."""
    parser = NDJSONParser(provider="fuzz")
    values = []
    try:
        for piece in pieces:
            values.extend(parser.feed(piece))
        values.extend(parser.close())
    except ResponseError as exc:
        assert exc.extra.get("line"), "a malformed-line ResponseError must name its line"
        return None, exc.extra["line"]
    return repr(values), None


# -------------------------------------------------------------- the parsers

@FUZZ
@given(blob=soup(SSE_TOKENS) | st.binary(max_size=300), data=st.data())
def test_sse_parser_random_bytes_any_chunking_same_result(blob, data):
    """Pass: SSEParser never raises on any bytes, and events, comments, error fields, last id and retry
    are identical whether the bytes come in one piece, byte by byte, or at random boundaries."""
    with no_hang():
        whole = sse_run([blob])
        assert sse_run(cut(data, blob)) == whole
        assert sse_run([blob[i : i + 1] for i in range(len(blob))]) == whole
    for event in whole[0]:
        assert isinstance(event, SSEEvent) and isinstance(event.data, str)


@FUZZ
@given(blob=soup(NDJSON_TOKENS) | st.binary(max_size=300), data=st.data())
def test_ndjson_parser_random_bytes_only_response_error_same_result(blob, data):
    """Pass: NDJSONParser raises nothing but ResponseError (with its line number), and the values (or the
    failing line) are identical whether the bytes come in one piece, byte by byte, or at random boundaries."""
    with no_hang():
        whole = ndjson_run([blob])
        assert ndjson_run(cut(data, blob)) == whole
        assert ndjson_run([blob[i : i + 1] for i in range(len(blob))]) == whole


def test_ndjson_deep_nesting_is_a_response_error():
    """Pass: a line nested 100,000 levels deep is a ResponseError on line 2, not a RecursionError."""
    parser = NDJSONParser(provider="fuzz")
    with no_hang(), pytest.raises(ResponseError) as info:
        parser.feed(b'{"a": 1}\n' + b"[" * 100_000 + b"\n")
    assert info.value.extra["line"] == 2


# ------------------------------------------------------------- the decoders

def valid_events(name, text="hello w\u00f6rld", tools=True):
    """The parsed events (SSEEvent or JSON values) of a valid stream with text and a tool call."""
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}] if tools else None
    writes = protocols.chat_stream(name, text, calls, usage={"prompt_tokens": 3, "completion_tokens": 4})
    parser = new_parser(name)
    events = []
    for w in writes:
        events.extend(parser.feed(w))
    events.extend(parser.close())
    return events


def fuzzed_events(name, data, typed=False):
    """A valid stream's events with some replaced by mutated copies, random events, dropped or shuffled."""
    events = valid_events(name)
    sse = provider(name).stream_format != "ndjson"
    names = sorted({e.event for e in events} | {"error", "message", "ping"}) if sse else []
    out = []
    for event in events:
        action = data.draw(st.sampled_from(["keep", "keep", "mutate", "mutate", "random", "drop"]), label="action")
        if action == "keep":
            out.append(event)
        elif action == "drop":
            continue
        elif sse:
            try:
                body = json.loads(event.data)
            except ValueError:  # [DONE]
                body = event.data
            if action == "mutate":
                payload = json.dumps(mutate(data, body, typed=typed))
            else:
                payload = data.draw(st.text(max_size=20) | json_value.map(json.dumps) | st.just("[DONE]"), label="data")
            event_name = data.draw(st.sampled_from(names) | st.text(max_size=5), label="event") if action == "random" else event.event
            out.append(SSEEvent(event=event_name, data=payload))
        else:
            out.append(mutate(data, event, typed=typed) if action == "mutate" else data.draw(json_value, label="value"))
    if data.draw(st.booleans(), label="shuffle"):
        out = data.draw(st.permutations(out), label="order")
    return out


def decode_fuzzed(name, events):
    """Pass criterion shared by the two event fuzzers: chunks (with str text) or a ProviderError."""
    with no_hang():
        try:
            chunks = decode_events(name, events)
        except ProviderError:
            return
    for chunk in chunks:
        assert isinstance(chunk.text, str)


@pytest.mark.parametrize("name", PROVIDERS)
@FUZZ
@given(data=st.data())
def test_decoder_fuzzed_events_raise_only_provider_errors(name, data):
    """Pass: a decoder fed a valid stream's events with some dropped, reordered, replaced by random events
    (random event names, random text or JSON as data, ``[DONE]``) or mutated inside their JSON (a key removed,
    a value replaced by another of the same JSON type) returns chunks or raises a ProviderError
    (ResponseError for malformed input; a typed subclass for an in-stream error event), nothing else."""
    decode_fuzzed(name, fuzzed_events(name, data, typed=True))


@pytest.mark.parametrize("name", PROVIDERS)
@FUZZ
@given(data=st.data())
def test_decoder_retyped_fields_raise_only_provider_errors(name, data):
    """Pass: as above, but a mutated value may change its JSON type (a list where an object was, a number
    where a list was): still only chunks or a ProviderError, never a TypeError or AttributeError."""
    decode_fuzzed(name, fuzzed_events(name, data, typed=False))


@pytest.mark.parametrize("name", PROVIDERS)
@FEW
@given(blob=st.binary(max_size=400) | soup(SSE_TOKENS) | soup(NDJSON_TOKENS), data=st.data())
def test_decoder_random_bytes_raise_only_provider_errors(name, blob, data):
    """Pass: random bytes through the provider's parser and decoder end in chunks or a ProviderError,
    the same outcome in one piece and at random boundaries."""
    with no_hang():
        whole = decode_bytes(name, [blob])
        assert decode_bytes(name, cut(data, blob)) == whole


# ------------------------------------------------------ valid streams, re-cut

stream_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@pytest.mark.parametrize("name", PROVIDERS)
@FEW
@given(text=stream_text, tools=st.booleans(), split=st.booleans(), data=st.data())
def test_valid_stream_rechunked_decodes_to_the_same_chunks(name, text, tools, split, data):
    """Pass: a valid stream (text, maybe a tool call, maybe UTF-8 split across writes) decodes without error,
    and cut at random byte boundaries it gives exactly the chunks of the whole stream fed in one piece,
    whose text joins back to the original text."""
    calls = [{"name": "f", "arguments": {"q": text}}] if tools else None
    writes = protocols.chat_stream(name, text, calls, split_utf8=split)
    blob = b"".join(writes)
    with no_hang():
        whole = decode_bytes(name, [blob])
        assert whole[0] == "ok", whole
        assert "".join(c.text for c in whole[1]) == text
        assert decode_bytes(name, writes) == whole
        assert decode_bytes(name, cut(data, blob)) == whole


@pytest.mark.parametrize("name", PROVIDERS)
@FEW
@given(after=st.integers(0, 3), data=st.data())
def test_in_stream_error_rechunked_raises_the_same_typed_error(name, after, data):
    """Pass: a stream ending in the protocol's in-stream error event raises a ProviderError, the same type and
    message at any chunking. (The SSE ``error:`` field path is the stream runner's; the event paths are here.)"""
    writes = protocols.stream_error_events(name, after_chunks=after)
    blob = b"".join(writes)
    with no_hang():
        whole = decode_bytes(name, [blob])
        assert whole[0] == "error" and issubclass(whole[1], ProviderError), whole
        assert decode_bytes(name, cut(data, blob)) == whole


OPENAI_BAD = [SSEEvent(data=json.dumps({"id": "c", "object": "chat.completion.chunk", "choices": 1}))]
KNOWN_RETYPED = [
    ("openai", OPENAI_BAD),
    ("openrouter", OPENAI_BAD),
    ("openai_compatible", OPENAI_BAD),
    ("anthropic", [SSEEvent(event="message_start", data=json.dumps({"type": "message_start", "message": {"id": "m", "content": [], "usage": {}}})),
                   SSEEvent(event="content_block_start", data=json.dumps({"type": "content_block_start", "index": 0, "content_block": [1]}))]),
    ("ollama", [{"model": "m", "message": [1], "done": False}]),
]


@pytest.mark.parametrize("name,events", KNOWN_RETYPED, ids=[name for name, _ in KNOWN_RETYPED])
def test_known_retyped_field_defects(name, events):
    """Pass: one event whose field has the wrong JSON type ends in a ProviderError, not TypeError /
    AttributeError (each decoder once let these escape)."""
    with pytest.raises(ProviderError):
        decode_events(name, events)
