"""Offline testing helpers: a loopback fake server that speaks every provider's wire protocol,
and an in-process mock transport.

:class:`MockTransport` (see :mod:`modelprov.testing.mock_transport`) replaces
the network without sockets: ``Client(transport=MockTransport(handler))``,
where ``handler(request)`` returns a status, headers and a body or a list of
chunks. Use it for codec, engine and application logic; use
:class:`FakeServer` when the test is about real sockets (timeouts, resets,
connection reuse).

Standard library only, so it works in your own test suite without extra
dependencies. :class:`FakeServer` listens on ``127.0.0.1`` (a free port),
answers with queued replies in the exact JSON, SSE or NDJSON shapes of
OpenAI, OpenRouter, OpenAI-compatible servers, Anthropic and Ollama, records
every request, and injects faults (delays, dropped connections, truncated or
stalled streams)::

    import modelprov
    from modelprov.testing import FakeServer

    def test_hello():
        with FakeServer() as server:
            server.add_chat("openai", "Hello world", usage={"input_tokens": 5, "output_tokens": 2})
            client = modelprov.Client(providers={
                "openai": {"api_key": "test-key", "base_url": server.base_url("openai")}})
            reply = client.complete("openai/gpt-5.4-mini", "Say hello")
            assert reply.text == "Hello world"
            assert server.last_request.json["model"] == "gpt-5.4-mini"

            # The same reply streams when the request says "stream": true.
            server.add_chat("anthropic", "Hi", tool_calls=[{"name": "f", "arguments": {"a": 1}}])
            server.add_error(429, protocol="openai", retry_after=1)
            server.add_stream_error("anthropic", after_chunks=2)       # 200, then event: error
            server.add_raw(chunks=[b"data: {}\\n\\n"], stall_after=1)  # one event, then hang

Replies are served first in, first out; ``path=`` restricts a reply to
request paths starting with it. With nothing queued the server answers 500
``FakeServer: no reply queued for POST /v1/chat/completions`` unless
:meth:`FakeServer.set_default` set a reply. Every ``add_*`` accepts
``delay``, ``chunk_delay``, ``drop_after``, ``stall_after``, ``truncate`` and
``trickle`` (one byte at a time: ``trickle=0.05, trickle_headers=True`` is a
server no read timeout catches; see :mod:`modelprov.testing.replies`).
:attr:`FakeServer.batches` (:class:`FakeBatches`) speaks OpenAI's Batch API
(files, batches) and Anthropic's Message Batches from state, with status
progression, a results file mixing successes and errors, cancel and expiry.
:attr:`FakeServer.open_connections` and :attr:`FakeServer.accepted` count
client connections, so a test can check that ``close()`` closed them all.

The payload builders (:func:`openai_stream_events`,
:func:`anthropic_stream_events`, :func:`ollama_stream_lines`,
:func:`error_body` ...) return exactly the bytes and dicts the server sends,
so decoder tests can use them without a socket.
"""

from ._anthropic import (
    anthropic_error_body,
    anthropic_message,
    anthropic_models,
    anthropic_stream_error_events,
    anthropic_stream_events,
)
from ._common import PROTOCOLS, normalize_usage, split_text, split_utf8, sse_comment, sse_event
from ._ollama import (
    ollama_chat,
    ollama_embed,
    ollama_error_body,
    ollama_stream_error_lines,
    ollama_stream_lines,
    ollama_tags,
)
from ._openai import (
    openai_completion,
    openai_embeddings,
    openai_error_body,
    openai_models,
    openai_stream_error_events,
    openai_stream_events,
    openai_unsupported_body,
)
from .batches import FakeBatches
from .factories import (
    chat_reply,
    embeddings_reply,
    error_reply,
    models_reply,
    raw_reply,
    stream_error_reply,
)
from .mock_transport import MockReply, MockRequest, MockResponse, MockTransport
from .protocols import (
    chat_body,
    chat_stream,
    embeddings_body,
    error_body,
    models_body,
    stream_error_events,
)
from .replies import Headers, Payload, RecordedRequest, Reply
from .server import FakeServer

__all__ = [
    "PROTOCOLS",
    "FakeBatches",
    "FakeServer",
    "Headers",
    "MockReply",
    "MockRequest",
    "MockResponse",
    "MockTransport",
    "Payload",
    "RecordedRequest",
    "Reply",
    "anthropic_error_body",
    "anthropic_message",
    "anthropic_models",
    "anthropic_stream_error_events",
    "anthropic_stream_events",
    "chat_body",
    "chat_reply",
    "chat_stream",
    "embeddings_body",
    "embeddings_reply",
    "error_body",
    "error_reply",
    "models_body",
    "models_reply",
    "normalize_usage",
    "ollama_chat",
    "ollama_embed",
    "ollama_error_body",
    "ollama_stream_error_lines",
    "ollama_stream_lines",
    "ollama_tags",
    "openai_completion",
    "openai_embeddings",
    "openai_error_body",
    "openai_unsupported_body",
    "openai_models",
    "openai_stream_error_events",
    "openai_stream_events",
    "raw_reply",
    "sse_comment",
    "sse_event",
    "split_text",
    "split_utf8",
    "stream_error_events",
    "stream_error_reply",
]
