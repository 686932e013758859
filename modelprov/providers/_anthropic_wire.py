"""Anthropic Messages API wire mapping shared by the provider and its stream decoder.

Pure functions, no I/O: message conversion (system prompt hoisting, turn
merging, image and tool blocks), stop-reason and usage normalisation, and the
error ``type`` -> exception mapping used for HTTP error bodies and for the
``error`` event of a stream (WIRE.md §3.3-§3.6, §6).
"""

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type

from ..exceptions import (
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    TokenLimitError,
    ValidationError,
    error_for_status,
)
from ..types import ChatRequest, ImagePart, Message, TextPart, Usage

__all__ = [
    "IMAGE_MEDIA_TYPES",
    "convert_messages",
    "error_from_type",
    "map_stop_reason",
    "normalize_usage",
]

#: Media types the Messages API accepts for base64 images.
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_ERROR_TYPES: Dict[str, Type[ProviderError]] = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "not_found_error": ModelNotFoundError,
    "request_too_large": InvalidRequestError,
    "rate_limit_error": RateLimitError,
    "billing_error": QuotaExceededError,
    "api_error": ServerError,
    "timeout_error": ProviderTimeoutError,
    "overloaded_error": OverloadedError,
}

_PROMPT_TOO_LONG = re.compile(r"prompt is too long:\s*(\d+)\s*tokens?\s*>\s*(\d+)", re.I)
_CONTEXT_LIMIT = re.compile(r"exceed context limit:\s*(\d+)\s*\+\s*(\d+)\s*>\s*(\d+)", re.I)


# ----------------------------------------------------------------- requests
def _image_block(image: ImagePart) -> Dict[str, Any]:
    if image.is_remote:
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    media, data = image.base64_data()
    if media not in IMAGE_MEDIA_TYPES:
        raise ValidationError(
            f"Anthropic accepts {', '.join(IMAGE_MEDIA_TYPES)} images, not {media!r}",
            hint="convert the image, or pass media_type= if the type was guessed wrongly",
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}


def _user_blocks(msg: Message) -> List[Dict[str, Any]]:
    if isinstance(msg.content, list):
        blocks: List[Dict[str, Any]] = []
        for part in msg.content:
            if isinstance(part, ImagePart):
                blocks.append(_image_block(part))
            elif isinstance(part, TextPart) and part.text:
                blocks.append({"type": "text", "text": part.text})
        return blocks
    return [{"type": "text", "text": msg.content or ""}]


def _assistant_blocks(msg: Message) -> List[Dict[str, Any]]:
    blocks: List[Dict[str, Any]] = []
    if msg.text:
        blocks.append({"type": "text", "text": msg.text})
    for call in msg.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)})
    return blocks


def convert_messages(req: ChatRequest) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    """``(system, messages)`` for the Messages API.

    ``req.system`` and every ``system`` message are joined (blank line
    between) into the top-level ``system``; tool results become
    ``tool_result`` blocks in a user turn; consecutive turns of one role are
    merged, with ``tool_result`` blocks first in a user turn. A turn that is a
    single text block is sent as a plain string.
    """
    system_parts = [req.system] if req.system else []
    turns: List[Tuple[str, List[Dict[str, Any]]]] = []
    for msg in req.messages:
        if msg.role == "system":
            if msg.text:
                system_parts.append(msg.text)
            continue
        if msg.role == "tool":
            role = "user"
            blocks = [{"type": "tool_result", "tool_use_id": msg.tool_call_id, "content": msg.text}]
        elif msg.role == "user":
            role, blocks = "user", _user_blocks(msg)
        else:
            role, blocks = "assistant", _assistant_blocks(msg)
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    out = []
    for role, blocks in turns:
        if role == "user":
            # tool_result blocks must lead the user turn that answers a tool_use.
            blocks.sort(key=lambda b: b["type"] != "tool_result")
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            content: Any = blocks[0]["text"]
        else:
            content = blocks or ""
        out.append({"role": role, "content": content})
    return ("\n\n".join(system_parts) or None), out


# ---------------------------------------------------------------- responses
def map_stop_reason(native: Optional[str]) -> Optional[str]:
    """Anthropic ``stop_reason`` -> modelprov ``finish_reason`` (unknown values -> ``"stop"``)."""
    if native is None:
        return None
    return _STOP_REASONS.get(native, "stop")


def _count(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def normalize_usage(raw: Optional[Mapping[str, Any]]) -> Usage:
    """Anthropic usage -> :class:`Usage`; ``input_tokens`` includes cache reads and writes (WIRE §6.2)."""
    raw = raw or {}
    inp = raw.get("input_tokens")
    out = raw.get("output_tokens")
    write = raw.get("cache_creation_input_tokens")
    read = raw.get("cache_read_input_tokens")
    if type(inp) is int and type(out) is int and (write is None or type(write) is int) and (read is None or type(read) is int):
        # Fast path: plain integer counts (positional: input, output, total, cache read, cache write).
        return Usage(inp + (write or 0) + (read or 0), out, None, read, write)
    write = _count(raw.get("cache_creation_input_tokens"))
    read = _count(raw.get("cache_read_input_tokens"))
    return Usage(
        input_tokens=(_count(raw.get("input_tokens")) or 0) + (write or 0) + (read or 0),
        output_tokens=_count(raw.get("output_tokens")) or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


# ------------------------------------------------------------------- errors
def error_from_type(
    error_type: Optional[str],
    message: str,
    *,
    provider: str,
    status: Optional[int] = None,
    request_id: Optional[str] = None,
) -> ProviderError:
    """The exception for an Anthropic error ``type`` (HTTP body or stream ``error`` event)."""
    cls = _ERROR_TYPES.get(error_type or "")
    if cls is None or status in (408, 409):
        cls = error_for_status(status) if status else ServerError
    kw: Dict[str, Any] = {"provider": provider, "status_code": status, "request_id": request_id}
    if error_type:
        kw["error_type"] = error_type
    if cls is InvalidRequestError:
        m = _PROMPT_TOO_LONG.search(message)
        if m:
            return TokenLimitError(message, requested=int(m.group(1)), limit=int(m.group(2)), **kw)
        m = _CONTEXT_LIMIT.search(message)
        if m:
            requested = int(m.group(1)) + int(m.group(2))
            return TokenLimitError(message, requested=requested, limit=int(m.group(3)), **kw)
        if "credit balance" in message.lower():
            return QuotaExceededError(message, **kw)
        if error_type == "request_too_large":
            kw["hint"] = "Requests are limited to 32 MB; send fewer or smaller images and documents"
    elif cls is AuthenticationError:
        kw["hint"] = f"Check ANTHROPIC_API_KEY, or run: modelprov keys set {provider}"
    elif cls is ModelNotFoundError:
        kw["hint"] = f"Check the model name (modelprov models {provider} lists them)"
    elif cls is ProviderTimeoutError:
        kw["hint"] = "Anthropic timed out; retry, or stream long generations"
    return cls(message, **kw)
