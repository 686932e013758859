"""``ModelProvider``: the provider base class and the codec machinery under it.

A provider is a *codec*: subclasses write pure hooks that turn a
:class:`~modelprov.types.ChatRequest` into an :class:`~modelprov.types.HTTPRequest`
and turn response bodies and stream events back into modelprov types. This
module runs those hooks over the transport, the retry policy and the circuit
breaker, so no provider does I/O of its own and every cross-cutting concern
lives in one place.

Subclasses set the class attributes (``name``, ``capabilities``,
``default_base_url`` ...) and implement the hooks listed in
:class:`ModelProvider`. A provider that does not speak HTTP (the mock)
overrides :meth:`ModelProvider._chat`, :meth:`ModelProvider._open_stream` and
friends instead.
"""

import threading
import time
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Callable,
    ClassVar,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from .._log import get_logger
from ..exceptions import (
    ConfigurationError,
    ModelProvError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ResponseError,
    UnsupportedFeatureError,
    ValidationError,
)
from ..types import (
    ChatRequest,
    EmbeddingResponse,
    HTTPRequest,
    MessageInput,
    ModelInfo,
    ModelResponse,
    ProviderCapabilities,
    ProviderConfig,
    StreamChunk,
)
from .request import build_chat_request_object, call_timeout as _call_timeout
from ._stream import ChunkStream
from .unsupported import apply_unsupported, learn_unsupported

if TYPE_CHECKING:  # pragma: no cover
    from ..circuit_breaker import CircuitBreaker
    from ..retry import RetryPolicy
    from ..transport.requests_transport import Transport

__all__ = ["ModelProvider", "StreamDecoder"]

log = get_logger("providers")

class StreamDecoder:
    """Turns one stream's events into :class:`StreamChunk` objects.

    One decoder per stream; it may keep state (tool-call assembly, usage).
    ``event`` is an :class:`~modelprov.streaming.SSEEvent` for SSE providers
    and a parsed JSON value for NDJSON providers.
    """

    #: Set once the protocol's terminator arrived (``[DONE]``, ``message_stop``, ``done: true``).
    done: bool = False

    def feed(self, event: Any) -> List[StreamChunk]:  # pragma: no cover - abstract
        """Decode one event; raise the matching ``ProviderError`` for an in-stream error."""
        raise NotImplementedError

    def is_keepalive(self, event: Any) -> bool:
        """True for events that only keep the connection alive (they do not reset the idle deadline)."""
        return False

    def finish(self) -> List[StreamChunk]:
        """Called at end of input; raise :class:`ResponseError` when the terminator never came."""
        if not self.done:
            raise ResponseError("the stream ended before the provider finished its answer (truncated)")
        return []


class ModelProvider:
    """Base class of every provider.

    Class attributes describe the provider; instances hold a resolved
    :class:`ProviderConfig`. Public calls: :meth:`generate`, :meth:`stream`,
    :meth:`embed`, :meth:`list_models`, :meth:`validate_config`, and the async
    twins :meth:`agenerate` / :meth:`astream` / :meth:`aembed`, which run the
    same blocking code on the async bridge.
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[ProviderCapabilities] = ProviderCapabilities()
    default_base_url: ClassVar[Optional[str]] = None
    default_model: ClassVar[Optional[str]] = None
    api_key_env: ClassVar[Tuple[str, ...]] = ()
    base_url_env: ClassVar[Tuple[str, ...]] = ()
    #: Provider options read from the environment: option -> variable names (e.g. Anthropic's api_version).
    option_env: ClassVar[Dict[str, Tuple[str, ...]]] = {}
    requires_api_key: ClassVar[bool] = False
    stream_format: ClassVar[str] = "sse"
    #: False for providers that do no HTTP at all (the mock).
    uses_http: ClassVar[bool] = True
    #: Hint added to connection errors (e.g. "is the local server running?").
    connection_hint: ClassVar[Optional[str]] = None

    def __init__(
        self,
        config: Optional[ProviderConfig] = None,
        *,
        transport: "Optional[Transport]" = None,
        retry: "Optional[RetryPolicy]" = None,
        breaker: "Optional[CircuitBreaker]" = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_retry: Optional[Callable[[Dict[str, Any], BaseException], None]] = None,
    ) -> None:
        if config is None:
            config = ProviderConfig(name=self.name, base_url=self.default_base_url, default_model=self.default_model)
        if config.base_url is None and self.default_base_url:
            config = config.with_overrides(base_url=self.default_base_url)
        if config.default_model is None and self.default_model:
            config = config.with_overrides(default_model=self.default_model)
        self.config = config
        self._transport = transport
        self._retry = retry
        self._breaker = breaker
        self._sleep = sleep
        self._clock = clock
        self._on_retry = on_retry
        #: The transport this provider built with its auth headers inside (``_with_auth`` adds none then).
        self._authed_transport: "Optional[Transport]" = None
        #: ``(config, headers)``: config headers + auth headers, computed once per config object.
        self._auth_cache: Optional[Tuple[ProviderConfig, Dict[str, str]]] = None
        self._lock = threading.Lock()
        #: model -> {option: reason} learned from the provider's own rejections (drop_unsupported).
        self._learned: Dict[str, Dict[str, str]] = {}

    # ------------------------------------------------------------------ info
    @classmethod
    def config_defaults(cls) -> Dict[str, Any]:
        """Defaults handed to the config manager (it knows no provider itself)."""
        defaults: Dict[str, Any] = {
            "type": cls.name,
            "base_url": cls.default_base_url,
            "default_model": cls.default_model,
            "api_key_env": tuple(cls.api_key_env),
            "base_url_env": tuple(cls.base_url_env),
        }
        if cls.option_env:
            defaults["option_env"] = {k: tuple(v) for k, v in cls.option_env.items()}
        normalize = getattr(cls, "normalize_base_url", None)
        if normalize is not None:
            defaults["normalize_base_url"] = normalize
        return defaults

    @property
    def instance_name(self) -> str:
        """The configured name (``vllm`` for a named openai_compatible instance)."""
        return self.config.name or self.name

    def __repr__(self) -> str:
        from .._redact import redact

        return redact(f"<{type(self).__name__} name={self.instance_name!r} base_url={self.config.base_url!r}>")

    def missing_key_error(self) -> ConfigurationError:
        """The error raised when a key is required and none is configured."""
        name = self.instance_name
        envs = list(self.api_key_env) if name == self.name else []
        envs.append("MODELPROV_" + "".join(c if c.isalnum() else "_" for c in name.upper()) + "_API_KEY")
        return ConfigurationError(
            f"no API key for {name}",
            provider=name,
            hint=f"set {' or '.join(envs)}, or run: modelprov keys set {name}",
            missing_key=True,
        )

    def validate_config(self) -> None:
        """Check the configuration without I/O; raise :class:`ConfigurationError` if unusable."""
        if self.requires_api_key and not self.config.api_key:
            raise self.missing_key_error()
        if self.uses_http and not self.config.base_url:
            raise ConfigurationError(f"no base_url configured for {self.instance_name}", provider=self.instance_name)

    def add_connection_hint(self, exc: BaseException) -> None:
        """Put this provider's :attr:`connection_hint` on a connection error."""
        if self.connection_hint and isinstance(exc, ProviderConnectionError):
            exc.hint = self.connection_hint

    def require(self, feature: str) -> None:
        """Raise :class:`UnsupportedFeatureError` unless the capability ``feature`` is true."""
        if not getattr(self.capabilities, feature, False):
            raise UnsupportedFeatureError(
                f"{self.instance_name} does not support {feature.replace('_', ' ')}", provider=self.instance_name
            )

    # ------------------------------------------------------------ codec hooks
    def unsupported_options(self, req: ChatRequest) -> Dict[str, str]:
        """Option name -> reason, for options this provider, API version or model is known not to take.

        Checked before any I/O (see :mod:`.unsupported`); names are ChatRequest fields or provider-option keys.
        """
        return {}

    def auth_headers(self) -> Dict[str, str]:
        """Headers that authenticate a request (built from ``self.config``)."""
        return {}

    def build_chat_request(self, req: ChatRequest) -> HTTPRequest:  # pragma: no cover - abstract
        """Turn a chat request into an HTTP request."""
        raise NotImplementedError

    def parse_chat_response(self, body: Any) -> ModelResponse:  # pragma: no cover - abstract
        """Turn a chat response body into a :class:`ModelResponse`."""
        raise NotImplementedError

    def new_stream_decoder(self, req: ChatRequest) -> StreamDecoder:  # pragma: no cover - abstract
        """A fresh decoder for one stream."""
        raise NotImplementedError

    def parse_error(self, status: int, body: Any, text: str, headers: Mapping[str, str]) -> Optional[ModelProvError]:
        """Map an error body to an exception (``None``: the generic mapping; see :mod:`.unsupported`)."""
        return None

    def build_embed_request(self, inputs: List[str], model: str, options: Dict[str, Any]) -> HTTPRequest:
        """Turn an embeddings call into an HTTP request."""
        raise UnsupportedFeatureError(f"{self.instance_name} does not support embeddings", provider=self.instance_name)

    def parse_embed_response(self, body: Any) -> EmbeddingResponse:  # pragma: no cover - abstract
        """Turn an embeddings response body into an :class:`EmbeddingResponse`."""
        raise NotImplementedError

    def build_models_request(self, cursor: Optional[str]) -> HTTPRequest:
        """The request listing models (``cursor`` from the previous page)."""
        raise UnsupportedFeatureError(f"{self.instance_name} cannot list models", provider=self.instance_name)

    def parse_models_response(self, body: Any) -> Tuple[List[ModelInfo], Optional[str]]:  # pragma: no cover
        """Models on this page and the cursor of the next page (or ``None``)."""
        raise NotImplementedError

    # ------------------------------------------------------------ public API
    def make_request(self, messages: Union[MessageInput, Sequence[MessageInput]], *, model: Optional[str] = None, stream: bool = False, **options: Any) -> ChatRequest:
        """Validate arguments into a :class:`ChatRequest` and check capabilities (no I/O)."""
        req = build_chat_request_object(messages, model=model or self.config.default_model, stream=stream, provider=self.instance_name, **options)
        self._check_features(req)
        return apply_unsupported(self, req)

    def _check_features(self, req: ChatRequest) -> None:
        if req.stream:
            self.require("streaming")
        if req.tools:
            self.require("tools")
        if req.seed is not None:
            self.require("seed")
        if req.stop:
            self.require("stop")
        if req.response_format:
            kind = req.response_format.get("type")
            if kind == "json_schema":
                self.require("json_schema")
            elif kind == "json_object":
                self.require("json_mode")
        if any(m.images for m in req.messages):
            self.require("vision")

    def generate(self, messages: Union[MessageInput, Sequence[MessageInput]], *, model: Optional[str] = None, **options: Any) -> ModelResponse:
        """Send a chat request and return the whole answer."""
        timeout = _call_timeout(options)
        req = self.make_request(messages, model=model, **options)
        return self._chat(req, timeout=timeout)

    def stream(self, messages: Union[MessageInput, Sequence[MessageInput]], *, model: Optional[str] = None, **options: Any) -> ChunkStream:
        """Send a chat request and yield :class:`StreamChunk` objects as they arrive.

        The returned iterator has ``close()`` and a thread-safe ``abort()``.
        Validation happens here, before the first ``next()``.
        """
        timeout = _call_timeout(options)
        req = self.make_request(messages, model=model, stream=True, **options)
        return self._open_stream(req, timeout=timeout)

    def embed(self, inputs: Union[str, Sequence[str]], *, model: Optional[str] = None, **options: Any) -> EmbeddingResponse:
        """Embed one string or a list of strings."""
        self.require("embeddings")
        if isinstance(inputs, str):
            items = [inputs]
        elif isinstance(inputs, (list, tuple)):
            items = list(inputs)
        else:
            raise ValidationError(f"inputs must be a string or a list of strings, not {type(inputs).__name__}")
        if not items or not all(isinstance(x, str) for x in items):
            raise ValidationError("inputs must be a non-empty string or list of strings")
        use_model = model or self.config.default_model
        if not use_model:
            raise ValidationError(f"no model given for {self.instance_name} embeddings")
        timeout = _call_timeout(options)
        return self._embed(items, use_model, options, timeout=timeout)

    def list_models(self) -> List[ModelInfo]:
        """All models the provider reports (following pagination)."""
        self.require("list_models")
        return self._list_models()

    async def agenerate(self, messages: Union[MessageInput, Sequence[MessageInput]], *, model: Optional[str] = None, **options: Any) -> ModelResponse:
        """Async twin of :meth:`generate` (runs on the async bridge's threads)."""
        from ..async_bridge import get_bridge

        import functools

        timeout = _call_timeout(options)
        req = self.make_request(messages, model=model, **options)
        return await get_bridge().run(functools.partial(self._chat, req, timeout=timeout))

    def astream(self, messages: Union[MessageInput, Sequence[MessageInput]], *, model: Optional[str] = None, **options: Any) -> AsyncIterator[StreamChunk]:
        """Async twin of :meth:`stream`; cancelling or breaking out closes the HTTP stream."""
        from ..async_bridge import get_bridge

        stream = self.stream(messages, model=model, **options)
        return get_bridge().iterate(lambda: stream)

    async def aembed(self, inputs: Union[str, Sequence[str]], *, model: Optional[str] = None, **options: Any) -> EmbeddingResponse:
        """Async twin of :meth:`embed`."""
        from ..async_bridge import get_bridge

        import functools

        return await get_bridge().run(functools.partial(self.embed, inputs, model=model, **options))

    def close(self) -> None:
        """Release the provider's connections; the next call opens new ones."""
        with self._lock:
            transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    # --------------------------------------------------------- HTTP plumbing
    def _get_transport(self) -> "Transport":
        transport = self._transport
        if transport is None:
            with self._lock:
                if self._transport is None:
                    from ..transport.requests_transport import Transport

                    # Keys change only by building a new provider: the auth headers go into
                    # the transport's base headers once instead of into every request.
                    self._transport = Transport.from_config(
                        self.config, error_parser=self.parse_error, auth_headers=self._base_headers()
                    )
                    self._authed_transport = self._transport
                transport = self._transport
        return transport

    def _get_retry(self) -> "RetryPolicy":
        if self._retry is None:
            from ..retry import RetryPolicy

            self._retry = RetryPolicy()
        return self._retry

    def _base_headers(self) -> Dict[str, str]:
        """Config headers overlaid with :meth:`auth_headers`, cached per config object."""
        cache = self._auth_cache
        config = self.config
        if cache is None or cache[0] is not config:
            headers = dict(config.headers)
            headers.update(self.auth_headers())
            cache = self._auth_cache = (config, headers)
        return cache[1]

    def _with_auth(self, request: HTTPRequest) -> HTTPRequest:
        """``request`` with the config and auth headers (its own headers win).

        Unchanged when it goes through the transport this provider built,
        which already sends them with every request.
        """
        transport = self._transport
        cache = self._auth_cache
        if transport is not None and transport is self._authed_transport and cache is not None and cache[0] is self.config:
            return request
        headers = dict(self._base_headers())
        headers.update(request.headers)
        return HTTPRequest(request.method, request.path, headers, request.json, request.params, request.stream)

    def _policy_for(self, timeout: Optional[float]) -> "RetryPolicy":
        """The retry policy, with its deadline tightened to a per-call ``timeout``."""
        policy = self._get_retry()
        if timeout is not None and (policy.deadline is None or timeout < policy.deadline):
            policy = policy.with_(deadline=timeout)
        return policy

    def _guarded(self, fn: Callable[[int], Any], timeout: Optional[float] = None) -> Any:
        """Run ``fn(attempt)`` under the retry policy, each attempt under the breaker.

        ``timeout`` bounds the whole call, every attempt and wait included.
        """
        from ..retry import call_with_retry

        breaker = self._breaker

        def attempt(n: int) -> Any:
            permit = breaker.acquire() if breaker is not None else None
            try:
                result = fn(n)
            except BaseException as exc:
                if permit is not None:
                    permit.record(exc)
                self.add_connection_hint(exc)
                raise
            if permit is not None:
                permit.success()
            return result

        return call_with_retry(
            self._policy_for(timeout), attempt, sleep=self._sleep, clock=self._clock, on_retry=self._on_retry, provider=self.instance_name
        )

    def _call(self, request: HTTPRequest, timeout: Optional[float], handle: Callable[[Any], Any]) -> Any:
        """Send ``request`` under retry + breaker and hand the response to ``handle``."""
        self.validate_config()
        request = self._with_auth(request)
        transport = self._get_transport()
        clock = self._clock
        start = clock()

        def send(n: int) -> Any:
            left = None if timeout is None else timeout - (clock() - start)
            if left is not None and left <= 0:
                raise ProviderTimeoutError(f"call timeout of {timeout:g}s exceeded", provider=self.instance_name)
            return handle(transport.send(request, timeout=left, attempt=n))

        return self._guarded(send, timeout)

    def _finish_response(self, response: Any, result: Any) -> Any:
        if getattr(result, "provider", "x") is None:
            result.provider = self.instance_name
        if hasattr(result, "request_id") and result.request_id is None:
            result.request_id = response.request_id
        if hasattr(result, "latency_s") and result.latency_s is None:
            result.latency_s = response.latency_s
        return result

    def _chat(self, req: ChatRequest, *, timeout: Optional[float] = None) -> ModelResponse:
        def handle(response: Any) -> ModelResponse:
            result = self.parse_chat_response(response.json())
            return self._finish_response(response, result)

        start = self._clock()
        while True:
            left = None if timeout is None else max(timeout - (self._clock() - start), 1e-3)
            try:
                result: ModelResponse = self._call(self.build_chat_request(req), left, handle)
            except UnsupportedFeatureError as exc:
                req = learn_unsupported(self, req, exc)  # resend once without the rejected option
                continue
            if req.dropped:
                result.dropped_options = list(req.dropped)
            return result

    def _embed(self, inputs: List[str], model: str, options: Dict[str, Any], *, timeout: Optional[float] = None) -> EmbeddingResponse:
        http = self.build_embed_request(inputs, model, options)

        def handle(response: Any) -> EmbeddingResponse:
            result = self.parse_embed_response(response.json())
            if len(result.embeddings) != len(inputs):
                raise ResponseError(
                    f"asked for {len(inputs)} embeddings, got {len(result.embeddings)}", provider=self.instance_name
                )
            return self._finish_response(response, result)

        return self._call(http, timeout, handle)

    def _list_models(self) -> List[ModelInfo]:
        models: List[ModelInfo] = []
        cursor: Optional[str] = None
        seen = set()
        for _ in range(1000):  # hard bound on pages
            page, cursor = self._call(self.build_models_request(cursor), None, lambda r: self.parse_models_response(r.json()))
            models.extend(page)
            if not cursor or cursor in seen:
                break
            seen.add(cursor)
        return models

    def _open_stream(self, req: ChatRequest, *, timeout: Optional[float] = None) -> ChunkStream:
        return ChunkStream(self, req, timeout=timeout)

