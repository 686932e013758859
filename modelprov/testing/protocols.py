"""Protocol-level wire builders: one entry point per payload kind, for every protocol.

These functions pick the right per-provider builder (``_openai``,
``_anthropic``, ``_ollama``) for a protocol name and are what
:class:`~modelprov.testing.FakeServer` itself uses, so a codec test can feed a
decoder exactly the bytes the server would send::

    from modelprov.testing import protocols
    events = protocols.chat_stream("anthropic", "Hi there")   # List[bytes]
    body = protocols.error_body("openai", 429, "Slow down")    # dict

Protocol names are those in :data:`PROTOCOLS`: ``openai``, ``openrouter``,
``openai_compatible``, ``anthropic``, ``ollama``.
"""

import json
from http import HTTPStatus
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._anthropic import (
    anthropic_error_body,
    anthropic_message,
    anthropic_models,
    anthropic_stream_error_events,
    anthropic_stream_events,
)
from ._common import (
    OPENAI_FAMILY,
    PROTOCOLS,
    TextInput,
    ToolCallInput,
    check_protocol,
)
from ._common import split_utf8 as _split_utf8
from ._ollama import (
    ollama_chat,
    ollama_embed,
    ollama_error_body,
    ollama_stream_error_lines,
    ollama_stream_lines,
    ollama_tags,
)
from ._openai import (
    openai_completion,
    openai_embeddings,
    openai_error_body,
    openai_models,
    openai_stream_error_events,
    openai_stream_events,
)

__all__ = [
    "PROTOCOLS",
    "base_path",
    "chat_body",
    "chat_stream",
    "content_type",
    "default_error_message",
    "embeddings_body",
    "encode_json",
    "error_body",
    "models_body",
    "request_id_header",
    "stream_error_events",
    "wants_stream",
    "wants_usage",
]

_BASE_PATHS = {"openai": "/v1", "openrouter": "/api/v1", "openai_compatible": "/v1", "anthropic": "", "ollama": ""}
_REQUEST_ID_HEADERS = {"openai": "x-request-id", "openrouter": "X-Generation-Id", "openai_compatible": "X-Request-Id",
                       "anthropic": "request-id", "ollama": "x-request-id"}


def base_path(protocol: str) -> str:
    """Path prefix of a protocol's base URL: ``/v1``, ``/api/v1`` (OpenRouter) or ``""`` (Anthropic, Ollama)."""
    return _BASE_PATHS[check_protocol(protocol)]


def request_id_header(protocol: str) -> str:
    """Response header carrying the request id (``x-request-id``, ``request-id``, ``X-Generation-Id``...)."""
    return _REQUEST_ID_HEADERS[check_protocol(protocol)]


def content_type(protocol: str, stream: bool) -> str:
    """``Content-Type`` of a reply: JSON, ``text/event-stream`` or ``application/x-ndjson`` (Ollama streams)."""
    check_protocol(protocol)
    if not stream:
        return "application/json"
    if protocol == "ollama":
        return "application/x-ndjson"
    if protocol == "openrouter":
        return "text/event-stream"
    return "text/event-stream; charset=utf-8"


def wants_stream(protocol: str, request_json: Any) -> bool:
    """Whether a request asked for a stream: ``"stream": true``; for Ollama also when ``stream`` is absent."""
    check_protocol(protocol)
    value = request_json.get("stream") if isinstance(request_json, dict) else None
    if protocol == "ollama" and value is None:
        return True
    return bool(value)


def wants_usage(protocol: str, request_json: Any) -> bool:
    """Whether a stream ends with a usage chunk: ``stream_options.include_usage`` (always for OpenRouter)."""
    if protocol == "openrouter":
        return True
    if not isinstance(request_json, dict):
        return False
    options = request_json.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def chat_body(
    protocol: str,
    text: TextInput = "",
    tool_calls: Optional[Sequence[ToolCallInput]] = None,
    *,
    usage: Optional[Mapping[str, Any]] = None,
    finish_reason: Optional[str] = None,
    model: str = "fake-model",
    endpoint: str = "chat",
    **extra: Any,
) -> Dict[str, Any]:
    """A non-streamed chat reply body in ``protocol``'s shape (``endpoint="generate"``: Ollama ``/api/generate``).

    ``extra`` (``reasoning``, ``signature``, ``refusal``) goes to the protocol's builder.
    """
    check_protocol(protocol)
    kw: Dict[str, Any] = dict(usage=usage, finish_reason=finish_reason, model=model, **extra)
    if protocol in OPENAI_FAMILY:
        return openai_completion(text, tool_calls, protocol=protocol, **kw)
    if protocol == "anthropic":
        return anthropic_message(text, tool_calls, **kw)
    return ollama_chat(text, tool_calls, endpoint=endpoint, **kw)


def chat_stream(
    protocol: str,
    text: TextInput = "",
    tool_calls: Optional[Sequence[ToolCallInput]] = None,
    *,
    usage: Optional[Mapping[str, Any]] = None,
    finish_reason: Optional[str] = None,
    model: str = "fake-model",
    include_usage: bool = False,
    chunk_words: bool = True,
    endpoint: str = "chat",
    split_utf8: bool = False,
    **extra: Any,
) -> List[bytes]:
    """The writes of a streamed chat reply: SSE events (OpenAI family, Anthropic) or NDJSON lines (Ollama).

    ``include_usage`` only matters for openai/openai_compatible. With
    ``split_utf8`` the writes are re-cut so multi-byte characters straddle two
    writes (see :func:`~modelprov.testing.split_utf8`).
    """
    check_protocol(protocol)
    kw: Dict[str, Any] = dict(usage=usage, finish_reason=finish_reason, model=model, chunk_words=chunk_words, **extra)
    if protocol in OPENAI_FAMILY:
        out = openai_stream_events(text, tool_calls, protocol=protocol, include_usage=include_usage, **kw)
    elif protocol == "anthropic":
        out = anthropic_stream_events(text, tool_calls, **kw)
    else:
        out = ollama_stream_lines(text, tool_calls, endpoint=endpoint, **kw)
    return _split_utf8(out) if split_utf8 else out


def default_error_message(protocol: Optional[str], status: int) -> str:
    """A plausible error message for a status (``Overloaded`` for Anthropic 529, else the HTTP phrase)."""
    if protocol == "anthropic" and status == 529:
        return "Overloaded"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP %d" % status


def error_body(
    protocol: str,
    status: int,
    message: Optional[str] = None,
    type: Optional[str] = None,
    code: Union[str, int, None] = None,
    request_id: Optional[str] = None,
    param: Optional[str] = None,
) -> Dict[str, Any]:
    """A provider's HTTP error body (``param``: the OpenAI family's ``error.param``).

    * openai: ``{"error": {"message", "type", "param", "code"}}``
    * openai_compatible: same, with an integer ``code`` (the status) by default
    * openrouter: ``{"error": {"code": <int>, "message", "metadata"?}}`` (``type`` -> ``metadata.error_type``)
    * anthropic: ``{"type": "error", "error": {"type", "message", "details"?}, "request_id"?}``
      (a string ``code`` becomes ``details.error_code``)
    * ollama: ``{"error": "<message>"}``

    Defaults for ``type``/``code`` follow the status (see the per-protocol builders).
    """
    check_protocol(protocol)
    msg = message if message is not None else default_error_message(protocol, status)
    if protocol in OPENAI_FAMILY:
        return openai_error_body(status, msg, type, code, protocol, param=param)
    if protocol == "anthropic":
        return anthropic_error_body(status, msg, type, request_id, error_code=code if isinstance(code, str) else None)
    return ollama_error_body(msg)


def stream_error_events(
    protocol: str,
    *,
    after_chunks: int = 2,
    message: Optional[str] = None,
    error_type: Optional[str] = None,
    code: Union[str, int, None] = None,
    text: str = "partial",
    model: str = "fake-model",
    endpoint: str = "chat",
) -> List[bytes]:
    """Writes of a 200 stream that sends ``text`` in up to ``after_chunks`` pieces and then the
    protocol's mid-stream error: Anthropic ``event: error``, OpenAI ``data: {"error": ...}``,
    OpenRouter a chunk with a top-level ``error`` and ``finish_reason: "error"``, Ollama an
    ``{"error": ...}`` line. ``after_chunks=0`` puts the error right after the preamble.
    """
    check_protocol(protocol)
    msg = message
    if protocol in OPENAI_FAMILY:
        return openai_stream_error_events(after_chunks=after_chunks, message=msg or "Internal server error",
                                          error_type=error_type, code=code, text=text, model=model, protocol=protocol)
    if protocol == "anthropic":
        return anthropic_stream_error_events(after_chunks=after_chunks, message=msg or "Overloaded",
                                             error_type=error_type, text=text, model=model)
    return ollama_stream_error_lines(after_chunks=after_chunks, text=text, model=model, endpoint=endpoint,
                                     message=msg or "an error was encountered while running the model")


def embeddings_body(
    protocol: str,
    vectors: Sequence[Sequence[float]],
    *,
    model: str = "fake-embedding",
    encoding_format: str = "float",
) -> Dict[str, Any]:
    """An embeddings reply: OpenAI shape (``data[i].embedding``) or Ollama ``/api/embed`` shape.

    Raises ``ValueError`` for Anthropic, which has no embeddings endpoint.
    """
    check_protocol(protocol)
    if protocol == "anthropic":
        raise ValueError("Anthropic has no embeddings endpoint")
    if protocol == "ollama":
        return ollama_embed(vectors, model=model)
    return openai_embeddings(vectors, model=model, encoding_format=encoding_format)


def models_body(
    protocol: str,
    ids: Sequence[Union[str, Mapping[str, Any]]],
    *,
    after_id: Optional[str] = None,
    before_id: Optional[str] = None,
    limit: Optional[int] = None,
) -> Dict[str, Any]:
    """A model listing: OpenAI/compatible list, OpenRouter ``data``, Anthropic page, Ollama ``/api/tags``.

    ``after_id``/``before_id``/``limit`` (default 20) only apply to Anthropic's paging.
    """
    check_protocol(protocol)
    if protocol == "anthropic":
        return anthropic_models(ids, after_id=after_id, before_id=before_id, limit=limit or 20)
    if protocol == "ollama":
        return ollama_tags(ids)
    return openai_models(ids, protocol=protocol)


def encode_json(value: Any) -> bytes:
    """JSON bytes of a reply body (UTF-8, non-ASCII kept raw)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")
