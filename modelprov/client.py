"""``Client``: the facade. Routes ``provider/model`` strings, falls back, batches.

The client never names a provider: it resolves aliases and the default model
through the config, builds provider instances through the registry and binds
each to an engine (:mod:`modelprov.engine`) with the client's retry policy,
clock, sleep, retry hook, transport, one circuit breaker per provider
endpoint (shared by all of the client's calls), one rate limiter per endpoint
(the provider settings ``rpm`` and ``tpm``, and the provider's rate-limit
headers) and one :class:`~modelprov.usage.UsageTotals` across all providers
(``client.usage``), and runs the fallback chain
(:mod:`modelprov.fallback`) with the call's one
:class:`~modelprov.deadline.Deadline`. The module-level functions
(``modelprov.complete`` and the rest) live in :mod:`modelprov.api`.

A call costs little over the provider's own: the route of each model string
is remembered while the config stays the same
(:class:`~modelprov.fallback.RouteCache`), a call without a timeout shares
one open deadline, and the chain builds nothing for hooks that are not set.
"""

import threading
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._log import get_logger
from .deadline import Deadline
from .exceptions import ConfigurationError, ValidationError
from .fallback import ChatStream, RouteCache, provider_deadline, run_chain
from .hooks import Hook, HookSet
from .types import EmbeddingResponse, MessageInput, ModelInfo, ModelResponse, ProviderConfig, StreamChunk, Tool

if TYPE_CHECKING:  # pragma: no cover
    from .batch_jobs import BatchJob
    from .circuit_breaker import CircuitBreaker
    from .config.manager import ConfigManager
    from .engine import TransportArg
    from .providers.base import ModelProvider
    from .ratelimit import Limiters, RateLimiter
    from .retry import RetryPolicy
    from .usage import UsageTotals

__all__ = ["Client"]

log = get_logger("client")

Messages = Union[MessageInput, Sequence[MessageInput]]
Stop = Union[str, Sequence[str], None]
Tools = Optional[Sequence[Union[Tool, Mapping[str, Any]]]]
ToolChoice = Union[str, Mapping[str, Any], None]
ResponseFormat = Union[str, Mapping[str, Any], None]
Reasoning = Union[str, int, None]
_OPTIONS = ("system", "temperature", "top_p", "max_tokens", "stop", "seed", "tools", "tool_choice", "response_format", "reasoning", "cache")


_get_config: "Optional[Callable[[], ConfigManager]]" = None


def _process_config() -> "ConfigManager":
    """The process-wide config manager (its module loaded once, on first use)."""
    global _get_config
    if _get_config is None:
        from .config.manager import get_config

        _get_config = get_config
    return _get_config()


def _options(provider_options: Dict[str, Any], *values: Any) -> Dict[str, Any]:
    """The call's options: ``provider_options`` plus the named chat options given (``None``: not given)."""
    if "stream" in provider_options:
        raise ValidationError("pass no 'stream' option: use stream() for a stream, complete() for a whole answer")
    for name, value in zip(_OPTIONS, values):
        if value is not None:
            provider_options[name] = value
    return provider_options


class Client:
    """One object for every provider.

    :param providers: per-provider settings overriding the config, e.g.
        ``{"openai": {"api_key": "..."}, "vllm": {"type": "openai_compatible", "base_url": "..."}}``.
    :param retry: the :class:`~modelprov.RetryPolicy` for every call.
    :param fallbacks: model strings tried in order when the model fails with a
        retryable error after retries, an open breaker, an auth, permission,
        not-found or quota error (never on an invalid request).
    :param default_model: used when a call passes no model (else ``MODELPROV_MODEL`` or config).
    :param timeout: overall deadline in seconds for one call, over every attempt and fallback
        (without one, each provider's ``timeout`` setting bounds its own call).
    :param drop_unsupported: ``True`` leaves out chat options a provider, API
        version or model does not take (named in ``response.dropped_options``)
        instead of raising :class:`~modelprov.UnsupportedFeatureError`; sets
        the provider setting of the same name for every provider.
    :param breaker: keyword settings for the per-endpoint
        :class:`~modelprov.CircuitBreaker`, or ``False`` to disable breakers.
    :param on_request, on_response, on_retry, on_fallback, on_error: event
        hooks; each receives one dict of redacted information (never keys or
        message content). A hook that raises is logged and ignored.
    :param transport: the transport every provider of this client sends
        through (e.g. ``modelprov.testing.MockTransport``), or a factory
        ``transport(provider_config)``; the caller keeps ownership of a
        transport object (``close()`` leaves it open).
    :param prices: USD per million tokens per ``"provider/model"``, e.g.
        ``{"openai/gpt-5.4-mini": {"input": 0.25, "output": 2.0, "cached": 0.025}}``,
        over the config file's ``[prices]`` section; :attr:`usage` prices calls with it
        when the provider reports no cost itself.
    :param adaptive_limits: slow down when a provider's rate-limit headers say its
        budget is nearly spent (``False``: only the ``rpm``/``tpm`` provider settings).
    """

    def __init__(
        self,
        providers: Optional[Mapping[str, Mapping[str, Any]]] = None,
        *,
        retry: "Optional[RetryPolicy]" = None,
        fallbacks: Union[Sequence[str], str, None] = (),
        default_model: Optional[str] = None,
        timeout: Optional[float] = None,
        breaker: Union[Mapping[str, Any], bool, None] = None,
        drop_unsupported: Optional[bool] = None,
        on_request: Optional[Hook] = None,
        on_response: Optional[Hook] = None,
        on_retry: Optional[Hook] = None,
        on_fallback: Optional[Hook] = None,
        on_error: Optional[Hook] = None,
        config: "Optional[ConfigManager]" = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: "TransportArg" = None,
        prices: Optional[Mapping[str, Mapping[str, float]]] = None,
        adaptive_limits: bool = True,
    ) -> None:
        from .client_settings import check_settings

        self._init_args: Dict[str, Any] = check_settings(
            providers=providers, retry=retry, fallbacks=fallbacks, default_model=default_model, timeout=timeout, breaker=breaker,
            drop_unsupported=drop_unsupported, hooks=(on_request, on_response, on_retry, on_fallback, on_error), config=config,
            sleep=sleep, clock=clock, transport=transport, prices=prices, adaptive_limits=adaptive_limits,
        )  # fmt: skip
        self._setup()

    def _setup(self) -> None:
        a = self._init_args
        self._providers_cfg: Dict[str, Dict[str, Any]] = a["providers"]
        self._retry: "Optional[RetryPolicy]" = a["retry"]
        self.fallbacks: List[str] = a["fallbacks"]
        self.default_model: Optional[str] = a["default_model"]
        self.timeout: Optional[float] = a["timeout"]
        self._breaker_cfg: Union[Dict[str, Any], bool, None] = a["breaker"]
        self.drop_unsupported: Optional[bool] = a["drop_unsupported"]
        self._sleep: Callable[[float], None] = a["sleep"]
        self._clock: Callable[[], float] = a["clock"]
        self._transport: "TransportArg" = a["transport"]
        self.hooks = HookSet(*a["hooks"])
        self._config: "Optional[ConfigManager]" = a["config"]
        self._lock = threading.Lock()
        self._instances: Dict[str, "ModelProvider"] = {}
        self._breakers: Dict[Tuple[str, str], "CircuitBreaker"] = {}
        from .ratelimit import Limiters

        self._prices: "Optional[Dict[str, Dict[str, float]]]" = a.get("prices")
        self._limiters: "Limiters" = Limiters(a.get("adaptive_limits", True), clock=self._clock, sleep=self._sleep)
        self._usage: "Optional[UsageTotals]" = None
        self._routes = RouteCache()
        self._open_deadline = Deadline(None, clock=self._clock)  # no end: shared by the calls without a timeout

    # ------------------------------------------------------------ pickling
    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self._init_args)
        transport = state.get("transport")
        if transport is not None:
            from .client_settings import check_transport_pickles

            check_transport_pickles(transport)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self._init_args = state
        self._setup()

    def __repr__(self) -> str:
        return f"<Client providers={sorted(self._providers_cfg)} fallbacks={self.fallbacks}>"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close every provider connection the client opened (a transport it was given stays open)."""
        with self._lock:
            instances = list(self._instances.values())
            self._instances.clear()
        for inst in instances:
            inst.close()

    # ------------------------------------------------------------- routing
    @property
    def config(self) -> "ConfigManager":
        """The :class:`~modelprov.config.ConfigManager` in use."""
        return self._config if self._config is not None else _process_config()

    def resolve(self, model: Optional[str]) -> Tuple[str, str]:
        """``(provider name, model name)`` for a model string, alias or the default model (read from the config now)."""
        cfg = self.config
        if model is None:
            model = cfg.default_model(self.default_model)
            if not model:
                raise ConfigurationError(
                    "no model given and no default model configured",
                    hint="pass a 'provider/model' string, set MODELPROV_MODEL, or run: modelprov config set default_model provider/model",
                )
        if not isinstance(model, str) or not model.strip():
            raise ValidationError("model must be a non-empty 'provider/model' string")
        model = cfg.resolve_alias(model.strip())
        provider, sep, name = model.partition("/")
        from .registry import get_registry

        registry = get_registry()
        if not (provider in self._providers_cfg or provider in registry or provider in cfg.provider_names()):
            if not sep:
                raise ConfigurationError(
                    f"model {model!r} has no provider prefix", hint="write it as 'provider/model', e.g. 'openai/gpt-5.4-mini' or 'ollama/llama3.2'"
                )
            raise registry.unknown_error(provider)
        if not sep or not name:
            name = self.provider(provider).config.default_model or ""
            if not name:
                raise ConfigurationError(f"provider {provider!r} has no default model", hint=f"use '{provider}/<model>'")
        return provider, name

    def provider(self, name: str) -> "ModelProvider":
        """The client's instance of provider ``name`` (created and bound to an engine on first use)."""
        inst = self._instances.get(name)
        if inst is not None:
            return inst
        from .engine import bind
        from .registry import get_registry

        settings = dict(self._providers_cfg.get(name, {}))
        if self.drop_unsupported is not None:
            settings.setdefault("drop_unsupported", self.drop_unsupported)
        cls, cfg = get_registry().resolve(name, config=self._config, **settings)
        breaker = None if self._breaker_cfg is False else self._breaker_for(cfg)
        inst = bind(cls(cfg), transport=self._transport, retry=self._retry, breaker=breaker, sleep=self._sleep, clock=self._clock,
                    on_retry=self.hooks.retry_adapter(name), limiter=self._limiters.for_config(cfg), usage=self.usage)  # fmt: skip
        with self._lock:
            kept = self._instances.setdefault(name, inst)
        if kept is not inst:  # another thread made it first
            inst.close()
        return kept

    def _breaker_for(self, cfg: ProviderConfig) -> "CircuitBreaker":
        from .circuit_breaker import CircuitBreaker

        key = (cfg.provider_type, cfg.base_url or cfg.name)
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                settings = dict(self._breaker_cfg) if isinstance(self._breaker_cfg, dict) else {}
                settings.setdefault("clock", self._clock)
                breaker = self._breakers[key] = CircuitBreaker(cfg.name, **settings)
            return breaker

    def breaker(self, name: str) -> "Optional[CircuitBreaker]":
        """The circuit breaker guarding provider ``name`` (``None`` if disabled)."""
        config = self.provider(name).config
        return None if self._breaker_cfg is False else self._breaker_for(config)

    def limiter(self, name: str) -> "Optional[RateLimiter]":
        """The rate limiter of provider ``name``'s endpoint (``None`` without rpm/tpm and with ``adaptive_limits=False``)."""
        return self._limiters.for_config(self.provider(name).config)

    @property
    def usage(self) -> "UsageTotals":
        """Running totals of this client's calls per ``provider/model``: calls, errors, tokens, cost
        (:class:`~modelprov.usage.UsageTotals`: ``snapshot()``, ``reset()``)."""
        usage = self._usage
        if usage is None:
            from .usage import UsageTotals

            made = UsageTotals.with_config(self.config, self._prices)  # the [prices] section, Client(prices=) over it
            with self._lock:
                usage = self._usage = self._usage or made
        return usage

    def _target(self, model: Optional[str]) -> Tuple[str, str]:
        """:meth:`resolve`, remembered per model string while the config stays the same (see :class:`~modelprov.fallback.RouteCache`)."""
        cfg = self._config if self._config is not None else _process_config()
        if model is None:
            model = cfg.default_model(self.default_model)  # the environment is read live, as resolve() does
            if not model:
                return self.resolve(None)  # raises the "no model" error
        return self._routes.target(cfg, model, self.resolve)

    def _chain(self, model: Optional[str]) -> Sequence[Tuple[str, str]]:
        first = self._target(model)
        if not self.fallbacks:
            return (first,)
        chain = [first]
        for fb in self.fallbacks:
            target = self._target(fb)
            if target not in chain:
                chain.append(target)
        return chain

    def deadline(self, timeout: Optional[float] = None) -> Deadline:
        """A call's deadline: ``timeout`` seconds (checked here, once), else the client's ``timeout`` (``None``: none)."""
        return Deadline(self.timeout if timeout is None else timeout, clock=self._clock)

    def _call_deadline(self, timeout: Optional[float]) -> Deadline:
        """:meth:`deadline`; without any timeout, the one shared deadline with no end (nothing to make per call)."""
        if timeout is None and self.timeout is None:
            return self._open_deadline
        return self.deadline(timeout)

    # ----------------------------------------------------------------- API
    def complete(
        self, model: Optional[str], messages: Messages, *, system: Optional[str] = None, temperature: Optional[float] = None,
        top_p: Optional[float] = None, max_tokens: Optional[int] = None, stop: Stop = None, seed: Optional[int] = None, tools: Tools = None,
        tool_choice: ToolChoice = None, response_format: ResponseFormat = None, reasoning: Reasoning = None, cache: Optional[bool] = None,
        timeout: Optional[float] = None, **provider_options: Any,
    ) -> ModelResponse:  # fmt: skip
        """Send a chat request and return the whole answer (see :class:`Client` for fallbacks; ``timeout`` bounds the call)."""
        deadline = self._call_deadline(timeout)
        opts = _options(provider_options, system, temperature, top_p, max_tokens, stop, seed, tools, tool_choice, response_format, reasoning, cache)
        return run_chain(self, self._chain(model), messages, opts, deadline)

    def stream(
        self, model: Optional[str], messages: Messages, *, system: Optional[str] = None, temperature: Optional[float] = None,
        top_p: Optional[float] = None, max_tokens: Optional[int] = None, stop: Stop = None, seed: Optional[int] = None, tools: Tools = None,
        tool_choice: ToolChoice = None, response_format: ResponseFormat = None, reasoning: Reasoning = None, cache: Optional[bool] = None,
        timeout: Optional[float] = None, **provider_options: Any,
    ) -> ChatStream:  # fmt: skip
        """Stream an answer as :class:`StreamChunk` objects; falls back only before the first chunk."""
        deadline = self._call_deadline(timeout)
        opts = _options(provider_options, system, temperature, top_p, max_tokens, stop, seed, tools, tool_choice, response_format, reasoning, cache)
        return ChatStream(self, self._chain(model), messages, opts, deadline)

    async def acomplete(
        self, model: Optional[str], messages: Messages, *, system: Optional[str] = None, temperature: Optional[float] = None,
        top_p: Optional[float] = None, max_tokens: Optional[int] = None, stop: Stop = None, seed: Optional[int] = None, tools: Tools = None,
        tool_choice: ToolChoice = None, response_format: ResponseFormat = None, reasoning: Reasoning = None, cache: Optional[bool] = None,
        timeout: Optional[float] = None, **provider_options: Any,
    ) -> ModelResponse:  # fmt: skip
        """Async twin of :meth:`complete` (same code, on the async bridge's threads)."""
        from .async_bridge import get_bridge

        deadline = self._call_deadline(timeout)
        opts = _options(provider_options, system, temperature, top_p, max_tokens, stop, seed, tools, tool_choice, response_format, reasoning, cache)
        return await get_bridge().run(lambda: run_chain(self, self._chain(model), messages, opts, deadline))

    def astream(
        self, model: Optional[str], messages: Messages, *, system: Optional[str] = None, temperature: Optional[float] = None,
        top_p: Optional[float] = None, max_tokens: Optional[int] = None, stop: Stop = None, seed: Optional[int] = None, tools: Tools = None,
        tool_choice: ToolChoice = None, response_format: ResponseFormat = None, reasoning: Reasoning = None, cache: Optional[bool] = None,
        timeout: Optional[float] = None, **provider_options: Any,
    ) -> AsyncIterator[StreamChunk]:  # fmt: skip
        """Async twin of :meth:`stream`; cancelling or breaking out closes the HTTP stream."""
        from .async_bridge import get_bridge

        deadline = self._call_deadline(timeout)
        opts = _options(provider_options, system, temperature, top_p, max_tokens, stop, seed, tools, tool_choice, response_format, reasoning, cache)
        # built on a bridge thread: resolving config (maybe a slow keyring) never blocks the loop
        return get_bridge().iterate(lambda: ChatStream(self, self._chain(model), messages, opts, deadline))

    def embed(self, model: Optional[str], inputs: Union[str, Sequence[str]], *, timeout: Optional[float] = None, **options: Any) -> EmbeddingResponse:
        """Embed a string or a list of strings with ``model`` (``timeout`` defaults to the client's)."""
        deadline = self._call_deadline(timeout)
        _options(options)
        provider_name, name = self._target(model)
        provider = self.provider(provider_name)
        items, use_model = provider.embed_inputs(inputs, name)
        return provider.engine.embed(provider, items, use_model, options, provider_deadline(deadline, provider))

    def models(self, provider: str) -> List[ModelInfo]:
        """The models provider ``provider`` offers."""
        return self.provider(provider).list_models()

    async def aembed(self, model: Optional[str], inputs: Union[str, Sequence[str]], *, timeout: Optional[float] = None, **options: Any) -> EmbeddingResponse:
        """Async twin of :meth:`embed`."""
        from .async_bridge import get_bridge

        return await get_bridge().run(lambda: self.embed(model, inputs, timeout=timeout, **options))

    async def amodels(self, provider: str) -> List[ModelInfo]:
        """Async twin of :meth:`models`."""
        from .async_bridge import get_bridge

        return await get_bridge().run(self.models, provider)

    def batch(
        self, requests: Sequence[Any], max_concurrency: int = 8, on_progress: Optional[Callable[[int, int], None]] = None,
        return_exceptions: bool = True, *, executor: Any = None, chunk_size: Optional[int] = None,
    ) -> List[Any]:
        """Run many completions concurrently, or in chunks on ``executor`` (any :class:`concurrent.futures.Executor`,
        a Dask client's ``get_executor()`` included); results in input order (see :func:`modelprov.batch.run_batch`).

        Each request is a prompt, a message list, a ``(model, messages)`` pair or a dict with ``messages``
        (or ``prompt``), an optional ``model`` and chat options; a failed request's exception takes its place
        (or is raised, with ``return_exceptions=False``)."""
        from .batch import run_batch

        return run_batch(self, requests, max_concurrency, on_progress, return_exceptions, executor=executor, chunk_size=chunk_size)

    async def abatch(
        self, requests: Sequence[Any], max_concurrency: int = 8, on_progress: Optional[Callable[[int, int], None]] = None,
        return_exceptions: bool = True, *, executor: Any = None, chunk_size: Optional[int] = None,
    ) -> List[Any]:
        """Async twin of :meth:`batch`."""
        from .async_bridge import get_bridge

        return await get_bridge().run(self.batch, requests, max_concurrency, on_progress, return_exceptions, executor=executor, chunk_size=chunk_size)

    def submit_batch(self, model: Optional[str], requests: Sequence[Any], *, metadata: Optional[Mapping[str, str]] = None,
                     timeout: Optional[float] = None) -> "BatchJob":
        """Submit ``requests`` to the provider's batch API (OpenAI, Anthropic): see :func:`modelprov.batch_jobs.submit_batch`."""
        from .batch_jobs import submit_batch

        return submit_batch(self, model, requests, metadata=metadata, timeout=timeout)

    def batch_job(self, provider: str, batch_id: str) -> "BatchJob":
        """The :class:`~modelprov.batch_jobs.BatchJob` of batch ``batch_id`` at ``provider`` (no I/O; e.g. in another process)."""
        from .batch_jobs import BatchJob

        return BatchJob.attach(self, provider, batch_id)
