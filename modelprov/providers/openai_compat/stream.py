"""``OpenAIStreamDecoder``: the SSE ``data:`` events of a streamed chat completion as chunks.

Handles text, tool-call fragments (WIRE.md §2.5), refusals (``delta.refusal``
fragments, §2.11), reasoning (``delta.reasoning`` / ``reasoning_content`` text
and OpenRouter's ``delta.reasoning_details`` fragments, §5.7), usage chunks
with empty ``choices``, in-stream errors and the ``[DONE]`` terminator.

Reasoning: each text fragment becomes ``StreamChunk.reasoning`` plus a
``ReasoningDelta(index=0, text=...)``; ``reasoning_details`` fragments are
merged per detail ``index`` (:class:`~.wire.DetailMerger`) and sent
once complete, on the finish chunk (or at ``[DONE]`` / end of input), as
``ReasoningDelta(index=0, details=<merged entries>)``, so ``collect()`` gives
the same :class:`~modelprov.types.ReasoningPart` as the JSON answer. When any
refusal text arrived, the finish chunk's ``finish_reason`` is ``"refusal"``
(``native_finish_reason`` keeps the wire value).
"""

import json
from typing import Any, List, Optional

from ...exceptions import ResponseError
from ...streaming import loads_json
from ...types import ReasoningDelta, StreamChunk, ToolCallDelta
from ..base import StreamDecoder
from .errors import ErrorSource, error_from_payload
from .wire import DetailMerger, as_dict, delta_reasoning_text, normalize_finish_reason, parse_usage, to_int

__all__ = ["OpenAIStreamDecoder"]


def _tool_deltas(items: Any) -> List[ToolCallDelta]:
    out: List[ToolCallDelta] = []
    for pos, tc in enumerate(items or ()):
        if not isinstance(tc, dict):
            continue
        fn = as_dict(tc.get("function"))
        args = fn.get("arguments")
        index = to_int(tc.get("index"))
        out.append(
            ToolCallDelta(
                index=pos if index is None else index,
                id=tc.get("id") if isinstance(tc.get("id"), str) else None,
                name=fn.get("name") if isinstance(fn.get("name"), str) else None,
                arguments=args if isinstance(args, str) else (json.dumps(args) if isinstance(args, dict) else ""),
            )
        )
    return out


class OpenAIStreamDecoder(StreamDecoder):
    """Decodes ``data: {chunk}`` events up to ``data: [DONE]``.

    Raises the mapped error for an in-stream ``error`` (OpenAI, vLLM,
    OpenRouter's ``finish_reason: "error"``) and :class:`ResponseError` for
    bad JSON or a stream cut off before ``[DONE]`` (with
    ``require_done=False``, a stream that ended after a ``finish_reason``
    counts as complete).
    """

    def __init__(self, provider: ErrorSource, *, require_done: bool = True) -> None:
        self.provider = provider
        self.require_done = require_done
        self.done = False
        #: The last ``finish_reason`` seen (normalised), if any.
        self.finish_reason: Optional[str] = None
        self._saw_tool_calls = False
        self._refused = False
        self._details: Optional[DetailMerger] = None

    def is_keepalive(self, event: Any) -> bool:
        """Events with empty data carry nothing (comments never reach the decoder)."""
        return not event.data.strip()

    def feed(self, event: Any) -> List[StreamChunk]:
        """Decode one SSE event into zero or one chunk."""
        data = event.data
        obj: Any = None
        if data[:1] == "{":
            # Fast path for nearly every event: one choice with a plain text delta (no tool
            # calls, refusal, reasoning, finish reason, usage or error). Anything else takes the general path.
            # Kept for its measured gain (timeit, CPython 3.11): 2.7 us per text event against 3.6 us
            # through _feed, about 14% of provider.stream()'s client CPU per chunk in benchmarks/run.py (stream section).
            try:
                obj = loads_json(data)
            except ValueError:
                pass
            choices = obj.get("choices") if type(obj) is dict else None
            if type(choices) is list and len(choices) == 1 and type(choices[0]) is dict and type(obj.get("usage")) is not dict:
                choice = choices[0]
                delta = choice.get("delta")
                if (type(delta) is dict and not choice.get("finish_reason") and choice.get("index") in (0, None)
                        and not obj.get("error") and obj.get("object") != "error" and event.event != "error"):  # fmt: skip
                    content = delta.get("content")
                    if not ((len(delta) == 1 and content is not None) or not (
                            delta.get("tool_calls") or delta.get("refusal") or delta.get("reasoning")
                            or delta.get("reasoning_details") or delta.get("reasoning_content"))):  # fmt: skip
                        return self._feed(event, data.strip(), obj)  # a delta with more than text
                    if content is None or content == "":
                        return []
                    if type(content) is str:
                        model, cid = obj.get("model"), obj.get("id")
                        return [StreamChunk(text=content, model=model if type(model) is str else None, id=cid if type(cid) is str else None, raw=obj)]
        return self._feed(event, data.strip(), obj)

    def _pending_details(self) -> List[ReasoningDelta]:
        merged = self._details.take() if self._details is not None else None
        return [ReasoningDelta(index=0, details=merged)] if merged else []

    def _feed(self, event: Any, data: str, obj: Any) -> List[StreamChunk]:
        """The general decoder (``obj``: ``data`` already parsed, or ``None``)."""
        if data.startswith("[DONE]"):
            self.done = True
            pending = self._pending_details()
            return [StreamChunk(reasoning_deltas=pending)] if pending else []
        try:
            if obj is None:
                obj = loads_json(data)
        except ValueError:
            excerpt = data if len(data) <= 80 else data[:77] + "..."
            raise ResponseError(f"the stream sent data that is not JSON: {excerpt!r}", provider=self.provider.instance_name) from None
        if not isinstance(obj, dict):
            raise ResponseError(f"the stream sent a JSON {type(obj).__name__}, expected an object", provider=self.provider.instance_name)
        if obj.get("error") or obj.get("object") == "error" or event.event == "error":
            raise error_from_payload(self.provider, obj, None)
        text: List[str] = []
        reasoning: List[str] = []
        refusal: List[str] = []
        deltas: List[ToolCallDelta] = []
        finish = native = None
        choices = obj.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index") not in (0, None):
                continue  # only the first choice is streamed (n > 1 is not supported)
            delta = as_dict(choice.get("delta"))
            content = delta.get("content")
            if isinstance(content, str) and content:
                text.append(content)
            refused = delta.get("refusal")
            if isinstance(refused, str) and refused:
                refusal.append(refused)
            details = delta.get("reasoning_details")
            details = details if isinstance(details, list) and details else ()
            if details:
                if self._details is None:
                    self._details = DetailMerger()
                self._details.add(details)
            thought = delta_reasoning_text(delta, details)
            if thought:
                reasoning.append(thought)
            if delta.get("tool_calls"):
                deltas.extend(_tool_deltas(delta["tool_calls"]))
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                if reason == "error":
                    raise error_from_payload(self.provider, {"error": choice.get("error") or {"message": "the model stopped with an error"}}, None)
                finish = normalize_finish_reason(reason)
                native = choice.get("native_finish_reason") if isinstance(choice.get("native_finish_reason"), str) else reason
        usage = parse_usage(obj.get("usage"))
        if refusal:
            self._refused = True
        if deltas:
            self._saw_tool_calls = True
        if finish == "stop" and self._saw_tool_calls:
            finish = "tool_calls"  # servers that report "stop" after tool calls
        if finish and self._refused:
            finish = "refusal"
        rdeltas = [ReasoningDelta(index=0, text="".join(reasoning))] if reasoning else []
        if finish:
            self.finish_reason = finish
            rdeltas.extend(self._pending_details())
        if not (text or deltas or finish or usage or rdeltas or refusal):
            return []
        model = obj.get("model")
        chunk_id = obj.get("id")
        return [
            StreamChunk(
                text="".join(text),
                tool_calls=deltas,
                finish_reason=finish,
                native_finish_reason=native,
                usage=usage,
                model=model if isinstance(model, str) else None,
                id=chunk_id if isinstance(chunk_id, str) else None,
                raw=obj,
                reasoning="".join(reasoning),
                reasoning_deltas=rdeltas or (),
                refusal="".join(refusal),
            )
        ]

    def finish(self) -> List[StreamChunk]:
        """Check the stream ended properly (``[DONE]``, or a finish reason when lenient)."""
        if self.done:
            return []
        if not self.require_done and self.finish_reason is not None:
            pending = self._pending_details()
            return [StreamChunk(reasoning_deltas=pending)] if pending else []
        raise ResponseError(
            "the stream ended before the provider finished its answer (no [DONE]; truncated)",
            provider=self.provider.instance_name,
        )
