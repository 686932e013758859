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

:class:`RouteCache` keeps a client's resolved routes (model string ->
provider and model) while the config stays the same, so a call reads no
config. A walk builds an event's payload only when its hook is set, and
every answer passes one completion point (``_Walk.completed``).
"""

import threading
from time import monotonic
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, List, Optional, Protocol, Sequence, Tuple

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
    from .config.manager import ConfigManager
    from .providers.base import ModelProvider

__all__ = ["ChatStream", "RouteCache", "run_chain", "should_fall_back"]

log = get_logger("client")
Target = Tuple[str, str]
Records = List[Dict[str, Any]]


class Router(Protocol):
    """What a chain walks with (:class:`~modelprov.client.Client`): its bound providers and event hooks."""

    hooks: HookSet

    def provider(self, name: str) -> "ModelProvider": ...  # pragma: no cover - protocol


#: Seconds between a route cache's looks at the config file for edits made outside
#: this process (changes made through the ConfigManager in this process show at once).
ROUTE_RECHECK_S = 1.0
#: Model strings a route cache remembers per config state (all dropped when full).
MAX_ROUTES = 256
_NEVER = float("-inf")


class _RouteTable:
    """Routes resolved under one state of one config manager (``snapshot``: its parsed file)."""

    __slots__ = ("config", "snapshot", "checked", "routes")

    def __init__(self, config: object, snapshot: object, checked: float) -> None:
        self.config = config
        self.snapshot = snapshot
        self.checked = checked  # when the file on disk was last looked at
        self.routes: Dict[str, Target] = {}


class RouteCache:
    """A client's ``model string -> (provider, model)`` routes, so a call resolves no alias and reads no config.

    A table of routes holds while the config manager is the same object and
    its parsed file is the same (its identity changes whenever the manager
    re-reads the file or is invalidated, as ``set_value()`` does); every
    :data:`ROUTE_RECHECK_S` seconds the file on disk is looked at (one stat),
    so edits made by another process show within that time. Failed
    resolutions are not remembered (a provider registered later is found).
    Lock-free: a table is replaced whole, and entries are only added to it.
    """

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table = _RouteTable(None, None, _NEVER)

    def target(self, config: "ConfigManager", model: Any, resolve: Callable[[Any], Target]) -> Target:
        """The route of ``model``: remembered, else ``resolve(model)`` (which raises for a bad one)."""
        if type(model) is not str:
            return resolve(model)
        table = self._table
        if table.config is not config or table.snapshot is not getattr(config, "parsed_token", None) or monotonic() - table.checked >= ROUTE_RECHECK_S:
            table = self._fresh(config)
        target = table.routes.get(model)
        if target is None:
            target = resolve(model)
            if len(table.routes) >= MAX_ROUTES:
                table.routes.clear()
            table.routes[model] = target
        return target

    def _fresh(self, config: "ConfigManager") -> _RouteTable:
        now = monotonic()
        config.provider_names()  # looks at the file (one stat) and re-reads it if it changed
        snapshot = getattr(config, "parsed_token", None)
        checked = now if snapshot is not None else _NEVER  # invalidated meanwhile (or no such attribute): look again next call
        table = self._table
        if table.config is config and table.snapshot is snapshot:
            table.checked = checked
            return table
        table = self._table = _RouteTable(config, snapshot, checked)
        return table


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
    """Bookkeeping for one walk along a chain: attempts, errors, hooks, deadline.

    Kept lean for the common call (one model, no hooks, no retries): an event
    payload is built only when its hook is set, and the list of errors only
    when an attempt fails. :meth:`completed` is the one point every answer
    passes (JSON or stream), after its attempts are recorded.
    """

    __slots__ = ("client", "hooks", "chain", "deadline", "stream", "attempts", "errors")

    def __init__(self, client: Router, chain: Sequence[Target], deadline: Deadline, stream: bool) -> None:
        self.client = client
        self.hooks = client.hooks
        self.chain = chain
        self.deadline = deadline
        self.stream = stream
        self.attempts: Records = []
        self.errors: Optional[List[BaseException]] = None

    def begin(self, provider: str, model: str) -> None:
        """Check the deadline (no fallback once it passed) and emit ``on_request``."""
        if self.deadline.expired():
            err = self.deadline.error()
            err.attempts = list(self.attempts)
            if self.hooks.on_error is not None:
                self.hooks.emit("error", dict(err.to_dict(), provider=provider, model=model))
            raise err from (self.errors[-1] if self.errors else None)
        if self.hooks.on_request is not None:
            self.hooks.emit("request", {"provider": provider, "model": model, "stream": self.stream, "attempt": len(self.attempts) + 1})

    def _add_retries(self, provider: str, model: str, retries: Records) -> None:
        for record in retries:
            self.attempts.append(dict(record, provider=provider, outcome="error", model=model))

    def succeeded(self, provider: str, model: str, latency: float, retries: Records) -> None:
        if retries:
            self._add_retries(provider, model, retries)
        self.attempts.append({"provider": provider, "model": model, "outcome": "ok", "latency_s": latency})

    def completed(self, provider: str, model: str, response: Optional[ModelResponse]) -> None:
        """The call's answer is complete (``response``; ``None`` for a stream, which ended): emit ``on_response``.

        The single completion point of a call, JSON or stream; per-call
        accounting belongs here. Nothing is built unless a hook is set.
        """
        if self.hooks.on_response is None:
            return
        if response is None:
            self.hooks.emit("response", {"provider": provider, "model": model, "stream": True, "attempts": len(self.attempts)})
            return
        usage = response.usage
        self.hooks.emit(
            "response",
            {
                "provider": provider,
                "model": model,
                "latency_s": response.latency_s,
                "request_id": response.request_id,
                "finish_reason": response.finish_reason,
                "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "total_tokens": usage.total_tokens},
                "attempts": len(self.attempts),
            },
        )

    def failed(self, index: int, provider: str, model: str, exc: BaseException, retries: Records) -> None:
        """Record a failure; return to try the next model, or raise the chain's final error."""
        self._add_retries(provider, model, retries)
        self.attempts.append(_record(provider, model, exc, None))
        errors = self.errors
        if errors is None:
            errors = self.errors = []
        errors.append(exc)
        if index + 1 < len(self.chain) and should_fall_back(exc):
            if self.hooks.on_fallback is not None:
                nxt = self.chain[index + 1]
                self.hooks.emit(
                    "fallback",
                    {"from": f"{provider}/{model}", "to": f"{nxt[0]}/{nxt[1]}", "error": type(exc).__name__, "message": getattr(exc, "message", str(exc))},
                )
            return
        final = exc
        if isinstance(exc, ConfigurationError) and exc.extra.get("missing_key"):
            real = [e for e in errors if not isinstance(e, ConfigurationError)]
            if real:
                final = real[-1]
        if isinstance(final, ModelProvError):
            final.attempts = list(self.attempts)
            if self.hooks.on_error is not None:
                self.hooks.emit("error", dict(final.to_dict(), provider=provider, model=model))
        if final is exc:
            raise exc
        raise final from exc

    def stream_failed(self, provider: str, model: str, exc: BaseException) -> None:
        """A stream failed after its first chunk (no fallback then): record the attempts on the error, emit ``on_error``."""
        if isinstance(exc, ModelProvError):
            exc.attempts = list(self.attempts)
            if self.hooks.on_error is not None:
                self.hooks.emit("error", dict(exc.to_dict(), provider=provider, model=model))


def run_chain(client: Router, chain: Sequence[Target], messages: Any, options: Dict[str, Any], deadline: Deadline) -> ModelResponse:
    """Send a chat call along ``chain`` until one model answers (see module docs)."""
    walk = _Walk(client, chain, deadline, stream=False)
    clock = deadline.clock
    for i, (provider_name, model) in enumerate(chain):
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
        walk.completed(provider_name, model, resp)
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
                    yield from stream.rest()  # the provider's generator itself: no second handle per chunk
            except Exception as exc:
                walk.stream_failed(provider_name, model, exc)
                raise
            finally:
                stream.close()
            walk.completed(provider_name, model, None)
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
