"""Factories for :class:`~modelprov.testing.Reply` objects, one per kind of reply.

``FakeServer.add_chat(...)`` is ``server.add(chat_reply(...))`` and so on; the
factories are public so a reply can also be passed to
``FakeServer.set_default``. Each renders lazily: a chat reply looks at the
request it answers (``stream``, ``stream_options.include_usage``, ``model``,
the Ollama endpoint) before choosing its shape.

Every factory takes the fault-injection keywords ``delay``, ``chunk_delay``,
``drop_after``, ``stall_after``, ``truncate``, ``trickle`` and
``trickle_headers`` (see :mod:`.replies`).
"""

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._common import TextInput, ToolCallInput, check_protocol
from .protocols import (
    chat_body,
    chat_stream,
    content_type,
    default_error_message,
    embeddings_body,
    encode_json,
    error_body,
    models_body,
    request_id_header,
    stream_error_events,
    wants_stream,
    wants_usage,
)
from .replies import HeadersInput, Payload, RecordedRequest, Reply, merge_headers

__all__ = [
    "chat_reply",
    "embeddings_reply",
    "error_reply",
    "models_reply",
    "no_reply_payload",
    "raw_reply",
    "stream_error_reply",
]


def _req_model(req: RecordedRequest, given: Optional[str], fallback: str) -> str:
    if given:
        return given
    model = req.json.get("model") if isinstance(req.json, dict) else None
    return model if isinstance(model, str) and model else fallback


def _endpoint(req: RecordedRequest) -> str:
    return "generate" if req.path.rstrip("/").endswith("/api/generate") else "chat"


def _defaults(protocol: str, stream: bool, request_id: Optional[str]) -> List[Any]:
    out = [("Content-Type", content_type(protocol, stream))]
    if stream:
        out.append(("Cache-Control", "no-cache"))
    if request_id:
        out.append((request_id_header(protocol), request_id))
    return out


def chat_reply(
    protocol: str,
    text: TextInput = "",
    *,
    tool_calls: Optional[Sequence[ToolCallInput]] = None,
    usage: Optional[Mapping[str, Any]] = None,
    finish_reason: Optional[str] = None,
    model: Optional[str] = None,
    reasoning: Optional[str] = None,
    signature: Optional[str] = None,
    refusal: Optional[str] = None,
    redacted: Optional[str] = None,
    refusal_category: Optional[str] = None,
    chunk_words: bool = True,
    split_utf8: bool = False,
    stream: Optional[bool] = None,
    status: int = 200,
    path: Optional[str] = None,
    headers: Optional[HeadersInput] = None,
    request_id: Optional[str] = None,
    delay: float = 0.0,
    chunk_delay: float = 0.0,
    drop_after: Optional[int] = None,
    stall_after: Optional[int] = None,
    truncate: bool = False,
    trickle: float = 0.0,
    trickle_headers: bool = False,
) -> Reply:
    """A chat reply in ``protocol``'s shape; streamed when the request asks for it.

    ``model=None`` echoes the request's ``model`` (else ``"fake-model"``);
    ``stream=None`` follows the request (Ollama: streams unless
    ``"stream": false``); ``request_id`` goes into the protocol's request-id
    header. See :func:`~modelprov.testing.protocols.chat_stream` for the stream shapes.
    """
    check_protocol(protocol)

    def render(req: RecordedRequest) -> Payload:
        is_stream = wants_stream(protocol, req.json) if stream is None else stream
        hdrs = merge_headers(_defaults(protocol, is_stream, request_id), headers)
        kw: Dict[str, Any] = dict(usage=usage, finish_reason=finish_reason,
                                  model=_req_model(req, model, "fake-model"), endpoint=_endpoint(req))
        for key, value in (("reasoning", reasoning), ("signature", signature), ("refusal", refusal),
                           ("redacted", redacted), ("refusal_category", refusal_category)):
            if value is not None:
                kw[key] = value
        if is_stream:
            chunks = chat_stream(protocol, text, tool_calls, include_usage=wants_usage(protocol, req.json),
                                 chunk_words=chunk_words, split_utf8=split_utf8, **kw)
            return Payload(status, hdrs, chunks=chunks)
        return Payload(status, hdrs, body=encode_json(chat_body(protocol, text, tool_calls, **kw)))

    return Reply(render, path=path, delay=delay, chunk_delay=chunk_delay, drop_after=drop_after,
                 stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers, label="chat:%s" % protocol)


def error_reply(
    status: int,
    body: Union[Mapping[str, Any], str, bytes, None] = None,
    headers: Optional[HeadersInput] = None,
    *,
    protocol: Optional[str] = None,
    message: Optional[str] = None,
    type: Optional[str] = None,
    code: Union[str, int, None] = None,
    param: Optional[str] = None,
    request_id: Optional[str] = None,
    retry_after: Optional[float] = None,
    path: Optional[str] = None,
    delay: float = 0.0,
    chunk_delay: float = 0.0,
    drop_after: Optional[int] = None,
    stall_after: Optional[int] = None,
    truncate: bool = False,
    trickle: float = 0.0,
    trickle_headers: bool = False,
) -> Reply:
    """An HTTP error reply.

    ``body``: a dict (sent as JSON), a ``str`` (``text/plain``) or ``bytes``
    (no Content-Type unless given). Without ``body``, ``protocol`` builds that
    provider's error shape from ``message``/``type``/``code``/``param``/``request_id``
    (see :func:`~modelprov.testing.protocols.error_body`); without either,
    the body is ``message`` (default: the HTTP reason phrase) as plain text.
    ``retry_after`` adds a ``retry-after`` header; ``request_id`` also adds the
    protocol's request-id header.
    """
    if protocol is not None:
        check_protocol(protocol)
    defaults: List[Any] = []
    if body is None and protocol is not None:
        body = error_body(protocol, status, message, type, code, request_id, param=param)
    if body is None:
        body = message if message is not None else default_error_message(protocol, status)
    if isinstance(body, Mapping):
        raw = encode_json(dict(body))
        defaults.append(("Content-Type", "application/json"))
    elif isinstance(body, str):
        raw = body.encode("utf-8")
        defaults.append(("Content-Type", "text/plain; charset=utf-8"))
    else:
        raw = bytes(body)
    if request_id and protocol is not None:
        defaults.append((request_id_header(protocol), request_id))
    if retry_after is not None:
        value = int(retry_after) if float(retry_after).is_integer() else retry_after
        defaults.append(("retry-after", str(value)))
    payload = Payload(status, merge_headers(defaults, headers), body=raw)
    return Reply(lambda req: payload, path=path, delay=delay, chunk_delay=chunk_delay, drop_after=drop_after,
                 stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers, label="error:%d" % status)


def stream_error_reply(
    protocol: str,
    after_chunks: int = 2,
    *,
    error_type: Optional[str] = None,
    message: Optional[str] = None,
    text: str = "partial",
    code: Union[str, int, None] = None,
    model: Optional[str] = None,
    path: Optional[str] = None,
    headers: Optional[HeadersInput] = None,
    request_id: Optional[str] = None,
    delay: float = 0.0,
    chunk_delay: float = 0.0,
    drop_after: Optional[int] = None,
    stall_after: Optional[int] = None,
    truncate: bool = False,
    trickle: float = 0.0,
    trickle_headers: bool = False,
) -> Reply:
    """An HTTP 200 stream that fails part-way, whatever the request asked.

    See :func:`~modelprov.testing.protocols.stream_error_events`.
    """
    check_protocol(protocol)

    def render(req: RecordedRequest) -> Payload:
        chunks = stream_error_events(protocol, after_chunks=after_chunks, message=message, error_type=error_type,
                                     code=code, text=text, model=_req_model(req, model, "fake-model"),
                                     endpoint=_endpoint(req))
        return Payload(200, merge_headers(_defaults(protocol, True, request_id), headers), chunks=chunks)

    return Reply(render, path=path, delay=delay, chunk_delay=chunk_delay, drop_after=drop_after,
                 stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers, label="stream_error:%s" % protocol)


def embeddings_reply(
    protocol: str,
    vectors: Sequence[Sequence[float]],
    *,
    model: Optional[str] = None,
    path: Optional[str] = None,
    headers: Optional[HeadersInput] = None,
    request_id: Optional[str] = None,
    delay: float = 0.0,
    chunk_delay: float = 0.0,
    drop_after: Optional[int] = None,
    stall_after: Optional[int] = None,
    truncate: bool = False,
    trickle: float = 0.0,
    trickle_headers: bool = False,
) -> Reply:
    """An embeddings reply (OpenAI-family ``data[i].embedding`` or Ollama ``/api/embed``).

    Honours ``"encoding_format": "base64"`` in the request (float32 little-endian).
    """
    check_protocol(protocol)
    if protocol == "anthropic":
        raise ValueError("Anthropic has no embeddings endpoint")
    vecs = [list(v) for v in vectors]

    def render(req: RecordedRequest) -> Payload:
        fmt = req.json.get("encoding_format") if isinstance(req.json, dict) else None
        body = embeddings_body(protocol, vecs, model=_req_model(req, model, "fake-embedding"),
                               encoding_format=fmt if fmt == "base64" else "float")
        return Payload(200, merge_headers(_defaults(protocol, False, request_id), headers), body=encode_json(body))

    return Reply(render, path=path, delay=delay, chunk_delay=chunk_delay, drop_after=drop_after,
                 stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers, label="embeddings:%s" % protocol)


def models_reply(
    protocol: str,
    ids: Sequence[Union[str, Mapping[str, Any]]],
    page_size: Optional[int] = None,
    *,
    path: Optional[str] = None,
    headers: Optional[HeadersInput] = None,
    request_id: Optional[str] = None,
    delay: float = 0.0,
    chunk_delay: float = 0.0,
    drop_after: Optional[int] = None,
    stall_after: Optional[int] = None,
    truncate: bool = False,
    trickle: float = 0.0,
    trickle_headers: bool = False,
) -> Reply:
    """A model listing (OpenAI/compatible list, OpenRouter, Anthropic page, Ollama ``/api/tags``).

    Anthropic: pages by the request's ``limit`` (default 20, capped by
    ``page_size``), ``after_id`` and ``before_id``; the reply stays queued and
    answers each page request until it serves a page with ``has_more: false``.
    ``page_size`` is ignored for the other protocols.
    """
    check_protocol(protocol)
    items = list(ids)

    def render(req: RecordedRequest) -> Payload:
        hdrs = merge_headers(_defaults(protocol, False, request_id), headers)
        if protocol != "anthropic":
            return Payload(200, hdrs, body=encode_json(models_body(protocol, items)))
        try:
            limit = int(req.query.get("limit", 20))
        except ValueError:
            limit = 20
        if page_size:
            limit = min(limit, page_size)
        body = models_body(protocol, items, after_id=req.query.get("after_id"),
                           before_id=req.query.get("before_id"), limit=limit)
        return Payload(200, hdrs, body=encode_json(body), final=not body["has_more"])

    return Reply(render, path=path, delay=delay, chunk_delay=chunk_delay, drop_after=drop_after,
                 stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers, label="models:%s" % protocol)


def raw_reply(
    status: int = 200,
    headers: Optional[HeadersInput] = None,
    body: bytes = b"",
    chunks: Optional[Sequence[bytes]] = None,
    delay: float = 0.0,
    chunk_delay: float = 0.0,
    drop_after: Optional[int] = None,
    truncate: bool = False,
    stall: bool = False,
    path: Optional[str] = None,
    *,
    stall_after: Optional[int] = None,
    chunked: bool = True,
    trickle: float = 0.0,
    trickle_headers: bool = False,
) -> Reply:
    """A fully manual reply: exactly these status, headers and bytes.

    ``chunks`` (a list of bytes) are written and flushed one at a time with
    chunked transfer encoding (``chunked=False``: raw, ending by closing the
    connection); otherwise ``body`` is sent with ``Content-Length``.
    ``stall=True`` sends the headers and then hangs (``stall_after=0``).
    """
    if chunks is not None and body:
        raise ValueError("give either body or chunks, not both")
    payload = Payload(status, merge_headers([], headers), body=bytes(body),
                      chunks=None if chunks is None else [bytes(c) for c in chunks], chunked=chunked)
    if stall and stall_after is None:
        stall_after = 0
    return Reply(lambda req: payload, path=path, delay=delay, chunk_delay=chunk_delay, drop_after=drop_after,
                 stall_after=stall_after, truncate=truncate, trickle=trickle, trickle_headers=trickle_headers, label="raw:%d" % status)


def no_reply_payload(req: RecordedRequest) -> Payload:
    """The 500 sent when nothing is queued and no default is set.

    The message ``FakeServer: no reply queued for <METHOD> <path>`` is in an
    ``{"error": "<msg>"}`` body for Ollama-style paths (``/api/...`` but not
    ``/api/v1``), else ``{"error": {"message": "<msg>", "type": "fakeserver_error"}}``.
    """
    msg = "FakeServer: no reply queued for %s %s" % (req.method, req.path)
    if req.path.startswith("/api/") and not req.path.startswith("/api/v1"):
        body: Dict[str, Any] = {"error": msg}
    else:
        body = {"error": {"message": msg, "type": "fakeserver_error", "param": None, "code": None}}
    return Payload(500, [("Content-Type", "application/json"), ("X-FakeServer", "no-reply")],
                   body=json.dumps(body).encode("utf-8"))
