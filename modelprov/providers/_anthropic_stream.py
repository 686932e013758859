"""``AnthropicStreamDecoder``: Anthropic Messages SSE events -> :class:`StreamChunk` objects.

Event order (WIRE.md §3.5): ``message_start`` (id, model, input usage), per
content block ``content_block_start`` / ``content_block_delta`` /
``content_block_stop``, then ``message_delta`` (stop reason, cumulative
usage) and ``message_stop``. ``ping`` is a keep-alive; ``error`` raises the
matching exception; unknown event types are skipped.

Tool calls are numbered by a counter of ``tool_use`` blocks (not by the
content-block index, which also counts text and thinking blocks), so
``ToolCallDelta.index`` is 0, 1, 2... Thinking blocks never reach ``text``.
"""

import json
from typing import Any, Dict, List, Optional

from ..exceptions import ResponseError
from ..streaming import loads_json
from ..types import StreamChunk, ToolCallDelta
from ._anthropic_wire import error_from_type, map_stop_reason, normalize_usage
from .base import StreamDecoder

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
        #: content-block index -> tool-call number, for tool_use blocks only.
        self._tools: Dict[int, int] = {}

    def is_keepalive(self, event: Any) -> bool:
        """``ping`` events only keep the connection open."""
        return getattr(event, "event", None) == "ping"

    def _chunk(self, **kw: Any) -> StreamChunk:
        return StreamChunk(id=self._id, model=self._model, **kw)

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
            # Fast path for nearly every event of a stream: a text delta.
            delta = data.get("delta")
            if type(delta) is dict and delta.get("type") == "text_delta":
                text = delta.get("text")
                if type(text) is str:
                    return [StreamChunk(text, [], None, None, None, self._model, None, self._id)] if text else []
        elif not name or name == "message":
            name = data.get("type")
        handler = _HANDLERS.get(str(name))
        return handler(self, data) if handler is not None else []

    def _message_start(self, data: Dict[str, Any]) -> List[StreamChunk]:
        message = data.get("message") or {}
        self._id = message.get("id")
        self._model = message.get("model")
        self._usage = dict(message.get("usage") or {})
        return []

    def _block_start(self, data: Dict[str, Any]) -> List[StreamChunk]:
        block = data.get("content_block") or {}
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [self._chunk(text=block["text"])]
        if kind == "tool_use":
            number = len(self._tools)
            self._tools[data.get("index", number)] = number
            initial = block.get("input")
            args = json.dumps(initial) if isinstance(initial, dict) and initial else ""
            delta = ToolCallDelta(index=number, id=block.get("id"), name=block.get("name"), arguments=args)
            return [self._chunk(tool_calls=[delta])]
        return []

    def _block_delta(self, data: Dict[str, Any]) -> List[StreamChunk]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text") or ""
            return [self._chunk(text=text)] if text else []
        if kind == "input_json_delta":
            number = self._tools.get(data.get("index"))  # type: ignore[arg-type]
            fragment = delta.get("partial_json") or ""
            if number is None or not fragment:
                return []
            return [self._chunk(tool_calls=[ToolCallDelta(index=number, arguments=fragment)])]
        return []  # thinking_delta, signature_delta, citations_delta: not part of the text

    def _message_delta(self, data: Dict[str, Any]) -> List[StreamChunk]:
        delta = data.get("delta") or {}
        if delta.get("stop_reason"):
            self._stop_reason = delta["stop_reason"]
        for key, value in (data.get("usage") or {}).items():
            if value is not None:
                self._usage[key] = value  # cumulative totals: overwrite
        return []

    def _message_stop(self, data: Dict[str, Any]) -> List[StreamChunk]:
        self.done = True
        native = self._stop_reason
        return [
            self._chunk(
                finish_reason=map_stop_reason(native) or "stop",
                native_finish_reason=native,
                usage=normalize_usage(self._usage),
            )
        ]

    def _error(self, data: Dict[str, Any]) -> List[StreamChunk]:
        err = data.get("error") if isinstance(data.get("error"), dict) else {}
        raise error_from_type(
            err.get("type"),
            str(err.get("message") or "error event in stream"),
            provider=self._provider,
            request_id=data.get("request_id"),
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


_HANDLERS = {
    "message_start": AnthropicStreamDecoder._message_start,
    "content_block_start": AnthropicStreamDecoder._block_start,
    "content_block_delta": AnthropicStreamDecoder._block_delta,
    "message_delta": AnthropicStreamDecoder._message_delta,
    "message_stop": AnthropicStreamDecoder._message_stop,
    "error": AnthropicStreamDecoder._error,
}
