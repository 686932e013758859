"""Wire builders for the OpenAI Chat Completions family.

Covers OpenAI itself, OpenRouter (``gen-`` ids, ``native_finish_reason``,
``: OPENROUTER PROCESSING`` comments, usage always streamed with its
``cost``, top-level mid-stream errors) and generic OpenAI-compatible servers
(vLLM-style integer error codes). Every function returns plain dicts or the
exact bytes of each stream write, so codec tests can use the same payloads the
fake server sends.

Reasoning (``reasoning=`` on the chat builders) follows each API (WIRE.md
§2.11, §5.7, §7): OpenAI returns no reasoning text, only
``completion_tokens_details.reasoning_tokens``; OpenRouter sends
``message.reasoning`` plus one ``reasoning.text`` entry in
``reasoning_details`` (streamed as ``delta.reasoning`` and
``delta.reasoning_details`` fragments, the ``signature`` in a fragment of its
own); compatible servers send vLLM / llama.cpp's ``reasoning_content``.
``refusal=`` puts the text in ``message.refusal`` (streamed as
``delta.refusal`` fragments) with ``finish_reason: "stop"``.
:func:`openai_unsupported_body` is OpenAI's 400 for an option a model does not take.
"""

import base64
import struct
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._common import (
    OPENAI_FAMILY,
    TextInput,
    ToolCallInput,
    fragments,
    join_text,
    native_finish_reason,
    normalize_tool_calls,
    normalize_usage,
    split_text,
    sse_comment,
    sse_event,
)

__all__ = [
    "CREATED",
    "OPENROUTER_COMMENT",
    "openai_completion",
    "openai_embeddings",
    "openai_error_body",
    "openai_models",
    "openai_stream_error_events",
    "openai_stream_events",
    "openai_unsupported_body",
    "openai_usage",
]

#: ``created`` timestamp used by every builder unless given.
CREATED = 1700000000
#: The keep-alive comment OpenRouter sends.
OPENROUTER_COMMENT = "OPENROUTER PROCESSING"

_DEFAULT_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                  404: "invalid_request_error", 409: "invalid_request_error", 422: "invalid_request_error",
                  429: "requests"}
_DEFAULT_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
#: ``format`` of the reasoning details OpenRouter sends for Claude models.
DETAIL_FORMAT = "anthropic-claude-v1"


def _check(protocol: str) -> None:
    if protocol not in OPENAI_FAMILY:
        raise ValueError("not an OpenAI-family protocol: %r" % protocol)


def _default_id(protocol: str) -> str:
    return "gen-fake" if protocol == "openrouter" else "chatcmpl-fake"


def openai_usage(usage: Optional[Mapping[str, Any]], protocol: str = "openai", output_default: int = 1) -> Dict[str, Any]:
    """The ``usage`` object: ``prompt_tokens``, ``completion_tokens``, ``total_tokens`` and details.

    ``usage`` uses the neutral names of :func:`~modelprov.testing.normalize_usage`.
    OpenAI and OpenRouter always carry ``prompt_tokens_details`` /
    ``completion_tokens_details``; compatible servers only when non-zero.
    OpenRouter adds ``cost`` in USD: ``usage["cost"]`` when given, else
    1e-6 per prompt token and 4e-6 per completion token.
    """
    u = normalize_usage(usage, output_default)
    out: Dict[str, Any] = {
        "prompt_tokens": u["input_tokens"],
        "completion_tokens": u["output_tokens"],
        "total_tokens": u["input_tokens"] + u["output_tokens"],
    }
    full = protocol != "openai_compatible"
    if full or u["cache_read_tokens"] or u["cache_write_tokens"]:
        details: Dict[str, Any] = {"cached_tokens": u["cache_read_tokens"]}
        if full:
            details["audio_tokens"] = 0
        if u["cache_write_tokens"] or protocol == "openrouter":
            details["cache_write_tokens"] = u["cache_write_tokens"]
        out["prompt_tokens_details"] = details
    if full or u["reasoning_tokens"]:
        out["completion_tokens_details"] = {"reasoning_tokens": u["reasoning_tokens"]}
    if protocol == "openrouter":
        cost = (usage or {}).get("cost")
        out["cost"] = float(cost) if cost is not None else round((u["input_tokens"] + 4 * u["output_tokens"]) * 1e-6, 9)
    return out


def _with_reasoning_tokens(usage: Optional[Mapping[str, Any]], count: int) -> Optional[Mapping[str, Any]]:
    """``usage`` with ``reasoning_tokens`` defaulting to ``count`` (the reasoning's fragments)."""
    if not count:
        return usage
    out = dict(usage or {})
    out.setdefault("reasoning_tokens", count)
    return out


def _detail(text: str, signature: Optional[str] = None) -> Dict[str, Any]:
    """One OpenRouter ``reasoning.text`` entry (``signature`` only when given)."""
    detail: Dict[str, Any] = {"type": "reasoning.text", "text": text}
    if signature is not None:
        detail["signature"] = signature
    detail["format"] = DETAIL_FORMAT
    detail["index"] = 0
    return detail


def _wire_calls(calls: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["text"]}} for c in calls]


def openai_completion(
    text: TextInput = "",
    tool_calls: Optional[Sequence[ToolCallInput]] = None,
    *,
    usage: Optional[Mapping[str, Any]] = None,
    finish_reason: Optional[str] = None,
    model: str = "fake-model",
    protocol: str = "openai",
    id: Optional[str] = None,
    created: int = CREATED,
    reasoning: Optional[str] = None,
    signature: Optional[str] = None,
    refusal: Optional[str] = None,
) -> Dict[str, Any]:
    """A non-streamed ``chat.completion`` body (``protocol``: openai, openrouter or openai_compatible).

    ``content`` is ``null`` when the reply is only tool calls or a refusal.
    The default ``finish_reason`` is ``tool_calls`` with tool calls, else
    ``stop``. ``reasoning``/``signature``/``refusal``: see the module docstring
    (``signature`` goes on OpenRouter's reasoning detail).
    """
    _check(protocol)
    calls = normalize_tool_calls(tool_calls, "call_")
    full = join_text(text)
    reason = native_finish_reason(protocol, finish_reason, bool(calls))
    thought_pieces = len(split_text(reasoning)) if reasoning else 0
    usage = _with_reasoning_tokens(usage, thought_pieces)
    message: Dict[str, Any] = {"role": "assistant", "content": full if (full or not (calls or refusal)) else None,
                               "refusal": refusal or None}  # fmt: skip
    if reasoning and protocol == "openrouter":
        message["reasoning"] = reasoning
        message["reasoning_details"] = [_detail(reasoning, signature)]
    elif reasoning and protocol == "openai_compatible":
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = _wire_calls(calls)
    choice: Dict[str, Any] = {"index": 0, "finish_reason": reason, "logprobs": None, "message": message}
    body: Dict[str, Any] = {"id": id or _default_id(protocol), "object": "chat.completion", "created": created, "model": model}
    if protocol == "openrouter":
        body["provider"] = "FakeProvider"
        choice["native_finish_reason"] = reason
    body["choices"] = [choice]
    body["usage"] = openai_usage(usage, protocol, len(split_text(text)) + len(calls) + thought_pieces)
    if protocol == "openai":
        body["system_fingerprint"] = "fp_fake"
        body["service_tier"] = "default"
    return body


class _Chunker:
    """Builds ``chat.completion.chunk`` objects sharing one id/created/model."""

    def __init__(self, protocol: str, model: str, id: Optional[str], created: int, include_usage: bool) -> None:
        self.protocol, self.include_usage = protocol, include_usage
        self.base: Dict[str, Any] = {"id": id or _default_id(protocol), "object": "chat.completion.chunk",
                                     "created": created, "model": model}
        if protocol == "openai":
            self.base["system_fingerprint"] = "fp_fake"
        if protocol == "openrouter":
            self.base["provider"] = "FakeProvider"

    def chunk(self, delta: Dict[str, Any], finish: Optional[str] = None) -> bytes:
        choice: Dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        if self.protocol == "openrouter" and finish is not None:
            choice["native_finish_reason"] = finish
        body = dict(self.base, choices=[choice])
        if self.include_usage:
            body["usage"] = None
        return sse_event(body)

    def raw(self, **extra: Any) -> bytes:
        return sse_event(dict(self.base, **extra))


def openai_stream_events(
    text: TextInput = "",
    tool_calls: Optional[Sequence[ToolCallInput]] = None,
    *,
    usage: Optional[Mapping[str, Any]] = None,
    finish_reason: Optional[str] = None,
    model: str = "fake-model",
    protocol: str = "openai",
    include_usage: bool = False,
    chunk_words: bool = True,
    id: Optional[str] = None,
    created: int = CREATED,
    reasoning: Optional[str] = None,
    signature: Optional[str] = None,
    refusal: Optional[str] = None,
) -> List[bytes]:
    """The SSE writes of a streamed completion, one event (or comment) per item.

    Order: (OpenRouter: a ``: OPENROUTER PROCESSING`` comment), a role chunk
    ``{"role":"assistant","content":""}`` (with a refusal:
    ``{"role":"assistant","content":null,"refusal":""}``), the reasoning
    fragments (OpenRouter: ``reasoning`` plus a ``reasoning_details`` fragment
    each, then the ``signature`` in a fragment of its own; compatible servers:
    ``reasoning_content``), one chunk per text fragment, one ``refusal``
    fragment per word of the refusal, per tool call a header fragment
    (``index``, ``id``, ``type``, ``name``, ``arguments: ""``) and up to three
    ``arguments`` fragments keyed by ``index``, (OpenRouter: another comment),
    a finish chunk with an empty delta, a usage chunk with ``"choices": []``
    when ``include_usage`` (always for OpenRouter), then ``data: [DONE]``.
    """
    _check(protocol)
    include_usage = include_usage or protocol == "openrouter"
    calls = normalize_tool_calls(tool_calls, "call_")
    pieces = split_text(text, chunk_words)
    thoughts = split_text(reasoning, chunk_words) if reasoning else []
    thought_tokens = len(split_text(reasoning)) if reasoning else 0
    usage = _with_reasoning_tokens(usage, thought_tokens)
    c = _Chunker(protocol, model, id, created, include_usage)
    out: List[bytes] = []
    if protocol == "openrouter":
        out.append(sse_comment(OPENROUTER_COMMENT))
    out.append(c.chunk({"role": "assistant", "content": None, "refusal": ""} if refusal else {"role": "assistant", "content": ""}))
    if protocol == "openrouter" and thoughts:
        out.extend(c.chunk({"content": "", "reasoning": t, "reasoning_details": [_detail(t)]}) for t in thoughts)
        if signature is not None:
            out.append(c.chunk({"content": "", "reasoning_details": [_detail("", signature)]}))
    elif protocol == "openai_compatible":
        out.extend(c.chunk({"reasoning_content": t}) for t in thoughts)
    out.extend(c.chunk({"content": p}) for p in pieces)
    if refusal:
        out.extend(c.chunk({"refusal": r}) for r in split_text(refusal, chunk_words))
    for i, call in enumerate(calls):
        head = {"index": i, "id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": ""}}
        out.append(c.chunk({"tool_calls": [head]}))
        for frag in fragments(call["text"], 3):
            out.append(c.chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]}))
    if protocol == "openrouter":
        out.append(sse_comment(OPENROUTER_COMMENT))
    out.append(c.chunk({}, native_finish_reason(protocol, finish_reason, bool(calls))))
    if include_usage:
        out.append(c.raw(choices=[], usage=openai_usage(usage, protocol, len(pieces) + len(calls) + thought_tokens)))
    out.append(sse_event("[DONE]"))
    return out


def openai_error_body(
    status: int,
    message: str,
    type: Optional[str] = None,
    code: Union[str, int, None] = None,
    protocol: str = "openai",
    *,
    param: Optional[str] = None,
) -> Dict[str, Any]:
    """An error body for the OpenAI family.

    * openai: ``{"error": {"message", "type", "param", "code"}}`` (``param``
      null unless given); default
      ``type`` by status (``invalid_request_error`` for 4xx, ``requests`` for
      429, ``server_error`` for 5xx) and default ``code`` for 401
      (``invalid_api_key``), 404 (``model_not_found``), 429 (``rate_limit_exceeded``).
    * openai_compatible: same shape, ``code`` is the integer status (vLLM).
    * openrouter: ``{"error": {"code": <int status>, "message", "metadata": {"error_type"}}}``
      (``metadata`` only when ``type`` is given).
    """
    _check(protocol)
    if protocol == "openrouter":
        err: Dict[str, Any] = {"code": status if code is None else code, "message": message}
        if type:
            err["metadata"] = {"error_type": type}
        return {"error": err}
    default_type = _DEFAULT_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    if protocol == "openai_compatible":
        return {"error": {"message": message, "type": type or default_type, "param": param,
                          "code": status if code is None else code}}
    return {"error": {"message": message, "type": type or default_type, "param": param,
                      "code": _DEFAULT_CODES.get(status) if code is None else code}}


def openai_unsupported_body(param: str, value: Any = None, *, code: str = "unsupported_value") -> Dict[str, Any]:
    """OpenAI's 400 body for a field the model does not take (WIRE.md §2.11).

    ``code="unsupported_value"`` (the default) rejects ``value`` of ``param``
    ("Only the default (1) value is supported"); ``"unsupported_parameter"``
    rejects the field itself. Queue it with ``server.add_error(400, openai_unsupported_body("temperature", 0.2))``.
    """
    if code == "unsupported_parameter":
        message = "Unsupported parameter: '%s' is not supported with this model." % param
    else:
        message = ("Unsupported value: '%s' does not support %s with this model. Only the default (1) value is supported."
                   % (param, value))  # fmt: skip
    return openai_error_body(400, message, "invalid_request_error", code, param=param)


def openai_stream_error_events(
    *,
    after_chunks: int = 2,
    message: str = "Internal server error",
    error_type: Optional[str] = None,
    code: Union[str, int, None] = None,
    text: str = "partial",
    model: str = "fake-model",
    protocol: str = "openai",
) -> List[bytes]:
    """A 200 stream that sends ``text`` in up to ``after_chunks`` content chunks, then fails.

    openai / openai_compatible end with ``data: {"error": {...}}`` (no
    ``[DONE]``); openrouter with a chunk carrying a top-level ``error``
    (``code``, ``message``, ``metadata.error_type``) and ``finish_reason: "error"``.
    """
    _check(protocol)
    c = _Chunker(protocol, model, None, CREATED, False)
    out: List[bytes] = []
    if protocol == "openrouter":
        out.append(sse_comment(OPENROUTER_COMMENT))
    out.append(c.chunk({"role": "assistant", "content": ""}))
    out.extend(c.chunk({"content": p}) for p in fragments(text, after_chunks))
    if protocol == "openrouter":
        err = {"code": 500 if code is None else code, "message": message,
               "metadata": {"error_type": error_type or "server"}}
        choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error", "native_finish_reason": "error"}
        out.append(c.raw(error=err, choices=[choice]))
    else:
        out.append(sse_event({"error": {"message": message, "type": error_type or "server_error",
                                        "param": None, "code": code}}))
    return out


def openai_embeddings(
    vectors: Sequence[Sequence[float]],
    *,
    model: str = "fake-embedding",
    encoding_format: str = "float",
    input_tokens: Optional[int] = None,
) -> Dict[str, Any]:
    """An ``/embeddings`` body; ``encoding_format="base64"`` packs each vector as little-endian float32."""
    data = []
    for i, vec in enumerate(vectors):
        emb: Any = list(vec)
        if encoding_format == "base64":
            emb = base64.b64encode(struct.pack("<%df" % len(emb), *emb)).decode("ascii")
        data.append({"object": "embedding", "index": i, "embedding": emb})
    tokens = len(vectors) if input_tokens is None else input_tokens
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def openai_models(ids: Sequence[Union[str, Mapping[str, Any]]], *, protocol: str = "openai") -> Dict[str, Any]:
    """A model listing. Items are ids or dicts (with ``id``) whose keys override the defaults.

    openai: ``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}``;
    openai_compatible adds ``root`` and ``max_model_len`` (vLLM); openrouter is
    ``{"data": [{"id", "name", "created", "context_length", "pricing", ...}]}``.
    """
    _check(protocol)
    data = []
    for item in ids:
        extra = dict(item) if isinstance(item, Mapping) else {"id": item}
        mid = extra["id"]
        if protocol == "openrouter":
            entry: Dict[str, Any] = {
                "id": mid, "canonical_slug": mid, "name": mid, "created": CREATED, "description": "",
                "context_length": 8192,
                "architecture": {"input_modalities": ["text"], "output_modalities": ["text"],
                                 "tokenizer": "Other", "instruct_type": None},
                "pricing": {"prompt": "0", "completion": "0", "request": "0", "image": "0"},
                "top_provider": {"context_length": 8192, "max_completion_tokens": None, "is_moderated": False},
                "per_request_limits": None,
                "supported_parameters": ["max_tokens", "temperature", "tools"],
            }
        else:
            entry = {"id": mid, "object": "model", "created": CREATED, "owned_by": "fakeserver"}
            if protocol == "openai_compatible":
                entry.update(root=mid, max_model_len=8192)
        entry.update(extra)
        data.append(entry)
    if protocol == "openrouter":
        return {"data": data}
    return {"object": "list", "data": data}
