"""Validation of user input into :mod:`modelprov.types` objects.

:func:`normalize_messages` turns the shapes users pass (a string,
OpenAI-style dicts, :class:`~modelprov.types.Message` objects) into a
validated list of messages, raising
:class:`~modelprov.exceptions.ValidationError` (a ``ValueError``) that names
the offending index before any I/O happens. :func:`normalize_tools` does the
same for tool definitions. Both are re-exported by :mod:`modelprov.types`.
"""

from typing import Any, List, Mapping, Optional, Sequence, Union

from . import types as _t
from .exceptions import ValidationError

__all__ = ["normalize_messages", "normalize_tools"]

#: Roles whose ``{"role", "content": str}`` dicts need no further checks (the fast path).
_PLAIN_ROLES = ("user", "system", "assistant", "developer")

# --------------------------------------------------------------------------


def _part_from_dict(index: int, j: int, part: Any) -> _t.Part:
    if isinstance(part, _t.PART_TYPES):
        return part
    if isinstance(part, str):
        return _t.TextPart(part)
    if not isinstance(part, Mapping):
        raise ValidationError(f"messages[{index}].content[{j}] must be a dict, str or part, not {type(part).__name__}")
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise ValidationError(f"messages[{index}].content[{j}].text must be a string")
        return _t.TextPart(text)
    if kind in ("reasoning", "provider") or (kind == "image" and isinstance(part.get("data"), str)):
        from ._serialize import _part_from_dict as part_from_saved  # the Message.to_dict shapes

        return part_from_saved(f"messages[{index}].content[{j}]", part)
    if kind in ("image_url", "image"):
        spec = part.get("image_url", part)
        if isinstance(spec, str):
            return _t.ImagePart(url=spec)
        if not isinstance(spec, Mapping):
            raise ValidationError(f"messages[{index}].content[{j}] has a malformed image")
        try:
            return _t.ImagePart(
                url=spec.get("url"),
                data=spec.get("data"),
                path=spec.get("path"),
                media_type=spec.get("media_type"),
                detail=spec.get("detail"),
            )
        except ValidationError as exc:
            raise ValidationError(f"messages[{index}].content[{j}]: {exc.message}") from None
    raise ValidationError(f"messages[{index}].content[{j}] has unknown part type {kind!r}")


def _tool_call_from(index: int, tc: Any) -> _t.ToolCall:
    if isinstance(tc, _t.ToolCall):
        return tc
    if not isinstance(tc, Mapping):
        raise ValidationError(f"messages[{index}].tool_calls entries must be dicts or ToolCall objects")
    fn = tc.get("function", tc)
    name = fn.get("name") if isinstance(fn, Mapping) else None
    if not isinstance(name, str) or not name:
        raise ValidationError(f"messages[{index}].tool_calls entry lacks a function name")
    args = fn.get("arguments", {})
    call_id = str(tc.get("id") or "")
    if isinstance(args, str):
        return _t.ToolCall.from_json_text(call_id, name, args)
    if isinstance(args, Mapping):
        return _t.ToolCall(id=call_id, name=name, arguments=dict(args))
    raise ValidationError(f"messages[{index}].tool_calls arguments must be a JSON string or dict")


def _message_from(index: int, item: Any) -> _t.Message:
    if isinstance(item, _t.Message):
        msg = item
        fixed_content = msg.content
        if isinstance(fixed_content, tuple):
            fixed_content = list(fixed_content)
        if isinstance(fixed_content, list) and not all(isinstance(p, _t.PART_TYPES) for p in fixed_content):
            fixed_content = [_part_from_dict(index, j, p) for j, p in enumerate(fixed_content)]
        calls = msg.tool_calls
        if calls is None:
            calls = []
        if not isinstance(calls, (list, tuple)):
            raise ValidationError(f"messages[{index}].tool_calls must be a list")
        if fixed_content is not msg.content or calls is not msg.tool_calls or not all(isinstance(c, _t.ToolCall) for c in calls):
            msg = _t.Message(
                role=msg.role,
                content=fixed_content,
                tool_calls=[_tool_call_from(index, c) for c in calls],
                tool_call_id=msg.tool_call_id,
                name=msg.name,
            )
    elif isinstance(item, Mapping):
        unknown = set(item) - {"role", "content", "tool_calls", "tool_call_id", "name"}
        if unknown:
            raise ValidationError(f"messages[{index}] has unknown key(s): {', '.join(sorted(map(str, unknown)))}")
        content = item.get("content")
        if isinstance(content, (list, tuple)):
            content = [_part_from_dict(index, j, p) for j, p in enumerate(content)]
        calls = [_tool_call_from(index, tc) for tc in (item.get("tool_calls") or [])]
        msg = _t.Message(
            role=item.get("role"),  # type: ignore[arg-type]
            content=content,
            tool_calls=calls,
            tool_call_id=item.get("tool_call_id"),
            name=item.get("name"),
        )
    else:
        raise ValidationError(f"messages[{index}] must be a dict or Message, not {type(item).__name__}")
    role = msg.role
    if role not in _t.ROLES:
        raise ValidationError(f"messages[{index}] has unknown role {role!r} (expected one of {', '.join(_t.ROLES)})")
    content = msg.content
    if content is not None and not isinstance(content, (str, list)):
        raise ValidationError(f"messages[{index}].content must be a string or a list of parts, not {type(content).__name__}")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, _t.PART_TYPES):
                raise ValidationError(f"messages[{index}].content[{j}] is not a TextPart, ImagePart, ReasoningPart or ProviderPart")
            if role != "assistant" and isinstance(part, (_t.ReasoningPart, _t.ProviderPart)):
                raise ValidationError(
                    f"messages[{index}] ({role}) carries a {type(part).__name__}; only assistant messages may"
                )
    if content is None and not (role == "assistant" and msg.tool_calls):
        raise ValidationError(f"messages[{index}] ({role}) has no content")
    if msg.name is not None and not isinstance(msg.name, str):
        raise ValidationError(f"messages[{index}].name must be a string")
    if msg.tool_call_id is not None and not isinstance(msg.tool_call_id, str):
        raise ValidationError(f"messages[{index}].tool_call_id must be a string")
    if role == "tool" and not msg.tool_call_id:
        raise ValidationError(f"messages[{index}] is a tool message without tool_call_id")
    if msg.tool_calls and role != "assistant":
        raise ValidationError(f"messages[{index}] has tool_calls but role {role!r}; only assistant messages may")
    if role != "user" and msg.images:
        raise ValidationError(f"messages[{index}] ({role}) carries images; only user messages may")
    return msg


def normalize_messages(messages: Union[str, _t.Message, Mapping[str, Any], Sequence[_t.MessageInput]]) -> List[_t.Message]:
    """Validate and convert user input into a list of :class:`~modelprov.types.Message`.

    Accepts a single string (one user message), one message, or a sequence of
    strings, dicts in the OpenAI shape and :class:`~modelprov.types.Message` objects.
    """
    if isinstance(messages, str):
        if not messages:
            raise ValidationError("the prompt is empty")
        return [_t.Message(role="user", content=messages)]
    if isinstance(messages, (_t.Message, Mapping)):
        messages = [messages]  # type: ignore[list-item]
    if not isinstance(messages, (list, tuple)):
        raise ValidationError(f"messages must be a string or a list, not {type(messages).__name__}")
    if not messages:
        raise ValidationError("messages is empty: give at least one message")
    out = []
    Message = _t.Message
    for i, item in enumerate(messages):
        if type(item) is dict and len(item) == 2:
            # Fast path: a plain {"role": ..., "content": "text"} dict passes every check below.
            content = item.get("content")
            role = item.get("role")
            if type(content) is str and type(role) is str and role in _PLAIN_ROLES:
                out.append(Message(role, content))
                continue
        if isinstance(item, str):
            out.append(Message(role="user", content=item))
        else:
            out.append(_message_from(i, item))
    return out


def normalize_tools(tools: Optional[Sequence[Any]]) -> Optional[List[_t.Tool]]:
    """Accept :class:`~modelprov.types.Tool` objects or OpenAI-style tool dicts; validate names."""
    if tools is None:
        return None
    if not isinstance(tools, (list, tuple)):
        raise ValidationError("tools must be a list")
    out: List[_t.Tool] = []
    for i, t in enumerate(tools):
        if isinstance(t, _t.Tool):
            tool = t
        elif isinstance(t, Mapping):
            fn = t.get("function", t)
            if not isinstance(fn, Mapping):
                raise ValidationError(f"tools[{i}].function must be a dict")
            params = fn.get("parameters", fn.get("input_schema")) or {"type": "object", "properties": {}}
            if not isinstance(params, Mapping):
                raise ValidationError(f"tools[{i}].parameters must be a JSON Schema object (a dict)")
            description = fn.get("description")
            if description is not None and not isinstance(description, str):
                raise ValidationError(f"tools[{i}].description must be a string")
            tool = _t.Tool(name=fn.get("name"), description=description, parameters=dict(params))  # type: ignore[arg-type]
        else:
            raise ValidationError(f"tools[{i}] must be a Tool or a dict")
        if not isinstance(tool.name, str) or not tool.name:
            raise ValidationError(f"tools[{i}] has no name")
        if not all(c.isalnum() or c in "_-" for c in tool.name) or len(tool.name) > 64:
            raise ValidationError(f"tools[{i}] name {tool.name!r} must be 1-64 letters, digits, '_' or '-'")
        if not isinstance(tool.parameters, dict):
            raise ValidationError(f"tools[{i}].parameters must be a JSON Schema object")
        out.append(tool)
    return out
