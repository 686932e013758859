"""The conversation: :class:`Message`, :class:`ToolCall`, :class:`Tool`, and messages as plain JSON.

Plain dataclasses, standard library only; re-exported by :mod:`modelprov.types`.
:meth:`Message.to_dict` / :meth:`Message.from_dict` are a lossless round
trip of every message (reasoning signatures and provider details, tool-call
argument text, images as base64) through ``json.dumps``, so a conversation
can be saved and resumed years later. The format is versioned by its keys
only: unknown keys are refused with a message naming them.
:func:`check_message` holds the rules every message obeys (the same for a
saved message read back and for one passed to a call, see
:mod:`modelprov.validation`).
"""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

from .exceptions import ValidationError
from .parts import PART_TYPES, ImagePart, Part, ProviderPart, ReasoningPart, TextPart, check_keys, part_from_dict, part_to_dict, string_field

__all__ = [
    "MESSAGE_KEYS",
    "ROLES",
    "Message",
    "MessageInput",
    "Tool",
    "ToolCall",
    "check_message",
    "message_from_dict",
    "message_to_dict",
    "tool_result_message",
]

#: The message roles modelprov accepts. ``developer`` is OpenAI's instruction role for
#: newer models; providers without it receive it as ``system``.
ROLES = ("system", "developer", "user", "assistant", "tool")

#: The keys of a message dict (:meth:`Message.to_dict`, and the OpenAI-style dicts calls accept).
MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "tool_call_id", "name"})
_CALL_KEYS = frozenset({"id", "name", "arguments", "raw_arguments", "arguments_error"})


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
class Tool:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: Optional[str] = None
    parameters: Dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass
class Message:
    """One conversation turn.

    ``content`` is a string or a list of parts. Assistant turns may carry
    ``tool_calls`` and :class:`ReasoningPart` parts; tool turns need
    ``tool_call_id`` (and ``name``, the tool's name, which Ollama wants):
    :meth:`tool_result` builds one from a :class:`ToolCall`.
    :meth:`to_dict` / :meth:`from_dict` round-trip a message through plain
    JSON types, so a conversation can be saved and resumed.
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

    @property
    def reasoning(self) -> str:
        """The reasoning text of the content (reasoning parts joined; ``""`` when none)."""
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if isinstance(p, ReasoningPart))
        return ""

    @property
    def reasoning_parts(self) -> List[ReasoningPart]:
        """The reasoning parts of the content, in order."""
        if isinstance(self.content, list):
            return [p for p in self.content if isinstance(p, ReasoningPart)]
        return []

    @classmethod
    def tool_result(cls, call: ToolCall, content: object) -> "Message":
        """The ``tool`` turn answering ``call``.

        ``content`` is a string, or any JSON-serialisable value (serialised
        with :func:`json.dumps`). Raises :class:`ValidationError` otherwise.
        """
        return tool_result_message(call, content)

    def to_dict(self) -> Dict[str, Any]:
        """This message as plain JSON types (lossless: reasoning signatures included)."""
        return message_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Message":
        """The message :meth:`to_dict` produced (raises :class:`ValidationError` on a malformed dict)."""
        return message_from_dict(data)


#: What a call accepts as one message: a string (a user turn), a :class:`Message` or an OpenAI-style dict.
MessageInput = Union[str, Message, Mapping[str, Any]]


def tool_result_message(call: object, content: object) -> Message:
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


# ------------------------------------------------------------------- rules
def check_message(index: int, msg: Message) -> None:
    """The rules every message obeys; :class:`ValidationError` naming ``messages[index]`` otherwise.

    ``msg.content`` must already be a string, ``None`` or a list (its
    entries are checked to be parts here) and ``msg.tool_calls`` a list of
    :class:`ToolCall` (see :func:`modelprov.validation.normalize_messages`).
    """
    role = msg.role
    if role not in ROLES:
        raise ValidationError(f"messages[{index}] has unknown role {role!r} (expected one of {', '.join(ROLES)})")
    content = msg.content
    if content is not None and not isinstance(content, (str, list)):
        raise ValidationError(f"messages[{index}].content must be a string or a list of parts, not {type(content).__name__}")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, PART_TYPES):
                raise ValidationError(f"messages[{index}].content[{j}] is not a TextPart, ImagePart, ReasoningPart or ProviderPart")
            if role != "assistant" and isinstance(part, (ReasoningPart, ProviderPart)):
                raise ValidationError(f"messages[{index}] ({role}) carries a {type(part).__name__}; only assistant messages may")
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


# ------------------------------------------------------------------- to dict
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
        out["content"] = [part_to_dict(p) for p in content]
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
def _call_from_dict(where: str, data: object) -> ToolCall:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where} must be a dict, not {type(data).__name__}")
    check_keys(where, data, _CALL_KEYS)
    args = data.get("arguments", {})
    if not isinstance(args, Mapping):
        raise ValidationError(f"{where}.arguments must be a dict")
    return ToolCall(
        id=string_field(f"{where}.id", data.get("id", "")) or "",
        name=string_field(f"{where}.name", data.get("name")) or "",
        arguments=dict(args),
        raw_arguments=string_field(f"{where}.raw_arguments", data.get("raw_arguments"), optional=True),
        arguments_error=string_field(f"{where}.arguments_error", data.get("arguments_error"), optional=True),
    )


def message_from_dict(data: object) -> Message:
    """Rebuild a :class:`Message` from :func:`message_to_dict` output, validating it."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"a message dict is needed, not {type(data).__name__}")
    check_keys("message", data, MESSAGE_KEYS)
    role = string_field("message.role", data.get("role"))
    content = data.get("content")
    parts: Union[str, List[Part], None]
    if isinstance(content, list):
        parts = [part_from_dict(f"message.content[{j}]", p) for j, p in enumerate(content)]
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
        tool_call_id=string_field("message.tool_call_id", data.get("tool_call_id"), optional=True),
        name=string_field("message.name", data.get("name"), optional=True),
    )
    check_message(0, msg)  # the same rules as any message passed to a call
    return msg
