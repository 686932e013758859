"""``ModelProvider``: the provider base class, a codec, and ``CallEngine``, what runs its calls.

A provider is a *codec*: subclasses write pure hooks that turn a
:class:`~modelprov.types.ChatRequest` into an :class:`~modelprov.types.HTTPRequest`
and turn response bodies and stream events back into modelprov types, map
error bodies to exceptions and validate arguments. A provider does no I/O and
imports no I/O layer: its public calls (:meth:`ModelProvider.generate`,
:meth:`~ModelProvider.stream`, :meth:`~ModelProvider.embed`,
:meth:`~ModelProvider.list_models` and the async twins) validate, make the
call's :class:`~modelprov.deadline.Deadline` and hand the request to
``self.engine``, any object implementing :class:`CallEngine` (the transport,
retry policy and circuit breaker live there, in :mod:`modelprov.engine`).

The registry and the client bind an engine when they create a provider; a
provider constructed directly is bound with ``modelprov.engine.bind(provider,
...)``. Subclasses set the class attributes (``name``, ``capabilities``,
``default_base_url`` ...) and implement the codec hooks. A provider that does
not speak HTTP (the mock) sets ``uses_http = False`` and implements the
``local_*`` hooks instead; the engine runs those under the same retry policy
and breaker.
"""

from typing import Any, AsyncIterator, Callable, ClassVar, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple, Union, cast

from ..deadline import Deadline
from ..exceptions import ConfigurationError, ModelProvError, ProviderConnectionError, ResponseError, UnsupportedFeatureError, ValidationError
from ..stream_handle import ProviderStream
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
from .request import build_chat_request_object, pop_timeout
from .unsupported import apply_unsupported

__all__ = ["CallEngine", "ModelProvider", "Records", "StreamDecoder", "UnboundEngine"]

#: Messages as the public calls take them: one message (a string, dict or Message) or a list.
Messages = Union[MessageInput, Sequence[MessageInput]]
#: A list the engine appends one record to per retried attempt (see :func:`modelprov.retry.call_with_retry`).
Records = List[Dict[str, Any]]


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


class CallEngine(Protocol):
    """What runs a provider's calls: codec -> transport under retry, breaker and the call's deadline.

    :class:`modelprov.engine.Engine` is the implementation. ``retries``, when
    given, is a list the engine appends one record to per attempt that was
    retried (the caller's explicit attempt log; nothing is kept per thread).
    """

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock deadlines of this provider's calls are measured with."""
        ...  # pragma: no cover - protocol

    def chat(self, provider: "ModelProvider", req: ChatRequest, deadline: Deadline, *, retries: Optional[Records] = None) -> ModelResponse:
        """Send ``req`` and return the whole answer."""
        ...  # pragma: no cover - protocol

    def stream(self, provider: "ModelProvider", req: ChatRequest, deadline: Deadline, *, retries: Optional[Records] = None) -> ProviderStream:
        """A stream of ``req``'s answer (nothing is sent before the first ``next()``)."""
        ...  # pragma: no cover - protocol

    def embed(
        self, provider: "ModelProvider", inputs: List[str], model: str, options: Dict[str, Any], deadline: Deadline, *, retries: Optional[Records] = None
    ) -> EmbeddingResponse:
        """Embed ``inputs`` (validated) with ``model``."""
        ...  # pragma: no cover - protocol

    def list_models(self, provider: "ModelProvider", deadline: Deadline) -> List[ModelInfo]:
        """Every model the provider reports (following pagination)."""
        ...  # pragma: no cover - protocol

    async def achat(self, provider: "ModelProvider", req: ChatRequest, deadline: Deadline) -> ModelResponse:
        """:meth:`chat` on a worker thread, awaited."""
        ...  # pragma: no cover - protocol

    def astream(self, provider: "ModelProvider", req: ChatRequest, deadline: Deadline) -> AsyncIterator[StreamChunk]:
        """:meth:`stream` iterated on a worker thread; cancelling or breaking out closes it."""
        ...  # pragma: no cover - protocol

    async def aembed(self, provider: "ModelProvider", inputs: List[str], model: str, options: Dict[str, Any], deadline: Deadline) -> EmbeddingResponse:
        """:meth:`embed` on a worker thread, awaited."""
        ...  # pragma: no cover - protocol

    def close(self) -> None:
        """Release the connections the engine opened; the next call opens new ones."""
        ...  # pragma: no cover - protocol


class UnboundEngine:
    """The engine of a provider nobody bound: any call raises :class:`ConfigurationError` saying how to bind one."""

    def close(self) -> None:
        """Nothing to release."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)  # copy, pickle and friends probe dunders
        raise ConfigurationError(
            "this provider has no call engine: it was constructed directly",
            hint="use modelprov.get_registry().get(name), Client().provider(name), "
            "or modelprov.engine.bind(provider, ...) before calling it",
        )


_UNBOUND = cast(CallEngine, UnboundEngine())


class ModelProvider:
    """Base class of every provider: a codec, with thin entry points into its bound engine.

    Class attributes describe the provider; instances hold a resolved
    :class:`ProviderConfig` and ``engine`` (a :class:`CallEngine`). Public
    calls: :meth:`generate`, :meth:`stream`, :meth:`embed`,
    :meth:`list_models`, :meth:`validate_config`, and the async twins
    :meth:`agenerate` / :meth:`astream` / :meth:`aembed`, which run the same
    blocking code on the async bridge. Each call's ``timeout`` (else the
    config's ``timeout``) is its overall deadline, every attempt and retry
    wait included.
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
    #: False for providers that do no HTTP at all (the mock): the engine calls the ``local_*`` hooks.
    uses_http: ClassVar[bool] = True
    #: Hint added to connection errors (e.g. "is the local server running?").
    connection_hint: ClassVar[Optional[str]] = None

    def __init__(self, config: Optional[ProviderConfig] = None) -> None:
        if config is None:
            config = ProviderConfig(name=self.name, base_url=self.default_base_url, default_model=self.default_model)
        if config.base_url is None and self.default_base_url:
            config = config.with_overrides(base_url=self.default_base_url)
        if config.default_model is None and self.default_model:
            config = config.with_overrides(default_model=self.default_model)
        self.config = config
        #: What runs this provider's calls; set by :func:`modelprov.engine.bind` (the registry and client bind one).
        self.engine: CallEngine = _UNBOUND

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

    # ---------------------------------------------- hooks of providers without HTTP
    def local_chat(self, req: ChatRequest, attempt: int) -> ModelResponse:  # pragma: no cover - abstract
        """(``uses_http = False``) The answer to ``req``; ``attempt`` counts from 1 (retries call it again)."""
        raise NotImplementedError

    def local_chunks(self, req: ChatRequest, response: ModelResponse) -> Iterator[StreamChunk]:  # pragma: no cover
        """(``uses_http = False``) ``response`` as the chunks a stream of ``req`` yields."""
        raise NotImplementedError

    def local_embed(self, inputs: List[str], model: str, options: Dict[str, Any]) -> EmbeddingResponse:  # pragma: no cover
        """(``uses_http = False``) Embeddings of ``inputs``."""
        raise NotImplementedError

    def local_models(self) -> List[ModelInfo]:  # pragma: no cover - abstract
        """(``uses_http = False``) The models this provider offers."""
        raise NotImplementedError

    # ------------------------------------------------------------ validation
    def make_request(self, messages: Messages, *, model: Optional[str] = None, stream: bool = False, **options: Any) -> ChatRequest:
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

    def embed_inputs(self, inputs: Union[str, Sequence[str]], model: Optional[str]) -> Tuple[List[str], str]:
        """Validate an embeddings call: ``(inputs as a list, model)`` (no I/O)."""
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
        return items, use_model

    def deadline(self, timeout: Optional[float] = None) -> Deadline:
        """A call's deadline: ``timeout`` seconds from now, else the config's ``timeout`` (``None``: none)."""
        return Deadline(self.config.timeout if timeout is None else timeout, clock=self.engine.clock)

    # ------------------------------------------------------------ public API
    def generate(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> ModelResponse:
        """Send a chat request and return the whole answer (``timeout=`` bounds the whole call)."""
        deadline = self.deadline(pop_timeout(options))
        req = self.make_request(messages, model=model, **options)
        return self.engine.chat(self, req, deadline)

    def stream(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> ProviderStream:
        """Send a chat request and yield :class:`StreamChunk` objects as they arrive.

        The returned iterator has ``close()`` and a thread-safe ``abort()``.
        Validation happens here, before the first ``next()``.
        """
        deadline = self.deadline(pop_timeout(options))
        req = self.make_request(messages, model=model, stream=True, **options)
        return self.engine.stream(self, req, deadline)

    def embed(self, inputs: Union[str, Sequence[str]], *, model: Optional[str] = None, **options: Any) -> EmbeddingResponse:
        """Embed one string or a list of strings."""
        items, use_model = self.embed_inputs(inputs, model)
        deadline = self.deadline(pop_timeout(options))
        return self.engine.embed(self, items, use_model, options, deadline)

    def list_models(self) -> List[ModelInfo]:
        """All models the provider reports (following pagination)."""
        self.require("list_models")
        return self.engine.list_models(self, self.deadline())

    async def agenerate(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> ModelResponse:
        """Async twin of :meth:`generate` (runs on the async bridge's threads)."""
        deadline = self.deadline(pop_timeout(options))
        req = self.make_request(messages, model=model, **options)
        return await self.engine.achat(self, req, deadline)

    def astream(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> AsyncIterator[StreamChunk]:
        """Async twin of :meth:`stream`; cancelling or breaking out closes the HTTP stream."""
        deadline = self.deadline(pop_timeout(options))
        req = self.make_request(messages, model=model, stream=True, **options)
        return self.engine.astream(self, req, deadline)

    async def aembed(self, inputs: Union[str, Sequence[str]], *, model: Optional[str] = None, **options: Any) -> EmbeddingResponse:
        """Async twin of :meth:`embed`."""
        items, use_model = self.embed_inputs(inputs, model)
        deadline = self.deadline(pop_timeout(options))
        return await self.engine.aembed(self, items, use_model, options, deadline)

    def close(self) -> None:
        """Release the provider's connections; the next call opens new ones."""
        self.engine.close()
