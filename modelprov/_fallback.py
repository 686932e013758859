"""The client's fallback chain, event hooks and attempt records.

:func:`run_chain` tries each ``(provider, model)`` of a chain in order; a
model is abandoned for the next one when it fails with a retryable error
after its retries, an open breaker, an auth/permission/not-found/quota error,
a missing key or an unsupported feature, and never on an invalid request.
Every attempt (retries included) is recorded on the response or on the final
error. :class:`FallbackStream` does the same for streams, up to the first
chunk.
"""

import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

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


def should_fall_back(exc: BaseException) -> bool:
    """Whether the next model of a chain should be tried after ``exc``."""
    if not isinstance(exc, ModelProvError) or isinstance(exc, (ValidationError, InvalidRequestError)):
        return False
    if isinstance(
        exc,
        (
            CircuitBreakerError,
            AuthenticationError,
            PermissionDeniedError,
            ModelNotFoundError,
            QuotaExceededError,
            ConfigurationError,
            UnsupportedFeatureError,
        ),
    ):
        return True
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

    def retry_adapter(self, provider: str) -> Optional[Callable[[Dict[str, Any], BaseException], None]]:
        """A provider-level ``on_retry`` that forwards to the client's hook."""
        if self.on_retry is None:
            return None
        return lambda record, exc: self.emit("retry", dict(record, provider=provider))


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


def _usage_dict(resp: ModelResponse) -> Dict[str, Any]:
    u = resp.usage
    return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "total_tokens": u.total_tokens}


class _Deadline:
    def __init__(self, clock: Callable[[], float], timeout: Optional[float]) -> None:
        self.clock = clock
        self.timeout = timeout
        self.end = None if timeout is None else clock() + timeout

    def remaining(self) -> Optional[float]:
        if self.end is None:
            return None
        return self.end - self.clock()

    def expired_error(self, attempts: List[Dict[str, Any]]) -> ProviderTimeoutError:
        return ProviderTimeoutError(f"overall deadline of {self.timeout:g}s exceeded", attempts=attempts)


def _attempt_history(exc: BaseException, provider: str, model: str) -> List[Dict[str, Any]]:
    prior = [dict(r, provider=provider, model=model, outcome="error") for r in getattr(exc, "attempts", [])[:-1]]
    return prior + [_record(provider, model, exc, None)]


def run_chain(client: Any, chain: Sequence[Target], method: str, messages: Any, timeout: Optional[float], options: Dict[str, Any]) -> ModelResponse:
    """Call ``provider.<method>`` along ``chain`` until one answers (see module docs)."""
    hooks: HookSet = client.hooks
    deadline = _Deadline(client._clock, timeout)
    attempts: List[Dict[str, Any]] = []
    last: Optional[BaseException] = None
    for i, (provider_name, model) in enumerate(chain):
        remaining = deadline.remaining()
        if remaining is not None and remaining <= 0:
            err = deadline.expired_error(attempts)
            hooks.emit("error", dict(err.to_dict(), provider=provider_name, model=model))
            raise err from last
        hooks.emit("request", {"provider": provider_name, "model": model, "stream": False, "attempt": len(attempts) + 1})
        start = client._clock()
        try:
            provider = client.provider(provider_name)
            call_opts = dict(options)
            if remaining is not None:
                call_opts["timeout"] = remaining
            resp: ModelResponse = getattr(provider, method)(messages, model=model, **call_opts)
        except Exception as exc:
            attempts.extend(_attempt_history(exc, provider_name, model))
            last = exc
            if i + 1 < len(chain) and should_fall_back(exc):
                nxt = chain[i + 1]
                hooks.emit(
                    "fallback",
                    {"from": f"{provider_name}/{model}", "to": f"{nxt[0]}/{nxt[1]}", "error": type(exc).__name__, "message": getattr(exc, "message", str(exc))},
                )
                continue
            if isinstance(exc, ModelProvError):
                exc.attempts = attempts
                hooks.emit("error", dict(exc.to_dict(), provider=provider_name, model=model))
            raise
        resp.attempts = attempts + [_record(provider_name, model, None, client._clock() - start)]
        hooks.emit(
            "response",
            {
                "provider": provider_name,
                "model": model,
                "latency_s": resp.latency_s,
                "request_id": resp.request_id,
                "finish_reason": resp.finish_reason,
                "usage": _usage_dict(resp),
                "attempts": len(resp.attempts),
            },
        )
        return resp
    raise AssertionError("empty fallback chain")  # pragma: no cover - chain always has one target


class FallbackStream:
    """A stream over a fallback chain: the next model is tried only before the first chunk.

    Has ``close()`` and a thread-safe ``abort()`` like a provider stream.
    """

    def __init__(self, client: Any, chain: Sequence[Target], messages: Any, timeout: Optional[float], options: Dict[str, Any]) -> None:
        self._client = client
        self._chain = list(chain)
        self._messages = messages
        self._timeout = timeout
        self._options = options
        self._current: Any = None
        self._gen: Optional[Iterator[StreamChunk]] = None
        self._lock = threading.Lock()
        self._aborted = False
        #: Attempt records, filled as the chain is walked.
        self.attempts: List[Dict[str, Any]] = []
        # Validate arguments now, before any I/O, like provider.stream() does.
        first = self._client.provider(self._chain[0][0])
        first.make_request(messages, model=self._chain[0][1], stream=True, **{k: v for k, v in options.items() if k != "timeout"})

    def __iter__(self) -> "FallbackStream":
        return self

    def __next__(self) -> StreamChunk:
        if self._gen is None:
            self._gen = self._run()
        return next(self._gen)

    def __enter__(self) -> "FallbackStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def abort(self) -> None:
        """Interrupt the current stream from any thread."""
        with self._lock:
            self._aborted = True
            current = self._current
        if current is not None:
            current.abort()

    def close(self) -> None:
        """Close the current stream and release its connection."""
        with self._lock:
            current = self._current
        if current is not None:
            current.close()
        gen = self._gen
        if gen is not None:
            try:
                gen.close()  # type: ignore[attr-defined]
            except ValueError:  # running in another thread: abort instead
                self.abort()

    def _open(self, provider_name: str, model: str, remaining: Optional[float]) -> Tuple[Any, Optional[StreamChunk]]:
        provider = self._client.provider(provider_name)
        opts = dict(self._options)
        if remaining is not None:
            opts["timeout"] = remaining
        stream = provider.stream(self._messages, model=model, **opts)
        with self._lock:
            self._current = stream
            aborted = self._aborted
        if aborted:
            stream.abort()
        try:
            return stream, next(stream)
        except StopIteration:
            return stream, None

    def _run(self) -> Iterator[StreamChunk]:
        client = self._client
        hooks: HookSet = client.hooks
        deadline = _Deadline(client._clock, self._timeout)
        last: Optional[BaseException] = None
        for i, (provider_name, model) in enumerate(self._chain):
            remaining = deadline.remaining()
            if remaining is not None and remaining <= 0:
                raise deadline.expired_error(self.attempts) from last
            hooks.emit("request", {"provider": provider_name, "model": model, "stream": True, "attempt": len(self.attempts) + 1})
            start = client._clock()
            try:
                stream, first = self._open(provider_name, model, remaining)
            except Exception as exc:
                self.attempts.extend(_attempt_history(exc, provider_name, model))
                last = exc
                if i + 1 < len(self._chain) and should_fall_back(exc) and not self._aborted:
                    nxt = self._chain[i + 1]
                    hooks.emit("fallback", {"from": f"{provider_name}/{model}", "to": f"{nxt[0]}/{nxt[1]}", "error": type(exc).__name__})
                    continue
                if isinstance(exc, ModelProvError):
                    exc.attempts = list(self.attempts)
                    hooks.emit("error", dict(exc.to_dict(), provider=provider_name, model=model))
                raise
            self.attempts.append(_record(provider_name, model, None, client._clock() - start))
            try:
                if first is not None:
                    yield first
                    for chunk in stream:
                        yield chunk
            except Exception as exc:
                if isinstance(exc, ModelProvError):
                    hooks.emit("error", dict(exc.to_dict(), provider=provider_name, model=model))
                raise
            finally:
                stream.close()
            hooks.emit("response", {"provider": provider_name, "model": model, "stream": True, "attempts": len(self.attempts)})
            return
