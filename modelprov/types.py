"""The data types every layer speaks: messages, tools, responses, chunks, config.

Plain dataclasses, standard library only, built by keyword. The message
types live in :mod:`modelprov.parts` (content parts) and
:mod:`modelprov.messages` (:class:`Message`, :class:`ToolCall`,
:class:`Tool`) and are re-exported here. Turning what users pass into these
types, with errors that name the offending index before any I/O, is
:mod:`modelprov.validation`'s job.
"""

import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._redact import mask_key, redact, redact_headers
from .messages import ROLES, Message, MessageInput, Tool, ToolCall
from .parts import PART_TYPES, ImagePart, Part, ProviderPart, ReasoningPart, TextPart

__all__ = [
    "ChatRequest",
    "EmbeddingResponse",
    "FINISH_REASONS",
    "HTTPRequest",
    "ImagePart",
    "Message",
    "MessageInput",
    "ModelInfo",
    "ModelResponse",
    "PART_TYPES",
    "Part",
    "ProviderCapabilities",
    "ProviderConfig",
    "ProviderPart",
    "REASONING_EFFORTS",
    "ROLES",
    "ReasoningDelta",
    "ReasoningPart",
    "StreamChunk",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
]

#: The normalised ``finish_reason`` values (``native_finish_reason`` keeps the provider's own).
#: ``refusal``: the model declined (see ``ModelResponse.refusal``); ``pause``: the provider
#: paused a long turn (send ``response.message`` back to resume it).
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "refusal", "pause", "error")
#: The effort levels the ``reasoning`` chat option takes (an int token budget is also accepted).
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


@dataclass(frozen=True)
class ReasoningDelta:
    """A fragment of a reasoning block in a stream, keyed by ``index`` (0, 1, ... per block).

    ``text`` and ``signature`` fragments are appended; ``redacted_data`` is a
    whole redacted block; ``details``, when set, is the block's complete list
    of provider details and replaces any earlier one.
    """

    index: int = 0
    text: str = ""
    signature: Optional[str] = None
    redacted_data: Optional[str] = None
    details: Optional[Tuple[Dict[str, Any], ...]] = None


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of a tool call in a stream, keyed by ``index``."""

    index: int
    id: Optional[str] = None
    name: Optional[str] = None
    arguments: str = ""


@dataclass
class Usage:
    """Token counts, normalised across providers.

    ``input_tokens`` includes cached prompt tokens (OpenAI's convention; the
    Anthropic codec adds its cache fields in). ``reasoning_tokens`` is the
    reasoning share of ``output_tokens`` where the provider reports it.
    ``timings`` holds durations in seconds where the provider reports them
    (Ollama).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: Optional[int] = None
    cache_read_tokens: Optional[int] = None
    cache_write_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None
    timings: Dict[str, float] = field(default_factory=dict)
    #: What the call cost in USD: reported by the provider (OpenRouter) or computed from the client's price table; else ``None``.
    cost: Optional[float] = None

    def __post_init__(self) -> None:
        if self.total_tokens is None:
            self.total_tokens = (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass
class ModelResponse:
    """A complete answer from a model.

    ``content`` holds the parts in order: reasoning parts first, then text
    (and any provider-native parts). ``finish_reason`` is one of
    :data:`FINISH_REASONS`. ``refusal`` is the model's refusal text or the
    provider's explanation when ``finish_reason == "refusal"``.
    ``dropped_options`` names the options left out because the target does
    not take them (``Client(drop_unsupported=True)``). :attr:`message` is the
    assistant turn to append to the history.
    """

    text: str = ""
    content: List[Part] = field(default_factory=list)
    tool_calls: List[ToolCall] = field(default_factory=list)
    finish_reason: Optional[str] = None
    native_finish_reason: Optional[str] = None
    usage: Usage = field(default_factory=Usage)
    model: Optional[str] = None
    provider: Optional[str] = None
    id: Optional[str] = None
    request_id: Optional[str] = None
    latency_s: Optional[float] = None
    created_at: float = field(default_factory=time.time)
    raw: Any = field(default=None, repr=False)
    #: One record per attempt (retries and fallbacks), oldest first.
    attempts: List[Dict[str, Any]] = field(default_factory=list, repr=False)
    refusal: Optional[str] = None
    dropped_options: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.text and not any(type(p) is TextPart for p in self.content):
            self.content = list(self.content) + [TextPart(text=self.text)]

    @property
    def reasoning(self) -> str:
        """The reasoning text (reasoning parts joined; ``""`` when none)."""
        return "".join(p.text for p in self.content if isinstance(p, ReasoningPart))

    @property
    def message(self) -> Message:
        """This answer as the assistant :class:`Message` to append to the history.

        It keeps the reasoning parts (with their signatures) and the tool
        calls, so a tool loop on a thinking model works unchanged.
        """
        parts = [p for p in self.content if not (type(p) is TextPart and not p.text)]
        if all(type(p) is TextPart for p in parts):
            # None only beside tool calls: an empty answer (a refusal, a cut-off) stays a valid turn
            content: Union[str, List[Part], None] = self.text or (None if self.tool_calls else "")
        else:
            content = parts
        return Message(role="assistant", content=content, tool_calls=list(self.tool_calls))

    def to_message(self) -> Message:
        """The same as :attr:`message`."""
        return self.message


@dataclass
class StreamChunk:
    """One increment of a streamed answer; the final chunk has ``finish_reason`` and ``usage``."""

    text: str = ""
    tool_calls: List[ToolCallDelta] = field(default_factory=list)
    finish_reason: Optional[str] = None
    native_finish_reason: Optional[str] = None
    usage: Optional[Usage] = None
    model: Optional[str] = None
    provider: Optional[str] = None
    id: Optional[str] = None
    request_id: Optional[str] = None
    raw: Any = field(default=None, repr=False)
    #: A reasoning text delta (the join of ``reasoning_deltas``' texts when those are set).
    reasoning: str = ""
    #: Structured reasoning fragments (block index, signatures, provider details).
    reasoning_deltas: Sequence[ReasoningDelta] = ()
    #: A refusal text delta (OpenAI), or the refusal explanation on the final chunk (Anthropic).
    refusal: str = ""
    #: On the final chunk: options left out because the target does not take them.
    dropped_options: Optional[List[str]] = None
    #: Whole provider-native blocks (e.g. Anthropic server-tool blocks), each emitted once complete.
    provider_parts: Sequence[ProviderPart] = ()


@dataclass
class ModelInfo:
    """A model a provider offers."""

    id: str
    provider: str
    name: Optional[str] = None
    created_at: Optional[float] = None
    context_length: Optional[int] = None
    owned_by: Optional[str] = None
    raw: Any = field(default=None, repr=False)
    #: True when the provider marks the model deprecated (``None``: not reported).
    deprecated: Optional[bool] = None
    #: ISO date (``YYYY-MM-DD``) from which the model is deprecated, when reported.
    deprecation_date: Optional[str] = None
    #: ISO date on which the model stops answering (shutdown / retirement / expiry), when reported.
    retirement_date: Optional[str] = None


@dataclass
class EmbeddingResponse:
    """Vectors for the inputs, in input order."""

    embeddings: List[List[float]]
    model: Optional[str] = None
    provider: Optional[str] = None
    usage: Usage = field(default_factory=Usage)
    request_id: Optional[str] = None
    latency_s: Optional[float] = None
    raw: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class ProviderCapabilities:
    """What a provider can do; checked before any I/O."""

    chat: bool = True
    streaming: bool = True
    tools: bool = False
    vision: bool = False
    json_mode: bool = False
    json_schema: bool = False
    embeddings: bool = False
    list_models: bool = False
    seed: bool = False
    stop: bool = True

    def as_dict(self) -> Dict[str, bool]:
        """The capabilities as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ProviderConfig:
    """The effective settings of one provider instance.

    ``api_key`` never appears in ``repr``. ``headers`` are extra request
    headers; ``options`` holds provider-specific settings (e.g. OpenRouter's
    ``app_url``/``app_title``).

    Time limits, in seconds:

    * ``timeout``: the provider's default overall deadline for one call (all
      attempts and retry waits, the whole body or stream included), used when
      neither the call nor the :class:`~modelprov.client.Client` gives one;
      ``None``: no overall deadline.
    * ``read_timeout``: how long one socket read may wait for bytes.
    * ``connect_timeout``: how long opening a connection may take.
    * ``idle_timeout``: the gap allowed between meaningful stream events
      (keep-alive comments and pings do not count); ``None``: no limit.
    """

    name: str
    type: Optional[str] = None
    api_key: Optional[str] = field(default=None, repr=False, compare=True)
    base_url: Optional[str] = None
    default_model: Optional[str] = None
    timeout: Optional[float] = None
    connect_timeout: float = 5.0
    read_timeout: float = 600.0
    idle_timeout: Optional[float] = 300.0
    proxy: Optional[str] = None
    verify: Union[bool, str, None] = None
    cert: Union[str, Tuple[str, str], None] = None
    #: Idle connections kept per host between bursts; a burst keeps one per call in flight (those beyond this close after 30 s idle).
    pool_size: int = 256
    trust_env: bool = True
    use_truststore: bool = False
    #: Leave out chat options the target does not take instead of raising
    #: :class:`~modelprov.exceptions.UnsupportedFeatureError` (named in ``dropped_options``).
    drop_unsupported: bool = False
    #: Client-side request limit per minute for this endpoint (``None``: none; see :mod:`modelprov.ratelimit`).
    rpm: Optional[float] = None
    #: Client-side token limit per minute (prompt estimate + ``max_tokens``, reconciled with reported usage).
    tpm: Optional[float] = None
    headers: Tuple[Tuple[str, str], ...] = ()
    options: Tuple[Tuple[str, Any], ...] = ()

    @property
    def provider_type(self) -> str:
        """The registered provider class name this instance uses."""
        return self.type or self.name

    def option(self, key: str, default: Any = None) -> Any:
        """A provider-specific option."""
        for k, v in self.options:
            if k == key:
                return v
        return default

    def with_overrides(self, **overrides: Any) -> "ProviderConfig":
        """A copy with the given fields replaced (``None`` values ignored)."""
        known = {f.name for f in fields(self)}
        changes: Dict[str, Any] = {}
        opts = dict(self.options)
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "headers" and isinstance(value, Mapping):
                value = tuple(sorted(value.items()))
            if key == "options" and isinstance(value, Mapping):
                opts.update(value)
                continue
            if key in known:
                changes[key] = value
            else:
                opts[key] = value
        changes["options"] = tuple(sorted(opts.items(), key=lambda kv: kv[0]))
        return replace(self, **changes)

    def __repr__(self) -> str:
        def show(name: str) -> object:
            value = getattr(self, name)
            return tuple(redact_headers(dict(value)).items()) if name == "headers" else value

        shown = ", ".join(f"{f.name}={show(f.name)!r}" for f in fields(self) if f.repr and getattr(self, f.name) not in (None, ()))
        return redact(f"ProviderConfig({shown}, api_key={mask_key(self.api_key)!r})")


@dataclass(frozen=True)
class HTTPRequest:
    """What a codec asks the transport to send.

    ``path`` is joined to the provider's base URL unless it is absolute.
    ``body`` is a body sent as it is (its ``Content-Type`` in ``headers``:
    a multipart upload, say), for the rare request whose body is not ``json``.
    """

    method: str
    path: str
    headers: Dict[str, str] = field(default_factory=dict)
    json: Any = None
    params: Optional[Dict[str, Any]] = None
    stream: bool = False
    body: Optional[bytes] = None

    def __repr__(self) -> str:
        return redact(
            f"HTTPRequest(method={self.method!r}, path={self.path!r}, headers={redact_headers(self.headers)!r}, "
            f"params={self.params!r}, stream={self.stream!r})"
        )


@dataclass
class ChatRequest:
    """A validated, provider-neutral chat request; codecs turn it into HTTP."""

    messages: List[Message]
    model: str
    system: Optional[str] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    max_tokens: Optional[int] = None
    stop: Optional[List[str]] = None
    seed: Optional[int] = None
    tools: Optional[List[Tool]] = None
    #: ``"auto"``, ``"none"``, ``"required"`` or ``{"name": "<tool name>"}``.
    tool_choice: Union[str, Dict[str, Any], None] = None
    #: ``{"type": "json_object"}`` or
    #: ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"?}}``.
    response_format: Optional[Dict[str, Any]] = None
    stream: bool = False
    provider_options: Dict[str, Any] = field(default_factory=dict)
    #: ``None`` (the model's default), an effort from :data:`REASONING_EFFORTS` or a token budget.
    reasoning: Union[str, int, None] = None
    #: ``True`` marks the prompt for caching where the provider needs a request for it.
    cache: Optional[bool] = None
    #: Options left out before sending (``drop_unsupported``), in the order dropped.
    dropped: List[str] = field(default_factory=list)
