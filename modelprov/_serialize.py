"""Messages to and from plain JSON types, and tool-result turns.

:func:`message_to_dict` / :func:`message_from_dict` back
:meth:`Message.to_dict <modelprov.types.Message.to_dict>` and
:meth:`Message.from_dict <modelprov.types.Message.from_dict>`: a lossless
round trip of every message (reasoning signatures and provider details,
tool-call argument text, images as base64) through ``json.dumps``, so a
conversation can be saved and resumed years later. The format is versioned
by its keys only: unknown keys are refused with a message naming them.
"""

import base64
import binascii
import json
from typing import Any, Dict, List, Mapping, Optional

from .exceptions import ValidationError
from .types import ImagePart, Message, Part, ProviderPart, ReasoningPart, TextPart, ToolCall

__all__ = ["message_from_dict", "message_to_dict", "tool_result_message"]

_MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "tool_call_id", "name"})
_CALL_KEYS = frozenset({"id", "name", "arguments", "raw_arguments", "arguments_error"})


def tool_result_message(call: Any, content: Any) -> Message:
    """The ``tool`` message answering ``call`` (a :class:`ToolCall`) with ``content``."""
    if not isinstance(call, ToolCall):
        raise ValidationError(f"Message.tool_result needs the ToolCall it answers, not {type(call).__name__}")
    if not call.id:
        raise ValidationError(f"tool call {call.name!r} has no id to answer")
    if not isinstance(content, str):
        try:
            content = json.dumps(content, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"the result of tool {call.name!r} is not a string or JSON-serialisable: {exc}",
                hint="convert it to a string (or to dicts, lists, numbers and strings) first",
            ) from None
    return Message(role="tool", content=content, tool_call_id=call.id, name=call.name or None)


# ------------------------------------------------------------------- to dict
def _part_to_dict(part: Part) -> Dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ReasoningPart):
        out: Dict[str, Any] = {"type": "reasoning", "text": part.text}
        if part.signature is not None:
            out["signature"] = part.signature
        if part.redacted_data is not None:
            out["redacted_data"] = part.redacted_data
        if part.details:
            out["details"] = [dict(d) for d in part.details]
        if part.provider is not None:
            out["provider"] = part.provider
        return out
    if isinstance(part, ProviderPart):
        return {"type": "provider", "provider": part.provider, "data": dict(part.data)}
    if isinstance(part, ImagePart):
        img: Dict[str, Any] = {"type": "image"}
        if part.url is not None:
            img["url"] = part.url
        elif part.path is not None:
            img["path"] = str(part.path)
        else:
            img["data"] = base64.b64encode(bytes(part.data or b"")).decode("ascii")
        if part.media_type:
            img["media_type"] = part.media_type
        if part.detail:
            img["detail"] = part.detail
        return img
    raise ValidationError(f"cannot serialise a content part of type {type(part).__name__}")


def _call_to_dict(call: ToolCall) -> Dict[str, Any]:
    out: Dict[str, Any] = {"id": call.id, "name": call.name, "arguments": dict(call.arguments)}
    if call.raw_arguments is not None:
        out["raw_arguments"] = call.raw_arguments
    if call.arguments_error is not None:
        out["arguments_error"] = call.arguments_error
    return out


def message_to_dict(msg: Message) -> Dict[str, Any]:
    """``msg`` as a dict of JSON types; keys with default values are left out."""
    out: Dict[str, Any] = {"role": msg.role}
    content = msg.content
    if isinstance(content, (list, tuple)):
        out["content"] = [_part_to_dict(p) for p in content]
    else:
        out["content"] = content
    if msg.tool_calls:
        out["tool_calls"] = [_call_to_dict(c) for c in msg.tool_calls]
    if msg.tool_call_id is not None:
        out["tool_call_id"] = msg.tool_call_id
    if msg.name is not None:
        out["name"] = msg.name
    return out


# ----------------------------------------------------------------- from dict
def _text(where: str, value: Any, *, optional: bool = False) -> Optional[str]:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{where} must be a string, not {type(value).__name__}")
    return value


def _check_keys(where: str, data: Mapping[str, Any], allowed: frozenset) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise ValidationError(f"{where} has unknown key(s): {', '.join(sorted(map(str, unknown)))}")


def _part_from_dict(where: str, data: Any) -> Part:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where} must be a dict, not {type(data).__name__}")
    kind = data.get("type")
    if kind == "text":
        _check_keys(where, data, frozenset({"type", "text"}))
        return TextPart(_text(f"{where}.text", data.get("text")) or "")
    if kind == "reasoning":
        _check_keys(where, data, frozenset({"type", "text", "signature", "redacted_data", "details", "provider"}))
        details = data.get("details") or []
        if not isinstance(details, list) or not all(isinstance(d, Mapping) for d in details):
            raise ValidationError(f"{where}.details must be a list of dicts")
        return ReasoningPart(
            text=_text(f"{where}.text", data.get("text", "")) or "",
            signature=_text(f"{where}.signature", data.get("signature"), optional=True),
            redacted_data=_text(f"{where}.redacted_data", data.get("redacted_data"), optional=True),
            details=tuple(dict(d) for d in details),
            provider=_text(f"{where}.provider", data.get("provider"), optional=True),
        )
    if kind == "provider":
        _check_keys(where, data, frozenset({"type", "provider", "data"}))
        block = data.get("data")
        if not isinstance(block, Mapping):
            raise ValidationError(f"{where}.data must be a dict")
        return ProviderPart(provider=_text(f"{where}.provider", data.get("provider")) or "", data=dict(block))
    if kind == "image":
        _check_keys(where, data, frozenset({"type", "url", "path", "data", "media_type", "detail"}))
        raw: Optional[bytes] = None
        if data.get("data") is not None:
            try:
                raw = base64.b64decode(_text(f"{where}.data", data["data"]) or "", validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError(f"{where}.data is not valid base64") from None
        try:
            return ImagePart(
                url=_text(f"{where}.url", data.get("url"), optional=True),
                data=raw,
                path=_text(f"{where}.path", data.get("path"), optional=True),
                media_type=_text(f"{where}.media_type", data.get("media_type"), optional=True),
                detail=_text(f"{where}.detail", data.get("detail"), optional=True),
            )
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc.message}") from None
    raise ValidationError(f"{where} has unknown part type {kind!r} (expected text, image, reasoning or provider)")


def _call_from_dict(where: str, data: Any) -> ToolCall:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where} must be a dict, not {type(data).__name__}")
    _check_keys(where, data, _CALL_KEYS)
    args = data.get("arguments", {})
    if not isinstance(args, Mapping):
        raise ValidationError(f"{where}.arguments must be a dict")
    return ToolCall(
        id=_text(f"{where}.id", data.get("id", "")) or "",
        name=_text(f"{where}.name", data.get("name")) or "",
        arguments=dict(args),
        raw_arguments=_text(f"{where}.raw_arguments", data.get("raw_arguments"), optional=True),
        arguments_error=_text(f"{where}.arguments_error", data.get("arguments_error"), optional=True),
    )


def message_from_dict(data: Any) -> Message:
    """Rebuild a :class:`Message` from :func:`message_to_dict` output, validating it."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"a message dict is needed, not {type(data).__name__}")
    _check_keys("message", data, _MESSAGE_KEYS)
    role = _text("message.role", data.get("role"))
    content = data.get("content")
    parts: Any
    if isinstance(content, list):
        parts = [_part_from_dict(f"message.content[{j}]", p) for j, p in enumerate(content)]
    elif content is None or isinstance(content, str):
        parts = content
    else:
        raise ValidationError(f"message.content must be a string, a list of parts or null, not {type(content).__name__}")
    calls_data = data.get("tool_calls") or []
    if not isinstance(calls_data, list):
        raise ValidationError("message.tool_calls must be a list")
    calls: List[ToolCall] = [_call_from_dict(f"message.tool_calls[{i}]", c) for i, c in enumerate(calls_data)]
    msg = Message(
        role=role or "",
        content=parts,
        tool_calls=calls,
        tool_call_id=_text("message.tool_call_id", data.get("tool_call_id"), optional=True),
        name=_text("message.name", data.get("name"), optional=True),
    )
    from .validation import normalize_messages

    return normalize_messages([msg])[0]  # the same rules as any message passed to a call
