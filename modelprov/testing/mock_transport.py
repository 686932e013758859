"""``MockTransport``: a transport that answers in-process, from a handler: no sockets, no server.

For unit tests of code that calls models (yours or ours): the codecs, the
engine, retries, fallbacks and streams run exactly as in production, only
the network is replaced. The handler gets each request (a
:class:`MockRequest`: the :class:`~modelprov.types.HTTPRequest` plus the
resolved URL, the headers that would be sent and the encoded body) and
returns the answer::

    import modelprov
    from modelprov.testing import MockReply, MockTransport, chat_body, chat_stream

    def handler(request):
        assert request.url == "https://api.openai.com/v1/chat/completions"
        if request.json["model"] == "gone":
            return MockReply(404, {"error": {"message": "no such model", "type": "invalid_request_error"}})
        if request.stream:
            return MockReply(chunks=chat_stream("openai", "Hello world"))   # a list of chunks
        return chat_body("openai", "Hello world")                           # a JSON-able body: 200

    client = modelprov.Client(transport=MockTransport(handler), providers={"openai": {"api_key": "sk-test"}})
    assert client.complete("openai/gpt-5.4-mini", "Hi").text == "Hello world"

A handler returns a :class:`MockReply`, a body (``bytes``, ``str`` or
anything JSON-able: status 200), a ``(status, body)`` or ``(status, headers,
body)`` tuple (a body that is a list of ``bytes``/``str`` pieces, exceptions
allowed, is a stream's chunks; a list of other JSON values stays a JSON
body), or raises (a :class:`~modelprov.exceptions.ModelProvError`
goes to the caller as is: ``ProviderConnectionError("refused")``). Instead of
a function, give a list of such answers (served in order) or the replies
:class:`~modelprov.testing.FakeServer` takes (``chat_reply("anthropic", "Hi")``
renders the protocol's exact JSON or stream; ``drop_after`` and ``truncate``
cut the stream, time-based faults need the FakeServer).

Non-2xx statuses go through the same mapping as the real transport (the
provider's ``error_parser``, then the generic one), so a 429 with
``Retry-After`` is a ``RateLimitError`` with ``retry_after`` and is retried
like one. A chunk that is an exception is raised mid-stream. The call's
:class:`~modelprov.deadline.Deadline` is checked before the handler, after it
and between chunks, so a handler that advances an injected clock tests
timeouts without waiting. Every request is recorded in :attr:`MockTransport.requests`.
"""

import http
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlencode, urlsplit

from ..deadline import Deadline
from ..exceptions import ModelProvError, ProviderConnectionError, ProviderTimeoutError, ResponseError, ValidationError
from ..transport.base import ErrorParser, HeadersArg, Response, Transport, request_id
from ..transport.status import MAX_ERROR_BODY, error_from_status
from ..types import HTTPRequest, ProviderConfig
from .replies import Headers, Payload, RecordedRequest, Reply

__all__ = ["MockReply", "MockRequest", "MockResponse", "MockTransport"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
Chunk = Union[bytes, str, BaseException]
#: A chunk once encoded: bytes, or an exception to raise there.
Piece = Union[bytes, BaseException]


@dataclass(frozen=True)
class MockRequest:
    """What the handler sees: the codec's request as the real transport would send it."""

    method: str
    #: The resolved URL (base URL + path + query string).
    url: str
    #: The headers that would be sent (transport, provider and auth headers, then the request's own).
    headers: Headers
    #: The encoded body (compact JSON, or the request's raw ``body``, as sent), ``b""`` without one.
    body: bytes
    #: The request the codec built.
    request: HTTPRequest
    provider: Optional[str] = None
    attempt: int = 1

    @property
    def path(self) -> str:
        """The URL's path."""
        return urlsplit(self.url).path

    @property
    def json(self) -> Any:
        """The JSON body as the codec gave it (``None`` without one)."""
        return self.request.json

    @property
    def params(self) -> Mapping[str, Any]:
        """The query parameters the codec gave."""
        return self.request.params or {}

    @property
    def stream(self) -> bool:
        """True when the codec asked for a streamed body."""
        return self.request.stream


@dataclass
class MockReply:
    """An answer: ``status``, ``body`` (``bytes``/``str``/JSON-able) or ``chunks`` (a stream), ``headers``."""

    status: int = 200
    body: Any = None
    headers: HeadersArg = None
    #: A streamed body: ``bytes``/``str`` pieces, or exceptions raised where they stand.
    chunks: Optional[Sequence[Chunk]] = None
    #: Extra headers set in code (merged over ``headers``).
    extra: List[Tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, value: Any, request: Optional[RecordedRequest] = None) -> "MockReply":
        """Turn what a handler returned into a :class:`MockReply`."""
        if isinstance(value, MockReply):
            return value
        if isinstance(value, Reply):  # a FakeServer reply: render it for this request
            return cls.of(_from_fake_reply(value, request))
        if isinstance(value, Payload):
            chunks = None if value.chunks is None else list(value.chunks)
            return cls(value.status, value.body if chunks is None else None, list(value.headers), chunks)
        if isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[0], int) and not isinstance(value[0], bool):
            status, body, headers = value[0], value[-1], value[1] if len(value) == 3 else None
            if _is_chunk_list(body):  # (status, headers, [b"data: ...", ...]): a stream
                return cls(status, None, headers, list(body))
            return cls(status, body, headers)
        return cls(200, value)

    def encoded(self, answer: str = "MockReply") -> Tuple[Headers, bytes, Optional[List[Piece]]]:
        """(headers with a default Content-Type, body bytes, chunks with strings encoded).

        A body or chunk that cannot be encoded raises :class:`~modelprov.exceptions.ValidationError`
        naming ``answer`` (what the handler returned).
        """
        pairs: List[Tuple[str, str]] = []
        if self.headers:
            items = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
            pairs = [(str(k), str(v)) for k, v in items]
        pairs += self.extra
        names = {k.lower() for k, _ in pairs}
        if self.chunks is not None:
            chunks: List[Piece] = []
            for i, c in enumerate(self.chunks):
                if isinstance(c, str):
                    chunks.append(c.encode("utf-8"))
                elif isinstance(c, (bytes, bytearray)):
                    chunks.append(bytes(c))
                elif isinstance(c, BaseException):
                    chunks.append(c)
                else:
                    raise ValidationError(
                        f"MockTransport cannot send the {answer} the handler returned: chunk {i} is a "
                        f"{type(c).__name__}; stream chunks are bytes, str or exceptions"
                    )
            if "content-type" not in names:
                pairs.append(("Content-Type", "text/event-stream"))
            return Headers(pairs), b"", chunks
        body, kind = self.body, "application/json"
        if isinstance(body, (bytes, bytearray)):
            data, kind = bytes(body), "application/octet-stream"
        elif isinstance(body, str):
            data, kind = body.encode("utf-8"), "text/plain; charset=utf-8"
        elif body is None:
            data = b""
        else:
            try:
                data = json.dumps(body).encode("utf-8")
            except (TypeError, ValueError, RecursionError) as exc:
                hint = "; for a stream give a list of bytes/str chunks" if isinstance(body, (list, tuple)) else ""
                raise ValidationError(
                    f"MockTransport cannot send the {answer} the handler returned: its body "
                    f"({type(body).__name__}) is not bytes, str or JSON-serialisable ({exc}){hint}"
                ) from None
        if data and "content-type" not in names:
            pairs.append(("Content-Type", kind))
        return Headers(pairs), data, None


def _is_chunk_list(body: Any) -> bool:
    """True for a non-empty list/tuple of bytes/str/exception items: stream chunks, not a JSON array.

    A list holding anything else (numbers, dicts, ``None``) is a JSON body.
    """
    return (
        isinstance(body, (list, tuple))
        and len(body) > 0
        and all(isinstance(c, (bytes, bytearray, str, BaseException)) for c in body)
    )


def _from_fake_reply(reply: Reply, request: Optional[RecordedRequest]) -> Payload:
    if reply.stall_after is not None or reply.delay or reply.chunk_delay or reply.trickle:
        raise ValueError(f"MockTransport cannot play {reply!r}: time-based faults need a FakeServer")
    if request is None:
        raise ValueError("a FakeServer reply needs the request to render")
    payload = reply.render(request)
    reply.served += 1
    cut = reply.drop_after if reply.drop_after is not None else (-1 if reply.truncate else None)
    if cut is None:
        return payload
    chunks: List[Any] = list(payload.chunks) if payload.chunks is not None else ([payload.body] if payload.body else [])
    if cut >= 0:
        chunks = chunks[:cut]
    elif payload.chunks is None:
        chunks = [payload.body[: len(payload.body) // 2]]
    chunks.append(ProviderConnectionError("connection closed mid-stream by the mock server", retryable=True))
    return Payload(payload.status, payload.headers, chunks=chunks)


Handler = Callable[[MockRequest], Any]


class _Shared:
    """What every view of one MockTransport shares: the handler, the queue, the records."""

    def __init__(self, handler: Union[Handler, Sequence[Any], None]) -> None:
        self.lock = threading.Lock()
        self.handler: Optional[Handler] = None
        self.queue: List[Any] = []
        if callable(handler):
            self.handler = handler
        elif handler is not None:
            self.queue = list(handler)
        self.requests: List[MockRequest] = []
        self.closed = False


class MockTransport(Transport):
    """An in-process :class:`~modelprov.transport.base.Transport`; see the module docstring.

    :param handler: ``handler(MockRequest) -> answer``, or a list of answers served in order.
    :param base_url: joined with relative request paths (the provider's base URL once bound).
    :param provider: the provider name put on errors.
    :param error_parser: the provider's error hook (set when an engine binds the transport).
    :param auth_headers: headers added to every request (credentials, as the real transport sends them).
    """

    def __init__(
        self,
        handler: Union[Handler, Sequence[Any], None] = None,
        *,
        base_url: str = "http://mock.invalid",
        provider: Optional[str] = None,
        error_parser: Optional[ErrorParser] = None,
        auth_headers: HeadersArg = None,
        _shared: Optional[_Shared] = None,
    ) -> None:
        self._shared = _shared if _shared is not None else _Shared(handler)
        self.base_url = base_url
        self.provider = provider
        self.error_parser = error_parser
        items = auth_headers.items() if isinstance(auth_headers, Mapping) else (auth_headers or ())
        self.auth_headers: List[Tuple[str, str]] = [(str(k), str(v)) for k, v in items]

    def __repr__(self) -> str:
        return f"MockTransport(provider={self.provider!r}, requests={len(self._shared.requests)})"

    @property
    def requests(self) -> List[MockRequest]:
        """Every request sent through this transport (and the views it gave providers), in order."""
        with self._shared.lock:
            return list(self._shared.requests)

    @property
    def last_request(self) -> Optional[MockRequest]:
        """The most recent request, or ``None``."""
        with self._shared.lock:
            return self._shared.requests[-1] if self._shared.requests else None

    def add(self, *answers: Any) -> None:
        """Queue more answers (served in order, before the handler is asked)."""
        with self._shared.lock:
            self._shared.queue.extend(answers)

    def for_provider(
        self, config: ProviderConfig, *, error_parser: Optional[ErrorParser] = None, auth_headers: HeadersArg = None
    ) -> "MockTransport":
        """A view for one provider (its base URL, error parser and credentials), sharing handler and records."""
        headers = list(config.headers)
        items = auth_headers.items() if isinstance(auth_headers, Mapping) else (auth_headers or ())
        headers += [(str(k), str(v)) for k, v in items]
        return MockTransport(
            base_url=config.base_url or self.base_url, provider=config.name, error_parser=error_parser,
            auth_headers=headers, _shared=self._shared,
        )  # fmt: skip

    def close(self) -> None:
        """Later sends raise, as on a closed real transport."""
        self._shared.closed = True

    # -- sending --------------------------------------------------------------

    def _prepare(self, request: HTTPRequest, attempt: int) -> MockRequest:
        path = request.path
        url = path if "://" in path else self.base_url.rstrip("/") + "/" + path.lstrip("/") if path else self.base_url
        if request.params:
            query = urlencode([(k, v) for k, v in request.params.items() if v is not None], doseq=True)
            if query:
                url += ("&" if "?" in url else "?") + query
        headers = {"accept": ("Accept", "application/json")}
        for name, value in self.auth_headers:
            headers[name.lower()] = (name, value)
        for name, value in (request.headers or {}).items():
            if value is None:
                headers.pop(name.lower(), None)
            else:
                headers[name.lower()] = (name, value)
        body = b""
        if request.json is not None:
            try:
                body = _ENCODER.encode(request.json).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"request body is not JSON-serialisable: {exc}", provider=self.provider) from None
            headers.setdefault("content-type", ("Content-Type", "application/json"))
        elif request.body is not None:
            body = bytes(request.body)
        return MockRequest(request.method.upper(), url, Headers(headers.values()), body, request, self.provider, attempt)

    def _answer(self, mock: MockRequest) -> Tuple[MockReply, str]:
        """The reply, and what the handler (or the queue) gave, by type name, for error messages."""
        shared = self._shared
        with shared.lock:
            shared.requests.append(mock)
            answer = shared.queue.pop(0) if shared.queue else None
            queued = answer is not None
        if not queued:
            if shared.handler is None:
                return MockReply(500, {"error": {"message": f"MockTransport: no reply queued for {mock.method} {mock.path}"}}), "MockReply"
            answer = shared.handler(mock)
        if isinstance(answer, BaseException):
            raise answer
        recorded = RecordedRequest(mock.method, mock.path, {k: str(v) for k, v in mock.params.items()}, mock.headers, mock.body, mock.json)
        return MockReply.of(answer, recorded), type(answer).__name__

    def send(self, request: HTTPRequest, deadline: Deadline, *, attempt: int = 1) -> "MockResponse":
        """Ask the handler; a 2xx :class:`MockResponse`, else the mapped exception."""
        provider = self.provider
        if self._shared.closed:
            raise ProviderConnectionError(f"the transport for {provider} is closed", provider=provider, retryable=False)
        deadline.check(provider)
        started = time.perf_counter()
        mock = self._prepare(request, attempt)
        reply, answer = self._answer(mock)
        deadline.check(provider)
        headers, body, chunks = reply.encoded(answer)
        rid = request_id(headers)
        if not 200 <= reply.status < 300:
            if chunks is not None:
                body = b"".join(c for c in chunks if isinstance(c, bytes))
            try:
                reason = http.HTTPStatus(reply.status).phrase
            except ValueError:
                reason = ""
            raise error_from_status(
                status=reply.status, reason=reason, headers=headers, body=body[:MAX_ERROR_BODY], provider=provider,
                host=urlsplit(mock.url).hostname or "mock", request_id=rid, error_parser=self.error_parser,
            )  # fmt: skip
        return MockResponse(reply.status, headers, rid, time.perf_counter() - started, mock.url, provider, body, chunks, deadline)


class MockResponse(Response):
    """A 2xx answer of :class:`MockTransport`: a body, or chunks yielded one by one."""

    def __init__(
        self,
        status_code: int,
        headers: Headers,
        rid: Optional[str],
        latency_s: float,
        url: str,
        provider: Optional[str],
        body: bytes,
        chunks: Optional[List[Piece]],
        deadline: Deadline,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.request_id = rid
        self.latency_s = latency_s
        self.url = url
        self.provider = provider
        self._body = body
        self._chunks = chunks
        self._deadline = deadline
        self._consumed = self._aborted = self.closed = False

    @property
    def source(self) -> str:
        """The host the URL names."""
        return urlsplit(self.url).hostname or "mock"

    @property
    def content(self) -> bytes:
        """The whole body (joins the chunks of a stream)."""
        if self._chunks is None:
            return self._body
        return b"".join(self.iter_bytes())

    @property
    def aborted(self) -> bool:
        """True once :meth:`abort` was called."""
        return self._aborted

    def iter_bytes(self) -> Iterator[bytes]:
        """The chunks (or the body), checking the deadline and ``abort()`` before each."""
        if self._chunks is None:
            return iter((self._body,) if self._body else ())
        if self._consumed:
            raise ResponseError("the response body was already consumed", provider=self.provider)
        self._consumed = True
        return self._stream(self._chunks)

    def _stream(self, chunks: List[Piece]) -> Iterator[bytes]:
        try:
            for chunk in chunks:
                if self._aborted:
                    raise ProviderConnectionError("stream aborted by the caller", provider=self.provider, retryable=False, aborted=True)
                self._deadline.check(self.provider)
                if isinstance(chunk, ModelProvError):
                    if chunk.provider is None:
                        chunk.provider = self.provider
                    raise chunk
                if isinstance(chunk, TimeoutError):
                    raise ProviderTimeoutError(f"read timeout mid-stream from {self.source} (mock)", provider=self.provider) from chunk
                if isinstance(chunk, OSError):
                    raise ProviderConnectionError(f"connection reset by {self.source} mid-stream (mock)", provider=self.provider) from chunk
                if isinstance(chunk, BaseException):
                    raise chunk
                if chunk:
                    yield chunk
        finally:
            self.closed = True

    def close(self) -> None:
        """Nothing to release; marks the response closed."""
        self.closed = True

    def abort(self) -> None:
        """The next chunk raises ``ProviderConnectionError`` (``aborted=True``)."""
        self._aborted = True

    def drain(self, timeout: float = 0.0, limit: int = 0) -> bool:
        """Nothing to finish in-process: closes; True (as a connection that went back to the pool)."""
        self.close()
        return True
