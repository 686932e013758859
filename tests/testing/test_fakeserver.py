"""Tests for ``modelprov.testing.FakeServer`` and its wire builders.

Clients here are plain ``requests``, ``http.client`` and raw sockets, never
modelprov providers, so these tests pin the wire shapes themselves.
"""

import base64
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import pytest
import requests

from modelprov.testing import (
    FakeServer,
    Reply,
    anthropic_stream_events,
    chat_reply,
    chat_stream,
    error_body,
    ollama_stream_lines,
    openai_stream_events,
    split_text,
    split_utf8,
)

TOOL = [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


def post(server: FakeServer, path: str, payload: Any = None, **kw: Any) -> requests.Response:
    return requests.post(server.url + path, json=payload if payload is not None else {}, timeout=5, **kw)


def parse_sse(raw: bytes) -> List[Dict[str, Any]]:
    """Minimal SSE split for the shapes the server emits (one data line per event)."""
    events = []
    for block in raw.decode("utf-8").split("\n\n"):
        if not block:
            continue
        ev: Dict[str, Any] = {"event": None, "data": None, "comment": None}
        for line in block.split("\n"):
            if line.startswith(":"):
                ev["comment"] = line[1:].strip()
            elif line.startswith("event: "):
                ev["event"] = line[len("event: "):]
            elif line.startswith("data: "):
                ev["data"] = line[len("data: "):]
        events.append(ev)
    return events


def data_json(events: List[Dict[str, Any]]) -> List[Any]:
    return [json.loads(e["data"]) for e in events if e["data"] not in (None, "[DONE]")]


def raw_exchange(server: FakeServer, request: bytes, timeout: float = 3.0) -> bytes:
    """Send raw bytes, read until the server closes; returns everything received."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request)
        out = b""
        while True:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not data:
                break
            out += data
    return out


def dechunk_frames(raw: bytes) -> Tuple[bytes, List[bytes]]:
    """Split a chunked HTTP response into (head, list of chunk payloads)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    frames = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        frames.append(rest[:size])
        rest = rest[size + 2:]
    return head, frames


# -- basics ---------------------------------------------------------------------------------------


def test_urls_and_base_urls(server):
    assert server.url == "http://127.0.0.1:%d" % server.port
    assert server.base_url("openai") == server.url + "/v1"
    assert server.base_url("openai_compatible") == server.url + "/v1"
    assert server.base_url("openrouter") == server.url + "/api/v1"
    assert server.base_url("anthropic") == server.url
    assert server.base_url("ollama") == server.url
    with pytest.raises(ValueError):
        server.base_url("gemini")
    with pytest.raises(ValueError):
        server.add_chat("gemini", "x")


def test_import_does_not_load_requests():
    code = "import sys, modelprov.testing; sys.exit(1 if 'requests' in sys.modules else 0)"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert subprocess.run([sys.executable, "-c", code], cwd=root, timeout=30).returncode == 0


# -- OpenAI family --------------------------------------------------------------------------------


def test_openai_json_completion(server):
    server.add_chat("openai", "Hello world", tool_calls=TOOL, usage={"input_tokens": 5, "output_tokens": 2},
                    request_id="req_123")
    r = post(server, "/v1/chat/completions", {"model": "gpt-x", "messages": []})
    assert r.status_code == 200 and r.headers["x-request-id"] == "req_123"
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "gpt-x"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Hello world"
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "call_1" and call["type"] == "function"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "days": 3}
    assert body["usage"]["prompt_tokens"] == 5 and body["usage"]["completion_tokens"] == 2
    assert body["usage"]["total_tokens"] == 7


def test_openai_stream_shape_with_usage_and_tool_fragments(server):
    server.add_chat("openai", "Hello big world", tool_calls=TOOL + [{"name": "g", "arguments": "{}"}],
                    usage={"input_tokens": 5, "output_tokens": 2})
    r = post(server, "/v1/chat/completions", {"model": "m", "stream": True, "stream_options": {"include_usage": True}})
    assert r.headers["Content-Type"].startswith("text/event-stream")
    assert r.headers["Transfer-Encoding"] == "chunked"
    events = parse_sse(r.content)
    assert events[-1]["data"] == "[DONE]"
    chunks = data_json(events)
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello big world"
    args: Dict[int, str] = {}
    names: Dict[int, str] = {}
    for c in chunks:
        for tc in (c["choices"][0]["delta"].get("tool_calls") or []) if c["choices"] else []:
            if "id" in tc:
                names[tc["index"]] = tc["function"]["name"]
            args[tc["index"]] = args.get(tc["index"], "") + tc["function"].get("arguments", "")
    assert names == {0: "get_weather", 1: "g"}
    assert json.loads(args[0]) == {"city": "Paris", "days": 3} and json.loads(args[1]) == {}
    fragment_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
    assert len(fragment_chunks) > 3  # arguments really arrive in pieces
    finish, usage_chunk = chunks[-2], chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "tool_calls" and finish["choices"][0]["delta"] == {}
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["prompt_tokens"] == 5
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])


def test_openai_stream_without_include_usage_has_no_usage_chunk(server):
    server.add_chat("openai", "Hi")
    events = parse_sse(post(server, "/v1/chat/completions", {"stream": True}).content)
    chunks = data_json(events)
    assert all(c["choices"] for c in chunks) and "usage" not in chunks[-1]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["data"] == "[DONE]"


def test_openrouter_stream_comments_and_usage(server):
    server.add_chat("openrouter", "Hi there", request_id="gen-42")
    r = post(server, "/api/v1/chat/completions", {"model": "a/b", "stream": True})
    assert r.headers["X-Generation-Id"] == "gen-42"
    events = parse_sse(r.content)
    assert events[0]["comment"] == "OPENROUTER PROCESSING"
    assert sum(1 for e in events if e["comment"]) >= 1
    chunks = data_json(events)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    finish = chunks[-2]["choices"][0]
    assert finish["finish_reason"] == "stop" and finish["native_finish_reason"] == "stop"
    assert events[-1]["data"] == "[DONE]"


def test_openai_compatible_json_and_finish_override(server):
    server.add_chat("openai_compatible", "x", finish_reason="length", model="served")
    body = post(server, "/v1/chat/completions", {"model": "asked"}).json()
    assert body["model"] == "served" and body["choices"][0]["finish_reason"] == "length"
    assert "system_fingerprint" not in body


# -- Anthropic ------------------------------------------------------------------------------------


def test_anthropic_json_message(server):
    server.add_chat("anthropic", "", tool_calls=TOOL, usage={"input_tokens": 7, "output_tokens": 3,
                                                             "cache_read_tokens": 2})
    body = post(server, "/v1/messages", {"model": "claude"}).json()
    assert body["type"] == "message" and body["stop_reason"] == "tool_use"
    assert body["content"] == [{"type": "tool_use", "id": "call_1", "name": "get_weather",
                                "input": {"city": "Paris", "days": 3}}]
    assert body["usage"]["input_tokens"] == 7 and body["usage"]["cache_read_input_tokens"] == 2


def test_anthropic_stream_event_order(server):
    server.add_chat("anthropic", "Hello world", tool_calls=TOOL, usage={"input_tokens": 5, "output_tokens": 9},
                    request_id="req_a")
    r = post(server, "/v1/messages", {"model": "claude", "stream": True})
    assert r.headers["request-id"] == "req_a"
    events = parse_sse(r.content)
    names = [e["event"] for e in events]
    for e in events:
        assert json.loads(e["data"])["type"] == e["event"]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == 2 == names.count("content_block_stop")
    datas = [json.loads(e["data"]) for e in events]
    text = "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta"
                   and d["delta"]["type"] == "text_delta")
    assert text == "Hello world"
    partial = "".join(d["delta"]["partial_json"] for d in datas if d["type"] == "content_block_delta"
                      and d["delta"]["type"] == "input_json_delta")
    assert json.loads(partial) == {"city": "Paris", "days": 3}
    assert all(d["index"] == 1 for d in datas if d["type"] == "content_block_delta"
               and d["delta"]["type"] == "input_json_delta")
    assert datas[0]["message"]["usage"]["input_tokens"] == 5
    delta = datas[-2]
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["output_tokens"] == 9


def test_anthropic_finish_reason_translation():
    events = parse_sse(b"".join(anthropic_stream_events("x", finish_reason="length")))
    assert json.loads(events[-2]["data"])["delta"]["stop_reason"] == "max_tokens"


# -- Ollama ---------------------------------------------------------------------------------------


def test_ollama_streams_by_default(server):
    server.add_chat("ollama", "Hello world", tool_calls=TOOL, usage={"input_tokens": 4, "output_tokens": 6})
    r = post(server, "/api/chat", {"model": "llama3"})
    assert r.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in r.content.decode().splitlines()]
    assert all(not x["done"] for x in lines[:-1])
    assert "".join(x["message"]["content"] for x in lines) == "Hello world"
    calls = [c for x in lines for c in x["message"].get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["function"]["arguments"] == {"city": "Paris", "days": 3}  # whole object
    last = lines[-1]
    assert last["done"] is True and last["done_reason"] == "stop"
    assert last["prompt_eval_count"] == 4 and last["eval_count"] == 6
    assert last["eval_duration"] > 0 and last["total_duration"] >= last["eval_duration"]


def test_ollama_json_when_stream_false_and_generate(server):
    server.add_chat("ollama", "Hi", usage={"input_tokens": 0, "output_tokens": 1})
    server.add_chat("ollama", "Hey")
    body = post(server, "/api/chat", {"model": "m", "stream": False}).json()
    assert body["message"]["content"] == "Hi" and body["done"] is True
    assert "prompt_eval_count" not in body  # omitempty
    gen = post(server, "/api/generate", {"model": "m", "stream": False}).json()
    assert gen["response"] == "Hey" and "message" not in gen


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "protocol,check",
    [
        ("openai", lambda b: b["error"]["type"] == "requests" and b["error"]["code"] == "rate_limit_exceeded"
         and b["error"]["param"] is None and b["error"]["message"] == "slow"),
        ("openai_compatible", lambda b: b["error"]["code"] == 429),
        ("openrouter", lambda b: b["error"] == {"code": 429, "message": "slow"}),
        ("anthropic", lambda b: b == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"},
                                      "request_id": "req_9"}),
        ("ollama", lambda b: b == {"error": "slow"}),
    ],
)
def test_error_bodies(server, protocol, check):
    server.add_error(429, protocol=protocol, message="slow", request_id="req_9", retry_after=2)
    r = requests.get(server.url + "/x", timeout=5)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert check(r.json())


def test_error_body_variants(server):
    assert error_body("anthropic", 529)["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert error_body("openai", 429, "q", type="insufficient_quota", code="insufficient_quota")["error"]["code"] == \
        "insufficient_quota"
    server.add_error(502, "<html>bad gateway</html>", {"Content-Type": "text/html"})
    server.add_error(400, {"custom": True})
    server.add_error(503, b"\xff raw")
    server.add_error(529, protocol="anthropic")
    r = requests.get(server.url, timeout=5)
    assert r.status_code == 502 and r.headers["Content-Type"] == "text/html" and "bad gateway" in r.text
    assert requests.get(server.url, timeout=5).json() == {"custom": True}
    assert requests.get(server.url, timeout=5).content == b"\xff raw"
    r = requests.get(server.url, timeout=5)
    assert r.status_code == 529 and r.reason == "Overloaded" and r.json()["error"]["type"] == "overloaded_error"


def test_stream_error_anthropic(server):
    server.add_stream_error("anthropic", after_chunks=2, error_type="overloaded_error", message="Overloaded",
                            text="partial")
    r = post(server, "/v1/messages", {"stream": True})
    assert r.status_code == 200
    events = parse_sse(r.content)
    assert [e["event"] for e in events][:3] == ["message_start", "content_block_start", "ping"]
    deltas = [json.loads(e["data"])["delta"]["text"] for e in events if e["event"] == "content_block_delta"]
    assert len(deltas) == 2 and "".join(deltas) == "partial"
    assert events[-1]["event"] == "error"
    assert json.loads(events[-1]["data"]) == {"type": "error", "error": {"type": "overloaded_error",
                                                                          "message": "Overloaded"}}


@pytest.mark.parametrize("protocol", ["openai", "openai_compatible", "openrouter"])
def test_stream_error_openai_family(server, protocol):
    server.add_stream_error(protocol, after_chunks=1, message="boom", text="part")
    events = parse_sse(post(server, "/v1/chat/completions", {"stream": True}).content)
    assert all(e["data"] != "[DONE]" for e in events)
    chunks = data_json(events)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == "part"
    last = chunks[-1]
    assert last["error"]["message"] == "boom"
    if protocol == "openrouter":
        assert last["choices"][0]["finish_reason"] == "error" and isinstance(last["error"]["code"], int)
        assert events[0]["comment"] == "OPENROUTER PROCESSING"


def test_stream_error_ollama(server):
    server.add_stream_error("ollama", after_chunks=3, message="model crashed", text="abcdef")
    lines = [json.loads(x) for x in post(server, "/api/chat", {}).content.decode().splitlines()]
    assert [x["message"]["content"] for x in lines[:-1]] == ["ab", "cd", "ef"]
    assert lines[-1] == {"error": "model crashed"}


# -- embeddings and models ------------------------------------------------------------------------


def test_embeddings(server):
    server.add_embeddings("openai", [[0.1, 0.2], [0.3, 0.4]])
    server.add_embeddings("openai", [[0.5, -1.0]])
    server.add_embeddings("ollama", [[0.1, 0.2]])
    body = post(server, "/v1/embeddings", {"model": "emb", "input": ["a", "b"]}).json()
    assert [d["embedding"] for d in body["data"]] == [[0.1, 0.2], [0.3, 0.4]]
    assert [d["index"] for d in body["data"]] == [0, 1] and body["model"] == "emb"
    b64 = post(server, "/v1/embeddings", {"input": "a", "encoding_format": "base64"}).json()["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(b64)) == (0.5, -1.0)
    assert post(server, "/api/embed", {"input": "a"}).json()["embeddings"] == [[0.1, 0.2]]
    with pytest.raises(ValueError):
        server.add_embeddings("anthropic", [[1.0]])


def test_models_listings(server):
    server.add_models("openai", ["m1", "m2"])
    server.add_models("openrouter", ["a/b"])
    server.add_models("ollama", ["llama3:latest"])
    body = requests.get(server.url + "/v1/models", timeout=5).json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["m1", "m2"]
    assert requests.get(server.url + "/api/v1/models", timeout=5).json()["data"][0]["context_length"] > 0
    assert requests.get(server.url + "/api/tags", timeout=5).json()["models"][0]["name"] == "llama3:latest"


def test_anthropic_models_paging(server):
    ids = ["c%d" % i for i in range(5)]
    server.add_models("anthropic", ids, page_size=2)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"after_id": cursor} if cursor else {}
        body = requests.get(server.url + "/v1/models", params=params, timeout=5).json()
        pages += 1
        seen += [m["id"] for m in body["data"]]
        assert body["first_id"] == body["data"][0]["id"] and body["last_id"] == body["data"][-1]["id"]
        if not body["has_more"]:
            break
        cursor = body["last_id"]
    assert seen == ids and pages == 3 and server.pending == 0
    assert server.requests[1].query == {"after_id": "c1"}


# -- raw replies and faults -----------------------------------------------------------------------


def test_raw_chunks_arrive_one_by_one(server):
    server.add_raw(200, {"Content-Type": "text/plain"}, chunks=[b"a", b"b", b"c"], chunk_delay=0.1)
    start = time.monotonic()
    stamps = []
    with requests.get(server.url, stream=True, timeout=5) as r:
        for chunk in r.iter_content(chunk_size=None):
            stamps.append((chunk, time.monotonic() - start))
    assert b"".join(c for c, _ in stamps) == b"abc"
    assert stamps[-1][1] >= 0.15
    assert stamps[0][1] < stamps[-1][1]


def test_fixed_body_and_delay(server):
    server.add_raw(201, {"X-Test": "1"}, body=b"hello", delay=0.15)
    start = time.monotonic()
    r = requests.get(server.url, timeout=5)
    assert r.status_code == 201 and r.content == b"hello" and r.headers["Content-Length"] == "5"
    assert time.monotonic() - start >= 0.12


def test_drop_after_breaks_the_read(server):
    server.add_raw(chunks=[b"one", b"two", b"three"], drop_after=1)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        resp.read()
    conn.close()
    server.add_chat("openai", "Hello big wide world", drop_after=2)
    with pytest.raises(requests.exceptions.RequestException):
        _ = post(server, "/v1/chat/completions", {"stream": True}).content


def test_truncate_chunked_and_fixed(server):
    server.add_raw(chunks=[b"data: 1\n\n"], truncate=True)
    raw = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.endswith(b"data: 1\n\n\r\n") and b"0\r\n\r\n" not in raw
    server.add_raw(body=b"0123456789", truncate=True)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
    conn.request("GET", "/")
    with pytest.raises(http.client.IncompleteRead):
        conn.getresponse().read()
    conn.close()


def test_raw_close_delimited(server):
    server.add_raw(chunks=[b"x", b"y"], chunked=False)
    raw = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and b"Transfer-Encoding" not in head and body == b"xy"


def test_stall_client_disconnect_is_seen(server):
    server.add_raw(headers={"Content-Type": "text/event-stream"}, stall=True)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=3)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert b"200" in sock.recv(4096)
    assert server.aborted == 0
    start = time.monotonic()
    sock.close()
    assert server.wait_for_disconnect(timeout=1.0)
    assert time.monotonic() - start < 1.0
    assert server.disconnects >= 1 and server.aborted == 1


def test_stall_after_and_client_timeout(server):
    server.add_chat("openai", "a b c d", stall_after=2)
    with pytest.raises(requests.exceptions.ConnectionError):  # ReadTimeout wraps as ConnectionError in streaming
        with requests.post(server.url + "/v1/chat/completions", json={"stream": True}, stream=True, timeout=0.3) as r:
            for _ in r.iter_content(chunk_size=None):
                pass
    assert server.wait_for_disconnect(timeout=1.0)


def test_close_while_stalled_returns_quickly():
    srv = FakeServer()
    srv.add_raw(stall=True)
    srv.add_raw(delay=30)
    errors: List[BaseException] = []

    def client():
        try:
            _ = requests.get(srv.url, timeout=10).content
        except BaseException as exc:  # noqa: B902 - recorded for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    assert srv.wait_for_requests(2, timeout=2)
    start = time.monotonic()
    srv.close()
    assert time.monotonic() - start < 1.0
    for t in threads:
        t.join(2)
    assert len(errors) == 2  # both clients saw their connection closed
    srv.close()  # idempotent
    assert srv.closed
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(srv.url, timeout=1)


# -- matching, recording, defaults ---------------------------------------------------------------


def test_fifo_and_path_matching(server):
    server.add_raw(body=b"first")
    server.add_raw(body=b"models", path="/v1/models")
    server.add_raw(body=b"second")
    assert requests.get(server.url + "/v1/models", timeout=5).content == b"first"
    assert requests.get(server.url + "/v1/models?x=1", timeout=5).content == b"models"
    assert requests.get(server.url + "/v1/models", timeout=5).content == b"second"
    assert server.pending == 0


def test_recorded_requests(server):
    server.add_chat("openai", "ok")
    server.add_raw(body=b"ok")
    server.add_raw(body=b"ok")
    post(server, "/v1/chat/completions?a=1&b=2", {"model": "m", "messages": [{"role": "user", "content": "hé"}]},
         headers={"Authorization": "Bearer sk-secret-value-123", "X-Custom": "v"})
    requests.post(server.url + "/raw", data=b"not json", timeout=5)
    requests.post(server.url + "/chunked", data=iter([b'{"a":', b" 1}"]), timeout=5)
    assert server.wait_for_requests(3, timeout=1)
    first, second, third = server.requests
    assert first.method == "POST" and first.path == "/v1/chat/completions"
    assert first.query == {"a": "1", "b": "2"}
    assert first.headers["authorization"] == "Bearer sk-secret-value-123"
    assert first.headers["x-custom"] == "v" and "X-CUSTOM" in first.headers
    assert first.json["messages"][0]["content"] == "hé" and json.loads(first.body) == first.json
    assert "sk-secret-value-123" not in repr(first)
    assert second.json is None and second.body == b"not json"
    assert third.json == {"a": 1} and server.last_request is third
    assert not server.wait_for_requests(4, timeout=0.05)


def test_no_reply_and_default(server):
    r = post(server, "/v1/chat/completions", {})
    assert r.status_code == 500
    assert r.json()["error"]["message"] == "FakeServer: no reply queued for POST /v1/chat/completions"
    assert requests.get(server.url + "/api/tags", timeout=5).json() == {
        "error": "FakeServer: no reply queued for GET /api/tags"}
    assert len(server.unmatched) == 2
    server.set_default("openai", "default text")
    for _ in range(2):
        assert post(server, "/v1/chat/completions", {}).json()["choices"][0]["message"]["content"] == "default text"
    server.add_raw(body=b"queued")
    assert requests.get(server.url, timeout=5).content == b"queued"
    server.set_default(None)
    assert requests.get(server.url, timeout=5).status_code == 500
    server.reset()
    assert server.requests == [] and server.pending == 0 and server.unmatched == []


def test_keep_alive_and_connection_counts(server):
    server.add_raw(body=b"1")
    server.add_raw(body=b"2")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
    for expected in (b"1", b"2"):
        conn.request("GET", "/")
        assert conn.getresponse().read() == expected
    assert server.open_connections == 1
    conn.close()
    assert server.wait_for_open_connections(0, timeout=1)
    assert server.disconnects == 1 and server.aborted == 0


def test_concurrent_clients(server):
    n = 200
    for i in range(n):
        server.add_chat("openai", "reply %d" % i, path="/r/%d/" % i, delay=0.2)

    def call(i: int) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("POST", "/r/%d/chat" % i, body=b'{"model": "m"}', headers={"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())["choices"][0]["message"]["content"]
        finally:
            conn.close()

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(call, range(n)))
    assert results == ["reply %d" % i for i in range(n)]
    assert time.monotonic() - start < 8  # served concurrently (serially it would take 40 s)
    assert server.pending == 0 and len(server.requests) == n


# -- builders are the bytes on the wire -----------------------------------------------------------


@pytest.mark.parametrize("protocol,path,payload", [
    ("openai", "/v1/chat/completions", {"model": "m", "stream": True}),
    ("openrouter", "/api/v1/chat/completions", {"model": "m", "stream": True}),
    ("anthropic", "/v1/messages", {"model": "m", "stream": True}),
    ("ollama", "/api/chat", {"model": "m"}),
])
def test_builders_match_server_bytes(server, protocol, path, payload):
    server.add_chat(protocol, "Grüße, 世界!", tool_calls=TOOL)
    body = post(server, path, payload).content
    assert body == b"".join(chat_stream(protocol, "Grüße, 世界!", TOOL, model="m"))


def test_builder_functions():
    assert split_text("Hello big world") == ["Hello", " big", " world"]
    assert split_text(["a", "", "b"]) == ["a", "b"]
    assert split_text("a b ", chunk_words=False) == ["a b "] and split_text("a b ") == ["a", " b "]
    assert len(openai_stream_events("x", include_usage=True)) == 5  # role, text, finish, usage, [DONE]
    assert json.loads(ollama_stream_lines("a")[-1])["done"] is True
    parts = split_utf8([b"caf\xc3\xa9\n"])
    assert parts == [b"caf\xc3", b"\xa9\n"]
    assert isinstance(chat_reply("openai", "x"), Reply)


def test_split_utf8_straddles_chunk_writes(server):
    server.add_chat("anthropic", "Grüße 世界", split_utf8=True)
    raw = raw_exchange(server, b'POST /v1/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
                               b'Content-Length: 16\r\n\r\n{"stream": true}')
    _, frames = dechunk_frames(raw)
    undecodable = 0
    for frame in frames:
        try:
            frame.decode("utf-8")
        except UnicodeDecodeError:
            undecodable += 1
    assert undecodable >= 2
    text = "".join(json.loads(e["data"])["delta"]["text"] for e in parse_sse(b"".join(frames))
                   if e["event"] == "content_block_delta")
    assert text == "Grüße 世界"


def _raw_exchange(server: FakeServer) -> Tuple[bytes, List[float]]:
    """Send one POST over a raw socket; the whole response and when each byte arrived."""
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    data, times = b"", []
    while True:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
        times.append(time.monotonic())
    sock.close()
    return data, times


def test_trickle_sends_the_body_one_byte_at_a_time(server):
    server.add_raw(body=b"12345", headers={"Content-Type": "text/plain"}, trickle=0.03)
    start = time.monotonic()
    data, times = _raw_exchange(server)
    head, _, body = data.partition(b"\r\n\r\n")
    assert body == b"12345" and b"Content-Length: 5" in head
    assert times[-1] - start >= 4 * 0.03 - 0.01  # four pauses between five bytes
    assert len(times) >= 5  # the head at once, then byte by byte


def test_trickle_headers_sends_the_head_one_byte_at_a_time(server):
    server.add_raw(body=b"{}", headers={"Content-Type": "application/json"}, trickle=0.002, trickle_headers=True)
    data, times = _raw_exchange(server)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"{}"
    assert len(times) > 20  # dozens of separate pieces: the head was trickled too
    assert "trickle" in repr(server.add_raw(trickle=0.1))


def test_accepted_counts_connections(server):
    server.set_default("openai", "hi")
    with requests.Session() as session:
        for _ in range(3):
            session.post(server.url + "/v1/chat/completions", json={}, timeout=5)
    requests.post(server.url + "/v1/chat/completions", json={}, timeout=5)
    assert server.accepted == 2
    server.reset()
    assert server.accepted == 0
