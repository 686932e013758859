"""``AnthropicStreamDecoder``: Anthropic Messages SSE events -> :class:`StreamChunk` objects.

Event order (WIRE.md §3.5, §3.9): ``message_start`` (id, model, input
usage), per content block ``content_block_start`` / ``content_block_delta`` /
``content_block_stop``, then ``message_delta`` (stop reason, ``stop_details``,
cumulative usage incl. ``output_tokens_details.thinking_tokens``) and
``message_stop``. ``ping`` is a keep-alive; ``error`` raises the matching
exception; unknown event types are skipped.

Tool calls are numbered by a counter of ``tool_use`` blocks and reasoning
blocks by a counter of ``thinking`` / ``redacted_thinking`` blocks (not by
the content-block index, which counts every block), so
``ToolCallDelta.index`` and ``ReasoningDelta.index`` are 0, 1, 2...
A thinking block's start gives a ``ReasoningDelta`` (so even an empty block
is rebuilt), ``thinking_delta`` its text (also in ``chunk.reasoning``),
``signature_delta`` its signature; a ``redacted_thinking`` start gives the
whole block (``redacted_data``). The final chunk carries the refusal
explanation (``stop_details.explanation``) in ``chunk.refusal``. Other
native blocks (server tools and their results) are assembled (their
``input_json_delta`` fragments parsed into ``input``) and emitted whole at
their ``content_block_stop`` as ``chunk.provider_parts``, so a streamed
paused turn resumes like a JSON one. ``citations_delta`` events are skipped.
"""

import json
from typing import Any, Dict, List, Optional, Tuple

from ...exceptions import ResponseError
from ...streaming import loads_json
from ...types import ProviderPart, ReasoningDelta, StreamChunk, ToolCallDelta
from ..base import StreamDecoder
from .wire import error_from_type, map_stop_reason, normalize_usage, refusal_of

__all__ = ["AnthropicStreamDecoder"]


class AnthropicStreamDecoder(StreamDecoder):
    """Decoder for one Anthropic stream; ``feed`` takes ``SSEEvent`` objects."""

    def __init__(self, provider: str) -> None:
        self.done = False
        self._provider = provider
        self._id: Optional[str] = None
        self._model: Optional[str] = None
        self._usage: Dict[str, Any] = {}
        self._stop_reason: Optional[str] = None
        self._stop_details: Any = None
        #: content-block index -> tool-call number, for tool_use blocks only.
        self._tools: Dict[Any, int] = {}
        #: content-block index -> reasoning-block number, for thinking and redacted_thinking blocks.
        self._reasoning: Dict[Any, int] = {}
        #: content-block index -> (native block, its input_json_delta fragments), for blocks modelprov does not model.
        self._native: Dict[Any, Tuple[Dict[str, Any], List[str]]] = {}

    def is_keepalive(self, event: Any) -> bool:
        """``ping`` events only keep the connection open."""
        return getattr(event, "event", None) == "ping"

    def _chunk(self, **kw: Any) -> StreamChunk:
        return StreamChunk(id=self._id, model=self._model, **kw)

    def _reasoning_chunk(self, index: Any, text: str = "", signature: Optional[str] = None, redacted: Optional[str] = None) -> StreamChunk:
        number = self._reasoning.get(index)
        if number is None:
            number = self._reasoning[index] = len(self._reasoning)
        delta = ReasoningDelta(index=number, text=text, signature=signature, redacted_data=redacted)
        return self._chunk(reasoning=text, reasoning_deltas=[delta])

    def feed(self, event: Any) -> List[StreamChunk]:
        """Decode one ``SSEEvent``; raises the mapped error for an ``error`` event."""
        name = getattr(event, "event", None)
        try:
            data = loads_json(event.data)
        except ValueError:
            raise ResponseError(
                f"invalid JSON in Anthropic {name or 'stream'} event: {event.data[:80]!r}", provider=self._provider
            ) from None
        if type(data) is not dict:
            raise ResponseError(f"Anthropic stream event is not an object: {event.data[:80]!r}", provider=self._provider)
        if name == "content_block_delta":
            # Fast path for nearly every event of a stream: a text delta. Kept for its measured gain
            # (timeit, CPython 3.11): 1.6 us per text_delta event against 1.8 us through the handler table,
            # about 4% of provider.stream()'s client CPU per chunk in benchmarks/run.py (stream section).
            delta = data.get("delta")
            if type(delta) is dict and delta.get("type") == "text_delta":
                text = delta.get("text")
                if type(text) is str:
                    return [StreamChunk(text=text, model=self._model, id=self._id)] if text else []
        elif not name or name == "message":
            name = data.get("type")
        handler = _HANDLERS.get(str(name))
        return handler(self, data) if handler is not None else []

    def _message_start(self, data: Dict[str, Any]) -> List[StreamChunk]:
        message = data.get("message")
        if not isinstance(message, dict):
            message = {}
        self._id = message.get("id")
        self._model = message.get("model")
        self._usage = dict(message.get("usage") or {})
        return []

    def _block_start(self, data: Dict[str, Any]) -> List[StreamChunk]:
        block = data.get("content_block")
        if not isinstance(block, dict):
            block = {}
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
            return [self._chunk(text=block["text"])]
        if kind == "tool_use":
            number = len(self._tools)
            self._tools[_index(data, number)] = number
            initial = block.get("input")
            args = json.dumps(initial) if isinstance(initial, dict) and initial else ""
            delta = ToolCallDelta(index=number, id=block.get("id"), name=block.get("name"), arguments=args)
            return [self._chunk(tool_calls=[delta])]
        if kind == "thinking":
            text, sig = block.get("thinking"), block.get("signature")
            return [self._reasoning_chunk(_index(data), text if isinstance(text, str) else "",
                                          sig if isinstance(sig, str) and sig else None)]  # fmt: skip
        if kind == "redacted_thinking":
            redacted = block.get("data")
            return [self._reasoning_chunk(_index(data), redacted=redacted if isinstance(redacted, str) else "")]
        if kind and kind != "text":
            self._native[_index(data)] = (dict(block), [])
        return []

    def _block_stop(self, data: Dict[str, Any]) -> List[StreamChunk]:
        held = self._native.pop(_index(data), None)
        if held is None:
            return []
        block, fragments = held
        if fragments:
            try:
                block["input"] = json.loads("".join(fragments))
            except ValueError:
                raise ResponseError(
                    f"invalid JSON input for the Anthropic {block.get('type')} block", provider=self._provider
                ) from None
        return [self._chunk(provider_parts=[ProviderPart(provider=self._provider, data=block)])]

    def _block_delta(self, data: Dict[str, Any]) -> List[StreamChunk]:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text") or ""
            return [self._chunk(text=text)] if text else []
        if kind == "input_json_delta":
            held = self._native.get(_index(data))
            if held is not None:
                held[1].append(delta.get("partial_json") or "")
                return []
            number = self._tools.get(_index(data))
            fragment = delta.get("partial_json") or ""
            if number is None or not fragment:
                return []
            return [self._chunk(tool_calls=[ToolCallDelta(index=number, arguments=fragment)])]
        if kind == "thinking_delta":
            text = delta.get("thinking")
            return [self._reasoning_chunk(_index(data), text)] if isinstance(text, str) and text else []
        if kind == "signature_delta":
            sig = delta.get("signature")
            return [self._reasoning_chunk(_index(data), signature=sig)] if isinstance(sig, str) and sig else []
        return []  # citations_delta and unknown deltas: not part of the text

    def _message_delta(self, data: Dict[str, Any]) -> List[StreamChunk]:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        if isinstance(delta.get("stop_reason"), str) and delta["stop_reason"]:
            self._stop_reason = delta["stop_reason"]
        if delta.get("stop_details") is not None:
            self._stop_details = delta["stop_details"]
        usage = data.get("usage")
        for key, value in (usage if isinstance(usage, dict) else {}).items():
            if value is not None:
                self._usage[key] = value  # cumulative totals: overwrite
        return []

    def _message_stop(self, data: Dict[str, Any]) -> List[StreamChunk]:
        self.done = True
        native = self._stop_reason
        chunk = self._chunk(
            finish_reason=map_stop_reason(native) or "stop",
            native_finish_reason=native,
            usage=normalize_usage(self._usage),
        )
        if native == "refusal":
            chunk.refusal = refusal_of(self._stop_details) or ""
        return [chunk]

    def _error(self, data: Dict[str, Any]) -> List[StreamChunk]:
        found = data.get("error")
        err: Dict[str, Any] = found if isinstance(found, dict) else {}
        raise error_from_type(
            err.get("type"),
            str(err.get("message") or "error event in stream"),
            provider=self._provider,
            request_id=data.get("request_id"),
            details=err.get("details") if isinstance(err.get("details"), dict) else None,
        )

    def finish(self) -> List[StreamChunk]:
        """End of input: a stream without ``message_stop`` is truncated."""
        if not self.done:
            raise ResponseError(
                "the Anthropic stream ended before message_stop (truncated)",
                provider=self._provider,
                hint="the connection was cut mid-answer; retry the request",
            )
        return []


def _index(data: Dict[str, Any], default: Optional[int] = None) -> Optional[int]:
    """A content block's ``index`` (an int), else ``default`` (a malformed index never breaks the decoder)."""
    index = data.get("index")
    return index if type(index) is int else default


_HANDLERS = {
    "message_start": AnthropicStreamDecoder._message_start,
    "content_block_start": AnthropicStreamDecoder._block_start,
    "content_block_delta": AnthropicStreamDecoder._block_delta,
    "content_block_stop": AnthropicStreamDecoder._block_stop,
    "message_delta": AnthropicStreamDecoder._message_delta,
    "message_stop": AnthropicStreamDecoder._message_stop,
    "error": AnthropicStreamDecoder._error,
}
