"""``Engine``: runs one call, codec -> transport, inside the retry loop and the circuit breaker.

A provider is a codec (:mod:`modelprov.providers.base`); its engine owns
everything with I/O or time in it: the transport (built lazily from the
provider's config with its auth headers, unless one was given), the retry
policy, the breaker (a :class:`NullBreaker` when breakers are off, so there
is one code path), the options the provider rejected at run time (resent
once without, remembered per model: the option, or only the value sent when
the rejection was value-specific), and the call's
:class:`~modelprov.deadline.Deadline`, which reaches every hop: the check
before each attempt, the retry waits (the policy decides with the time left,
so no wait passes the deadline) and ``transport.send(request, deadline,
attempt=n)``. Attempts that were retried are appended to a list the caller
passes (``retries=``); nothing is kept per thread. Streams run in
:mod:`modelprov.engine_stream`. With a :class:`~modelprov.ratelimit.RateLimiter`
(``limiter=``) each attempt first waits for its slot (outside the breaker's
guard) and each response's headers and usage go back to it; with
:class:`~modelprov.usage.UsageTotals` (``usage=``) every chat call and stream
is counted. Neither costs anything when not given.

:func:`bind` gives a provider its engine; the registry and the client call it.
"""

import copy
import dataclasses
import functools
import threading
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Dict, List, NamedTuple, Optional, Set, Tuple, TypeVar, Union

from .deadline import Deadline
from .engine_stream import NULL_BREAKER, BreakerLike, NullBreaker, PermitLike, open_stream
from .exceptions import ResponseError, UnsupportedFeatureError, ValidationError
from .providers.request import drop_option, option_value
from .providers.unsupported import explain_rejection, log_dropped, unsupported_error
from .retry import RetryPolicy, call_with_retry
from .stream_handle import ProviderStream
from .transport.base import Response, Transport
from .types import ChatRequest, EmbeddingResponse, HTTPRequest, ModelInfo, ModelResponse, ProviderConfig, StreamChunk

if TYPE_CHECKING:  # pragma: no cover
    from .providers.base import ModelProvider, Records
    from .ratelimit import Estimate, RateLimiter
    from .usage import UsageTotals

__all__ = ["NULL_BREAKER", "BreakerLike", "Engine", "NullBreaker", "PermitLike", "Refusal", "TransportArg", "bind"]

T = TypeVar("T")
P = TypeVar("P", bound="ModelProvider")
OnRetry = Callable[[Dict[str, Any], BaseException], None]


#: ``Client(transport=...)`` / ``bind(transport=...)``: a transport, or a factory taking the provider's config.
TransportArg = Union[Transport, Callable[[ProviderConfig], Transport], None]


class Refusal(NamedTuple):
    """What a provider refused at run time of one option for one model.

    ``values`` is ``None`` when the option itself was refused, else the values
    refused so far (the rejection was value-specific: other values are still sent).
    """

    reason: str
    values: Optional[Tuple[Any, ...]] = None

    def covers(self, value: Any) -> bool:
        """Whether sending the option with ``value`` would be refused again."""
        return self.values is None or value in self.values

    def adding(self, value: Any, reason: str, value_specific: bool) -> "Refusal":
        """This refusal widened by one more rejection (of ``value`` only, or of the option itself)."""
        if not value_specific:
            return Refusal(reason)
        if self.covers(value):
            return self
        assert self.values is not None  # covers() is True for a refusal of the whole option
        return Refusal(reason, self.values + (copy.deepcopy(value),))


class Engine:
    """Runs a provider's calls (implements :class:`~modelprov.providers.base.CallEngine`).

    :param provider: the provider this engine is bound to (its name labels logs).
    :param transport: a :class:`~modelprov.transport.Transport` (left open by
        :meth:`close`: its owner closes it), or a factory ``transport(config)``
        called on first use (closed with the engine); ``None`` builds a
        :class:`~modelprov.transport.requests_transport.RequestsTransport` from
        the provider's config with its auth headers inside.
    :param retry: the :class:`~modelprov.retry.RetryPolicy` (default: ``RetryPolicy()``).
    :param breaker: the circuit breaker guarding the endpoint (``None``: :data:`NULL_BREAKER`).
    :param sleep: how retry waits sleep (``time.sleep``; tests inject a fake).
    :param clock: the monotonic clock of deadlines and retry timing.
    :param on_retry: ``on_retry(record, exc)`` before each retry wait.
    :param limiter: the endpoint's :class:`~modelprov.ratelimit.RateLimiter`, acquired before each
        attempt and fed each response's headers (``None``: no limits, no cost).
    :param usage: the :class:`~modelprov.usage.UsageTotals` every chat call and stream is recorded in.
    """

    def __init__(
        self,
        provider: "ModelProvider",
        *,
        transport: TransportArg = None,
        retry: Optional[RetryPolicy] = None,
        breaker: Optional[BreakerLike] = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_retry: Optional[OnRetry] = None,
        limiter: "Optional[RateLimiter]" = None,
        usage: "Optional[UsageTotals]" = None,
    ) -> None:
        given: Optional[Transport] = None
        self._factory: Optional[Callable[[ProviderConfig], Transport]] = None
        if transport is not None:
            if callable(getattr(transport, "send", None)):
                given = transport  # type: ignore[assignment]  # a transport (the check above)
            elif callable(transport):
                self._factory = transport
            else:
                raise ValidationError(f"transport must have a send() method or be a factory taking a ProviderConfig, not {type(transport).__name__}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError(f"retry must be a modelprov.RetryPolicy, not {type(retry).__name__}")
        self.name = provider.instance_name
        self.retry: RetryPolicy = retry if retry is not None else RetryPolicy()
        self.breaker: BreakerLike = breaker if breaker is not None else NULL_BREAKER
        self.sleep = sleep
        self._clock = clock
        self.on_retry = on_retry
        self.limiter = limiter
        self.usage = usage
        self._given = given
        #: The transport in use (set up on first use), the one this engine must close, and the one holding the auth headers.
        self._transport: Optional[Transport] = None
        self._owned: Optional[Transport] = None
        self._authed: Optional[Transport] = None
        #: ``(config, headers)``: config headers + auth headers, computed once per config object.
        self._auth: Optional[Tuple[ProviderConfig, Dict[str, str]]] = None
        self._lock = threading.Lock()
        #: model -> {option: Refusal} the provider rejected at run time. Copy-on-write: a model's
        #: mapping is replaced, never changed, under the lock, so readers iterate it without the lock.
        self._learned: Dict[str, Dict[str, Refusal]] = {}

    def __repr__(self) -> str:
        return f"<Engine of {self.name!r} retry={self.retry!r} breaker={self.breaker!r}>"

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock of this engine's deadlines."""
        return self._clock

    # ------------------------------------------------------------ transport
    def transport(self, provider: "ModelProvider") -> Transport:
        """The transport for ``provider``, set up on first use (never under the lock: a racing duplicate is closed).

        Built from the config with the auth headers inside, or made by the
        factory, or the given transport; a factory's or a given transport is
        set up with :meth:`Transport.for_provider` (a transport that returns
        a new object there took the credentials; otherwise they go with each
        request).
        """
        current = self._transport
        if current is not None:
            return current
        config, parser, headers = provider.config, provider.parse_error, self.base_headers(provider)
        base: Optional[Transport] = self._given
        owned: Optional[Transport] = None
        authed: Optional[Transport] = None
        if base is None and self._factory is not None:
            base = owned = self._factory(config)
        if base is None:
            from .transport.requests_transport import RequestsTransport

            transport: Transport = RequestsTransport.from_config(config, error_parser=parser, auth_headers=headers)
            owned = authed = transport
        else:
            setup = getattr(base, "for_provider", None)  # duck-typed transports may lack it
            transport = setup(config, error_parser=parser, auth_headers=headers) if setup is not None else base
            if transport is not base:
                authed = transport
        with self._lock:
            kept = self._transport
            if kept is None:
                self._transport, self._owned, self._authed = transport, owned, authed
                return transport
        if owned is not None:
            owned.close()
        return kept

    def base_headers(self, provider: "ModelProvider") -> Dict[str, str]:
        """Config headers overlaid with the provider's auth headers, cached per config object."""
        cache = self._auth
        config = provider.config
        if cache is None or cache[0] is not config:
            headers = dict(config.headers)
            headers.update(provider.auth_headers())
            cache = self._auth = (config, headers)
        return cache[1]

    def with_auth(self, provider: "ModelProvider", request: HTTPRequest, transport: Transport) -> HTTPRequest:
        """``request`` with the config and auth headers (its own win); unchanged through the transport built with them."""
        cache = self._auth
        if transport is self._authed and cache is not None and cache[0] is provider.config:
            return request
        headers = dict(self.base_headers(provider))
        headers.update(request.headers)
        return dataclasses.replace(request, headers=headers)

    def close(self) -> None:
        """Close the transport this engine built or had made (a given one is its owner's); the next call sets up a new one."""
        with self._lock:
            owned, self._owned, self._transport, self._authed = self._owned, None, None, None
        if owned is not None:
            owned.close()

    # --------------------------------------------------------- retry + breaker
    def within_policy(self, deadline: Deadline) -> Deadline:
        """``deadline``, shortened to the retry policy's own ``deadline`` when it has one."""
        limit = self.retry.deadline
        return deadline if limit is None else deadline.within(limit)

    def retrying(
        self, name: str, deadline: Deadline, attempt: Callable[[int], T], retries: "Optional[Records]", sleep: Optional[Callable[[float], None]] = None
    ) -> T:
        """``attempt(n)`` under the retry policy; waits are decided with the time left of ``deadline``."""
        policy = self.retry
        left = deadline.remaining()
        if left is not None:
            policy = policy.with_(deadline=max(left, 1e-3))  # the attempt's own check raises once it has passed
        on_retry = self.on_retry
        if retries is not None:
            on_retry = functools.partial(_record_retry, retries, on_retry)
        return call_with_retry(policy, attempt, sleep=sleep or self.sleep, clock=deadline.clock, on_retry=on_retry, provider=name)

    def run(
        self, provider: "ModelProvider", deadline: Deadline, fn: Callable[[int], T], retries: "Optional[Records]", tokens: "Optional[Estimate]" = None,
        retry: bool = True,
    ) -> T:
        """``fn(attempt)`` under the retry policy, each attempt checked against ``deadline``, let through
        by the limiter (taking ``tokens``, an :class:`~modelprov.ratelimit.Estimate`) and run in the breaker's ``guard()``.
        ``retry=False``: one attempt only (a request that must not be sent twice)."""
        breaker, limiter = self.breaker, self.limiter
        name = provider.instance_name

        def attempt(n: int) -> T:
            deadline.check(name)
            if limiter is not None:
                limiter.acquire(tokens, deadline, sleep=self.sleep, retry=n > 1)
            with breaker.guard():  # success on return, the exception classified on a raise
                try:
                    return fn(n)
                except BaseException as exc:
                    provider.add_connection_hint(exc)
                    raise

        if not retry:
            return attempt(1)
        return self.retrying(name, deadline, attempt, retries)

    def exchange(
        self,
        provider: "ModelProvider",
        request: HTTPRequest,
        deadline: Deadline,
        handle: Callable[[Response], T],
        retries: "Optional[Records]",
        tokens: "Optional[Estimate]" = None,
        retry: bool = True,
    ) -> T:
        """Send ``request`` under limiter + retry + breaker and hand the response to ``handle``
        (``retry=False``: never resent, for a request that creates something, such as a provider batch)."""
        provider.validate_config()
        transport = self.transport(provider)
        request = self.with_auth(provider, request, transport)
        limiter = self.limiter

        def send(n: int) -> T:
            if limiter is not None:
                return limiter.exchange(functools.partial(transport.send, request, deadline, attempt=n), handle, tokens)
            return handle(transport.send(request, deadline, attempt=n))

        return self.run(provider, deadline, send, retries, tokens, retry)

    # ------------------------------------------------- options rejected at run time
    def learned(self, provider: "ModelProvider", req: ChatRequest) -> ChatRequest:
        """``req`` without the options (or option values) the provider rejected earlier for its model."""
        learned = self._learned.get(req.model)  # never changed once published: no lock needed to iterate
        if not learned:
            return req
        for option, refusal in learned.items():
            value = option_value(req, option)
            if value is None or not refusal.covers(value):
                continue
            if not provider.config.drop_unsupported:
                raise unsupported_error(provider, option, req.model, refusal.reason, value_specific=refusal.values is not None)
            log_dropped(provider.instance_name, req.model, option, refusal.reason)
            req = drop_option(req, option)
        return req

    def learn(self, provider: "ModelProvider", req: ChatRequest, exc: UnsupportedFeatureError) -> ChatRequest:
        """After the provider rejected option ``exc.extra['option']``: ``req`` without it, or re-raise ``exc``.

        Only with ``drop_unsupported`` and only for an option actually sent
        (so the resend loop ends); what was refused is remembered for this
        model: the value sent when ``exc.extra['value_specific']``, else the
        option itself. Re-raised for an option sent, ``exc`` names the option,
        provider and model (:func:`~modelprov.providers.unsupported.explain_rejection`).
        """
        option = exc.extra.get("option")
        if not option:
            raise exc
        model = req.model
        value = option_value(req, option)
        if value is None:  # not sent (a codec default, say): not this call's option, nothing to leave out
            exc.extra.setdefault("model", model)
            raise exc
        if not provider.config.drop_unsupported:
            raise explain_rejection(provider.instance_name, exc, model)
        value_specific = bool(exc.extra.get("value_specific"))
        reason = f"the provider rejected the value {value!r}: {exc.message}" if value_specific else f"the provider rejected it: {exc.message}"
        with self._lock:
            learned = dict(self._learned.get(model) or {})
            old = learned.get(option)
            if old is not None:
                learned[option] = old.adding(value, reason, value_specific)
            else:
                learned[option] = Refusal(reason, (copy.deepcopy(value),) if value_specific else None)
            self._learned[model] = learned
        log_dropped(provider.instance_name, model, option, reason)
        return drop_option(req, option)

    # ------------------------------------------------------------------ calls
    def chat(self, provider: "ModelProvider", req: ChatRequest, deadline: Deadline, *, retries: "Optional[Records]" = None) -> ModelResponse:
        """Send ``req`` and return the whole answer (a rejected option is left out of one resend), recorded in :attr:`usage`."""
        usage = self.usage
        if usage is None:
            return self._chat(provider, req, deadline, retries)
        try:
            result = self._chat(provider, req, deadline, retries)
        except Exception:
            usage.record_error(provider.instance_name, req.model)
            raise
        usage.record(provider.instance_name, req.model, result.usage, result.model)
        return result

    def _chat(self, provider: "ModelProvider", req: ChatRequest, deadline: Deadline, retries: "Optional[Records]") -> ModelResponse:
        deadline = self.within_policy(deadline)
        tokens = None if self.limiter is None else self.limiter.estimate(req)
        if not provider.uses_http:
            result = self.run(provider, deadline, functools.partial(provider.local_chat, req), retries, tokens)
        else:
            name = provider.instance_name

            def handle(response: Response) -> ModelResponse:
                result = provider.parse_chat_response(response.json())
                if result.provider is None:
                    result.provider = name
                if result.request_id is None:
                    result.request_id = response.request_id
                if result.latency_s is None:
                    result.latency_s = response.latency_s
                return result

            if self._learned:
                req = self.learned(provider, req)
            while True:
                try:
                    result = self.exchange(provider, provider.build_chat_request(req), deadline, handle, retries, tokens)
                except UnsupportedFeatureError as exc:
                    req = self.learn(provider, req, exc)  # resend once without the rejected option
                    continue
                break
        if req.dropped:
            result.dropped_options = list(req.dropped)
        return result

    def stream(self, provider: "ModelProvider", req: ChatRequest, deadline: Deadline, *, retries: "Optional[Records]" = None) -> ProviderStream:
        """A stream of ``req``'s answer; nothing is sent before the first ``next()`` (see :mod:`.engine_stream`)."""
        return open_stream(self, provider, req, self.within_policy(deadline), retries)

    def embed(
        self, provider: "ModelProvider", inputs: List[str], model: str, options: Dict[str, Any], deadline: Deadline, *, retries: "Optional[Records]" = None
    ) -> EmbeddingResponse:
        """Embeddings of ``inputs`` (already validated), one per input."""
        deadline = self.within_policy(deadline)
        if not provider.uses_http:
            deadline.check(provider.instance_name)
            return provider.local_embed(inputs, model, options)
        name = provider.instance_name

        def handle(response: Response) -> EmbeddingResponse:
            result = provider.parse_embed_response(response.json())
            if len(result.embeddings) != len(inputs):
                raise ResponseError(f"asked for {len(inputs)} embeddings, got {len(result.embeddings)}", provider=name)
            if result.provider is None:
                result.provider = name
            if result.request_id is None:
                result.request_id = response.request_id
            if result.latency_s is None:
                result.latency_s = response.latency_s
            return result

        tokens = None if self.limiter is None else self.limiter.estimate_texts(inputs)
        return self.exchange(provider, provider.build_embed_request(inputs, model, options), deadline, handle, retries, tokens)

    def list_models(self, provider: "ModelProvider", deadline: Deadline) -> List[ModelInfo]:
        """Every model the provider reports, following pagination (at most 1000 pages)."""
        deadline = self.within_policy(deadline)
        if not provider.uses_http:
            return provider.local_models()

        def handle(response: Response) -> Tuple[List[ModelInfo], Optional[str]]:
            return provider.parse_models_response(response.json())

        models: List[ModelInfo] = []
        cursor: Optional[str] = None
        seen: Set[str] = set()
        for _ in range(1000):
            page, cursor = self.exchange(provider, provider.build_models_request(cursor), deadline, handle, None)
            models.extend(page)
            if not cursor or cursor in seen:
                break
            seen.add(cursor)
        return models

    # ------------------------------------------------------------------ async
    async def achat(self, provider: "ModelProvider", req: ChatRequest, deadline: Deadline) -> ModelResponse:
        """:meth:`chat` on the async bridge's threads."""
        from .async_bridge import get_bridge

        return await get_bridge().run(self.chat, provider, req, deadline)

    def astream(self, provider: "ModelProvider", req: ChatRequest, deadline: Deadline) -> AsyncIterator[StreamChunk]:
        """:meth:`stream` iterated on the async bridge's threads; cancelling or breaking out closes it."""
        from .async_bridge import get_bridge

        stream = self.stream(provider, req, deadline)
        return get_bridge().iterate(lambda: stream)

    async def aembed(self, provider: "ModelProvider", inputs: List[str], model: str, options: Dict[str, Any], deadline: Deadline) -> EmbeddingResponse:
        """:meth:`embed` on the async bridge's threads."""
        from .async_bridge import get_bridge

        return await get_bridge().run(self.embed, provider, inputs, model, options, deadline)


def _record_retry(retries: "Records", hook: Optional[OnRetry], record: Dict[str, Any], exc: BaseException) -> None:
    """The ``on_retry`` of a call with an explicit record list: append, then call the engine's hook."""
    retries.append(record)
    if hook is not None:
        hook(record, exc)


def bind(
    provider: P,
    *,
    transport: TransportArg = None,
    retry: Optional[RetryPolicy] = None,
    breaker: Optional[BreakerLike] = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Optional[OnRetry] = None,
    limiter: "Optional[RateLimiter]" = None,
    usage: "Optional[UsageTotals]" = None,
) -> P:
    """Give ``provider`` an :class:`Engine` with these settings (see :class:`Engine`) and return it.

    ``limiter`` (a :class:`~modelprov.ratelimit.RateLimiter`, shared by every provider on the
    endpoint) paces the calls; ``usage`` (a :class:`~modelprov.usage.UsageTotals`) counts them.
    A provider bound before has its old engine closed. ``modelprov.get_registry().get(name)``
    and ``Client().provider(name)`` return providers bound already.
    """
    old = provider.engine
    provider.engine = Engine(
        provider, transport=transport, retry=retry, breaker=breaker, sleep=sleep, clock=clock, on_retry=on_retry, limiter=limiter, usage=usage
    )
    old.close()
    return provider
