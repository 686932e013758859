"""The Chat Completions codec shared by OpenAI, OpenRouter and OpenAI-compatible servers.

:class:`OpenAICompatProvider` implements every codec hook of
:class:`~modelprov.providers.base.ModelProvider` for the ``/chat/completions``,
``/embeddings`` and ``/models`` endpoints (WIRE.md §2, §5, §7);
:class:`OpenAIStreamDecoder` turns the SSE ``data:`` events of a streamed
answer into :class:`~modelprov.types.StreamChunk` objects. Error bodies are
mapped by :mod:`._openai_errors`. The concrete providers only set class
attributes and small overrides (auth headers, the ``max_tokens`` field name,
how strictly a stream must end with ``[DONE]``).
"""

import array
import base64
import binascii
import json
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..exceptions import ProviderError, ResponseError
from ..streaming import loads_json
from ..types import (
    ChatRequest,
    EmbeddingResponse,
    HTTPRequest,
    ImagePart,
    Message,
    ModelInfo,
    ModelResponse,
    ProviderCapabilities,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from ._openai_errors import error_from_payload, map_error
from .base import ModelProvider, StreamDecoder

__all__ = ["OpenAICompatProvider", "OpenAIStreamDecoder", "normalize_finish_reason", "parse_usage"]

_FINISH = {
    "stop": "stop", "eos": "stop", "end_turn": "stop", "stop_sequence": "stop", "end": "stop",
    "length": "length", "max_tokens": "length", "model_length": "length",
    "tool_calls": "tool_calls", "function_call": "tool_calls", "tool_use": "tool_calls",
    "content_filter": "content_filter", "refusal": "content_filter", "safety": "content_filter",
    "error": "error",
}  # fmt: skip


def normalize_finish_reason(native: Any) -> Optional[str]:
    """Map a wire ``finish_reason`` to modelprov's set (unknown non-empty values become ``stop``)."""
    if not isinstance(native, str) or not native:
        return None
    return _FINISH.get(native.lower(), "stop")


def _int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_usage(u: Any) -> Optional[Usage]:
    """A :class:`Usage` from an OpenAI-style ``usage`` object (``None`` when absent)."""
    if not isinstance(u, dict):
        return None
    inp = u.get("prompt_tokens")
    out = u.get("completion_tokens")
    total = u.get("total_tokens")
    if type(inp) is int and type(out) is int and (total is None or type(total) is int) and "cache_write_tokens" not in u:
        # Fast path (every OpenAI-style answer): plain integer counts.
        ptd = u.get("prompt_tokens_details")
        ctd = u.get("completion_tokens_details")
        read = write = reasoning = None
        if type(ptd) is dict:
            read = _int(ptd.get("cached_tokens"))
            write = _int(ptd.get("cache_write_tokens"))
        if type(ctd) is dict:
            reasoning = _int(ctd.get("reasoning_tokens"))
        return Usage(inp, out, total, read, write, reasoning)
    ptd = u.get("prompt_tokens_details") if isinstance(u.get("prompt_tokens_details"), dict) else {}
    ctd = u.get("completion_tokens_details") if isinstance(u.get("completion_tokens_details"), dict) else {}
    inp = _int(u.get("prompt_tokens"))
    out = _int(u.get("completion_tokens"))
    write = _int(ptd.get("cache_write_tokens"))
    return Usage(
        input_tokens=inp if inp is not None else (_int(u.get("input_tokens")) or 0),
        output_tokens=out if out is not None else (_int(u.get("output_tokens")) or 0),
        total_tokens=_int(u.get("total_tokens")),
        cache_read_tokens=_int(ptd.get("cached_tokens")),
        cache_write_tokens=write if write is not None else _int(u.get("cache_write_tokens")),
        reasoning_tokens=_int(ctd.get("reasoning_tokens")),
    )


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with text parts
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _tool_call(item: Any, position: int) -> Optional[ToolCall]:
    if not isinstance(item, dict):
        return None
    fn = item.get("function") if isinstance(item.get("function"), dict) else {}
    call_id = item.get("id") if isinstance(item.get("id"), str) else ""
    name = fn.get("name") if isinstance(fn.get("name"), str) else ""
    args = fn.get("arguments")
    if isinstance(args, dict):  # a few servers send an object instead of a JSON string
        return ToolCall(id=call_id or f"call_{position}", name=name, arguments=args, raw_arguments=json.dumps(args))
    return ToolCall.from_json_text(call_id or f"call_{position}", name, args if isinstance(args, str) else None)


def _decode_vector(value: Any, position: int) -> List[float]:
    if isinstance(value, list):
        return [float(x) for x in value]
    if isinstance(value, str):  # encoding_format="base64": packed little-endian float32
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


#: What the OpenAI chat wire protocol offers; the three OpenAI-family providers declare it.
OPENAI_WIRE_CAPABILITIES = ProviderCapabilities(
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


class OpenAICompatProvider(ModelProvider):
    """Codec hooks for the OpenAI Chat Completions wire format.

    Subclasses set the descriptive class attributes and may override
    :meth:`auth_headers` and :meth:`error_hint`.
    """

    stream_format = "sse"
    #: Body field carrying ``ChatRequest.max_tokens``.
    max_tokens_field = "max_tokens"
    #: When False, a stream that ends without ``[DONE]`` is accepted if a
    #: ``finish_reason`` arrived (some compatible servers just close).
    require_done = True

    # ------------------------------------------------------------- headers
    def auth_headers(self) -> Dict[str, str]:
        """``Authorization: Bearer <key>`` when a key is configured."""
        key = self.config.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    # ------------------------------------------------------------- request
    def _message(self, msg: Message) -> Dict[str, Any]:
        out: Dict[str, Any] = {"role": msg.role}
        if msg.role == "tool":
            out["tool_call_id"] = msg.tool_call_id
            out["content"] = msg.text
            return out
        if msg.role == "user" and msg.images:
            parts: List[Dict[str, Any]] = []
            for part in msg.content or []:
                if isinstance(part, TextPart):
                    parts.append({"type": "text", "text": part.text})
                elif isinstance(part, ImagePart):
                    image: Dict[str, Any] = {"url": part.data_url()}
                    if part.detail:
                        image["detail"] = part.detail
                    parts.append({"type": "image_url", "image_url": image})
            out["content"] = parts
        elif msg.role == "assistant" and msg.tool_calls:
            out["content"] = msg.text or None
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": self._arguments_text(call)},
                }
                for call in msg.tool_calls
            ]
        else:
            out["content"] = msg.text
        if msg.name:
            out["name"] = msg.name
        return out

    @staticmethod
    def _arguments_text(call: ToolCall) -> str:
        raw = call.raw_arguments
        if raw is not None and raw.strip():  # send back exactly what the model produced, if still accurate
            if call.arguments_error and not call.arguments:
                return raw
            try:
                if json.loads(raw) == call.arguments:
                    return raw
            except ValueError:
                pass
        return json.dumps(call.arguments, ensure_ascii=False)

    def build_chat_request(self, req: ChatRequest) -> HTTPRequest:
        """``POST /chat/completions`` with the OpenAI body.

        ``provider_options`` are merged at the top level as given (they win
        over computed keys); a ``None`` value removes that key instead.
        """
        messages = [{"role": "system", "content": req.system}] if req.system else []
        messages.extend(self._message(m) for m in req.messages)
        body: Dict[str, Any] = {"model": req.model, "messages": messages}
        for key, value in (("temperature", req.temperature), ("top_p", req.top_p), (self.max_tokens_field, req.max_tokens),
                           ("stop", req.stop), ("seed", req.seed)):  # fmt: skip
            if value is not None:
                body[key] = value
        if req.tools:
            body["tools"] = [
                {"type": "function", "function": {"name": t.name, **({"description": t.description} if t.description else {}), "parameters": t.parameters}}
                for t in req.tools
            ]
        if req.tool_choice is not None:
            choice = req.tool_choice
            body["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}} if isinstance(choice, dict) else choice
        if req.response_format is not None:
            body["response_format"] = req.response_format
        if req.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        for key, value in req.provider_options.items():
            if value is None:
                body.pop(key, None)  # e.g. stream_options=None for servers that reject it
            else:
                body[key] = value
        return HTTPRequest("POST", "/chat/completions", {}, body, stream=req.stream)

    # ------------------------------------------------------------ response
    def _raise_payload_error(self, payload: Dict[str, Any]) -> None:
        raise error_from_payload(self, payload, None)

    def parse_chat_response(self, body: Any) -> ModelResponse:
        """A :class:`ModelResponse` from a chat completion; malformed bodies raise :class:`ResponseError`."""
        if not isinstance(body, dict):
            raise ResponseError(f"expected a JSON object from /chat/completions, got {type(body).__name__}", provider=self.instance_name)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            if body.get("error"):
                self._raise_payload_error(body)
            raise ResponseError("the chat completion has no choices", provider=self.instance_name)
        choice = choices[0]
        native = choice.get("finish_reason")
        if native == "error":
            self._raise_payload_error({"error": choice.get("error") or body.get("error") or {"message": "the model stopped with an error"}})
        message = choice.get("message")
        if type(message) is not dict:
            message = {}
        wire_calls = message.get("tool_calls")
        calls = [c for c in (_tool_call(tc, i) for i, tc in enumerate(wire_calls)) if c is not None] if wire_calls else []
        finish = normalize_finish_reason(native)
        if calls and finish == "stop":
            finish = "tool_calls"
        upstream = choice.get("native_finish_reason")
        if type(upstream) is str:  # OpenRouter: the upstream's own value
            native = upstream
        created = body.get("created")
        created_at = float(created) if type(created) is int or type(created) is float else time.time()
        content = message.get("content")
        model = body.get("model")
        rid = body.get("id")
        # positional: text, content, tool_calls, finish_reason, native_finish_reason, usage, model,
        # provider, id, request_id, latency_s, created_at, raw (tests/test_perf_paths.py pins the order)
        return ModelResponse(
            content if type(content) is str else _content_text(content), [], calls, finish,
            native if type(native) is str else None, parse_usage(body.get("usage")) or Usage(),
            model if type(model) is str else None, self.instance_name, rid if type(rid) is str else None,
            None, None, created_at, body,
        )  # fmt: skip

    def new_stream_decoder(self, req: ChatRequest) -> "OpenAIStreamDecoder":
        """A decoder for one streamed chat completion."""
        return OpenAIStreamDecoder(self, require_done=self.require_done)

    # --------------------------------------------------------------- errors
    def parse_error(self, status: int, body: Any, text: str, headers: Mapping[str, str]) -> Optional[ProviderError]:
        """Map an OpenAI / OpenRouter / vLLM / llama.cpp error body to a modelprov exception."""
        return map_error(self, status, body, text)

    def error_hint(self, exc: ProviderError, message: str) -> Optional[str]:
        """A provider-specific hint for ``exc`` (``None`` keeps the class default)."""
        return None

    # ----------------------------------------------------------- embeddings
    def build_embed_request(self, inputs: List[str], model: str, options: Dict[str, Any]) -> HTTPRequest:
        """``POST /embeddings`` asking for float vectors; ``options`` (e.g. ``dimensions``) merged in."""
        body: Dict[str, Any] = {"model": model, "input": list(inputs), "encoding_format": "float"}
        body.update(options)
        return HTTPRequest("POST", "/embeddings", {}, body)

    def parse_embed_response(self, body: Any) -> EmbeddingResponse:
        """Vectors ordered by ``index``; base64 float32 vectors are decoded."""
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            if isinstance(body, dict) and body.get("error"):
                self._raise_payload_error(body)
            raise ResponseError("the embeddings response has no 'data' list", provider=self.instance_name)
        items: List[Tuple[int, List[float]]] = []
        for pos, item in enumerate(data):
            if not isinstance(item, dict):
                raise ResponseError(f"embedding {pos} is not an object", provider=self.instance_name)
            index = _int(item.get("index"))
            items.append((pos if index is None else index, _decode_vector(item.get("embedding"), pos)))
        items.sort(key=lambda pair: pair[0])
        u = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        usage = Usage(input_tokens=_int(u.get("prompt_tokens")) or 0, total_tokens=_int(u.get("total_tokens")))
        model = body.get("model") if isinstance(body.get("model"), str) else None
        return EmbeddingResponse([vec for _, vec in items], model=model, provider=self.instance_name, usage=usage, raw=body)

    # --------------------------------------------------------------- models
    def build_models_request(self, cursor: Optional[str]) -> HTTPRequest:
        """``GET /models`` (one page: these APIs do not paginate by default)."""
        return HTTPRequest("GET", "/models", {})

    def parse_models_response(self, body: Any) -> Tuple[List[ModelInfo], Optional[str]]:
        """Models from ``{"data": [...]}``; context size from ``context_length`` or ``max_model_len``."""
        data = body.get("data") if isinstance(body, dict) else body
        if not isinstance(data, list):
            raise ResponseError("the models response has no 'data' list", provider=self.instance_name)
        models: List[ModelInfo] = []
        for item in data:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            created = item.get("created")
            ctx = _int(item.get("context_length"))
            models.append(
                ModelInfo(
                    id=item["id"],
                    provider=self.instance_name,
                    name=item.get("name") if isinstance(item.get("name"), str) else None,
                    created_at=float(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else None,
                    context_length=ctx if ctx is not None else _int(item.get("max_model_len")),
                    owned_by=item.get("owned_by") if isinstance(item.get("owned_by"), str) else None,
                    raw=item,
                )
            )
        return models, None


class OpenAIStreamDecoder(StreamDecoder):
    """Decodes ``data: {chunk}`` events up to ``data: [DONE]``.

    Raises the mapped :class:`ProviderError` for an in-stream ``error``
    (OpenAI, vLLM, OpenRouter's ``finish_reason: "error"``) and
    :class:`ResponseError` for bad JSON or a stream cut off before ``[DONE]``
    (with ``require_done=False``, a stream that ended after a
    ``finish_reason`` counts as complete).
    """

    def __init__(self, provider: OpenAICompatProvider, *, require_done: bool = True) -> None:
        self.provider = provider
        self.require_done = require_done
        self.done = False
        #: The last ``finish_reason`` seen (normalised), if any.
        self.finish_reason: Optional[str] = None
        self._saw_tool_calls = False

    def is_keepalive(self, event: Any) -> bool:
        """Events with empty data carry nothing (comments never reach the decoder)."""
        return not event.data.strip()

    def feed(self, event: Any) -> List[StreamChunk]:
        """Decode one SSE event into zero or one chunk."""
        data = event.data
        obj = None
        if data[:1] == "{":
            # Fast path for nearly every event: one choice with a plain text delta (no tool
            # calls, finish reason, usage or error). Anything else takes the general path.
            try:
                obj = loads_json(data)
            except ValueError:
                pass
            choices = obj.get("choices") if type(obj) is dict else None
            if type(choices) is list and len(choices) == 1 and type(choices[0]) is dict and type(obj.get("usage")) is not dict:
                choice = choices[0]
                delta = choice.get("delta")
                if (type(delta) is dict and not choice.get("finish_reason") and choice.get("index") in (0, None)
                        and not delta.get("tool_calls") and not obj.get("error") and obj.get("object") != "error"
                        and event.event != "error"):  # fmt: skip
                    content = delta.get("content")
                    if content is None or content == "":
                        return []
                    if type(content) is str:
                        model, cid = obj.get("model"), obj.get("id")
                        return [StreamChunk(content, [], None, None, None, model if type(model) is str else None,
                                            None, cid if type(cid) is str else None, None, obj)]  # fmt: skip
        return self._feed(event, data.strip(), obj)

    def _feed(self, event: Any, data: str, obj: Any) -> List[StreamChunk]:
        """The general decoder (``obj``: ``data`` already parsed, or ``None``)."""
        if data.startswith("[DONE]"):
            self.done = True
            return []
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
        text_parts: List[str] = []
        deltas: List[ToolCallDelta] = []
        finish = native = None
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index") not in (0, None):
                continue  # only the first choice is streamed (n > 1 is not supported)
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                text_parts.append(content)
            for pos, tc in enumerate(delta.get("tool_calls") or ()):
                if not isinstance(tc, dict):
                    continue
                fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
                args = fn.get("arguments")
                index = _int(tc.get("index"))
                deltas.append(
                    ToolCallDelta(
                        index=pos if index is None else index,
                        id=tc.get("id") if isinstance(tc.get("id"), str) else None,
                        name=fn.get("name") if isinstance(fn.get("name"), str) else None,
                        arguments=args if isinstance(args, str) else (json.dumps(args) if isinstance(args, dict) else ""),
                    )
                )
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                if reason == "error":
                    raise error_from_payload(self.provider, {"error": choice.get("error") or {"message": "the model stopped with an error"}}, None)
                finish = normalize_finish_reason(reason)
                native = choice.get("native_finish_reason") if isinstance(choice.get("native_finish_reason"), str) else reason
        usage = parse_usage(obj.get("usage"))
        if not (text_parts or deltas or finish or usage):
            return []
        if deltas:
            self._saw_tool_calls = True
        if finish == "stop" and self._saw_tool_calls:
            finish = "tool_calls"  # servers that report "stop" after tool calls
        if finish:
            self.finish_reason = finish
        model = obj.get("model")
        chunk_id = obj.get("id")
        return [
            StreamChunk(
                text="".join(text_parts),
                tool_calls=deltas,
                finish_reason=finish,
                native_finish_reason=native,
                usage=usage,
                model=model if isinstance(model, str) else None,
                id=chunk_id if isinstance(chunk_id, str) else None,
                raw=obj,
            )
        ]

    def finish(self) -> List[StreamChunk]:
        """Check the stream ended properly (``[DONE]``, or a finish reason when lenient)."""
        if self.done or (not self.require_done and self.finish_reason is not None):
            return []
        raise ResponseError(
            "the stream ended before the provider finished its answer (no [DONE]; truncated)",
            provider=self.provider.instance_name,
        )
