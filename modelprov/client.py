"""``Client``: the facade. Routes ``provider/model`` strings, falls back, batches.

The client never names a provider: it resolves aliases and the default model
through the config, builds provider instances through the registry (one
circuit breaker per provider endpoint, shared by all of the client's calls),
and runs the fallback chain. The module-level :func:`complete`,
:func:`stream`, :func:`embed`, :func:`acomplete`, :func:`astream` use a
lazily created default client.
"""

import threading
import time
from typing import Any, AsyncIterator, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .fallback import FallbackStream, HookSet, run_chain
from ._log import get_logger
from .exceptions import ConfigurationError, ValidationError
from .types import EmbeddingResponse, ModelInfo, ModelResponse, StreamChunk

__all__ = [
    "Client",
    "acomplete",
    "aembed",
    "astream",
    "complete",
    "embed",
    "get_default_client",
    "models",
    "reset_default_client",
    "stream",
]

log = get_logger("client")


class Client:
    """One object for every provider.

    :param providers: per-provider settings overriding the config, e.g.
        ``{"openai": {"api_key": "..."}, "vllm": {"type": "openai_compatible", "base_url": "..."}}``.
    :param retry: the :class:`~modelprov.RetryPolicy` for every call.
    :param fallbacks: model strings tried in order when the model fails with a
        retryable error after retries, an open breaker, an auth, permission,
        not-found or quota error (never on an invalid request).
    :param default_model: used when a call passes no model (else ``MODELPROV_MODEL`` or config).
    :param timeout: overall deadline in seconds for one call, over every attempt and fallback.
    :param drop_unsupported: ``True`` leaves out chat options a provider, API
        version or model does not take (named in ``response.dropped_options``)
        instead of raising :class:`~modelprov.UnsupportedFeatureError`; sets
        the provider setting of the same name for every provider.
    :param breaker: keyword settings for the per-endpoint
        :class:`~modelprov.CircuitBreaker`, or ``False`` to disable breakers.
    :param on_request, on_response, on_retry, on_fallback, on_error: event
        hooks; each receives one dict of redacted information (never keys or
        message content). A hook that raises is logged and ignored.
    """

    def __init__(
        self,
        providers: Optional[Mapping[str, Mapping[str, Any]]] = None,
        *,
        retry: Any = None,
        fallbacks: Sequence[str] = (),
        default_model: Optional[str] = None,
        timeout: Optional[float] = None,
        breaker: Union[Mapping[str, Any], bool, None] = None,
        drop_unsupported: Optional[bool] = None,
        on_request: Optional[Callable[[Dict[str, Any]], None]] = None,
        on_response: Optional[Callable[[Dict[str, Any]], None]] = None,
        on_retry: Optional[Callable[[Dict[str, Any]], None]] = None,
        on_fallback: Optional[Callable[[Dict[str, Any]], None]] = None,
        on_error: Optional[Callable[[Dict[str, Any]], None]] = None,
        config: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if providers is not None and not isinstance(providers, Mapping):
            raise ValidationError("providers must be a dict of provider name -> settings dict")
        for name, settings in (providers or {}).items():
            if not isinstance(settings, Mapping):
                raise ValidationError(f"providers[{name!r}] must be a dict of settings")
        if fallbacks is None:
            fallbacks = []
        if isinstance(fallbacks, str):
            fallbacks = [fallbacks]
        if not isinstance(fallbacks, (list, tuple)) or not all(isinstance(f, str) and f for f in fallbacks):
            raise ValidationError("fallbacks must be a list of 'provider/model' strings")
        _check_timeout(timeout)
        if drop_unsupported is not None and not isinstance(drop_unsupported, bool):
            raise ValidationError(f"drop_unsupported must be True or False, not {drop_unsupported!r}")
        if retry is not None:
            from .retry import RetryPolicy

            if not isinstance(retry, RetryPolicy):
                raise ValidationError(f"retry must be a modelprov.RetryPolicy, not {type(retry).__name__}")
        if breaker is True:
            breaker = None
        if breaker is not None and breaker is not False:
            if not isinstance(breaker, Mapping):
                raise ValidationError("breaker must be True, False or a dict of CircuitBreaker settings")
            from .circuit_breaker import CircuitBreaker

            try:
                CircuitBreaker("check", **dict(breaker))
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"invalid breaker settings: {exc}") from None
        for hook_name, hook in (("on_request", on_request), ("on_response", on_response), ("on_retry", on_retry), ("on_fallback", on_fallback), ("on_error", on_error)):
            if hook is not None and not callable(hook):
                raise ValidationError(f"{hook_name} must be callable")
        self._init_args = dict(
            providers={k: dict(v) for k, v in (providers or {}).items()},
            retry=retry,
            fallbacks=list(fallbacks),
            default_model=default_model,
            timeout=timeout,
            breaker=breaker if isinstance(breaker, bool) or breaker is None else dict(breaker),
            drop_unsupported=drop_unsupported,
            on_request=on_request,
            on_response=on_response,
            on_retry=on_retry,
            on_fallback=on_fallback,
            on_error=on_error,
            config=config,
            sleep=sleep,
            clock=clock,
        )
        self._setup()

    def _setup(self) -> None:
        a = self._init_args
        self._providers_cfg: Dict[str, Dict[str, Any]] = a["providers"]
        self._retry = a["retry"]
        self.fallbacks: List[str] = a["fallbacks"]
        self.default_model = a["default_model"]
        self.timeout = a["timeout"]
        self._breaker_cfg = a["breaker"]
        self.drop_unsupported: Optional[bool] = a.get("drop_unsupported")
        self._sleep = a["sleep"]
        self._clock = a["clock"]
        self.hooks = HookSet(a["on_request"], a["on_response"], a["on_retry"], a["on_fallback"], a["on_error"])
        self._config = a["config"]
        self._lock = threading.Lock()
        self._instances: Dict[str, Any] = {}
        self._breakers: Dict[Tuple[str, str], Any] = {}

    # ------------------------------------------------------------ pickling
    def __getstate__(self) -> Dict[str, Any]:
        return dict(self._init_args)

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
        """Close every provider connection the client opened."""
        with self._lock:
            instances = list(self._instances.values())
            self._instances.clear()
        for inst in instances:
            inst.close()

    # ------------------------------------------------------------- routing
    @property
    def config(self) -> Any:
        """The :class:`~modelprov.config.ConfigManager` in use."""
        if self._config is None:
            from .config.manager import get_config

            return get_config()
        return self._config

    def resolve(self, model: Optional[str]) -> Tuple[str, str]:
        """``(provider name, model name)`` for a model string, alias or the default model."""
        cfg = self.config
        if model is None:
            model = cfg.default_model(self.default_model)
            if not model:
                raise ConfigurationError(
                    "no model given and no default model configured",
                    hint="pass a 'provider/model' string, set MODELPROV_MODEL, "
                    "or run: modelprov config set default_model provider/model",
                )
        if not isinstance(model, str) or not model.strip():
            raise ValidationError("model must be a non-empty 'provider/model' string")
        model = cfg.resolve_alias(model.strip())
        provider, sep, name = model.partition("/")
        from .registry import get_registry

        registry = get_registry()
        known = provider in self._providers_cfg or provider in registry or provider in cfg.provider_names()
        if not known:
            if not sep:
                raise ConfigurationError(
                    f"model {model!r} has no provider prefix",
                    hint="write it as 'provider/model', e.g. 'openai/gpt-5.4-mini' or 'ollama/llama3.2'",
                )
            raise registry.unknown_error(provider)
        if not sep or not name:
            inst = self.provider(provider)
            name = inst.config.default_model or ""
            if not name:
                raise ConfigurationError(f"provider {provider!r} has no default model", hint=f"use '{provider}/<model>'")
        return provider, name

    def provider(self, name: str) -> Any:
        """The client's instance of provider ``name`` (created on first use)."""
        inst = self._instances.get(name)
        if inst is not None:
            return inst
        from .registry import get_registry

        settings = dict(self._providers_cfg.get(name, {}))
        if self.drop_unsupported is not None:
            settings.setdefault("drop_unsupported", self.drop_unsupported)
        cls, cfg = get_registry().resolve(name, config=self._config, **settings)
        kwargs: Dict[str, Any] = dict(sleep=self._sleep, clock=self._clock, on_retry=self.hooks.retry_adapter(name))
        if self._retry is not None:
            kwargs["retry"] = self._retry
        if self._breaker_cfg is not False:
            kwargs["breaker"] = self._breaker_for(cfg)
        inst = cls(cfg, **kwargs)
        with self._lock:
            return self._instances.setdefault(name, inst)

    def _breaker_for(self, cfg: Any) -> Any:
        from .circuit_breaker import CircuitBreaker

        key = (cfg.provider_type, cfg.base_url or cfg.name)
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                settings = dict(self._breaker_cfg or {})
                settings.setdefault("clock", self._clock)
                breaker = self._breakers[key] = CircuitBreaker(cfg.name, **settings)
            return breaker

    def breaker(self, name: str) -> Any:
        """The circuit breaker guarding provider ``name`` (``None`` if disabled)."""
        return self.provider(name)._breaker

    def _chain(self, model: Optional[str]) -> List[Tuple[str, str]]:
        chain = [self.resolve(model)]
        for fb in self.fallbacks:
            target = self.resolve(fb)
            if target not in chain:
                chain.append(target)
        return chain

    # ----------------------------------------------------------------- API
    def _call_args(self, timeout: Optional[float], options: Dict[str, Any]) -> Optional[float]:
        _check_timeout(timeout)
        if "stream" in options:
            raise ValidationError("pass no 'stream' option: use stream() for a stream, complete() for a whole answer")
        return self.timeout if timeout is None else timeout

    def complete(self, model: Optional[str], messages: Any, *, timeout: Optional[float] = None, **options: Any) -> ModelResponse:
        """Send a chat request and return the whole answer (see :class:`Client` for fallbacks)."""
        timeout = self._call_args(timeout, options)
        return run_chain(self, self._chain(model), "generate", messages, timeout, options)

    def stream(self, model: Optional[str], messages: Any, *, timeout: Optional[float] = None, **options: Any) -> FallbackStream:
        """Stream an answer as :class:`StreamChunk` objects; falls back only before the first chunk."""
        timeout = self._call_args(timeout, options)
        return FallbackStream(self, self._chain(model), messages, timeout, options)

    def embed(self, model: Optional[str], inputs: Union[str, Sequence[str]], *, timeout: Optional[float] = None, **options: Any) -> EmbeddingResponse:
        """Embed a string or a list of strings with ``model`` (``timeout`` defaults to the client's)."""
        timeout = self._call_args(timeout, options)
        provider, name = self.resolve(model)
        if timeout is not None:
            options["timeout"] = timeout
        return self.provider(provider).embed(inputs, model=name, **options)

    def models(self, provider: str) -> List[ModelInfo]:
        """The models provider ``provider`` offers."""
        return self.provider(provider).list_models()

    async def acomplete(self, model: Optional[str], messages: Any, **options: Any) -> ModelResponse:
        """Async twin of :meth:`complete` (same code, on the async bridge's threads)."""
        from .async_bridge import get_bridge

        return await get_bridge().run(lambda: self.complete(model, messages, **options))

    def astream(self, model: Optional[str], messages: Any, **options: Any) -> AsyncIterator[StreamChunk]:
        """Async twin of :meth:`stream`; cancelling or breaking out closes the HTTP stream."""
        from .async_bridge import get_bridge

        # built on a bridge thread: resolving config (maybe a slow keyring) never blocks the loop
        return get_bridge().iterate(lambda: self.stream(model, messages, **options))

    async def aembed(self, model: Optional[str], inputs: Union[str, Sequence[str]], **options: Any) -> EmbeddingResponse:
        """Async twin of :meth:`embed`."""
        from .async_bridge import get_bridge

        return await get_bridge().run(lambda: self.embed(model, inputs, **options))

    async def amodels(self, provider: str) -> List[ModelInfo]:
        """Async twin of :meth:`models`."""
        from .async_bridge import get_bridge

        return await get_bridge().run(lambda: self.models(provider))

    def batch(
        self,
        requests: Sequence[Any],
        max_concurrency: int = 8,
        on_progress: Optional[Callable[[int, int], None]] = None,
        return_exceptions: bool = True,
    ) -> List[Any]:
        """Run many completions concurrently; results come back in input order.

        Each request is a prompt string (default model), a ``(model, messages)``
        pair, or a dict with ``model``, ``messages`` and any chat options.
        ``on_progress(done, total)`` is called after each one finishes. With
        ``return_exceptions=True`` a failed request's exception takes its place
        in the list; otherwise the first failure is raised once all are done.
        """
        from .batch import run_batch

        return run_batch(self, requests, max_concurrency, on_progress, return_exceptions)

    async def abatch(
        self,
        requests: Sequence[Any],
        max_concurrency: int = 8,
        on_progress: Optional[Callable[[int, int], None]] = None,
        return_exceptions: bool = True,
    ) -> List[Any]:
        """Async twin of :meth:`batch`."""
        from .async_bridge import get_bridge

        return await get_bridge().run(lambda: self.batch(requests, max_concurrency, on_progress, return_exceptions))


# ---------------------------------------------------------------- module API
_default: Optional[Client] = None
_default_lock = threading.Lock()


def get_default_client() -> Client:
    """The lazily created client behind the module-level functions."""
    global _default
    client = _default
    if client is None:
        with _default_lock:
            if _default is None:
                _default = Client()
            client = _default
    return client


def reset_default_client() -> None:
    """Drop the default client (tests use this)."""
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.close()


def complete(model: Optional[str], messages: Any, **options: Any) -> ModelResponse:
    """``Client().complete`` on the default client."""
    return get_default_client().complete(model, messages, **options)


def stream(model: Optional[str], messages: Any, **options: Any) -> FallbackStream:
    """``Client().stream`` on the default client."""
    return get_default_client().stream(model, messages, **options)


def embed(model: Optional[str], inputs: Union[str, Sequence[str]], **options: Any) -> EmbeddingResponse:
    """``Client().embed`` on the default client."""
    return get_default_client().embed(model, inputs, **options)


def models(provider: str) -> List[ModelInfo]:
    """``Client().models`` on the default client."""
    return get_default_client().models(provider)


async def acomplete(model: Optional[str], messages: Any, **options: Any) -> ModelResponse:
    """``Client().acomplete`` on the default client."""
    return await get_default_client().acomplete(model, messages, **options)


def astream(model: Optional[str], messages: Any, **options: Any) -> AsyncIterator[StreamChunk]:
    """``Client().astream`` on the default client."""
    return get_default_client().astream(model, messages, **options)


async def aembed(model: Optional[str], inputs: Union[str, Sequence[str]], **options: Any) -> EmbeddingResponse:
    """``Client().aembed`` on the default client."""
    return await get_default_client().aembed(model, inputs, **options)


def _check_timeout(timeout: Any) -> None:
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
        raise ValidationError(f"timeout must be a positive number of seconds, not {timeout!r}")
