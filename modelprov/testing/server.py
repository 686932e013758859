"""``FakeServer``: a loopback HTTP server that speaks each provider's wire protocol.

Replies are queued with the ``add_*`` methods and served first in, first out;
a reply with ``path=`` only answers requests whose path starts with it (the
first matching reply wins). The OpenAI and Anthropic batch APIs answer from
state (``server.batches``, :mod:`.batches`) when no queued reply matches.
Every request is recorded. Thread safe; handler
threads are daemon threads; ``close()`` never hangs.
"""

import socket
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._common import TextInput, ToolCallInput, check_protocol
from ._handler import FakeHTTPServer
from .batches import FakeBatches
from .factories import (
    chat_reply,
    embeddings_reply,
    error_reply,
    models_reply,
    no_reply_payload,
    raw_reply,
    stream_error_reply,
)
from .protocols import base_path, encode_json
from .replies import HeadersInput, Payload, RecordedRequest, Reply

__all__ = ["FakeServer"]


class FakeServer:
    """A fake provider endpoint on ``127.0.0.1`` (a free port by default), started on construction.

    Use as a context manager, or call :meth:`close`. See the package docstring
    for an example and :mod:`modelprov.testing.replies` for the fault options
    (``delay``, ``chunk_delay``, ``drop_after``, ``stall_after``, ``truncate``, ``trickle``)
    that every ``add_*`` method accepts.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._queue: List[Reply] = []
        self._default: Optional[Reply] = None
        self._requests: List[RecordedRequest] = []
        self._unmatched: List[RecordedRequest] = []
        self._conns: Dict[socket.socket, threading.Thread] = {}
        self._disconnects = 0
        self._aborted = 0
        self._accepted = 0
        self._closed = False
        self._httpd = FakeHTTPServer((host, port), self)
        self.host: str = host
        self.port: int = int(self._httpd.server_address[1])
        self.url: str = "http://%s:%d" % (host, self.port)
        #: The batch APIs' state: files, batches, progress and scripted answers (see :mod:`.batches`).
        self.batches = FakeBatches(self.url)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="FakeServer-%d" % self.port, daemon=True)
        self._thread.start()

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> "FakeServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def close(self, timeout: float = 1.0) -> None:
        """Stop serving: wake stalled and delayed replies, close every connection. Idempotent.

        Waits at most about ``timeout`` seconds for handler threads (they are daemon threads).
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._stop.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        with self._cond:
            conns = list(self._conns.items())
        for sock, _ in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for _, thread in conns:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def base_url(self, protocol: str) -> str:
        """The base URL a provider of ``protocol`` should use: ``url + "/v1"`` (openai,
        openai_compatible), ``url + "/api/v1"`` (openrouter), ``url`` (anthropic, ollama)."""
        return self.url + base_path(protocol)

    def __repr__(self) -> str:
        return "FakeServer(%s, pending=%d, requests=%d%s)" % (
            self.url, self.pending, len(self._requests), ", closed" if self._closed else "")

    # -- queueing -------------------------------------------------------------------------------

    def add(self, reply: Reply) -> Reply:
        """Queue a :class:`Reply` (built by a factory in :mod:`.factories` or by hand); returns it."""
        if not isinstance(reply, Reply):
            raise TypeError("add() takes a Reply, got %r" % type(reply).__name__)
        with self._cond:
            self._queue.append(reply)
        return reply

    def add_chat(
        self,
        protocol: str,
        text: TextInput = "",
        *,
        tool_calls: Optional[Sequence[ToolCallInput]] = None,
        usage: Optional[Mapping[str, Any]] = None,
        finish_reason: Optional[str] = None,
        model: Optional[str] = None,
        reasoning: Optional[str] = None,
        signature: Optional[str] = None,
        refusal: Optional[str] = None,
        redacted: Optional[str] = None,
        refusal_category: Optional[str] = None,
        chunk_words: bool = True,
        split_utf8: bool = False,
        stream: Optional[bool] = None,
        status: int = 200,
        path: Optional[str] = None,
        headers: Optional[HeadersInput] = None,
        request_id: Optional[str] = None,
        delay: float = 0.0, chunk_delay: float = 0.0, drop_after: Optional[int] = None, stall_after: Optional[int] = None,
        truncate: bool = False, trickle: float = 0.0, trickle_headers: bool = False,
    ) -> Reply:
        """Queue a chat reply; JSON, or a protocol-correct stream when the request asks for one.

        ``reasoning`` adds the protocol's reasoning output before the answer
        (Anthropic: a thinking block signed with ``signature``; OpenRouter:
        ``reasoning`` and ``reasoning_details``; Ollama: ``message.thinking``);
        ``refusal`` makes the model refuse (OpenAI ``refusal``, Anthropic's
        ``refusal`` stop reason with ``stop_details``, whose category is
        ``refusal_category``); ``redacted`` adds an Anthropic redacted thinking
        block with that data. See
        :func:`~modelprov.testing.factories.chat_reply` and
        :func:`~modelprov.testing.protocols.chat_stream`.
        """
        return self.add(chat_reply(
            protocol, text, tool_calls=tool_calls, usage=usage, finish_reason=finish_reason, model=model,
            reasoning=reasoning, signature=signature, refusal=refusal, redacted=redacted,
            refusal_category=refusal_category,
            chunk_words=chunk_words, split_utf8=split_utf8, stream=stream, status=status, path=path,
            headers=headers, request_id=request_id, delay=delay, chunk_delay=chunk_delay,
            drop_after=drop_after, stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers))

    def add_error(
        self,
        status: int,
        body: Union[Mapping[str, Any], str, bytes, None] = None,
        headers: Optional[HeadersInput] = None,
        *,
        protocol: Optional[str] = None,
        message: Optional[str] = None,
        type: Optional[str] = None,
        code: Union[str, int, None] = None,
        param: Optional[str] = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
        path: Optional[str] = None,
        delay: float = 0.0, chunk_delay: float = 0.0, drop_after: Optional[int] = None, stall_after: Optional[int] = None,
        truncate: bool = False, trickle: float = 0.0, trickle_headers: bool = False,
    ) -> Reply:
        """Queue an HTTP error; with ``protocol=`` and no ``body`` the provider's error shape is built.

        See :func:`~modelprov.testing.factories.error_reply`.
        """
        return self.add(error_reply(
            status, body, headers, protocol=protocol, message=message, type=type, code=code, param=param,
            request_id=request_id, retry_after=retry_after, path=path, delay=delay, chunk_delay=chunk_delay,
            drop_after=drop_after, stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers))

    def add_stream_error(
        self,
        protocol: str,
        after_chunks: int = 2,
        *,
        error_type: Optional[str] = None,
        message: Optional[str] = None,
        text: str = "partial",
        code: Union[str, int, None] = None,
        model: Optional[str] = None,
        path: Optional[str] = None,
        headers: Optional[HeadersInput] = None,
        request_id: Optional[str] = None,
        delay: float = 0.0, chunk_delay: float = 0.0, drop_after: Optional[int] = None, stall_after: Optional[int] = None,
        truncate: bool = False, trickle: float = 0.0, trickle_headers: bool = False,
    ) -> Reply:
        """Queue an HTTP 200 stream that sends ``text`` (in up to ``after_chunks`` pieces) and then
        the protocol's mid-stream error. See :func:`~modelprov.testing.protocols.stream_error_events`."""
        return self.add(stream_error_reply(
            protocol, after_chunks, error_type=error_type, message=message, text=text, code=code, model=model,
            path=path, headers=headers, request_id=request_id, delay=delay, chunk_delay=chunk_delay,
            drop_after=drop_after, stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers))

    def add_embeddings(
        self,
        protocol: str,
        vectors: Sequence[Sequence[float]],
        *,
        model: Optional[str] = None,
        path: Optional[str] = None,
        headers: Optional[HeadersInput] = None,
        request_id: Optional[str] = None,
        delay: float = 0.0, chunk_delay: float = 0.0, drop_after: Optional[int] = None, stall_after: Optional[int] = None,
        truncate: bool = False, trickle: float = 0.0, trickle_headers: bool = False,
    ) -> Reply:
        """Queue an embeddings reply (OpenAI-family shape, or Ollama ``/api/embed`` shape)."""
        return self.add(embeddings_reply(
            protocol, vectors, model=model, path=path, headers=headers, request_id=request_id, delay=delay,
            chunk_delay=chunk_delay, drop_after=drop_after, stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers))

    def add_models(
        self,
        protocol: str,
        ids: Sequence[Union[str, Mapping[str, Any]]],
        page_size: Optional[int] = None,
        *,
        path: Optional[str] = None,
        headers: Optional[HeadersInput] = None,
        request_id: Optional[str] = None,
        delay: float = 0.0, chunk_delay: float = 0.0, drop_after: Optional[int] = None, stall_after: Optional[int] = None,
        truncate: bool = False, trickle: float = 0.0, trickle_headers: bool = False,
    ) -> Reply:
        """Queue a model listing; for Anthropic it answers every page request (``after_id``, ``limit``,
        capped by ``page_size``) until the last page. See :func:`~modelprov.testing.factories.models_reply`."""
        return self.add(models_reply(
            protocol, ids, page_size, path=path, headers=headers, request_id=request_id, delay=delay,
            chunk_delay=chunk_delay, drop_after=drop_after, stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers))

    def add_raw(
        self,
        status: int = 200,
        headers: Optional[HeadersInput] = None,
        body: bytes = b"",
        chunks: Optional[Sequence[bytes]] = None,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        drop_after: Optional[int] = None,
        truncate: bool = False,
        stall: bool = False,
        path: Optional[str] = None,
        *,
        stall_after: Optional[int] = None,
        chunked: bool = True,
        trickle: float = 0.0,
        trickle_headers: bool = False,
    ) -> Reply:
        """Queue a fully manual reply. See :func:`~modelprov.testing.factories.raw_reply`."""
        return self.add(raw_reply(status, headers, body, chunks, delay, chunk_delay, drop_after, truncate, stall,
                                  path, stall_after=stall_after, chunked=chunked, trickle=trickle,
                                  trickle_headers=trickle_headers))

    def set_default(self, reply: Union[Reply, str, None] = None, *args: Any, **kwargs: Any) -> Optional[Reply]:
        """Set the reply used (repeatedly) when no queued reply matches.

        ``reply`` is a :class:`Reply`, or a protocol name whose remaining
        arguments go to :meth:`add_chat`'s factory (``set_default("openai", "hi")``),
        or ``None`` to remove the default (then unmatched requests get a 500
        ``FakeServer: no reply queued for <METHOD> <path>``). Kept by :meth:`reset`.
        """
        if isinstance(reply, str):
            reply = chat_reply(check_protocol(reply), *args, **kwargs)
        elif args or kwargs:
            raise TypeError("extra arguments are only accepted with a protocol name")
        if reply is not None and not isinstance(reply, Reply):
            raise TypeError("set_default() takes a Reply, a protocol name or None")
        with self._cond:
            self._default = reply
        return reply

    def advance_batches(self, batch_id: Optional[str] = None, steps: int = 1) -> None:
        """Move one batch (or every batch) ``steps`` stages on (see :meth:`.batches.FakeBatches.advance`)."""
        self.batches.advance(batch_id, steps)

    @property
    def pending(self) -> int:
        """Number of queued replies not served yet."""
        with self._cond:
            return len(self._queue)

    def reset(self) -> None:
        """Clear queued replies, recorded requests and the connection counters (the default stays)."""
        with self._cond:
            self._queue.clear()
            self._requests.clear()
            self._unmatched.clear()
            self._disconnects = 0
            self._aborted = 0
            self._accepted = 0

    # -- inspection -----------------------------------------------------------------------------

    @property
    def requests(self) -> List[RecordedRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def last_request(self) -> Optional[RecordedRequest]:
        """The most recent request, or ``None``."""
        with self._cond:
            return self._requests[-1] if self._requests else None

    @property
    def unmatched(self) -> List[RecordedRequest]:
        """Requests that found no queued reply and no default (they got the 500)."""
        with self._cond:
            return list(self._unmatched)

    @property
    def disconnects(self) -> int:
        """Connections the client closed or reset (idle or during a reply)."""
        with self._cond:
            return self._disconnects

    @property
    def aborted(self) -> int:
        """Connections the client closed while a reply was delayed, streaming or stalled."""
        with self._cond:
            return self._aborted

    @property
    def open_connections(self) -> int:
        """Client connections open right now (a connection counts until the server sees it closed)."""
        with self._cond:
            return len(self._conns)

    @property
    def accepted(self) -> int:
        """Client connections accepted since start or :meth:`reset` (1 for any number of calls over keep-alive)."""
        with self._cond:
            return self._accepted

    def wait_for_requests(self, n: int, timeout: float = 2.0) -> bool:
        """Wait until at least ``n`` requests were recorded; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= n, timeout)

    def wait_for_disconnect(self, timeout: float = 1.0, count: int = 1) -> bool:
        """Wait until ``count`` client disconnects during a reply (see :attr:`aborted`) were seen
        since start or :meth:`reset`; False on timeout.

        A reply counts as in progress while it is delayed, stalled or waiting
        between chunks, so cancellation tests should use ``stall``/``stall_after``
        or ``chunk_delay``: a short reply may be fully written (into the kernel's
        buffers) before the client leaves.
        """
        with self._cond:
            return self._cond.wait_for(lambda: self._aborted >= count, timeout)

    def wait_for_open_connections(self, n: int = 0, timeout: float = 1.0) -> bool:
        """Wait until exactly ``n`` connections are open; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._conns) == n, timeout)

    # -- called by handler threads --------------------------------------------------------------

    def _record(self, req: RecordedRequest) -> None:
        with self._cond:
            self._requests.append(req)
            self._cond.notify_all()

    def _take(self, req: RecordedRequest) -> Tuple[Optional[Reply], Payload]:
        with self._cond:
            index = next((i for i, r in enumerate(self._queue) if r.matches(req)), None)
            if index is None and self.batches.handles(req.path):
                return None, self.batches.answer(req)
            reply = self._queue[index] if index is not None else self._default
            if reply is None:
                self._unmatched.append(req)
                return None, no_reply_payload(req)
            try:
                payload = reply.render(req)
            except Exception as exc:  # a bad reply must not kill the handler
                payload = Payload(500, [("Content-Type", "application/json")], body=encode_json(
                    {"error": {"message": "FakeServer: %r failed to render: %r" % (reply, exc),
                               "type": "fakeserver_error"}}))
            reply.served += 1
            if index is not None and payload.final:
                del self._queue[index]
            return reply, payload

    def _conn_opened(self, sock: socket.socket) -> None:
        with self._cond:
            self._accepted += 1
            self._conns[sock] = threading.current_thread()
            self._cond.notify_all()
            closed = self._closed
        if closed:  # accepted while close() ran: end it now so the handler does not block
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _conn_closed(self, sock: socket.socket) -> None:
        with self._cond:
            self._conns.pop(sock, None)
            self._cond.notify_all()

    def _note_disconnect(self, during_reply: bool) -> None:
        with self._cond:
            self._disconnects += 1
            if during_reply:
                self._aborted += 1
            self._cond.notify_all()
