"""``collect()``: rebuild a whole :class:`~modelprov.types.ModelResponse` from stream chunks."""

from typing import Dict, Iterable, List, Optional

from .types import ModelResponse, StreamChunk, ToolCall, Usage

__all__ = ["collect"]


def collect(chunks: Iterable[StreamChunk]) -> ModelResponse:
    """Consume ``chunks`` and return the equivalent :class:`ModelResponse`.

    Text is concatenated; tool-call fragments are grouped by index, their
    argument strings joined and parsed (bad JSON is kept raw and flagged on
    the :class:`ToolCall`); the last ``finish_reason`` and ``usage`` win.
    """
    text: List[str] = []
    calls: Dict[int, Dict[str, Optional[str]]] = {}
    args: Dict[int, List[str]] = {}
    finish = native = None
    usage: Optional[Usage] = None
    model = provider = rid = request_id = None
    for chunk in chunks:
        if chunk.text:
            text.append(chunk.text)
        for delta in chunk.tool_calls:
            slot = calls.setdefault(delta.index, {"id": None, "name": None})
            if delta.id:
                slot["id"] = delta.id
            if delta.name:
                slot["name"] = delta.name
            if delta.arguments:
                args.setdefault(delta.index, []).append(delta.arguments)
        if chunk.finish_reason:
            finish = chunk.finish_reason
            native = chunk.native_finish_reason or native
        if chunk.usage is not None:
            usage = chunk.usage
        model = chunk.model or model
        provider = chunk.provider or provider
        rid = chunk.id or rid
        request_id = chunk.request_id or request_id
    tool_calls = [
        ToolCall.from_json_text(calls[i]["id"] or f"call_{i}", calls[i]["name"] or "", "".join(args.get(i, [])))
        for i in sorted(calls)
    ]
    return ModelResponse(
        text="".join(text),
        tool_calls=tool_calls,
        finish_reason=finish,
        native_finish_reason=native,
        usage=usage or Usage(),
        model=model,
        provider=provider,
        id=rid,
        request_id=request_id,
    )
