"""The engine's stream runner: a provider's stream decoder over a live HTTP stream.

Opening the stream and reading up to its first chunk happens under the retry
policy and the circuit breaker (a stream that fails before anything reached
the caller is retried); after that, errors are raised as they are. Time: the
call's :class:`~modelprov.deadline.Deadline` bounds every attempt, retry wait
and read of the call (it goes to ``transport.send`` and is checked after the
headers and after each network item), and the provider's ``idle_timeout``
bounds the gap between meaningful events (keep-alive comments and pings do not
reset it; the caller's own time between chunks never counts). Either raises
:class:`~modelprov.exceptions.ProviderTimeoutError`. ``abort()`` may be called
from any thread and unblocks a pending read or a retry wait; a stream stopped
by its caller never counts against the provider's circuit breaker.

The generator doing the work holds only a :class:`_StreamState`, never the
:class:`~modelprov.stream_handle.ProviderStream` handle, so a stream that is
dropped without ``close()`` is finalised at once by reference counting: its
connection goes back to the pool and its breaker permit is released.

With a rate limiter each attempt waits for its slot before the breaker's
permit, and the stream's final usage reconciles its tokens; with usage totals
the stream is counted once it ends, however it ends.

Also here, below :mod:`modelprov.engine` (which imports this module):
:class:`StreamEngine`, the engine as the runner sees it (the breaker
interface and the null breaker, re-exported, live in
:mod:`modelprov.breaker_api`).
"""

import functools
import json
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator, List, Optional, Protocol, TypeVar

from .breaker_api import NULL_BREAKER, BreakerLike, NullBreaker, PermitLike
from .deadline import Deadline
from .exceptions import ModelProvError, ProviderConnectionError, ProviderTimeoutError, ServerError, UnsupportedFeatureError
from .stream_handle import ProviderStream
from .transport.base import Response, Transport
from .types import ChatRequest, HTTPRequest, StreamChunk, Usage

if TYPE_CHECKING:  # pragma: no cover
    from .providers.base import ModelProvider, Records, StreamDecoder
    from .ratelimit import Estimate, RateLimiter
    from .usage import UsageTotals

__all__ = ["NULL_BREAKER", "BreakerLike", "NullBreaker", "PermitLike", "StreamEngine", "drain_response", "open_stream"]

T = TypeVar("T")


class StreamEngine(Protocol):
    """The engine as the stream runner uses it (:class:`modelprov.engine.Engine`)."""

    breaker: BreakerLike
    sleep: Callable[[float], None]
    limiter: "Optional[RateLimiter]"
    usage: "Optional[UsageTotals]"

    @property
    def clock(self) -> Callable[[], float]: ...  # pragma: no cover - protocol

    def transport(self, provider: "ModelProvider") -> Transport: ...  # pragma: no cover - protocol

    def with_auth(self, provider: "ModelProvider", request: HTTPRequest, transport: Transport) -> HTTPRequest: ...  # pragma: no cover

    def retrying(
        self, name: str, deadline: Deadline, attempt: Callable[[int], T], retries: "Optional[Records]", sleep: Optional[Callable[[float], None]] = None
    ) -> T: ...  # pragma: no cover - protocol

    def run(
        self, provider: "ModelProvider", deadline: Deadline, fn: Callable[[int], T], retries: "Optional[Records]", tokens: "Optional[Estimate]" = None
    ) -> T: ...  # pragma: no cover - protocol

    def learned(self, provider: "ModelProvider", req: ChatRequest) -> ChatRequest: ...  # pragma: no cover - protocol

    def learn(self, provider: "ModelProvider", req: ChatRequest, exc: UnsupportedFeatureError) -> ChatRequest: ...  # pragma: no cover - protocol


# ------------------------------------------------------------------ the runner
def open_stream(engine: StreamEngine, provider: "ModelProvider", req: ChatRequest, deadline: Deadline, retries: "Optional[Records]") -> ProviderStream:
    """The handle of a stream of ``req``'s answer (nothing is sent before its first ``next()``)."""
    if provider.uses_http:
        return ProviderStream(_StreamState(engine, provider, req, deadline, retries))
    return ProviderStream(_LocalStreamState(engine, provider, req, deadline, retries))


class _Open:
    """One opened HTTP stream with its parser, decoder, breaker permit and idle clock."""

    __slots__ = ("response", "chunks", "parser", "decoder", "permit", "pending", "finished", "last")

    def __init__(self, response: Response, parser: Any, decoder: "StreamDecoder", permit: PermitLike, now: float) -> None:
        self.response = response
        self.chunks = response.iter_bytes()
        self.parser = parser
        self.decoder = decoder
        self.permit = permit
        self.pending: List[StreamChunk] = []
        self.finished = False
        #: Clock time of the last meaningful event (or of the headers).
        self.last = now


def drain_response(response: Response) -> None:
    """Finish a body whose protocol ended (bounded by ``Response.drain``) so its connection is reused."""
    drain = getattr(response, "drain", None)
    if drain is not None:
        try:
            drain()
        except Exception:  # pragma: no cover - Response.drain never raises
            pass


class _Control:
    """Abort handling shared by the HTTP and local runners, and the stream's usage and token accounting."""

    def __init__(self, engine: StreamEngine, provider: "ModelProvider", req: ChatRequest, deadline: Deadline, retries: "Optional[Records]") -> None:
        self.engine = engine
        self.provider = provider
        self.name = provider.instance_name
        self.req = req
        self.deadline = deadline
        self.retries = retries
        self.aborted = threading.Event()
        self.lock = threading.Lock()
        self.request_id: Optional[str] = None
        limiter = engine.limiter
        self.tokens = None if limiter is None else limiter.estimate(req)

    def run(self) -> Generator[StreamChunk, None, None]:
        """The stream's generator; with usage totals or a limiter, the one that accounts for it at its end."""
        engine = self.engine
        if engine.usage is None and engine.limiter is None:
            return self.work()
        return self.metered()

    def work(self) -> Generator[StreamChunk, None, None]:  # pragma: no cover - overridden
        raise NotImplementedError

    def metered(self) -> Generator[StreamChunk, None, None]:
        """:meth:`work`, accounted for once it ends, however it ends (see :func:`~modelprov.usage.tally`)."""
        from .usage import tally

        return tally(self.work(), self.account)

    def account(self, usage: Optional[Usage], failed: bool) -> None:
        """Record the stream in the usage totals (an error, or a call with ``usage``) and reconcile its tokens."""
        totals, limiter = self.engine.usage, self.engine.limiter
        if limiter is not None and self.tokens is not None:
            limiter.settle(self.tokens, usage)
        if totals is not None:
            if failed:
                totals.record_error(self.name, self.req.model)
            else:
                totals.record(self.name, self.req.model, usage)

    def abort(self) -> None:
        """Stop the stream from any thread."""
        self.aborted.set()

    def cancel(self) -> None:
        """Stop a stream that never started: the first ``next()`` sends nothing."""
        self.aborted.set()

    def aborted_error(self) -> ProviderConnectionError:
        return ProviderConnectionError("stream aborted by the caller", provider=self.name, retryable=False, aborted=True)

    def sleep(self, seconds: float) -> None:
        """Retry waits: the engine's (injectable) sleep, cut short by ``abort()``."""
        sleep = self.engine.sleep
        if sleep is time.sleep:
            self.aborted.wait(seconds)
        else:
            sleep(seconds)
        if self.aborted.is_set():
            raise self.aborted_error()


class _LocalStreamState(_Control):
    """A provider without HTTP (the mock): its answer under retry + breaker, then its chunks."""

    def work(self) -> Generator[StreamChunk, None, None]:
        provider, req = self.provider, self.req
        response = self.engine.run(provider, self.deadline, lambda n: provider.local_chat(req, n), self.retries, self.tokens)
        for chunk in provider.local_chunks(req, response):
            if self.aborted.is_set():
                return
            yield chunk


class _StreamState(_Control):
    """Everything one HTTP stream needs; shared by the handle and its generator."""

    def __init__(self, engine: StreamEngine, provider: "ModelProvider", req: ChatRequest, deadline: Deadline, retries: "Optional[Records]") -> None:
        super().__init__(engine, provider, req, deadline, retries)
        self.opened: Optional[_Open] = None
        self.idle: Optional[float] = provider.config.idle_timeout
        self.answered = False  # a chunk with a finish reason reached the caller
        self.last_usage: Optional[Usage] = None  # noted by read() for the usage totals and the limiter

    def metered(self) -> Generator[StreamChunk, None, None]:
        """:meth:`work`, accounted for once it ends, however it ends, as :func:`~modelprov.usage.tally` does,
        with the usage noted by :meth:`read` rather than a wrapper around every chunk."""
        try:
            yield from self.work()
        except Exception as exc:
            extra = getattr(exc, "extra", None)
            self.account(self.last_usage, not (isinstance(extra, dict) and extra.get("aborted")))
            raise
        except BaseException:  # the caller stopped reading (GeneratorExit) or an interrupt
            self.account(self.last_usage, False)
            raise
        self.account(self.last_usage, False)

    # ------------------------------------------------------------- control
    def abort(self) -> None:
        """Stop the stream from any thread; a pending read is interrupted."""
        with self.lock:
            self.aborted.set()
            opened = self.opened
        if opened is not None:
            try:
                opened.response.abort()
            except Exception:  # pragma: no cover - defensive
                pass

    def release(self) -> None:
        opened = self.opened
        if opened is not None:
            try:
                opened.response.close()
            except Exception:  # pragma: no cover - defensive
                pass

    def idle_error(self, idle: float) -> ProviderTimeoutError:
        return ProviderTimeoutError(f"stream idle for more than {idle:g} s (idle_timeout)", provider=self.name, timeout_kind="idle")

    def check_total(self) -> None:
        """Raise the call's deadline error, marked ``timeout_kind="total"``, once the deadline has passed."""
        if self.deadline.expired():
            raise self.total_error()

    def total_error(self) -> ProviderTimeoutError:
        exc = self.deadline.error(self.name)
        exc.extra["timeout_kind"] = "total"
        return exc

    def report(self, permit: PermitLike, exc: BaseException) -> None:
        """The breaker verdict on a stream that raised ``exc``: none once the caller aborted, else ``exc`` classified."""
        if self.aborted.is_set():
            permit.ignore()
        else:
            permit.record(exc)

    # ------------------------------------------------------------ decoding
    def new_parser(self) -> Any:
        from .streaming import NDJSONParser, SSEParser

        if self.provider.stream_format == "ndjson":
            return NDJSONParser(provider=self.name)
        return SSEParser()

    def raise_error_field(self, value: str) -> None:
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
        exc = self.provider.parse_error(status, body, value, {})
        if exc is None:
            exc = ServerError(f"error in stream: {value}")
        if exc.provider is None:
            exc.provider = self.name
        raise exc

    def read(self, opened: _Open, until_output: bool) -> Iterator[StreamChunk]:
        """Yield decoded chunks; with ``until_output`` stop after the first batch.

        The hot loop: one pass per network item and one clock reading per
        item, after the caller consumed its chunks (the caller's own time is
        never server idleness). At the protocol's terminator the rest of the
        body is drained (bounded) so the connection goes back to the pool.
        """
        parser = opened.parser
        decoder = opened.decoder
        name = self.name
        request_id = opened.response.request_id
        keepalive = decoder.is_keepalive
        feed = decoder.feed
        parse = parser.feed
        clock = self.engine.clock
        idle = self.idle
        end = self.deadline.end
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
                    chunk.provider = name
                    chunk.request_id = request_id
                    produced = True
                    if chunk.finish_reason:
                        self.answered = True
                        if self.req.dropped:
                            chunk.dropped_options = list(self.req.dropped)
                    if chunk.usage is not None:
                        self.last_usage = chunk.usage
                    yield chunk
                if decoder.done:
                    break
            now = clock()
            if meaningful:
                opened.last = now
            if errors:
                self.raise_error_field(errors[0])
            if decoder.done:
                break
            if end is not None and now >= end:
                raise self.total_error()
            if idle is not None and now - opened.last >= idle:
                raise self.idle_error(idle)
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
            chunk.provider = name
            chunk.request_id = request_id
            yield chunk

    # --------------------------------------------------------------- work
    def build_http(self, req: ChatRequest) -> HTTPRequest:
        """The HTTP request for ``req``, with auth and an ``Accept`` header for the stream format."""
        provider = self.provider
        transport = self.engine.transport(provider)
        http = self.engine.with_auth(provider, provider.build_chat_request(req), transport)
        if "Accept" not in http.headers and "accept" not in http.headers:
            headers = dict(http.headers)  # a copy: the request may be the codec's own object
            headers["Accept"] = "application/x-ndjson" if provider.stream_format == "ndjson" else "text/event-stream"
            http = HTTPRequest(method=http.method, path=http.path, headers=headers, json=http.json, params=http.params, stream=http.stream)
        return http

    def attempt(self, n: int, http: HTTPRequest) -> _Open:
        """Open the stream and read up to its first chunk, under a breaker permit kept for the whole stream."""
        if self.aborted.is_set():
            raise self.aborted_error()
        deadline = self.deadline
        self.check_total()
        engine = self.engine
        limiter = engine.limiter
        if limiter is not None:
            limiter.acquire(self.tokens, deadline, sleep=self.sleep, retry=n > 1)
        permit = engine.breaker.acquire()
        response: Optional[Response] = None
        try:
            response = engine.transport(self.provider).send(http, deadline, attempt=n)
            if limiter is not None:
                limiter.observe(getattr(response, "headers", None))
            self.check_total()  # headers that straddled the deadline
            opened = _Open(response, self.new_parser(), self.provider.new_stream_decoder(self.req), permit, engine.clock())
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
            self.report(permit, exc)
            if response is not None:
                response.close()
            elif limiter is not None:
                limiter.failed(self.tokens, exc)
            self.provider.add_connection_hint(exc)
            raise

    def work(self) -> Generator[StreamChunk, None, None]:
        engine, provider = self.engine, self.provider
        provider.validate_config()
        self.req = engine.learned(provider, self.req)
        while True:
            attempt = functools.partial(self.attempt, http=self.build_http(self.req))
            try:
                opened = engine.retrying(self.name, self.deadline, attempt, self.retries, sleep=self.sleep)
            except UnsupportedFeatureError as exc:
                self.req = engine.learn(provider, self.req, exc)  # resend once without the option
                continue
            break
        permit = opened.permit
        try:
            pending, opened.pending = opened.pending, []
            yield from pending
            if not opened.finished:
                opened.last = engine.clock()  # the caller's time over the first chunks is not server idleness
                yield from self.read(opened, until_output=False)
        except GeneratorExit:
            done = opened.decoder.done
            if done and not opened.finished and not self.aborted.is_set():
                drain_response(opened.response)  # stopped right at the terminator: keep the connection
            # the caller stopped reading: a success if the answer was complete, else no verdict
            if done or self.answered:
                permit.success()
            else:
                permit.ignore()
            raise
        except BaseException as exc:
            self.report(permit, exc)
            if isinstance(exc, ModelProvError) and self.aborted.is_set():
                exc.extra.setdefault("aborted", True)
            raise
        else:
            permit.success()
        finally:
            self.release()
