"""Validation of user input into :mod:`modelprov.messages` objects.

:func:`normalize_messages` turns the shapes users pass (a string,
OpenAI-style dicts, :class:`~modelprov.messages.Message` objects) into a
validated list of messages, raising
:class:`~modelprov.exceptions.ValidationError` (a ``ValueError``) that names
the offending index before any I/O happens. :func:`normalize_tools` does the
same for tool definitions.
"""

from typing import Any, List, Mapping, Optional, Sequence, Union

from .exceptions import ValidationError
from .messages import MESSAGE_KEYS, Message, MessageInput, Tool, ToolCall, check_message
from .parts import PART_TYPES, ImagePart, Part, TextPart, check_keys, part_from_dict

__all__ = ["normalize_messages", "normalize_tools"]


def _part_from_dict(index: int, j: int, part: object) -> Part:
    if isinstance(part, PART_TYPES):
        return part
    if isinstance(part, str):
        return TextPart(text=part)
    if not isinstance(part, Mapping):
        raise ValidationError(f"messages[{index}].content[{j}] must be a dict, str or part, not {type(part).__name__}")
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise ValidationError(f"messages[{index}].content[{j}].text must be a string")
        return TextPart(text=text)
    if kind in ("reasoning", "provider") or (kind == "image" and isinstance(part.get("data"), str)):
        return part_from_dict(f"messages[{index}].content[{j}]", part)  # the Message.to_dict shapes
    if kind in ("image_url", "image"):
        spec = part.get("image_url", part)
        if isinstance(spec, str):
            return ImagePart(url=spec)
        if not isinstance(spec, Mapping):
            raise ValidationError(f"messages[{index}].content[{j}] has a malformed image")
        try:
            return ImagePart(
                url=spec.get("url"),
                data=spec.get("data"),
                path=spec.get("path"),
                media_type=spec.get("media_type"),
                detail=spec.get("detail"),
            )
        except ValidationError as exc:
            raise ValidationError(f"messages[{index}].content[{j}]: {exc.message}") from None
    raise ValidationError(f"messages[{index}].content[{j}] has unknown part type {kind!r}")


def _tool_call_from(index: int, tc: object) -> ToolCall:
    if isinstance(tc, ToolCall):
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
        return ToolCall.from_json_text(call_id, name, args)
    if isinstance(args, Mapping):
        return ToolCall(id=call_id, name=name, arguments=dict(args))
    raise ValidationError(f"messages[{index}].tool_calls arguments must be a JSON string or dict")


def _message_from(index: int, item: object) -> Message:
    if isinstance(item, Message):
        msg = item
        fixed_content = msg.content
        if isinstance(fixed_content, tuple):
            fixed_content = list(fixed_content)
        if isinstance(fixed_content, list) and not all(isinstance(p, PART_TYPES) for p in fixed_content):
            fixed_content = [_part_from_dict(index, j, p) for j, p in enumerate(fixed_content)]
        calls = msg.tool_calls
        if calls is None:
            calls = []
        if not isinstance(calls, (list, tuple)):
            raise ValidationError(f"messages[{index}].tool_calls must be a list")
        if fixed_content is not msg.content or calls is not msg.tool_calls or not all(isinstance(c, ToolCall) for c in calls):
            msg = Message(
                role=msg.role,
                content=fixed_content,
                tool_calls=[_tool_call_from(index, c) for c in calls],
                tool_call_id=msg.tool_call_id,
                name=msg.name,
            )
    elif isinstance(item, (dict, Mapping)):  # dict first: the common case skips the ABC check
        if not MESSAGE_KEYS.issuperset(item):
            check_keys(f"messages[{index}]", item, MESSAGE_KEYS)
        content = item.get("content")
        if isinstance(content, (list, tuple)):
            content = [_part_from_dict(index, j, p) for j, p in enumerate(content)]
        wire_calls = item.get("tool_calls")
        calls = [_tool_call_from(index, tc) for tc in wire_calls] if wire_calls else []
        role: Any = item.get("role")  # check_message() refuses anything but a known role
        msg = Message(
            role=role,
            content=content,
            tool_calls=calls,
            tool_call_id=item.get("tool_call_id"),
            name=item.get("name"),
        )
    else:
        raise ValidationError(f"messages[{index}] must be a dict or Message, not {type(item).__name__}")
    check_message(index, msg)
    return msg


def normalize_messages(messages: Union[str, Message, Mapping[str, Any], Sequence[MessageInput]]) -> List[Message]:
    """Validate and convert user input into a list of :class:`~modelprov.messages.Message`.

    Accepts a single string (one user message), one message, or a sequence of
    strings, dicts in the OpenAI shape and :class:`~modelprov.messages.Message` objects.
    """
    if isinstance(messages, str):
        if not messages or messages.isspace():
            raise ValidationError("the prompt is empty" if not messages else "the prompt is only whitespace", hint="give the text to send")
        return [Message(role="user", content=messages)]
    items: Sequence[Any]
    if isinstance(messages, (list, tuple)):
        items = messages
    elif isinstance(messages, (Message, Mapping)):
        items = [messages]
    else:
        raise ValidationError(f"messages must be a string or a list, not {type(messages).__name__}")
    if not items:
        raise ValidationError("messages is empty: give at least one message")
    out: List[Message] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            out.append(Message(role="user", content=item))
        else:
            out.append(_message_from(i, item))
    return out


def normalize_tools(tools: Optional[Sequence[Any]]) -> Optional[List[Tool]]:
    """Accept :class:`~modelprov.messages.Tool` objects or OpenAI-style tool dicts; validate names."""
    if tools is None:
        return None
    if not isinstance(tools, (list, tuple)):
        raise ValidationError("tools must be a list")
    out: List[Tool] = []
    for i, t in enumerate(tools):
        if isinstance(t, Tool):
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
            name = fn.get("name")
            if not isinstance(name, str) or not name:
                raise ValidationError(f"tools[{i}] has no name")
            tool = Tool(name=name, description=description, parameters=dict(params))
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
