"""``collect()``: rebuild a whole :class:`~modelprov.types.ModelResponse` from stream chunks."""

from typing import Any, Dict, Iterable, List, Optional

from .types import ModelResponse, Part, ProviderPart, ReasoningPart, StreamChunk, TextPart, ToolCall, Usage

__all__ = ["collect"]


class _Reasoning:
    """One reasoning block being assembled from :class:`~modelprov.types.ReasoningDelta` fragments."""

    __slots__ = ("text", "signature", "redacted", "details")

    def __init__(self) -> None:
        self.text: List[str] = []
        self.signature: List[str] = []
        self.redacted: Optional[str] = None
        self.details: Any = ()

    def part(self, provider: Optional[str]) -> ReasoningPart:
        return ReasoningPart(
            text="".join(self.text),
            signature="".join(self.signature) if self.signature else None,
            redacted_data=self.redacted,
            details=tuple(self.details),
            provider=provider,
        )


def collect(chunks: Iterable[StreamChunk]) -> ModelResponse:
    """Consume ``chunks`` and return the equivalent :class:`ModelResponse`.

    Text is concatenated; reasoning fragments are grouped into blocks by
    index (text and signatures joined, provider details kept), placed before
    the text; when provider-native parts arrived, every part keeps its
    arrival order instead (text runs between them become separate text
    parts), as the providers' own answers do; tool-call fragments are grouped by index, their argument
    strings joined and parsed (bad JSON is kept raw and flagged on the
    :class:`ToolCall`); refusal fragments are joined; the last
    ``finish_reason`` and ``usage`` win.
    """
    text: List[str] = []
    refusal: List[str] = []
    blocks: Dict[int, _Reasoning] = {}
    calls: Dict[int, Dict[str, Optional[str]]] = {}
    args: Dict[int, List[str]] = {}
    finish = native = None
    usage: Optional[Usage] = None
    dropped: Optional[List[str]] = None
    model = provider = rid = request_id = None
    order: List[Any] = []  # arrival order: reasoning block indexes, text runs (lists), provider parts
    has_provider_parts = False
    for chunk in chunks:
        if chunk.text:
            text.append(chunk.text)
            if order and type(order[-1]) is list:
                order[-1].append(chunk.text)
            else:
                order.append([chunk.text])
        if chunk.provider_parts:
            has_provider_parts = True
            order.extend(chunk.provider_parts)
        if chunk.reasoning_deltas:
            for rd in chunk.reasoning_deltas:
                block = blocks.get(rd.index)
                if block is None:
                    block = blocks[rd.index] = _Reasoning()
                    order.append(rd.index)
                if rd.text:
                    block.text.append(rd.text)
                if rd.signature:
                    block.signature.append(rd.signature)
                if rd.redacted_data is not None:
                    block.redacted = rd.redacted_data
                if rd.details is not None:
                    block.details = rd.details
        elif chunk.reasoning:
            block = blocks.get(0)
            if block is None:
                block = blocks[0] = _Reasoning()
                order.append(0)
            block.text.append(chunk.reasoning)
        if chunk.refusal:
            refusal.append(chunk.refusal)
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
        if chunk.dropped_options is not None:
            dropped = list(chunk.dropped_options)
        model = chunk.model or model
        provider = chunk.provider or provider
        rid = chunk.id or rid
        request_id = chunk.request_id or request_id
    tool_calls = [
        ToolCall.from_json_text(calls[i]["id"] or f"call_{i}", calls[i]["name"] or "", "".join(args.get(i, [])))
        for i in sorted(calls)
    ]
    joined = "".join(text)
    content: List[Part]
    if has_provider_parts:
        content = [
            TextPart(text="".join(item)) if type(item) is list else item if isinstance(item, ProviderPart) else blocks[item].part(provider)
            for item in order
        ]
    else:
        content = [blocks[i].part(provider) for i in sorted(blocks)]
        if joined:
            content.append(TextPart(text=joined))
    return ModelResponse(
        text=joined,
        content=content,
        tool_calls=tool_calls,
        finish_reason=finish,
        native_finish_reason=native,
        usage=usage or Usage(),
        model=model,
        provider=provider,
        id=rid,
        request_id=request_id,
        refusal="".join(refusal) or None,
        dropped_options=dropped or [],
    )
