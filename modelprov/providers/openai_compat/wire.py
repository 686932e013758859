"""Pure helpers of the Chat Completions codec: usage, finish reasons, tool calls, reasoning.

Shared by :mod:`.codec` (requests and JSON answers) and
:mod:`.stream` (streams). Reasoning output comes in three shapes
(WIRE.md §5.7, §7): OpenRouter's ``reasoning`` text plus ``reasoning_details``
entries, and the DeepSeek-style ``reasoning_content`` of vLLM / llama.cpp.
OpenAI's own Chat Completions returns no reasoning text at all (only
``usage.completion_tokens_details.reasoning_tokens``).
"""

import array
import base64
import binascii
import json
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ...exceptions import ResponseError
from ...types import ReasoningPart, ToolCall, Usage

__all__ = [
    "DetailMerger",
    "as_dict",
    "content_text",
    "decode_vector",
    "delta_reasoning_text",
    "details_text",
    "iso_date",
    "normalize_finish_reason",
    "parse_usage",
    "reasoning_part",
    "to_int",
    "tool_call",
]

_FINISH = {
    "stop": "stop", "eos": "stop", "end_turn": "stop", "stop_sequence": "stop", "end": "stop",
    "length": "length", "max_tokens": "length", "model_length": "length", "model_context_window_exceeded": "length",
    "tool_calls": "tool_calls", "function_call": "tool_calls", "tool_use": "tool_calls",
    "content_filter": "content_filter", "safety": "content_filter", "refusal": "refusal",
    "error": "error",
}  # fmt: skip

#: Detail fields whose string fragments are concatenated when a stream is merged.
_JOINED = ("text", "summary", "data")


def as_dict(value: Any) -> Dict[str, Any]:
    """``value`` when it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}


def normalize_finish_reason(native: Any) -> Optional[str]:
    """Map a wire ``finish_reason`` to modelprov's set (unknown non-empty values become ``stop``)."""
    if not isinstance(native, str) or not native:
        return None
    return _FINISH.get(native.lower(), "stop")


def to_int(value: Any) -> Optional[int]:
    """``value`` as an int when it is one (or an integral float); else ``None`` (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _cost(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def parse_usage(u: Any) -> Optional[Usage]:
    """A :class:`Usage` from an OpenAI-style ``usage`` object (``None`` when absent).

    OpenRouter's ``cost`` (USD) becomes :attr:`Usage.cost`.
    """
    if not isinstance(u, dict):
        return None
    ptd = as_dict(u.get("prompt_tokens_details"))
    ctd = as_dict(u.get("completion_tokens_details"))
    inp = to_int(u.get("prompt_tokens"))
    out = to_int(u.get("completion_tokens"))
    write = to_int(ptd.get("cache_write_tokens"))
    return Usage(
        input_tokens=inp if inp is not None else (to_int(u.get("input_tokens")) or 0),
        output_tokens=out if out is not None else (to_int(u.get("output_tokens")) or 0),
        total_tokens=to_int(u.get("total_tokens")),
        cache_read_tokens=to_int(ptd.get("cached_tokens")),
        cache_write_tokens=write if write is not None else to_int(u.get("cache_write_tokens")),
        reasoning_tokens=to_int(ctd.get("reasoning_tokens")),
        cost=_cost(u.get("cost")),
    )


def content_text(content: Any) -> str:
    """The text of a message ``content`` (a string, or text parts some servers answer with)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def tool_call(item: Any, position: int) -> Optional[ToolCall]:
    """A :class:`ToolCall` from one ``tool_calls`` entry (``None`` for a non-object)."""
    if not isinstance(item, dict):
        return None
    fn = as_dict(item.get("function"))
    call_id = _str(item.get("id"))
    name = _str(fn.get("name"))
    args = fn.get("arguments")
    if isinstance(args, dict):  # a few servers send an object instead of a JSON string
        return ToolCall(id=call_id or f"call_{position}", name=name, arguments=args, raw_arguments=json.dumps(args))
    return ToolCall.from_json_text(call_id or f"call_{position}", name, args if isinstance(args, str) else None)


def decode_vector(value: Any, position: int) -> List[float]:
    """An embedding from a list of floats or base64 little-endian float32 text."""
    if isinstance(value, list):
        return [float(x) for x in value]
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ResponseError(f"embedding {position} is not valid base64") from None
        if len(raw) % 4:
            raise ResponseError(f"embedding {position} has {len(raw)} bytes, not a float32 array")
        vec = array.array("f")
        vec.frombytes(raw)
        if sys.byteorder == "big":
            vec.byteswap()
        return vec.tolist()
    raise ResponseError(f"embedding {position} is neither a list of floats nor base64 text")


def iso_date(value: Any) -> Optional[str]:
    """``YYYY-MM-DD`` from an ISO date/datetime string or a unix timestamp; ``None`` otherwise."""
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-" and value[:4].isdigit():
        return value[:10]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        import datetime

        try:
            return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%Y-%m-%d")
        except (OverflowError, OSError, ValueError):
            return None
    return None


# ----------------------------------------------------------------- reasoning
def details_text(details: Sequence[Any]) -> str:
    """The readable text of ``reasoning_details`` entries: ``text`` and ``summary`` joined in order."""
    out = []
    for d in details:
        if isinstance(d, dict):
            for key in ("text", "summary"):
                value = d.get(key)
                if isinstance(value, str) and value:
                    out.append(value)
    return "".join(out)


def _text_field(message: Dict[str, Any]) -> Optional[str]:
    for key in ("reasoning", "reasoning_content"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def reasoning_part(message: Dict[str, Any], provider: str) -> Optional[ReasoningPart]:
    """The :class:`ReasoningPart` of a message or nothing.

    Text: ``reasoning`` (OpenRouter, Ollama ``/v1``) or ``reasoning_content``
    (vLLM, llama.cpp), else the joined texts and summaries of
    ``reasoning_details``; ``details``: the ``reasoning_details`` entries as
    given, to be sent back unchanged to ``provider``.
    """
    raw = message.get("reasoning_details")
    details = tuple(d for d in raw if isinstance(d, dict)) if isinstance(raw, list) else ()
    text = _text_field(message)
    if text is None:
        text = details_text(details)
    if not text and not details:
        return None
    return ReasoningPart(text=text, details=details, provider=provider)


def delta_reasoning_text(delta: Dict[str, Any], details: Sequence[Any]) -> str:
    """The reasoning text a stream delta adds: ``reasoning`` (or ``reasoning_content``), else its details' text.

    A delta carrying both ``reasoning`` and ``reasoning_details`` repeats the
    same text in both; it is counted once.
    """
    text = _text_field(delta)
    if text is not None:
        return text
    return details_text(details) if details else ""


class DetailMerger:
    """Merges streamed ``reasoning_details`` fragments into whole entries, keyed by their ``index``.

    ``text``, ``summary`` and ``data`` fragments are concatenated; the first
    non-empty ``signature`` is kept; ``type``, ``format``, ``id`` and other
    keys keep their first non-null value. Entries stay in order of first
    appearance. A fragment without an ``index`` continues the previous entry
    when it has the same ``type``, else starts a new one.
    """

    __slots__ = ("entries", "by_index", "dirty")

    def __init__(self) -> None:
        self.entries: List[Dict[str, Any]] = []
        self.by_index: Dict[int, Dict[str, Any]] = {}
        #: True when fragments arrived since :meth:`take` last returned the entries.
        self.dirty = False

    def add(self, fragments: Sequence[Any]) -> None:
        """Merge the fragments of one delta."""
        for frag in fragments:
            if not isinstance(frag, dict):
                continue
            self.dirty = True
            index = to_int(frag.get("index"))
            if index is not None:
                entry = self.by_index.get(index)
                if entry is None:
                    entry = self.by_index[index] = {}
                    self.entries.append(entry)
            elif self.entries and "index" not in self.entries[-1] and self.entries[-1].get("type") == frag.get("type"):
                entry = self.entries[-1]
            else:
                entry = {}
                self.entries.append(entry)
            _merge_into(entry, frag)

    def take(self) -> Optional[Tuple[Dict[str, Any], ...]]:
        """The merged entries if anything changed since the last call, else ``None``."""
        if not self.dirty:
            return None
        self.dirty = False
        return tuple(dict(e) for e in self.entries)


def _merge_into(entry: Dict[str, Any], frag: Dict[str, Any]) -> None:
    for key, value in frag.items():
        if key in _JOINED and isinstance(value, str):
            old = entry.get(key)
            entry[key] = old + value if isinstance(old, str) else value
        elif key == "signature":
            if not entry.get("signature"):
                entry[key] = value
        elif key not in entry or entry[key] is None:
            entry[key] = value
