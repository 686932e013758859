"""``ChunkStream``: runs a provider's stream decoder over a live HTTP stream.

Opening the stream and reading up to its first chunk happens under the retry
policy and the circuit breaker (a stream that fails before anything reached
the caller is retried); after that, errors are raised as they are. The idle
and total deadlines are enforced here, between meaningful events: keep-alive
comments and pings do not reset the idle clock. ``abort()`` may be called
from any thread and unblocks a pending read.
"""

import json
import threading
from typing import TYPE_CHECKING, Any, Iterator, List, Optional

from ..exceptions import ModelProvError, ProviderError, ServerError
from ..types import ChatRequest, StreamChunk

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


class ChunkStream:
    """An iterator of :class:`~modelprov.types.StreamChunk` for one streamed answer.

    Use it in a ``for`` loop or a ``with`` block. ``close()`` releases the
    connection; ``abort()`` (thread-safe) interrupts a read blocked in
    another thread. Nothing is sent until the first ``next()``.
    """

    def __init__(self, provider: "ModelProvider", req: ChatRequest, *, timeout: Optional[float] = None) -> None:
        self._provider = provider
        self._req = req
        self._timeout = timeout
        self._gen: Optional[Iterator[StreamChunk]] = None
        self._open: Optional[_Open] = None
        self._aborted = False
        self._closed = False
        self._running = False
        self._lock = threading.Lock()
        #: The request id of the HTTP response, once known.
        self.request_id: Optional[str] = None

    def __iter__(self) -> "ChunkStream":
        return self

    def __next__(self) -> StreamChunk:
        if self._closed:
            raise StopIteration
        if self._gen is None:
            self._gen = self._run()
        self._running = True
        try:
            return next(self._gen)
        finally:
            self._running = False

    def __enter__(self) -> "ChunkStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    def abort(self) -> None:
        """Interrupt the stream from any thread; a blocked read returns promptly."""
        with self._lock:
            self._aborted = True
            opened = self._open
        if opened is not None:
            try:
                opened.response.abort()
            except Exception:  # pragma: no cover - defensive
                pass

    def close(self) -> None:
        """Stop the stream and release its connection (safe to call twice)."""
        if self._closed:
            return
        if self._running:
            # next() is executing in another thread: unblock it; it cleans up.
            self.abort()
            self._closed = True
            return
        self._closed = True
        gen = self._gen
        if gen is not None:
            try:
                gen.close()  # type: ignore[attr-defined]
            except ValueError:  # pragma: no cover - raced with a running next()
                self.abort()
        else:
            self._release()

    # ----------------------------------------------------------------- work
    def _release(self) -> None:
        opened = self._open
        if opened is not None:
            try:
                opened.response.close()
            except Exception:  # pragma: no cover - defensive
                pass

    def _total_timeout(self) -> Optional[float]:
        """The stream's total deadline: the per-call timeout, else the configured one."""
        configured = self._provider.config.timeout
        if self._timeout is None:
            return configured
        return self._timeout if configured is None else min(self._timeout, configured)

    def _new_parser(self) -> Any:
        from ..streaming import NDJSONParser, SSEParser

        if self._provider.stream_format == "ndjson":
            return NDJSONParser(provider=self._provider.instance_name)
        return SSEParser()

    def _raise_error_field(self, value: str) -> None:
        provider = self._provider
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

    def _read(self, opened: _Open, until_output: bool) -> Iterator[StreamChunk]:
        """Yield decoded chunks; with ``until_output`` stop after the first batch."""
        parser = opened.parser
        decoder = opened.decoder
        deadline = opened.deadline
        provider_name = self._provider.instance_name
        request_id = opened.response.request_id
        keepalive = decoder.is_keepalive
        feed = decoder.feed
        for raw in opened.chunks:
            produced = False
            for event in parser.feed(raw):
                if keepalive(event):
                    continue
                deadline.touch()
                for chunk in feed(event):
                    chunk.provider = provider_name
                    chunk.request_id = request_id
                    produced = True
                    yield chunk
                if decoder.done:
                    break
            errors = getattr(parser, "error_fields", None)
            if errors:
                self._raise_error_field(errors[0])
            if decoder.done:
                break
            deadline.check()
            if until_output and produced:
                return
        opened.finished = True
        if not decoder.done:
            parser.close()
            errors = getattr(parser, "error_fields", None)
            if errors:
                self._raise_error_field(errors[0])
        for chunk in decoder.finish():
            chunk.provider = provider_name
            chunk.request_id = request_id
            yield chunk

    def _attempt(self, attempt: int, http: Any) -> _Open:
        from ..streaming import StreamDeadline

        provider = self._provider
        breaker = provider._breaker
        permit = breaker.acquire() if breaker is not None else None
        response = None
        try:
            if self._aborted:
                raise ProviderError("stream aborted before it started", provider=provider.instance_name)
            response = provider._get_transport().send(http, timeout=self._timeout, attempt=attempt)
            cfg = provider.config
            opened = _Open(
                response,
                response.iter_bytes(),
                self._new_parser(),
                provider.new_stream_decoder(self._req),
                StreamDeadline(cfg.idle_timeout, self._total_timeout(), clock=provider._clock, provider=provider.instance_name),
                permit,
            )
            with self._lock:
                self._open = opened
                aborted = self._aborted
            if aborted:
                response.abort()
            self.request_id = response.request_id
            opened.pending = list(self._read(opened, until_output=True))
            return opened
        except BaseException as exc:
            if permit is not None:
                permit.record(exc)
            if response is not None:
                response.close()
            provider.add_connection_hint(exc)
            raise

    def _run(self) -> Iterator[StreamChunk]:
        from ..retry import call_with_retry

        provider = self._provider
        provider.validate_config()
        http = provider._with_auth(provider.build_chat_request(self._req))
        if "Accept" not in http.headers and "accept" not in http.headers:
            accept = "application/x-ndjson" if provider.stream_format == "ndjson" else "text/event-stream"
            http.headers["Accept"] = accept
        opened = call_with_retry(
            provider._policy_for(self._timeout),
            lambda n: self._attempt(n, http),
            sleep=provider._sleep,
            clock=provider._clock,
            on_retry=provider._on_retry,
            provider=provider.instance_name,
        )
        permit = opened.permit
        try:
            for chunk in opened.pending:
                yield chunk
            opened.pending = []
            if not opened.finished:
                for chunk in self._read(opened, until_output=False):
                    yield chunk
        except GeneratorExit:
            if permit is not None:
                permit.ignore()
            raise
        except BaseException as exc:
            if permit is not None:
                permit.record(exc)
            if isinstance(exc, ModelProvError) and self._aborted:
                exc.extra.setdefault("aborted", True)
            raise
        else:
            if permit is not None:
                permit.success()
        finally:
            self._release()
