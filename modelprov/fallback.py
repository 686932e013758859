"""The client's fallback chain and its attempt records.

:func:`run_chain` tries each ``(provider, model)`` of a chain in order; a
model is abandoned for the next one when it fails with a retryable error
after its retries, a timeout while the call's deadline still has time left,
an open breaker, an auth/permission/not-found/quota error, a missing key or
an unsupported feature, and never on an invalid request. Every attempt
(retries included: the engine appends them to a list passed with each call)
is recorded on the response or on the final error. :class:`ChatStream` does
the same for streams, up to the first chunk. When the chain runs out, the
error raised is the last real failure: a later model's missing key does not
hide the primary model's outage.

The call's one :class:`~modelprov.deadline.Deadline` goes to every engine
call of the chain; without an overall timeout, each provider's configured
``timeout`` bounds its own call.
"""

import threading
from typing import TYPE_CHECKING, Any, Dict, Generator, List, Optional, Protocol, Sequence, Tuple

from ._log import get_logger
from .deadline import Deadline
from .exceptions import (
    AuthenticationError,
    CircuitBreakerError,
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelProvError,
    PermissionDeniedError,
    QuotaExceededError,
    UnsupportedFeatureError,
    ValidationError,
)
from .hooks import HookSet
from .stream_handle import ProviderStream, StreamHandle
from .types import ChatRequest, ModelResponse, StreamChunk

if TYPE_CHECKING:  # pragma: no cover
    from .providers.base import ModelProvider

__all__ = ["ChatStream", "run_chain", "should_fall_back"]

log = get_logger("client")
Target = Tuple[str, str]
Records = List[Dict[str, Any]]


class Router(Protocol):
    """What a chain walks with (:class:`~modelprov.client.Client`): its bound providers and event hooks."""

    hooks: HookSet

    def provider(self, name: str) -> "ModelProvider": ...  # pragma: no cover - protocol


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


def provider_deadline(deadline: Deadline, provider: "ModelProvider") -> Deadline:
    """The deadline of ``provider``'s part of a call: the call's, else (none set) the provider's ``timeout``."""
    timeout = provider.config.timeout
    if deadline.end is not None or timeout is None:
        return deadline
    return deadline.within(timeout)


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


class _Walk:
    """Bookkeeping for one walk along a chain: attempts, errors, hooks, deadline."""

    def __init__(self, client: Router, chain: Sequence[Target], deadline: Deadline, stream: bool) -> None:
        self.client = client
        self.hooks = client.hooks
        self.chain = list(chain)
        self.deadline = deadline
        self.stream = stream
        self.attempts: Records = []
        self.errors: List[BaseException] = []

    def begin(self, provider: str, model: str) -> None:
        """Check the deadline (no fallback once it passed) and emit ``on_request``."""
        if self.deadline.expired():
            err = self.deadline.error()
            err.attempts = list(self.attempts)
            self.hooks.emit("error", dict(err.to_dict(), provider=provider, model=model))
            raise err from (self.errors[-1] if self.errors else None)
        self.hooks.emit("request", {"provider": provider, "model": model, "stream": self.stream, "attempt": len(self.attempts) + 1})

    def _add_retries(self, provider: str, model: str, retries: Records) -> None:
        for record in retries:
            self.attempts.append(dict(record, provider=provider, outcome="error", model=model))

    def succeeded(self, provider: str, model: str, latency: float, retries: Records) -> None:
        self._add_retries(provider, model, retries)
        self.attempts.append(_record(provider, model, None, latency))

    def failed(self, index: int, provider: str, model: str, exc: BaseException, retries: Records) -> None:
        """Record a failure; return to try the next model, or raise the chain's final error."""
        self._add_retries(provider, model, retries)
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


def run_chain(client: Router, chain: Sequence[Target], messages: Any, options: Dict[str, Any], deadline: Deadline) -> ModelResponse:
    """Send a chat call along ``chain`` until one model answers (see module docs)."""
    walk = _Walk(client, chain, deadline, stream=False)
    clock = deadline.clock
    for i, (provider_name, model) in enumerate(walk.chain):
        walk.begin(provider_name, model)
        start = clock()
        retries: Records = []
        try:
            provider = client.provider(provider_name)
            req = provider.make_request(messages, model=model, **options)
            resp = provider.engine.chat(provider, req, provider_deadline(deadline, provider), retries=retries)
        except Exception as exc:
            walk.failed(i, provider_name, model, exc, retries)
            continue
        walk.succeeded(provider_name, model, clock() - start, retries)
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
    """The working half of :class:`ChatStream` (the generator holds only this)."""

    def __init__(
        self, client: Router, chain: Sequence[Target], messages: Any, options: Dict[str, Any], deadline: Deadline, first: Optional[ChatRequest]
    ) -> None:
        self.walk = _Walk(client, chain, deadline, stream=True)
        self.messages = messages
        self.options = options
        self.first = first  # the first target's request, validated already
        self.current: Optional[ProviderStream] = None
        self.lock = threading.Lock()
        self.aborted = False

    @property
    def request_id(self) -> Optional[str]:
        current = self.current
        return None if current is None else current.request_id

    def abort(self) -> None:
        with self.lock:
            self.aborted = True
            current = self.current
        if current is not None:
            current.abort()

    def cancel(self) -> None:
        """Stop a chain that never started."""
        self.aborted = True

    def _open(self, index: int, provider_name: str, model: str, retries: Records) -> Tuple[ProviderStream, Optional[StreamChunk]]:
        provider = self.walk.client.provider(provider_name)
        req = self.first if index == 0 and self.first is not None else provider.make_request(self.messages, model=model, stream=True, **self.options)
        stream = provider.engine.stream(provider, req, provider_deadline(self.walk.deadline, provider), retries=retries)
        with self.lock:
            self.current = stream
            aborted = self.aborted
        if aborted:
            stream.abort()
        try:
            return stream, next(stream)
        except StopIteration:
            return stream, None

    def run(self) -> Generator[StreamChunk, None, None]:
        walk = self.walk
        clock = walk.deadline.clock
        for i, (provider_name, model) in enumerate(walk.chain):
            if self.aborted:
                return
            walk.begin(provider_name, model)
            start = clock()
            retries: Records = []
            try:
                stream, first = self._open(i, provider_name, model, retries)
            except Exception as exc:
                if self.aborted:
                    raise
                walk.failed(i, provider_name, model, exc, retries)
                continue
            walk.succeeded(provider_name, model, clock() - start, retries)
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


class ChatStream(StreamHandle[StreamChunk]):
    """The stream ``Client.stream()`` and ``modelprov.stream()`` return: chunks of one answer, with fallbacks.

    The next model of the chain is tried only before the first chunk. Use it
    in a ``for`` loop or a ``with`` block; ``close()`` releases the
    connection and a thread-safe ``abort()`` interrupts a blocked read.
    ``attempts`` holds the records of every attempt so far.
    """

    def __init__(self, client: Router, chain: Sequence[Target], messages: Any, options: Dict[str, Any], deadline: Deadline) -> None:
        # Validate the arguments now, before any I/O, as provider.stream() does.
        provider = client.provider(chain[0][0])
        first: Optional[ChatRequest] = None
        try:
            first = provider.make_request(messages, model=chain[0][1], stream=True, **options)
        except UnsupportedFeatureError:
            pass  # the chain falls back past a provider lacking a feature, as complete() does
        self._chain = _ChainStream(client, chain, messages, options, deadline, first)
        super().__init__(self._chain)

    def __enter__(self) -> "ChatStream":
        return self

    @property
    def attempts(self) -> List[Dict[str, Any]]:
        """One record per attempt so far (retries and fallbacks), oldest first."""
        return self._chain.walk.attempts

    @property
    def request_id(self) -> Optional[str]:
        """The request id of the model now streaming, once known."""
        return self._chain.request_id
