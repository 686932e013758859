"""``MockProvider``: an offline provider for demos and tests, no network, no key.

* ``mock/echo`` answers with the last user message, streams it word by word
  and counts usage in words.
* Scripted mode: queue replies with :meth:`MockProvider.push` (or the
  ``replies`` option): strings, :class:`~modelprov.types.ModelResponse`
  objects, :class:`~modelprov.types.ToolCall` objects or lists of them, dicts
  like ``{"text": ..., "tool_calls": [...], "finish_reason": ...,
  "reasoning": ..., "refusal": ...}``, or exceptions (instances or classes)
  to raise. Each call consumes one entry, in order; when the queue is empty
  the echo behaviour applies.
* ``reasoning`` in a dict reply is the model's thinking: the answer's
  ``content`` starts with a :class:`~modelprov.types.ReasoningPart` from this
  provider (so ``response.message`` carries it back in a tool loop), and a
  stream sends it word by word as reasoning deltas before the text.
  ``refusal`` makes the model refuse: ``finish_reason == "refusal"`` (unless
  the reply sets one) and ``response.refusal`` holds the text (streamed as
  refusal deltas). Echo mode ignores the ``reasoning`` and ``cache`` options;
  ``developer`` messages are accepted like ``system`` ones.
* Every request is recorded in :attr:`MockProvider.requests`.

The mock does no HTTP (``uses_http = False``): its engine calls the
``local_*`` hooks instead of a transport, under the same retry policy, circuit
breaker and deadline as a real provider, so scripted errors let users test
their retry and fallback handling offline.
"""

import hashlib
import json
import re
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, Iterator, List, Optional

from ..exceptions import ModelProvError, ValidationError
from ..types import (
    ChatRequest,
    EmbeddingResponse,
    ModelInfo,
    ModelResponse,
    ProviderCapabilities,
    ProviderConfig,
    ReasoningDelta,
    ReasoningPart,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from .base import ModelProvider

__all__ = ["MockProvider"]

_WORDS = re.compile(r"\S+\s*|\s+")
MODELS = ("echo", "scripted")
_REPLY_KEYS = frozenset({"text", "tool_calls", "finish_reason", "reasoning", "refusal"})


def _words(text: str) -> int:
    return len(text.split())


class MockProvider(ModelProvider):
    """Offline provider: echo model plus scripted replies (see module docs)."""

    name = "mock"
    capabilities = ProviderCapabilities(
        chat=True,
        streaming=True,
        tools=True,
        vision=True,
        json_mode=True,
        json_schema=True,
        embeddings=True,
        list_models=True,
        seed=True,
        stop=True,
    )
    default_model = "echo"
    uses_http = False

    def __init__(self, config: Optional[ProviderConfig] = None) -> None:
        super().__init__(config)
        self._queue: Deque[Any] = deque()
        self._qlock = threading.Lock()
        #: Every :class:`ChatRequest` this provider received, oldest first.
        self.requests: List[ChatRequest] = []
        self.push(*(self.config.option("replies") or ()))

    # --------------------------------------------------------------- script
    def push(self, *replies: Any) -> "MockProvider":
        """Queue scripted replies (see module docs); returns ``self``.

        Each reply is checked here, so a malformed script fails at ``push``
        with a :class:`ValidationError`, not later inside a call.
        """
        checked = [_check_reply(i, r) for i, r in enumerate(replies)]
        with self._qlock:
            self._queue.extend(checked)
        return self

    def clear(self) -> None:
        """Drop queued replies and recorded requests."""
        with self._qlock:
            self._queue.clear()
            self.requests.clear()

    @property
    def pending(self) -> int:
        """How many scripted replies are still queued."""
        return len(self._queue)

    def _next_script(self) -> Any:
        with self._qlock:
            return self._queue.popleft() if self._queue else None

    # ------------------------------------------------------------- answers
    def _answer(self, req: ChatRequest) -> ModelResponse:
        item = self._next_script()
        if item is None:
            return self._echo(req)
        if isinstance(item, type) and issubclass(item, BaseException):
            item = item("scripted error") if issubclass(item, ModelProvError) else item()
        if isinstance(item, BaseException):
            if isinstance(item, ModelProvError) and item.provider is None:
                item.provider = self.instance_name
            raise item
        if isinstance(item, ModelResponse):
            return item
        if isinstance(item, str):
            return self._response(req, item, [])
        if isinstance(item, ToolCall):
            return self._response(req, "", [item])
        if isinstance(item, (list, tuple)) and all(isinstance(x, ToolCall) for x in item):
            return self._response(req, "", list(item))
        if isinstance(item, dict):
            item = _check_reply(0, item)
            refusal = item.get("refusal")
            finish = item.get("finish_reason") or ("refusal" if refusal is not None else None)
            return self._response(req, item.get("text") or "", list(item.get("tool_calls") or []), finish,
                                  reasoning=item.get("reasoning"), refusal=refusal)  # fmt: skip
        raise ValidationError(f"unsupported scripted reply of type {type(item).__name__}")

    def _echo(self, req: ChatRequest) -> ModelResponse:
        text = ""
        for msg in reversed(req.messages):
            if msg.role == "user":
                text = msg.text
                break
        if req.response_format:
            text = json.dumps({"echo": text})
        if req.stop:
            for s in req.stop:
                if s in text:
                    text = text[: text.index(s)]
        finish = "stop"
        if req.max_tokens is not None and _words(text) > req.max_tokens:
            text = " ".join(text.split()[: req.max_tokens])
            finish = "length"
        return self._response(req, text, [], finish)

    def _response(
        self,
        req: ChatRequest,
        text: str,
        calls: List[ToolCall],
        finish: Optional[str] = None,
        *,
        reasoning: Optional[str] = None,
        refusal: Optional[str] = None,
    ) -> ModelResponse:
        prompt = " ".join(m.text for m in req.messages) + (" " + req.system if req.system else "")
        finish = finish or ("tool_calls" if calls else "stop")
        raw: Dict[str, Any] = {"mock": True, "text": text}
        content: List[Any] = []
        if reasoning is not None:
            content.append(ReasoningPart(text=reasoning, provider=self.instance_name))
            raw["reasoning"] = reasoning
        if refusal is not None:
            raw["refusal"] = refusal
        return ModelResponse(
            text=text,
            content=content,
            tool_calls=calls,
            finish_reason=finish,
            native_finish_reason=finish,
            usage=Usage(
                input_tokens=_words(prompt),
                output_tokens=_words(text) + _words(reasoning or "") + _words(refusal or ""),
                reasoning_tokens=_words(reasoning) if reasoning is not None else None,
            ),
            model=req.model,
            provider=self.instance_name,
            id="mock-" + hashlib.sha1(f"{time.time_ns()}{text}".encode()).hexdigest()[:12],
            latency_s=0.0,
            raw=raw,
            refusal=refusal,
        )

    # --------------------------------------------------------- the hooks
    def validate_config(self) -> None:
        """The mock needs no key and no URL."""

    def local_chat(self, req: ChatRequest, attempt: int) -> ModelResponse:
        """The next scripted reply (or the echo); the request is recorded once, on its first attempt."""
        if attempt == 1:
            with self._qlock:
                self.requests.append(req)
        return self._answer(req)

    def local_chunks(self, req: ChatRequest, response: ModelResponse) -> Iterator[StreamChunk]:
        """``response`` streamed: reasoning and refusal word by word, then the text, tool calls in two halves, the finish."""
        base: Dict[str, Any] = dict(model=response.model, provider=self.instance_name, id=response.id)
        for chunk in _reasoning_chunks(response):
            yield StreamChunk(**chunk, **base)
        for piece in _WORDS.findall(response.refusal or ""):
            yield StreamChunk(refusal=piece, **base)
        for piece in _WORDS.findall(response.text):
            yield StreamChunk(text=piece, **base)
        for i, call in enumerate(response.tool_calls):
            args = json.dumps(call.arguments)
            half = len(args) // 2
            yield StreamChunk(tool_calls=[ToolCallDelta(index=i, id=call.id, name=call.name, arguments=args[:half])], **base)
            yield StreamChunk(tool_calls=[ToolCallDelta(index=i, arguments=args[half:])], **base)
        yield StreamChunk(finish_reason=response.finish_reason, native_finish_reason=response.native_finish_reason, usage=response.usage, **base)

    def local_embed(self, inputs: List[str], model: str, options: Dict[str, Any]) -> EmbeddingResponse:
        """Deterministic vectors from each input's SHA-256 (``dimensions`` option, default 8)."""
        dims = options.get("dimensions", 8)
        if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 4096:
            raise ValidationError("dimensions must be an integer from 1 to 4096")
        vectors = []
        for text in inputs:
            digest = hashlib.sha256(text.encode("utf-8")).digest()
            vectors.append([round((digest[i % len(digest)] - 127.5) / 127.5, 6) for i in range(dims)])
        usage = Usage(input_tokens=sum(_words(t) for t in inputs), output_tokens=0)
        return EmbeddingResponse(embeddings=vectors, model=model, provider=self.instance_name, usage=usage, latency_s=0.0)

    def local_models(self) -> List[ModelInfo]:
        """``echo`` and ``scripted``."""
        return [ModelInfo(id=m, provider=self.instance_name, name=f"mock {m}") for m in MODELS]


def _reasoning_chunks(resp: ModelResponse) -> Iterator[Dict[str, Any]]:
    """StreamChunk fields for the reasoning parts of ``resp``: one chunk per word, block by block.

    The last chunk of a block also carries its signature, redacted data and
    details, so ``collect()`` rebuilds the parts exactly.
    """
    parts = [p for p in resp.content if isinstance(p, ReasoningPart)]
    for index, part in enumerate(parts):
        pieces = _WORDS.findall(part.text) or [""]
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            delta = ReasoningDelta(
                index=index,
                text=piece,
                signature=part.signature if last else None,
                redacted_data=part.redacted_data if last else None,
                details=part.details if last and part.details else None,
            )
            yield {"reasoning": piece, "reasoning_deltas": [delta]}


def _check_reply(index: int, item: Any) -> Any:
    """Validate one scripted reply; dict replies come back with their tool calls as ToolCall objects."""
    where = f"scripted reply {index}"
    if isinstance(item, (str, ModelResponse, ToolCall, BaseException)):
        return item
    if isinstance(item, type) and issubclass(item, BaseException):
        return item
    if isinstance(item, (list, tuple)) and item and all(isinstance(x, ToolCall) for x in item):
        return list(item)
    if not isinstance(item, dict):
        raise ValidationError(f"{where}: expected a str, ModelResponse, ToolCall(s), dict or exception, not {type(item).__name__}")
    unknown = set(item) - _REPLY_KEYS
    if unknown:
        raise ValidationError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    for key in ("text", "reasoning", "refusal"):
        if item.get(key) is not None and not isinstance(item[key], str):
            raise ValidationError(f"{where}: {key} must be a string")
    calls = []
    for j, c in enumerate(item.get("tool_calls") or []):
        if isinstance(c, ToolCall):
            calls.append(c)
            continue
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            raise ValidationError(f"{where}: tool_calls[{j}] needs a 'name'")
        args = c.get("arguments", {})
        call_id = str(c.get("id") or f"call_{j}")
        if isinstance(args, str):
            calls.append(ToolCall.from_json_text(call_id, c["name"], args))
        elif isinstance(args, dict):
            calls.append(ToolCall(id=call_id, name=c["name"], arguments=dict(args)))
        else:
            raise ValidationError(f"{where}: tool_calls[{j}].arguments must be a dict or a JSON string")
    return dict(item, tool_calls=calls)
