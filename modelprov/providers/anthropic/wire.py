"""Anthropic Messages API wire mapping shared by the provider and its stream decoder.

Pure functions, no I/O: message conversion (system prompt placement per API
version, turn merging, image, tool, thinking and provider-native blocks),
response content parsing, stop-reason, refusal and usage normalisation
(WIRE.md §3.3-§3.5, §3.9, §6). Error mapping lives in
:mod:`.errors` (re-exported here).

Content of an answer (:func:`parse_content`): ``thinking`` blocks become
:class:`ReasoningPart` (text, ``signature``, ``provider`` = the instance
name), ``redacted_thinking`` a :class:`ReasoningPart` with ``redacted_data``,
``tool_use`` blocks the tool calls, and any other block (``server_tool_use``,
``web_search_tool_result``...) a :class:`ProviderPart` holding the block as
received. Without provider parts the content is the reasoning parts in order
followed by the joined text (what ``collect()`` rebuilds from a stream); with
them every block keeps its native position, so the turn goes back unchanged.

Assistant turns sent back (:func:`convert_messages`): reasoning parts this
instance may receive (:meth:`ReasoningPart.sendable_to`) go first, in order,
as ``thinking`` (only with a signature) or ``redacted_thinking`` blocks, then
the text, then ``tool_use`` blocks. A turn holding this instance's provider
parts is sent in its content order instead (resuming a ``pause_turn``).
Reasoning and provider parts of other providers are dropped; a turn left
with nothing to send is left out.
"""

from typing import Any, Dict, List, Mapping, Optional, Tuple

from ...exceptions import ValidationError
from ...types import ChatRequest, ImagePart, Message, Part, ProviderPart, ReasoningPart, TextPart, ToolCall, Usage
from .errors import error_from_body, error_from_type

__all__ = [
    "IMAGE_MEDIA_TYPES",
    "convert_messages",
    "error_from_body",
    "error_from_type",
    "map_stop_reason",
    "normalize_usage",
    "parse_content",
    "refusal_of",
]

#: Media types the Messages API accepts for base64 images.
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "pause",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
}
_SYSTEM_ROLES = ("system", "developer")


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


def _reasoning_block(part: ReasoningPart, provider: str) -> Optional[Dict[str, Any]]:
    """The block for a reasoning part, or ``None`` when it cannot go to ``provider``."""
    if not part.sendable_to(provider):
        return None
    if part.redacted_data is not None:
        return {"type": "redacted_thinking", "data": part.redacted_data}
    if part.signature:
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    return None  # unsigned reasoning cannot be verified by the API: never rebuild it from text


def _native_blocks(content: List[Part], provider: str) -> List[Dict[str, Any]]:
    blocks: List[Dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ReasoningPart):
            block = _reasoning_block(part, provider)
            if block is not None:
                blocks.append(block)
        elif isinstance(part, ProviderPart) and part.provider == provider:
            blocks.append(dict(part.data))
    return blocks


def _assistant_blocks(msg: Message, provider: str) -> List[Dict[str, Any]]:
    blocks: List[Dict[str, Any]] = []
    content = msg.content
    if isinstance(content, list) and any(type(p) is not TextPart for p in content):
        if any(isinstance(p, ProviderPart) and p.provider == provider for p in content):
            blocks = _native_blocks(content, provider)
        else:
            for part in content:
                if isinstance(part, ReasoningPart):
                    block = _reasoning_block(part, provider)
                    if block is not None:
                        blocks.append(block)
            if msg.text:
                blocks.append({"type": "text", "text": msg.text})
    elif msg.text:
        blocks.append({"type": "text", "text": msg.text})
    for call in msg.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)})
    return blocks


def _items(req: ChatRequest, provider: str) -> List[Tuple[str, List[Dict[str, Any]]]]:
    """``(role, blocks)`` per message; system/developer ones as ``("system", [text block])``; empty ones left out."""
    items: List[Tuple[str, List[Dict[str, Any]]]] = []
    for msg in req.messages:
        role = msg.role
        if role in _SYSTEM_ROLES:
            text = msg.text
            if text:
                items.append(("system", [{"type": "text", "text": text}]))
        elif role == "tool":
            items.append(("user", [{"type": "tool_result", "tool_use_id": msg.tool_call_id or "", "content": msg.text}]))
        elif role == "user":
            items.append(("user", _user_blocks(msg)))
        else:
            blocks = _assistant_blocks(msg, provider)
            if blocks:  # e.g. only another provider's reasoning: nothing to send (an empty turn is a 400)
                items.append(("assistant", blocks))
    return items


def convert_messages(
    req: ChatRequest, provider: str = "anthropic", system_messages: bool = False
) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    """``(system, messages)`` for the Messages API.

    ``req.system`` and the leading ``system``/``developer`` messages are
    joined (blank line between) into the top-level ``system``. With
    ``system_messages`` (API version 2026-10-21 and a model that takes them)
    a later one stays in place as a ``{"role": "system"}`` message where the
    API allows one: right after a user turn, and followed by an assistant
    turn or by nothing (so never between a ``tool_use`` and its
    ``tool_result``, nor between two user turns); consecutive ones form one
    message. Every other later one is joined into the top-level ``system``
    too (as all of them are without ``system_messages``): it keeps the
    authority of a system instruction, at the price of the prompt cache of
    that request. Tool results become ``tool_result`` blocks in a user turn;
    consecutive turns of one role are merged, with ``tool_result`` blocks
    first in a user turn. An assistant turn with nothing this instance can
    receive (say, only another provider's reasoning) is left out, so its
    neighbouring user turns merge. A turn that is a single text block is
    sent as a plain string. ``provider`` is the instance name, for reasoning
    and provider parts (see the module docstring).
    """
    system_parts = [req.system] if req.system else []
    items = _items(req, provider)
    turns: List[Tuple[str, List[Dict[str, Any]]]] = []
    for i, (role, blocks) in enumerate(items):
        if role == "system":
            after = next((r for r, _ in items[i + 1:] if r != "system"), None)
            if not (system_messages and turns and turns[-1][0] in ("user", "system") and after in (None, "assistant")):
                system_parts.append(blocks[0]["text"])
                continue
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
def parse_content(blocks: List[Any], provider: str) -> Tuple[str, List[Part], List[ToolCall]]:
    """``(text, content parts, tool calls)`` of a message's ``content`` blocks (see the module docstring)."""
    texts: List[str] = []
    calls: List[ToolCall] = []
    seq: List[Any] = []  # reasoning and provider parts, and text strings in their position
    has_parts = native = False
    for block in blocks:
        if type(block) is not dict:
            continue
        kind = block.get("type")
        if kind == "text":
            text = block.get("text") or ""
            texts.append(text)
            seq.append(text)
        elif kind == "tool_use":
            args = block.get("input")
            calls.append(ToolCall(id=str(block.get("id") or ""), name=str(block.get("name") or ""), arguments=dict(args) if isinstance(args, dict) else {}))
        elif kind == "thinking":
            thinking, sig = block.get("thinking"), block.get("signature")
            text = thinking if isinstance(thinking, str) else ""
            seq.append(ReasoningPart(text=text, signature=sig if isinstance(sig, str) and sig else None, provider=provider))
            has_parts = True
        elif kind == "redacted_thinking":
            data = block.get("data")
            seq.append(ReasoningPart(redacted_data=data if isinstance(data, str) else "", provider=provider))
            has_parts = True
        else:
            seq.append(ProviderPart(provider=provider, data=dict(block)))
            has_parts = native = True
    if not has_parts:
        return "".join(texts), [], calls
    if native:
        parts: List[Part] = [TextPart(text=p) if type(p) is str else p for p in seq if p != ""]
    else:
        parts = [p for p in seq if type(p) is not str]
    return "".join(texts), parts, calls


def map_stop_reason(native: Optional[str]) -> Optional[str]:
    """Anthropic ``stop_reason`` -> modelprov ``finish_reason`` (unknown values -> ``"stop"``)."""
    if native is None:
        return None
    return _STOP_REASONS.get(native, "stop")


def refusal_of(stop_details: Any) -> Optional[str]:
    """The explanation of a refusal's ``stop_details`` (``{"type": "refusal", "explanation"}``), else ``None``."""
    if type(stop_details) is dict and stop_details.get("type") == "refusal":
        explanation = stop_details.get("explanation")
        if isinstance(explanation, str) and explanation:
            return explanation
    return None


def _count(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def normalize_usage(raw: Optional[Mapping[str, Any]]) -> Usage:
    """Anthropic usage -> :class:`Usage`.

    ``input_tokens`` includes cache reads and writes (WIRE §6.2);
    ``output_tokens_details.thinking_tokens`` is ``reasoning_tokens``.
    """
    raw = raw or {}
    details = raw.get("output_tokens_details")
    write = _count(raw.get("cache_creation_input_tokens"))
    read = _count(raw.get("cache_read_input_tokens"))
    return Usage(
        input_tokens=(_count(raw.get("input_tokens")) or 0) + (write or 0) + (read or 0),
        output_tokens=_count(raw.get("output_tokens")) or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=_count(details.get("thinking_tokens")) if type(details) is dict else None,
    )
