"""Loopback HTTP/1.1 server for the benchmarks: canned provider bytes from a separate process.

The server is a small ``asyncio.Protocol`` speaking HTTP/1.1 keep-alive on
127.0.0.1. It runs in its own process so its CPU never shows up in the
client's ``time.process_time()``, and one event loop holds thousands of
concurrent connections (a delayed answer is a timer, not a thread). Every
response is built once, at start-up or on first use:

=========================  ==========================  ====================================
route (POST)               ``"stream": true`` in body   otherwise
=========================  ==========================  ====================================
``/v1/chat/completions``   OpenAI SSE                  OpenAI chat completion JSON
``/v1/messages``           Anthropic SSE               Anthropic message JSON
``/api/chat``              Ollama NDJSON               Ollama chat JSON
=========================  ==========================  ====================================

Streams carry ``chunks`` content events (default 500) plus each protocol's
opening and closing events and are sent with ``Transfer-Encoding: chunked``,
one HTTP chunk per event, as the real APIs flush one event per token.

Path prefixes, so one server serves every scenario (put them in a client's
base URL): ``/_d/MS`` holds the answer back MS milliseconds (without blocking
other connections; ``--delay`` sets the default), ``/_big/N`` answers a JSON
chat call whose text makes the body about N bytes. ``GET /_stats`` returns
``{"connections", "requests", "open", "peak_open", "cpu_s"}`` (accepted
connections, answered requests, connections open now and at most, the
server's own CPU seconds) so a benchmark can see connection churn and check
that the server is not its bottleneck.

Use :class:`LoopbackServer` (a context manager) from a benchmark; the child
process exits when its stdin closes. Standard library only.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

__all__ = [
    "ANTHROPIC_PATH",
    "LoopbackServer",
    "OLLAMA_PATH",
    "OPENAI_PATH",
    "big_response",
    "build_responses",
    "content_tokens",
    "raise_fd_limit",
    "serve",
    "server_stats",
]

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
OLLAMA_PATH = "/api/chat"

_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
_TOKENS = (
    "The", " model", " returns", " a", " short", " answer", ",", " then", " explains", " why", ".",
    " It", " is", " not", " the", " only", " way", " to", " do", " this", ":", "\n\n", "1", ".",
    " First", " check", " your", " API", " key", " and", " retry", " after", " 30", " seconds", "\n",
    "-", " **", "Note", "**", " you", " can", " also", " use", " `", "stream", "=True", "`", "!",
    " caf\u00e9", "\u2014",
)  # fmt: skip
_TEXT = "Hello there! How can I help you today?"


def content_tokens(n: int) -> List[str]:
    """The ``n`` text fragments every canned stream carries (deterministic)."""
    return [_TOKENS[(i * 7) % len(_TOKENS)] for i in range(n)]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _openai(n: int) -> Tuple[bytes, List[bytes]]:
    body = _dumps({
        "id": "chatcmpl-9xQpZbFcT3a1Xy7Lm2Nv0KwRd", "object": "chat.completion", "created": 1732700000,
        "model": "gpt-5.4-mini-2026-03-17",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": _TEXT, "refusal": None, "annotations": []},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default", "system_fingerprint": "fp_0ba0d124f1",
    })  # fmt: skip
    base = {"id": "chatcmpl-9xQpZbFcT3a1Xy7Lm2Nv0KwRd", "object": "chat.completion.chunk", "created": 1732700000,
            "model": "gpt-5.4-mini-2026-03-17", "service_tier": "default", "system_fingerprint": "fp_0ba0d124f1"}  # fmt: skip

    def ev(choices: List[Any], **extra: Any) -> bytes:
        return b"data: " + _dumps(dict(base, choices=choices, **extra)) + b"\n\n"

    events = [ev([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None,
                   "finish_reason": None}], usage=None, obfuscation="x1")]  # fmt: skip
    for tok in content_tokens(n):
        events.append(ev([{"index": 0, "delta": {"content": tok}, "logprobs": None, "finish_reason": None}],
                         usage=None, obfuscation="Ab3d"))  # fmt: skip
    events.append(ev([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], usage=None, obfuscation="q"))
    events.append(ev([], usage={"prompt_tokens": 19, "completion_tokens": n, "total_tokens": n + 19}))
    events.append(b"data: [DONE]\n\n")
    return body, events


def _anthropic(n: int) -> Tuple[bytes, List[bytes]]:
    body = _dumps({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": _TEXT}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 19, "output_tokens": 10, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "service_tier": "standard"},
    })  # fmt: skip

    def ev(name: str, data: Dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n"

    start = {"type": "message_start", "message": {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 19, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}  # fmt: skip
    events = [
        ev("message_start", start),
        ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ev("ping", {"type": "ping"}),
    ]
    for tok in content_tokens(n):
        events.append(ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": tok}}))
    events.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                       "usage": {"output_tokens": n}}))  # fmt: skip
    events.append(ev("message_stop", {"type": "message_stop"}))
    return body, events


def _ollama(n: int) -> Tuple[bytes, List[bytes]]:
    metrics = {"total_duration": 182242375, "load_duration": 41295167, "prompt_eval_count": 19,
               "prompt_eval_duration": 24573166, "eval_count": n, "eval_duration": 115959084}  # fmt: skip
    body = _dumps(dict({"model": "llama3.2", "created_at": "2025-07-07T20:22:19.19314Z",
                        "message": {"role": "assistant", "content": _TEXT}, "done": True, "done_reason": "stop"}, **metrics))  # fmt: skip
    events = [
        _dumps({"model": "llama3.2", "created_at": "2025-07-07T20:22:19.19314Z",
                "message": {"role": "assistant", "content": tok}, "done": False}) + b"\n"
        for tok in content_tokens(n)
    ]  # fmt: skip
    events.append(_dumps(dict({"model": "llama3.2", "created_at": "2025-07-07T20:22:19.19314Z",
                               "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"}, **metrics)) + b"\n")  # fmt: skip
    return body, events


def _http_json(body: bytes, content_type: bytes = b"application/json") -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nx-request-id: req_bench\r\n"
        b"request-id: req_bench\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


def _http_chunked(events: List[bytes], content_type: bytes) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nx-request-id: req_bench\r\n"
        b"request-id: req_bench\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    return head + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


def build_responses(chunks: int) -> Dict[Tuple[str, bool], bytes]:
    """Whole HTTP responses keyed by ``(path, stream)``."""
    out: Dict[Tuple[str, bool], bytes] = {}
    for path, build, ctype in (
        (OPENAI_PATH, _openai, b"text/event-stream; charset=utf-8"),
        (ANTHROPIC_PATH, _anthropic, b"text/event-stream; charset=utf-8"),
        (OLLAMA_PATH, _ollama, b"application/x-ndjson"),
    ):
        body, events = build(chunks)
        out[(path, False)] = _http_json(body)
        out[(path, True)] = _http_chunked(events, ctype)
    return out


def big_response(path: str, size: int) -> bytes:
    """A whole HTTP JSON chat answer for ``path`` whose body is about ``size`` bytes (ASCII text)."""
    text = "0123456789" * max(1, size // 10)
    if path == ANTHROPIC_PATH:
        body = _dumps({"id": "msg_big", "type": "message", "role": "assistant", "model": "m", "content": [{"type": "text", "text": text}],
                       "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 2}})  # fmt: skip
    elif path == OLLAMA_PATH:
        body = _dumps({"model": "m", "created_at": "2025-07-07T20:22:19.19314Z", "message": {"role": "assistant", "content": text},
                       "done": True, "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 2})  # fmt: skip
    else:
        body = _dumps({"id": "chatcmpl-big", "object": "chat.completion", "created": 1732700000, "model": "m",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})  # fmt: skip
    return _http_json(body)


# --------------------------------------------------------------------------
# server side (child process)
# --------------------------------------------------------------------------

_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"error\":\"not found\"}"
_PREFIX_RE = re.compile(r"^/_(d|big)/(\d+)(/.*)$")


class _Http(asyncio.Protocol):
    stats = {"connections": 0, "requests": 0, "open": 0, "peak_open": 0}
    big: Dict[Tuple[str, int], bytes] = {}

    def __init__(self, responses: Dict[Tuple[str, bool], bytes], delay: float) -> None:
        self.responses = responses
        self.delay = delay
        self.buf = b""
        self.transport: Any = None
        self.is_stats = False
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        st = _Http.stats
        st["connections"] += 1
        st["open"] += 1
        st["peak_open"] = max(st["peak_open"], st["open"])

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        _Http.stats["open"] -= 1

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            length = 0
            low = head.lower()
            at = low.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = low.find(b"\r\n", at + 2)
                length = int(low[at + 17 : stop if stop >= 0 else len(low)])
            total = end + 4 + length
            if len(buf) < total:
                break
            body = buf[end + 4 : total]
            buf = buf[total:]
            self._answer(head, body)
        self.buf = buf

    def _answer(self, head: bytes, body: bytes) -> None:
        line = head.split(b"\r\n", 1)[0].split(b" ")
        path = line[1].decode("latin-1").split("?", 1)[0] if len(line) > 1 else "/"
        if path == "/_stats":
            if not self.is_stats:
                self.is_stats = True
                _Http.stats["connections"] -= 1  # do not count the stats connection
            payload = _dumps(dict(_Http.stats, cpu_s=time.process_time()))
            self.transport.write(_http_json(payload))
            return
        delay, size = self.delay, 0
        match = _PREFIX_RE.match(path)
        while match:
            if match.group(1) == "d":
                delay = int(match.group(2)) / 1000.0
            else:
                size = int(match.group(2))
            path = match.group(3)
            match = _PREFIX_RE.match(path)
        if size:
            resp = _Http.big.get((path, size))
            if resp is None:
                resp = _Http.big[(path, size)] = big_response(path, size)
        else:
            resp = self.responses.get((path, bool(_STREAM_RE.search(body))), _NOT_FOUND)
        _Http.stats["requests"] += 1
        if delay > 0:
            self.loop.call_later(delay, self._write, resp)
        else:
            self.transport.write(resp)

    def _write(self, resp: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(resp)


def serve(delay: float = 0.0, chunks: int = 500, port: int = 0) -> None:
    """Serve on 127.0.0.1 (prints the port); exit when stdin closes."""
    responses = build_responses(chunks)
    raise_fd_limit()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Http(responses, delay), "127.0.0.1", port, backlog=4096, reuse_address=True)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    asyncio.run(main())


# --------------------------------------------------------------------------
# client side
# --------------------------------------------------------------------------


def server_stats(url: str) -> Dict[str, float]:
    """``GET /_stats`` of the server at ``url``; the query's own connection is not counted."""
    import http.client

    host, _, port = url.rpartition("/")[2].partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/_stats")
        data: Dict[str, float] = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return data


def raise_fd_limit() -> None:
    """Lift this process's open-file limit to its hard limit (thousands of sockets), where the OS allows."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else max(soft, 65536), hard))
    except (ImportError, ValueError, OSError):
        pass


class LoopbackServer:
    """Starts :func:`serve` in a child process; ``url`` is ``http://127.0.0.1:PORT``.

    :param delay: seconds the server waits before each answer.
    :param chunks: content events per streamed answer.
    """

    def __init__(self, delay: float = 0.0, chunks: int = 500) -> None:
        self.delay = delay
        self.chunks = chunks
        self._proc: Optional[subprocess.Popen] = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL of the server (no path)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LoopbackServer":
        """Start the child process and wait for its port."""
        cmd = [sys.executable, os.path.abspath(__file__), "--delay", repr(self.delay), "--chunks", str(self.chunks)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.strip():
            self.close()
            raise RuntimeError("the loopback server did not start")
        self.port = int(line)
        return self

    def stats(self) -> Dict[str, float]:
        """The server's counters (see the module docstring)."""
        return server_stats(self.url)

    def close(self) -> None:
        """Stop the child process."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin:
            try:
                proc.stdin.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _main(argv: Optional[List[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="loopback HTTP/1.1 server with canned provider responses")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--chunks", type=int, default=500)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    serve(args.delay, args.chunks, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
