"""Wire builders for the Ollama native API.

``/api/chat`` and ``/api/generate`` bodies, their NDJSON streams (thinking
fragments first with ``content: ""``, then text fragments, tool calls whole,
a final ``done: true`` line with token counts and nanosecond durations), the
mid-stream ``{"error": ...}`` line, ``/api/embed`` and ``/api/tags``. Metric
fields that are zero are left out, as Ollama's ``omitempty`` does. Ollama has
no reasoning signatures and no refusals: the builders take ``signature`` and
``refusal`` (FakeServer passes them to every protocol) and ignore them.
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._common import (
    TextInput,
    ToolCallInput,
    dumps,
    fragments,
    join_text,
    native_finish_reason,
    normalize_tool_calls,
    normalize_usage,
    split_text,
)

__all__ = [
    "CREATED_AT",
    "ollama_chat",
    "ollama_embed",
    "ollama_error_body",
    "ollama_stream_error_lines",
    "ollama_stream_lines",
    "ollama_tags",
]

#: ``created_at`` used by every builder.
CREATED_AT = "2025-01-01T00:00:00Z"


def _line(obj: Any) -> bytes:
    return (dumps(obj) + "\n").encode("utf-8")


def _metrics(usage: Optional[Mapping[str, Any]], output_default: int) -> Dict[str, int]:
    u = normalize_usage(usage, output_default)
    metrics = {
        "total_duration": 0,
        "load_duration": 1000000,
        "prompt_eval_count": u["input_tokens"],
        "prompt_eval_duration": 2000000 if u["input_tokens"] else 0,
        "eval_count": u["output_tokens"],
        "eval_duration": 3000000 if u["output_tokens"] else 0,
    }
    metrics["total_duration"] = metrics["load_duration"] + metrics["prompt_eval_duration"] + metrics["eval_duration"]
    return {k: v for k, v in metrics.items() if v}  # omitempty


def _wire_calls(calls: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for i, c in enumerate(calls):
        args = c["arguments"] if c["arguments"] is not None else c["text"]
        wire: Dict[str, Any] = {"function": {"name": c["name"], "arguments": args}}
        if c["given_id"]:
            wire = {"id": c["given_id"], "function": dict(wire["function"], index=i)}
        out.append(wire)
    return out


def _base(model: str, endpoint: str, content: str, thinking: str = "") -> Dict[str, Any]:
    body: Dict[str, Any] = {"model": model, "created_at": CREATED_AT}
    if endpoint == "generate":
        body["response"] = content
        if thinking:
            body["thinking"] = thinking
    else:
        body["message"] = {"role": "assistant", "content": content}
        if thinking:
            body["message"]["thinking"] = thinking
    return body


def ollama_chat(
    text: TextInput = "",
    tool_calls: Optional[Sequence[ToolCallInput]] = None,
    *,
    usage: Optional[Mapping[str, Any]] = None,
    finish_reason: Optional[str] = None,
    model: str = "fake-model",
    endpoint: str = "chat",
    reasoning: Optional[TextInput] = None,
    signature: Optional[str] = None,
    refusal: Optional[str] = None,
) -> Dict[str, Any]:
    """A non-streamed ``/api/chat`` body (or ``/api/generate`` with ``endpoint="generate"``).

    ``done_reason`` defaults to ``stop`` (also with tool calls, as Ollama does).
    Tool calls are ``{"function": {"name", "arguments": {...}}}``, with ``id``
    and ``function.index`` when the test gave an id. ``reasoning`` is sent as
    ``message.thinking`` (``thinking`` for generate); ``signature`` and
    ``refusal`` are ignored (Ollama has neither).
    """
    calls = normalize_tool_calls(tool_calls, "call_")
    thinking = join_text(reasoning) if reasoning is not None else ""
    body = _base(model, endpoint, join_text(text), thinking)
    if calls and endpoint != "generate":
        body["message"]["tool_calls"] = _wire_calls(calls)
    body["done"] = True
    body["done_reason"] = native_finish_reason("ollama", finish_reason, bool(calls))
    body.update(_metrics(usage, len(split_text(text)) + len(split_text(thinking)) + len(calls)))
    return body


def ollama_stream_lines(
    text: TextInput = "",
    tool_calls: Optional[Sequence[ToolCallInput]] = None,
    *,
    usage: Optional[Mapping[str, Any]] = None,
    finish_reason: Optional[str] = None,
    model: str = "fake-model",
    chunk_words: bool = True,
    endpoint: str = "chat",
    reasoning: Optional[TextInput] = None,
    signature: Optional[str] = None,
    refusal: Optional[str] = None,
) -> List[bytes]:
    """The NDJSON lines of a streamed reply, each ending in ``\\n``.

    One ``done: false`` line per ``reasoning`` fragment (``message.thinking``
    with ``content: ""``, as Ollama streams a thinking model), one per text
    fragment, one line holding all tool calls whole, then the ``done: true``
    line with ``done_reason``, ``prompt_eval_count``/``eval_count`` and the
    ns durations. ``signature`` and ``refusal`` are ignored.
    """
    calls = normalize_tool_calls(tool_calls, "call_")
    thoughts = split_text(reasoning, chunk_words) if reasoning is not None else []
    pieces = split_text(text, chunk_words)
    out = [_line(dict(_base(model, endpoint, "", t), done=False)) for t in thoughts]
    out += [_line(dict(_base(model, endpoint, p), done=False)) for p in pieces]
    if calls and endpoint != "generate":
        body = _base(model, endpoint, "")
        body["message"]["tool_calls"] = _wire_calls(calls)
        body["done"] = False
        out.append(_line(body))
    final = dict(_base(model, endpoint, ""), done=True,
                 done_reason=native_finish_reason("ollama", finish_reason, bool(calls)))
    final.update(_metrics(usage, len(thoughts) + len(pieces) + len(calls)))
    out.append(_line(final))
    return out


def ollama_error_body(message: str) -> Dict[str, Any]:
    """``{"error": "<message>"}`` (a string, not an object)."""
    return {"error": message}


def ollama_stream_error_lines(
    *, after_chunks: int = 2, message: str = "an error was encountered while running the model",
    text: str = "partial", model: str = "fake-model", endpoint: str = "chat",
) -> List[bytes]:
    """``text`` in up to ``after_chunks`` ``done: false`` lines, then ``{"error": message}``."""
    out = [_line(dict(_base(model, endpoint, p), done=False)) for p in fragments(text, after_chunks)]
    out.append(_line({"error": message}))
    return out


def ollama_embed(vectors: Sequence[Sequence[float]], *, model: str = "fake-embedding") -> Dict[str, Any]:
    """An ``/api/embed`` body: ``{"model", "embeddings": [[...]], durations, "prompt_eval_count"}``."""
    return {"model": model, "embeddings": [list(v) for v in vectors], "total_duration": 3000000,
            "load_duration": 1000000, "prompt_eval_count": max(1, len(vectors))}


def ollama_tags(names: Sequence[Union[str, Mapping[str, Any]]]) -> Dict[str, Any]:
    """An ``/api/tags`` body. Items are names or dicts (with ``name``) overriding the defaults."""
    models = []
    for item in names:
        extra = dict(item) if isinstance(item, Mapping) else {"name": item}
        name = extra.get("name") or extra["model"]
        entry: Dict[str, Any] = {
            "name": name, "model": name, "modified_at": CREATED_AT, "size": 1000000,
            "digest": "0" * 64,
            "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                        "parameter_size": "1B", "quantization_level": "Q4_K_M"},
        }
        entry.update(extra)
        models.append(entry)
    return {"models": models}
