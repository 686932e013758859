"""The client's fallback chain, event hooks and attempt records.

:func:`run_chain` tries each ``(provider, model)`` of a chain in order; a
model is abandoned for the next one when it fails with a retryable error
after its retries, an open breaker, an auth/permission/not-found/quota error,
a missing key or an unsupported feature, and never on an invalid request.
Every attempt (retries included) is recorded on the response or on the final
error. :class:`FallbackStream` does the same for streams, up to the first
chunk. When the chain runs out, the error raised is the last real failure:
a later model's missing key does not hide the primary model's outage.
"""

import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .stream_handle import StreamHandle
from ._log import get_logger
from .exceptions import (
    AuthenticationError,
    CircuitBreakerError,
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelProvError,
    PermissionDeniedError,
    ProviderTimeoutError,
    QuotaExceededError,
    UnsupportedFeatureError,
    ValidationError,
)
from .types import ModelResponse, StreamChunk

__all__ = ["FallbackStream", "HookSet", "run_chain", "should_fall_back"]

log = get_logger("client")
Target = Tuple[str, str]
_retries = threading.local()  # per-thread list collecting the retry records of the call in progress


def should_fall_back(exc: BaseException) -> bool:
    """Whether the next model of a chain should be tried after ``exc``."""
    if not isinstance(exc, ModelProvError) or isinstance(exc, (ValidationError, InvalidRequestError)):
        return False
    if isinstance(exc, ConfigurationError):
        return bool(exc.extra.get("missing_key"))  # never on a typo'd provider or a bad setting
    if isinstance(exc, (CircuitBreakerError, AuthenticationError, PermissionDeniedError, ModelNotFoundError, QuotaExceededError, UnsupportedFeatureError)):
        return True
    if exc.extra.get("aborted"):
        return False
    return bool(exc.retryable) or exc.category.value in ("server", "transient", "timeout", "connection")


class HookSet:
    """The client's event hooks; each is called with one dict, and its errors are logged."""

    def __init__(self, on_request: Any, on_response: Any, on_retry: Any, on_fallback: Any, on_error: Any) -> None:
        self.on_request = on_request
        self.on_response = on_response
        self.on_retry = on_retry
        self.on_fallback = on_fallback
        self.on_error = on_error

    def emit(self, hook: str, info: Dict[str, Any]) -> None:
        """Call hook ``on_<hook>`` with ``info``; a failing hook never breaks the call."""
        fn = getattr(self, "on_" + hook)
        if fn is None:
            return
        try:
            fn(info)
        except Exception:  # a user's hook must not break the call
            log.exception("the on_%s hook raised; ignored", hook)

    def retry_adapter(self, provider: str) -> Callable[[Dict[str, Any], BaseException], None]:
        """A provider-level ``on_retry``: records the retry for the response and calls the hook."""

        def on_retry(record: Dict[str, Any], exc: BaseException) -> None:
            records = getattr(_retries, "records", None)
            if records is not None:
                records.append(dict(record, provider=provider, outcome="error"))
            self.emit("retry", dict(record, provider=provider))

        return on_retry


def _record(provider: str, model: str, exc: Optional[BaseException], latency: Optional[float]) -> Dict[str, Any]:
    rec: Dict[str, Any] = {"provider": provider, "model": model, "outcome": "ok" if exc is None else "error"}
    if exc is not None:
        rec["error"] = type(exc).__name__
        rec["message"] = getattr(exc, "message", str(exc))
        status = getattr(exc, "status_code", None)
        if status is not None:
            rec["status_code"] = status
    if latency is not None:
        rec["latency_s"] = latency
    return rec


class _Deadline:
    def __init__(self, clock: Callable[[], float], timeout: Optional[float]) -> None:
        self.clock = clock
        self.timeout = timeout
        self.end = None if timeout is None else clock() + timeout

    def remaining(self) -> Optional[float]:
        return None if self.end is None else self.end - self.clock()

    def expired_error(self, attempts: List[Dict[str, Any]]) -> ProviderTimeoutError:
        return ProviderTimeoutError(f"overall deadline of {self.timeout:g}s exceeded", attempts=attempts)


class _Walk:
    """Bookkeeping for one walk along a chain: attempts, errors, hooks, deadline."""

    def __init__(self, client: Any, chain: Sequence[Target], timeout: Optional[float], stream: bool) -> None:
        self.client = client
        self.hooks: HookSet = client.hooks
        self.chain = list(chain)
        self.deadline = _Deadline(client._clock, timeout)
        self.stream = stream
        self.attempts: List[Dict[str, Any]] = []
        self.errors: List[BaseException] = []

    def begin(self, provider: str, model: str) -> Optional[float]:
        """Check the deadline, emit ``on_request``; returns the time left (or ``None``)."""
        remaining = self.deadline.remaining()
        if remaining is not None and remaining <= 0:
            err = self.deadline.expired_error(self.attempts)
            self.hooks.emit("error", dict(err.to_dict(), provider=provider, model=model))
            raise err from (self.errors[-1] if self.errors else None)
        _retries.records = []
        self.hooks.emit("request", {"provider": provider, "model": model, "stream": self.stream, "attempt": len(self.attempts) + 1})
        return remaining

    def _take_retries(self, provider: str, model: str) -> List[Dict[str, Any]]:
        """The retry records this thread collected for ``provider``, labelled with ``model``."""
        records = getattr(_retries, "records", None) or []
        _retries.records = None
        return [dict(r, model=model) for r in records if r.get("provider") == provider]

    def succeeded(self, provider: str, model: str, latency: float) -> None:
        self.attempts.extend(self._take_retries(provider, model))
        self.attempts.append(_record(provider, model, None, latency))

    def failed(self, index: int, provider: str, model: str, exc: BaseException) -> None:
        """Record a failure; return to try the next model, or raise the chain's final error."""
        self.attempts.extend(self._take_retries(provider, model))
        self.attempts.append(_record(provider, model, exc, None))
        self.errors.append(exc)
        if index + 1 < len(self.chain) and should_fall_back(exc):
            nxt = self.chain[index + 1]
            self.hooks.emit(
                "fallback",
                {"from": f"{provider}/{model}", "to": f"{nxt[0]}/{nxt[1]}", "error": type(exc).__name__, "message": getattr(exc, "message", str(exc))},
            )
            return
        final = exc
        if isinstance(exc, ConfigurationError) and exc.extra.get("missing_key"):
            real = [e for e in self.errors if not isinstance(e, ConfigurationError)]
            if real:
                final = real[-1]
        if isinstance(final, ModelProvError):
            final.attempts = list(self.attempts)
            self.hooks.emit("error", dict(final.to_dict(), provider=provider, model=model))
        if final is exc:
            raise exc
        raise final from exc


def run_chain(client: Any, chain: Sequence[Target], method: str, messages: Any, timeout: Optional[float], options: Dict[str, Any]) -> ModelResponse:
    """Call ``provider.<method>`` along ``chain`` until one answers (see module docs)."""
    walk = _Walk(client, chain, timeout, stream=False)
    for i, (provider_name, model) in enumerate(walk.chain):
        remaining = walk.begin(provider_name, model)
        start = client._clock()
        try:
            provider = client.provider(provider_name)
            call_opts = dict(options)
            if remaining is not None:
                call_opts["timeout"] = remaining
            resp: ModelResponse = getattr(provider, method)(messages, model=model, **call_opts)
        except Exception as exc:
            walk.failed(i, provider_name, model, exc)
            continue
        walk.succeeded(provider_name, model, client._clock() - start)
        resp.attempts = walk.attempts
        walk.hooks.emit(
            "response",
            {
                "provider": provider_name,
                "model": model,
                "latency_s": resp.latency_s,
                "request_id": resp.request_id,
                "finish_reason": resp.finish_reason,
                "usage": {"input_tokens": resp.usage.input_tokens, "output_tokens": resp.usage.output_tokens, "total_tokens": resp.usage.total_tokens},
                "attempts": len(resp.attempts),
            },
        )
        return resp
    raise AssertionError("empty fallback chain")  # pragma: no cover - chain always has one target


class _ChainStream:
    """The working half of :class:`FallbackStream` (the generator holds only this)."""

    def __init__(self, client: Any, chain: Sequence[Target], messages: Any, timeout: Optional[float], options: Dict[str, Any]) -> None:
        self.walk = _Walk(client, chain, timeout, stream=True)
        self.messages = messages
        self.options = options
        self.current: Any = None
        self.lock = threading.Lock()
        self.aborted = False

    def abort(self) -> None:
        with self.lock:
            self.aborted = True
            current = self.current
        if current is not None:
            current.abort()

    def cancel(self) -> None:
        """Stop a chain that never started."""
        self.aborted = True

    def _open(self, provider_name: str, model: str, remaining: Optional[float]) -> Tuple[Any, Optional[StreamChunk]]:
        provider = self.walk.client.provider(provider_name)
        opts = dict(self.options)
        if remaining is not None:
            opts["timeout"] = remaining
        stream = provider.stream(self.messages, model=model, **opts)
        with self.lock:
            self.current = stream
            aborted = self.aborted
        if aborted:
            stream.abort()
        try:
            return stream, next(stream)
        except StopIteration:
            return stream, None

    def run(self) -> Iterator[StreamChunk]:
        walk = self.walk
        clock = walk.client._clock
        for i, (provider_name, model) in enumerate(walk.chain):
            if self.aborted:
                return
            remaining = walk.begin(provider_name, model)
            start = clock()
            try:
                stream, first = self._open(provider_name, model, remaining)
            except Exception as exc:
                if self.aborted:
                    raise
                walk.failed(i, provider_name, model, exc)
                continue
            walk.succeeded(provider_name, model, clock() - start)
            try:
                if first is not None:
                    yield first
                    for chunk in stream:
                        yield chunk
            except Exception as exc:
                if isinstance(exc, ModelProvError):
                    exc.attempts = list(walk.attempts)
                    walk.hooks.emit("error", dict(exc.to_dict(), provider=provider_name, model=model))
                raise
            finally:
                stream.close()
            walk.hooks.emit("response", {"provider": provider_name, "model": model, "stream": True, "attempts": len(walk.attempts)})
            return


class FallbackStream(StreamHandle[StreamChunk]):
    """A stream over a fallback chain: the next model is tried only before the first chunk.

    Has ``close()`` and a thread-safe ``abort()`` like a provider stream, and
    ``attempts``, the records of every attempt so far.
    """

    def __init__(self, client: Any, chain: Sequence[Target], messages: Any, timeout: Optional[float], options: Dict[str, Any]) -> None:
        # Validate the arguments now, before any I/O, as provider.stream() does.
        first = client.provider(chain[0][0])
        try:
            first.make_request(messages, model=chain[0][1], stream=True, **options)
        except UnsupportedFeatureError:
            pass  # the chain falls back past a provider lacking a feature, as complete() does
        super().__init__(_ChainStream(client, chain, messages, timeout, options))

    @property
    def attempts(self) -> List[Dict[str, Any]]:
        """One record per attempt so far (retries and fallbacks), oldest first."""
        return self._state.walk.attempts
