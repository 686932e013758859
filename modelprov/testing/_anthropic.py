"""Wire builders for the Anthropic Messages API.

Message bodies, the named-event SSE stream (``message_start``,
``content_block_start``/``delta``/``stop``, ``ping``, ``message_delta``,
``message_stop``), the mid-stream ``event: error``, error bodies and the
paged model listing. Pure functions returning dicts or the exact bytes of
each stream write.

Reasoning (``reasoning=``) is a ``thinking`` block before the answer, signed
with ``signature`` (default ``"sig-"`` + a digest of the text), streamed as
``thinking_delta`` fragments and one ``signature_delta``; ``redacted=`` adds a
``redacted_thinking`` block after it. Usage then reports
``output_tokens_details.thinking_tokens``. ``refusal=`` ends the message with
``stop_reason: "refusal"`` and ``stop_details`` carrying the text as its
``explanation`` (also on the stream's ``message_delta``).
"""

import hashlib
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._common import (
    TextInput,
    ToolCallInput,
    fragments,
    join_text,
    native_finish_reason,
    normalize_tool_calls,
    normalize_usage,
    split_text,
    sse_event,
)

__all__ = [
    "anthropic_error_body",
    "anthropic_error_type",
    "anthropic_message",
    "anthropic_models",
    "anthropic_stream_error_events",
    "anthropic_stream_events",
    "anthropic_usage",
    "default_signature",
]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}


def anthropic_error_type(status: int) -> str:
    """The ``error.type`` Anthropic uses for an HTTP status (``api_error`` for unknown 5xx)."""
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def anthropic_usage(usage: Optional[Mapping[str, Any]], output_default: int = 1,
                    thinking_default: int = 0) -> Dict[str, Any]:
    """``{"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}``.

    Plus ``output_tokens_details.thinking_tokens`` when there are reasoning
    tokens (``reasoning_tokens`` in ``usage``, else ``thinking_default``).
    """
    u = normalize_usage(usage, output_default)
    out: Dict[str, Any] = {
        "input_tokens": u["input_tokens"],
        "output_tokens": u["output_tokens"],
        "cache_creation_input_tokens": u["cache_write_tokens"],
        "cache_read_input_tokens": u["cache_read_tokens"],
    }
    thinking = u["reasoning_tokens"] or thinking_default
    if thinking:
        out["output_tokens_details"] = {"thinking_tokens": thinking}
    return out


def default_signature(reasoning: str) -> str:
    """The signature the fake server gives a thinking block when the test names none."""
    return "sig-" + hashlib.sha256(reasoning.encode("utf-8")).hexdigest()[:16]


def _thinking(reasoning: Optional[str], signature: Optional[str]) -> Optional[Dict[str, Any]]:
    if reasoning is None:
        return None
    return {"type": "thinking", "thinking": reasoning,
            "signature": signature if signature is not None else default_signature(reasoning)}


def _stop_details(refusal: Optional[str], category: Optional[str]) -> Optional[Dict[str, Any]]:
    if refusal is None:
        return None
    return {"type": "refusal", "category": category, "explanation": refusal}


def _stop_reason(finish_reason: Optional[str], refusal: Optional[str], has_tools: bool) -> str:
    if refusal is not None and finish_reason is None:
        return "refusal"
    return native_finish_reason("anthropic", finish_reason, has_tools)


def _tool_block(call: Dict[str, Any]) -> Dict[str, Any]:
    args = call["arguments"] if isinstance(call["arguments"], dict) else {}
    return {"type": "tool_use", "id": call["id"], "name": call["name"], "input": args}


def anthropic_message(
    text: TextInput = "",
    tool_calls: Optional[Sequence[ToolCallInput]] = None,
    *,
    usage: Optional[Mapping[str, Any]] = None,
    finish_reason: Optional[str] = None,
    model: str = "fake-model",
    id: str = "msg_fake",
    reasoning: Optional[str] = None,
    signature: Optional[str] = None,
    refusal: Optional[str] = None,
    redacted: Optional[str] = None,
    refusal_category: Optional[str] = None,
) -> Dict[str, Any]:
    """A non-streamed ``message`` body: thinking blocks, a text block and ``tool_use`` blocks.

    The text block is left out when the reply is only tool calls (or only a
    refusal). The default ``stop_reason`` is ``refusal`` with ``refusal``,
    ``tool_use`` with tool calls, else ``end_turn``. See the module docstring
    for ``reasoning``, ``signature``, ``redacted`` and ``refusal``.
    """
    calls = normalize_tool_calls(tool_calls, "toolu_fake")
    full = join_text(text)
    content: List[Dict[str, Any]] = []
    thinking = _thinking(reasoning, signature)
    if thinking is not None:
        content.append(thinking)
    if redacted is not None:
        content.append({"type": "redacted_thinking", "data": redacted})
    if full or not (calls or refusal is not None):
        content.append({"type": "text", "text": full})
    content.extend(_tool_block(c) for c in calls)
    thinking_tokens = len(split_text(reasoning or ""))
    u = anthropic_usage(usage, len(split_text(text)) + len(calls) + thinking_tokens, thinking_tokens)
    u["service_tier"] = "standard"
    return {
        "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": _stop_reason(finish_reason, refusal, bool(calls)),
        "stop_sequence": None, "stop_details": _stop_details(refusal, refusal_category), "usage": u,
    }


def _message_start(model: str, id: str, input_tokens: int) -> bytes:
    message: Dict[str, Any] = {"id": id, "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                         "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
    return sse_event({"type": "message_start", "message": message}, "message_start")


def _ev(name: str, **fields: Any) -> bytes:
    return sse_event(dict({"type": name}, **fields), name)


def anthropic_stream_events(
    text: TextInput = "",
    tool_calls: Optional[Sequence[ToolCallInput]] = None,
    *,
    usage: Optional[Mapping[str, Any]] = None,
    finish_reason: Optional[str] = None,
    model: str = "fake-model",
    chunk_words: bool = True,
    id: str = "msg_fake",
    reasoning: Optional[str] = None,
    signature: Optional[str] = None,
    refusal: Optional[str] = None,
    redacted: Optional[str] = None,
    refusal_category: Optional[str] = None,
) -> List[bytes]:
    """The SSE writes of a streamed message, one ``event:``/``data:`` pair per item.

    Order: ``message_start`` (input usage, ``output_tokens: 1``); per block a
    ``content_block_start``, then ``thinking_delta`` fragments and one
    ``signature_delta`` (thinking block), ``text_delta`` fragments (text
    block) or an empty then up to three ``input_json_delta`` fragments
    (``tool_use`` block), and ``content_block_stop``; a ``redacted_thinking``
    block arrives whole in its start event; a ``ping`` right after the first
    block start; ``message_delta`` with ``stop_reason``, ``stop_details`` and
    cumulative usage; ``message_stop``.
    """
    calls = normalize_tool_calls(tool_calls, "toolu_fake")
    pieces = split_text(text, chunk_words)
    thoughts = split_text(reasoning or "", chunk_words)
    u = anthropic_usage(usage, len(pieces) + len(calls) + len(thoughts), len(thoughts))
    out = [_message_start(model, id, u["input_tokens"])]
    index = 0

    def start(block: Dict[str, Any]) -> None:
        out.append(_ev("content_block_start", index=index, content_block=block))
        if index == 0:
            out.append(_ev("ping"))

    thinking = _thinking(reasoning, signature)
    if thinking is not None:
        start({"type": "thinking", "thinking": "", "signature": ""})
        for p in thoughts:
            out.append(_ev("content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": p}))
        out.append(_ev("content_block_delta", index=index,
                       delta={"type": "signature_delta", "signature": thinking["signature"]}))
        out.append(_ev("content_block_stop", index=index))
        index += 1
    if redacted is not None:
        start({"type": "redacted_thinking", "data": redacted})
        out.append(_ev("content_block_stop", index=index))
        index += 1
    if pieces or not (calls or refusal is not None):
        start({"type": "text", "text": ""})
        for p in pieces:
            out.append(_ev("content_block_delta", index=index, delta={"type": "text_delta", "text": p}))
        out.append(_ev("content_block_stop", index=index))
        index += 1
    for call in calls:
        start({"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}})
        for frag in [""] + fragments(call["text"], 3):
            out.append(_ev("content_block_delta", index=index,
                           delta={"type": "input_json_delta", "partial_json": frag}))
        out.append(_ev("content_block_stop", index=index))
        index += 1
    reason = _stop_reason(finish_reason, refusal, bool(calls))
    delta = {"stop_reason": reason, "stop_sequence": None, "stop_details": _stop_details(refusal, refusal_category)}
    out.append(_ev("message_delta", delta=delta, usage=u))
    out.append(_ev("message_stop"))
    return out


def anthropic_error_body(status: int, message: str, type: Optional[str] = None,
                         request_id: Optional[str] = None, error_code: Optional[str] = None,
                         details: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """``{"type": "error", "error": {"type", "message", "details"?}, "request_id"}``.

    ``request_id`` only when given; ``error_code`` (and any other ``details``
    fields) go into ``error.details`` as the API sends them (WIRE.md §3.6).
    """
    body: Dict[str, Any] = {"type": "error", "error": {"type": type or anthropic_error_type(status), "message": message}}
    if error_code is not None or details:
        extra = dict(details or {})
        if error_code is not None:
            extra["error_code"] = error_code
        body["error"]["details"] = extra
    if request_id is not None:
        body["request_id"] = request_id
    return body


def anthropic_stream_error_events(
    *,
    after_chunks: int = 2,
    message: str = "Overloaded",
    error_type: Optional[str] = None,
    text: str = "partial",
    model: str = "fake-model",
    id: str = "msg_fake",
) -> List[bytes]:
    """``message_start``, a text block start, ``ping``, ``text`` in up to ``after_chunks`` deltas, then ``event: error``."""
    out = [_message_start(model, id, 10), _ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
           _ev("ping")]
    for p in fragments(text, after_chunks):
        out.append(_ev("content_block_delta", index=0, delta={"type": "text_delta", "text": p}))
    out.append(_ev("error", error={"type": error_type or "overloaded_error", "message": message}))
    return out


def anthropic_models(
    ids: Sequence[Union[str, Mapping[str, Any]]],
    *,
    after_id: Optional[str] = None,
    before_id: Optional[str] = None,
    limit: int = 20,
) -> Dict[str, Any]:
    """One page of ``GET /v1/models``: ``{"data", "has_more", "first_id", "last_id"}``.

    Items are ids or dicts (with ``id``) overriding the defaults. The page
    starts after ``after_id`` (or ends before ``before_id``) and holds at most
    ``limit`` models; an unknown cursor starts from the beginning.
    """
    models = []
    for item in ids:
        extra = dict(item) if isinstance(item, Mapping) else {"id": item}
        entry = {"id": extra["id"], "type": "model", "display_name": extra["id"], "created_at": "2025-01-01T00:00:00Z"}
        entry.update(extra)
        models.append(entry)
    keys = [m["id"] for m in models]
    limit = max(1, int(limit))
    if before_id is not None and before_id in keys:
        end = keys.index(before_id)
        start = max(0, end - limit)
        page, has_more = models[start:end], start > 0
    else:
        start = keys.index(after_id) + 1 if after_id in keys else 0
        page, has_more = models[start : start + limit], start + limit < len(models)
    return {"data": page, "has_more": has_more,
            "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}
