"""Shared helpers for the FakeServer wire builders.

Standard library only. Holds the protocol names, compact JSON encoding, SSE
framing, text and argument fragmenting, tool-call and usage normalisation,
finish-reason defaults and the UTF-8 splitting used to test decoders.
"""

import json
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

__all__ = [
    "PROTOCOLS",
    "OPENAI_FAMILY",
    "TextInput",
    "ToolCallInput",
    "check_protocol",
    "dumps",
    "fragments",
    "join_text",
    "native_finish_reason",
    "normalize_tool_calls",
    "normalize_usage",
    "sse_comment",
    "sse_event",
    "split_text",
    "split_utf8",
]

#: Every protocol the fake server speaks.
PROTOCOLS = ("openai", "openrouter", "openai_compatible", "anthropic", "ollama")
#: Protocols that use the OpenAI Chat Completions wire format.
OPENAI_FAMILY = ("openai", "openrouter", "openai_compatible")

#: Text of a reply: one string (split into words when streaming) or explicit fragments.
TextInput = Union[str, Sequence[str]]
#: A tool call as given by a test: ``{"id": "call_1", "name": "f", "arguments": {...} or "json text"}``.
ToolCallInput = Mapping[str, Any]

_WORD = re.compile(r"\s*\S+")

# Normalised finish reasons translated to the native value of a protocol.
_NATIVE = {
    "anthropic": {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal",
                  "pause": "pause_turn"},
    "ollama": {"tool_calls": "stop", "end_turn": "stop", "max_tokens": "length"},
}


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` if it is one of :data:`PROTOCOLS`, else raise ``ValueError``."""
    if protocol not in PROTOCOLS:
        raise ValueError("unknown protocol %r; expected one of %s" % (protocol, ", ".join(PROTOCOLS)))
    return protocol


def dumps(value: Any) -> str:
    """Compact JSON with raw (not ``\\u``-escaped) UTF-8, as the real APIs send it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sse_event(data: Any, event: Optional[str] = None) -> bytes:
    """One SSE event: optional ``event:`` line, one ``data:`` line, blank line.

    ``data`` that is not a ``str`` is JSON-encoded with :func:`dumps`.
    """
    text = data if isinstance(data, str) else dumps(data)
    head = "event: %s\n" % event if event else ""
    return (head + "data: " + text + "\n\n").encode("utf-8")


def sse_comment(text: str) -> bytes:
    """One SSE comment line (a keep-alive) followed by a blank line."""
    return (": " + text + "\n\n").encode("utf-8")


def split_text(text: TextInput, chunk_words: bool = True) -> List[str]:
    """Split reply text into stream fragments.

    A sequence of strings is used as given (empty strings dropped). A string is
    split into words that keep their leading whitespace (``"Hello world"`` ->
    ``["Hello", " world"]``) when ``chunk_words`` is true, else sent whole.
    An empty string gives no fragments.
    """
    if not isinstance(text, str):
        return [t for t in text if t]
    if not text:
        return []
    if not chunk_words:
        return [text]
    parts = _WORD.findall(text)
    consumed = sum(len(p) for p in parts)
    if consumed < len(text):  # trailing whitespace (or all whitespace)
        if parts:
            parts[-1] += text[consumed:]
        else:
            parts = [text]
    return parts


def join_text(text: TextInput) -> str:
    """The full reply text for non-streamed bodies."""
    return text if isinstance(text, str) else "".join(text)


def fragments(text: str, count: int = 3) -> List[str]:
    """Split ``text`` into up to ``count`` non-empty, roughly equal pieces (in characters)."""
    if not text:
        return []
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    out, pos = [], 0
    for i in range(count):
        n = size + (1 if i < extra else 0)
        out.append(text[pos : pos + n])
        pos += n
    return out


def normalize_tool_calls(tool_calls: Optional[Sequence[ToolCallInput]], id_prefix: str) -> List[Dict[str, Any]]:
    """Return tool calls as ``{"id", "name", "arguments" (object or None), "text" (JSON string)}``.

    ``arguments`` may be a mapping (encoded compactly) or a string used verbatim
    (so a test can send invalid JSON). A missing ``id`` becomes
    ``<id_prefix><index>``.
    """
    out = []
    for i, call in enumerate(tool_calls or ()):
        if "name" not in call:
            raise ValueError("tool call %d needs a 'name'" % i)
        args = call.get("arguments", {})
        if isinstance(args, str):
            text = args
            try:
                obj = json.loads(args) if args.strip() else {}
            except ValueError:
                obj = None
        else:
            obj = dict(args or {})
            text = dumps(obj)
        out.append(
            {
                "id": call.get("id") or "%s%d" % (id_prefix, i),
                "given_id": call.get("id"),
                "name": call["name"],
                "arguments": obj,
                "text": text,
            }
        )
    return out


def normalize_usage(usage: Optional[Mapping[str, Any]], output_default: int) -> Dict[str, int]:
    """Fill a usage mapping with modelprov's neutral names.

    Keys: ``input_tokens`` (default 10), ``output_tokens`` (default
    ``output_default``), ``cache_read_tokens``, ``cache_write_tokens``,
    ``reasoning_tokens`` (default 0). The OpenAI names ``prompt_tokens`` /
    ``completion_tokens`` are accepted as aliases.
    """
    u = dict(usage or {})
    return {
        "input_tokens": int(u.get("input_tokens", u.get("prompt_tokens", 10))),
        "output_tokens": int(u.get("output_tokens", u.get("completion_tokens", max(1, output_default)))),
        "cache_read_tokens": int(u.get("cache_read_tokens", 0)),
        "cache_write_tokens": int(u.get("cache_write_tokens", 0)),
        "reasoning_tokens": int(u.get("reasoning_tokens", 0)),
    }


def native_finish_reason(protocol: str, finish_reason: Optional[str], has_tools: bool) -> str:
    """The finish/stop/done reason a protocol sends.

    ``None`` picks the natural default (OpenAI family ``stop`` or
    ``tool_calls``, Anthropic ``end_turn`` or ``tool_use``, Ollama ``stop``).
    A given value is sent as is, except that the normalised names ``stop``,
    ``length``, ``tool_calls`` and ``content_filter`` are translated to their
    Anthropic (and, where different, Ollama) equivalents.
    """
    if finish_reason is None:
        if protocol == "anthropic":
            return "tool_use" if has_tools else "end_turn"
        if protocol == "ollama":
            return "stop"
        return "tool_calls" if has_tools else "stop"
    return _NATIVE.get(protocol, {}).get(finish_reason, finish_reason)


def split_utf8(chunks: Sequence[bytes]) -> List[bytes]:
    """Re-split writes so that multi-byte UTF-8 code points straddle two writes.

    Every chunk holding a multi-byte sequence is cut right after the lead byte
    of its first such sequence; chunks that are pure ASCII stay whole.
    """
    out: List[bytes] = []
    for chunk in chunks:
        cut = next((i for i, b in enumerate(chunk) if b >= 0xC0), None)
        if cut is None:
            out.append(chunk)
        else:
            out.append(chunk[: cut + 1])
            out.append(chunk[cut + 1 :])
    return [c for c in out if c]
