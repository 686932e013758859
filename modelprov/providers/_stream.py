"""``ChunkStream``: runs a provider's stream decoder over a live HTTP stream.

Opening the stream and reading up to its first chunk happens under the retry
policy and the circuit breaker (a stream that fails before anything reached
the caller is retried); after that, errors are raised as they are. Deadlines:
a per-call ``timeout`` bounds every attempt and wait of the call; the idle
deadline runs between meaningful events (keep-alive comments and pings do
not reset it) and also caps each socket read, so a silent server is caught
too. ``abort()`` may be called from any thread and unblocks a pending read or
a retry wait; a stream stopped by its caller never counts against the
provider's circuit breaker.

The generator doing the work holds only a :class:`_StreamState`, never the
:class:`ChunkStream` wrapper, so a stream that is dropped without ``close()``
is finalised at once by reference counting: its connection goes back to the
pool and its breaker permit is released.
"""

import json
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator, List, Optional

from ..stream_handle import StreamHandle
from ..exceptions import ModelProvError, ProviderConnectionError, ServerError, UnsupportedFeatureError
from ..types import ChatRequest, HTTPRequest, StreamChunk

if TYPE_CHECKING:  # pragma: no cover
    from .base import ModelProvider

__all__ = ["ChunkStream"]


class _Open:
    """One opened HTTP stream with its parser, decoder, deadline and breaker permit."""

    __slots__ = ("response", "chunks", "parser", "decoder", "deadline", "permit", "pending", "finished")

    def __init__(self, response: Any, chunks: Iterator[bytes], parser: Any, decoder: Any, deadline: Any, permit: Any) -> None:
        self.response = response
        self.chunks = chunks
        self.parser = parser
        self.decoder = decoder
        self.deadline = deadline
        self.permit = permit
        self.pending: List[StreamChunk] = []
        self.finished = False


def drain_response(response: Any) -> None:
    """Finish a body whose protocol ended (bounded by ``Response.drain``) so its connection is reused."""
    drain = getattr(response, "drain", None)
    if drain is not None:
        try:
            drain()
        except Exception:  # pragma: no cover - Response.drain never raises
            pass


class _StreamState:
    """Everything one stream needs; shared by the wrapper and its generator."""

    def __init__(self, provider: "ModelProvider", req: ChatRequest, timeout: Optional[float]) -> None:
        self.provider = provider
        self.req = req
        self.timeout = timeout
        self.opened: Optional[_Open] = None
        self.aborted = threading.Event()
        self.lock = threading.Lock()
        self.request_id: Optional[str] = None
        self.start: Optional[float] = None
        self.answered = False  # a chunk with a finish reason reached the caller

    # ------------------------------------------------------------- control
    def abort(self) -> None:
        with self.lock:
            self.aborted.set()
            opened = self.opened
        if opened is not None:
            try:
                opened.response.abort()
            except Exception:  # pragma: no cover - defensive
                pass

    def cancel(self) -> None:
        """Stop a stream that never started: the first ``next()`` sends nothing."""
        self.aborted.set()

    def release(self) -> None:
        opened = self.opened
        if opened is not None:
            try:
                opened.response.close()
            except Exception:  # pragma: no cover - defensive
                pass

    def aborted_error(self) -> ProviderConnectionError:
        return ProviderConnectionError("stream aborted by the caller", provider=self.provider.instance_name, retryable=False, aborted=True)

    def sleep(self, seconds: float) -> None:
        """Retry waits: the provider's (injectable) sleep, cut short by ``abort()``."""
        provider = self.provider
        if provider._sleep is time.sleep:
            self.aborted.wait(seconds)
        else:
            provider._sleep(seconds)
        if self.aborted.is_set():
            raise self.aborted_error()

    # ------------------------------------------------------------ deadlines
    def left(self) -> Optional[float]:
        """Seconds left of the per-call timeout (``None`` without one)."""
        if self.timeout is None or self.start is None:
            return self.timeout
        return self.timeout - (self.provider._clock() - self.start)

    def total_timeout(self) -> Optional[float]:
        """The total deadline for this attempt: time left of the call, else the configured one."""
        configured = self.provider.config.timeout
        left = self.left()
        if left is None:
            return configured
        return left if configured is None else min(left, configured)

    def read_timeout(self) -> Optional[float]:
        """Socket read timeout for one attempt: the idle deadline and the time left cap it."""
        caps = [t for t in (self.provider.config.idle_timeout, self.left()) if t is not None]
        return max(min(caps), 0.001) if caps else None

    # ------------------------------------------------------------ decoding
    def new_parser(self) -> Any:
        from ..streaming import NDJSONParser, SSEParser

        if self.provider.stream_format == "ndjson":
            return NDJSONParser(provider=self.provider.instance_name)
        return SSEParser()

    def raise_error_field(self, value: str) -> None:
        provider = self.provider
        try:
            body = json.loads(value)
        except ValueError:
            body = None
        status = 500
        if isinstance(body, dict):
            err = body.get("error", body)
            code = err.get("code") if isinstance(err, dict) else None
            if isinstance(code, int) and 400 <= code < 600:
                status = code
        exc = provider.parse_error(status, body, value, {})
        if exc is None:
            exc = ServerError(f"error in stream: {value}")
        if exc.provider is None:
            exc.provider = provider.instance_name
        raise exc

    def read(self, opened: _Open, until_output: bool) -> Iterator[StreamChunk]:
        """Yield decoded chunks; with ``until_output`` stop after the first batch.

        The hot loop: one pass per network item. The idle clock is reset once
        per item that held a meaningful event, after the caller consumed its
        chunks (the caller's own time never counts as server idleness). At the
        protocol's terminator the rest of the body is drained (bounded) so the
        connection goes back to the pool.
        """
        parser = opened.parser
        decoder = opened.decoder
        deadline = opened.deadline
        provider_name = self.provider.instance_name
        request_id = opened.response.request_id
        keepalive = decoder.is_keepalive
        feed = decoder.feed
        parse = parser.feed
        touch = deadline.touch
        check = deadline.check
        errors = getattr(parser, "error_fields", None)
        if errors is None:
            errors = []  # NDJSON: no error fields (SSEParser appends to its list in place)
        for raw in opened.chunks:
            produced = meaningful = False
            for event in parse(raw):
                if keepalive(event):
                    continue
                meaningful = True
                for chunk in feed(event):
                    chunk.provider = provider_name
                    chunk.request_id = request_id
                    produced = True
                    if chunk.finish_reason:
                        self.answered = True
                        if self.req.dropped:
                            chunk.dropped_options = list(self.req.dropped)
                    yield chunk
                if decoder.done:
                    break
            if meaningful:
                touch()
            if errors:
                self.raise_error_field(errors[0])
            if decoder.done:
                break
            check()
            if produced and until_output:
                return
        opened.finished = True
        if decoder.done:
            drain_response(opened.response)
        else:
            parser.close()
            if errors:
                self.raise_error_field(errors[0])
        for chunk in decoder.finish():
            chunk.provider = provider_name
            chunk.request_id = request_id
            yield chunk

    # --------------------------------------------------------------- work
    def build_http(self) -> HTTPRequest:
        """The HTTP request for ``self.req``, with auth and an ``Accept`` header for the stream format."""
        provider = self.provider
        http = provider._with_auth(provider.build_chat_request(self.req))
        if "Accept" not in http.headers and "accept" not in http.headers:
            headers = dict(http.headers)  # a copy: the request may be the codec's own object
            headers["Accept"] = "application/x-ndjson" if provider.stream_format == "ndjson" else "text/event-stream"
            http = HTTPRequest(http.method, http.path, headers, http.json, http.params, http.stream)
        return http

    def attempt(self, attempt: int, http: Any) -> _Open:
        from ..exceptions import ProviderTimeoutError
        from ..streaming import StreamDeadline

        provider = self.provider
        breaker = provider._breaker
        if self.aborted.is_set():
            raise self.aborted_error()
        left = self.left()
        if left is not None and left <= 0:
            raise ProviderTimeoutError(f"call timeout of {self.timeout:g}s exceeded", provider=provider.instance_name)
        permit = breaker.acquire() if breaker is not None else None
        response = None
        try:
            response = provider._get_transport().send(http, timeout=self.read_timeout(), attempt=attempt)
            cfg = provider.config
            opened = _Open(
                response,
                response.iter_bytes(),
                self.new_parser(),
                provider.new_stream_decoder(self.req),
                StreamDeadline(cfg.idle_timeout, self.total_timeout(), clock=provider._clock, provider=provider.instance_name),
                permit,
            )
            with self.lock:
                self.opened = opened
                aborted = self.aborted.is_set()
            if aborted:
                response.abort()
            self.request_id = response.request_id
            opened.pending = list(self.read(opened, until_output=True))
            coalesce = getattr(response, "coalesce", None)
            if coalesce is not None:  # nothing is retried after this: chunk boundaries no longer matter
                coalesce()
            return opened
        except BaseException as exc:
            if permit is not None:
                if self.aborted.is_set():
                    permit.ignore()
                else:
                    permit.record(exc)
            if response is not None:
                response.close()
            provider.add_connection_hint(exc)
            raise

    def run(self) -> Iterator[StreamChunk]:
        from ..retry import call_with_retry
        from .unsupported import learn_unsupported

        provider = self.provider
        provider.validate_config()
        self.start = provider._clock()
        while True:
            http = self.build_http()
            try:
                left = self.left()
                opened = call_with_retry(
                    provider._policy_for(None if left is None else max(left, 1e-3)),
                    lambda n: self.attempt(n, http),
                    sleep=self.sleep,
                    clock=provider._clock,
                    on_retry=provider._on_retry,
                    provider=provider.instance_name,
                )
            except UnsupportedFeatureError as exc:
                self.req = learn_unsupported(provider, self.req, exc)  # resend once without the option
                continue
            break
        permit = opened.permit
        try:
            pending, opened.pending = opened.pending, []
            yield from pending
            if not opened.finished:
                yield from self.read(opened, until_output=False)
        except GeneratorExit:
            done = opened.decoder.done
            if done and not opened.finished and not self.aborted.is_set():
                drain_response(opened.response)  # stopped right at the terminator: keep the connection
            if permit is not None:
                # the caller stopped reading: a success if the answer was complete, else no verdict
                permit.success() if (done or self.answered) else permit.ignore()
            raise
        except BaseException as exc:
            if permit is not None:
                permit.ignore() if self.aborted.is_set() else permit.record(exc)
            if isinstance(exc, ModelProvError) and self.aborted.is_set():
                exc.extra.setdefault("aborted", True)
            raise
        else:
            if permit is not None:
                permit.success()
        finally:
            self.release()


class ChunkStream(StreamHandle[StreamChunk]):
    """An iterator of :class:`~modelprov.types.StreamChunk` for one streamed answer.

    Use it in a ``for`` loop or a ``with`` block. ``close()`` releases the
    connection; ``abort()`` (thread-safe) interrupts a read or a retry wait
    blocked in another thread. Nothing is sent until the first ``next()``.
    """

    def __init__(self, provider: "ModelProvider", req: ChatRequest, *, timeout: Optional[float] = None) -> None:
        super().__init__(_StreamState(provider, req, timeout))

    @property
    def request_id(self) -> Optional[str]:
        """The request id of the HTTP response, once known."""
        return self._state.request_id
