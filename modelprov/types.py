"""The data types every layer speaks: messages, tools, responses, chunks, config.

Plain dataclasses, standard library only. :func:`normalize_messages` turns the
shapes users pass (a string, OpenAI-style dicts, :class:`Message` objects)
into a validated list of :class:`Message`, raising
:class:`~modelprov.exceptions.ValidationError` (a ``ValueError``) that names
the offending index before any I/O happens.
"""

import base64
import mimetypes
import os
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ._redact import mask_key, redact, redact_headers
from .exceptions import ValidationError

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
    "Part",
    "ProviderCapabilities",
    "ProviderConfig",
    "ROLES",
    "StreamChunk",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "normalize_messages",
    "normalize_tools",
]

ROLES = ("system", "user", "assistant", "tool")
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "error")


@dataclass(frozen=True)
class TextPart:
    """A piece of text inside a message's content."""

    text: str
    type: str = field(default="text", init=False)


@dataclass(frozen=True)
class ImagePart:
    """An image given by ``url`` (http(s) or data URL), raw ``data`` bytes, or a file ``path``.

    Exactly one of the three must be set. ``media_type`` is guessed from the
    path, the data URL or the bytes' magic number when omitted.
    """

    url: Optional[str] = None
    data: Optional[bytes] = field(default=None, repr=False)
    path: Optional[str] = None
    media_type: Optional[str] = None
    detail: Optional[str] = None
    type: str = field(default="image", init=False)

    def __post_init__(self) -> None:
        given = [x for x in (self.url, self.data, self.path) if x is not None]
        if len(given) != 1:
            raise ValidationError("an image needs exactly one of url=, data= or path=")
        if self.url is not None and not isinstance(self.url, str):
            raise ValidationError(f"image url must be a string, not {type(self.url).__name__}")
        if self.path is not None and not isinstance(self.path, (str, os.PathLike)):
            raise ValidationError("image path must be a string or path-like")
        if self.data is not None and not isinstance(self.data, (bytes, bytearray)):
            raise ValidationError("image data must be bytes")

    @property
    def is_remote(self) -> bool:
        """True for an http(s) URL the provider must fetch itself."""
        return self.url is not None and not self.url.startswith("data:")

    def base64_data(self) -> Tuple[str, str]:
        """Return ``(media_type, base64 text)`` for inline transmission.

        Reads the file for ``path`` images; decodes a ``data:`` URL.
        Raises :class:`ValidationError` for a remote URL or an unreadable file.
        """
        if self.url is not None:
            if not self.url.startswith("data:"):
                raise ValidationError(f"image URL {self.url[:60]!r} is remote and cannot be inlined")
            header, _, payload = self.url.partition(",")
            media = header[5:].split(";")[0] or self.media_type or "image/png"
            if ";base64" not in header:
                raise ValidationError("only base64 data URLs are supported for images")
            return media, payload
        if self.path is not None:
            try:
                with open(self.path, "rb") as fh:
                    raw = fh.read()
            except OSError as exc:
                raise ValidationError(f"cannot read image file {os.fspath(self.path)!r}: {exc.strerror}") from exc
            media = self.media_type or mimetypes.guess_type(os.fspath(self.path))[0] or _sniff(raw)
        else:
            raw = bytes(self.data or b"")
            media = self.media_type or _sniff(raw)
        return media, base64.b64encode(raw).decode("ascii")

    def data_url(self) -> str:
        """The image as a URL: the remote URL itself, or a base64 ``data:`` URL."""
        if self.url is not None:
            return self.url
        media, b64 = self.base64_data()
        return f"data:{media};base64,{b64}"


def _sniff(raw: bytes) -> str:
    if raw.startswith(b"\x89PNG"):
        return "image/png"
    if raw.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if raw[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


Part = Union[TextPart, ImagePart]


@dataclass
class ToolCall:
    """A call the model asked for. ``arguments`` is always a dict.

    When the model produced arguments that are not valid JSON, ``arguments``
    is empty, ``raw_arguments`` keeps the text and ``arguments_error`` says
    what was wrong.
    """

    id: str
    name: str
    arguments: Dict[str, Any] = field(default_factory=dict)
    raw_arguments: Optional[str] = None
    arguments_error: Optional[str] = None

    @classmethod
    def from_json_text(cls, id: str, name: str, text: Optional[str]) -> "ToolCall":
        """Build a call from a JSON arguments string, flagging (not raising on) bad JSON."""
        import json

        raw = text or ""
        if not raw.strip():
            return cls(id=id, name=name, arguments={}, raw_arguments=raw)
        try:
            value = json.loads(raw)
        except ValueError as exc:
            return cls(id=id, name=name, arguments={}, raw_arguments=raw, arguments_error=f"invalid JSON: {exc}")
        if not isinstance(value, dict):
            return cls(id=id, name=name, arguments={}, raw_arguments=raw, arguments_error="arguments are not a JSON object")
        return cls(id=id, name=name, arguments=value, raw_arguments=raw)


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of a tool call in a stream, keyed by ``index``."""

    index: int
    id: Optional[str] = None
    name: Optional[str] = None
    arguments: str = ""


@dataclass
class Message:
    """One conversation turn.

    ``content`` is a string or a list of parts. Assistant turns may carry
    ``tool_calls``; tool turns need ``tool_call_id`` (and ``name``, the tool's
    name, which Ollama wants).
    """

    role: str
    content: Union[str, List[Part], None] = None
    tool_calls: List[ToolCall] = field(default_factory=list)
    tool_call_id: Optional[str] = None
    name: Optional[str] = None

    @property
    def text(self) -> str:
        """The text of the content (parts joined, images skipped)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def images(self) -> List[ImagePart]:
        """The image parts of the content."""
        if isinstance(self.content, list):
            return [p for p in self.content if isinstance(p, ImagePart)]
        return []


MessageInput = Union[str, Message, Mapping[str, Any]]


@dataclass(frozen=True)
class Tool:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: Optional[str] = None
    parameters: Dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass
class Usage:
    """Token counts, normalised across providers.

    ``input_tokens`` includes cached prompt tokens (OpenAI's convention; the
    Anthropic codec adds its cache fields in). ``timings`` holds durations in
    seconds where the provider reports them (Ollama).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: Optional[int] = None
    cache_read_tokens: Optional[int] = None
    cache_write_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None
    timings: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.total_tokens is None:
            self.total_tokens = (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass
class ModelResponse:
    """A complete answer from a model."""

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

    def __post_init__(self) -> None:
        if not self.content and self.text:
            self.content = [TextPart(self.text)]

    def to_message(self) -> Message:
        """This answer as an assistant :class:`Message`, ready to append to history."""
        return Message(role="assistant", content=self.text or None, tool_calls=list(self.tool_calls))


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
    #: Connections kept per host; matches the async bridge's default worker count.
    pool_size: int = 256
    trust_env: bool = True
    use_truststore: bool = False
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
        def show(name: str) -> Any:
            value = getattr(self, name)
            return tuple(redact_headers(dict(value)).items()) if name == "headers" else value

        shown = ", ".join(f"{f.name}={show(f.name)!r}" for f in fields(self) if f.repr and getattr(self, f.name) not in (None, ()))
        return redact(f"ProviderConfig({shown}, api_key={mask_key(self.api_key)!r})")


@dataclass(frozen=True)
class HTTPRequest:
    """What a codec asks the transport to send.

    ``path`` is joined to the provider's base URL unless it is absolute.
    """

    method: str
    path: str
    headers: Dict[str, str] = field(default_factory=dict)
    json: Any = None
    params: Optional[Dict[str, Any]] = None
    stream: bool = False

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


# The validation functions live in _normalize (they need the classes above).
from ._normalize import normalize_messages, normalize_tools  # noqa: E402
