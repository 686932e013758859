"""The Chat Completions codec shared by OpenAI, OpenRouter and OpenAI-compatible servers.

:class:`OpenAICompatProvider` implements every codec hook of
:class:`~modelprov.providers.base.ModelProvider` for the ``/chat/completions``,
``/embeddings`` and ``/models`` endpoints (WIRE.md §2, §5, §7). Streams are
decoded by :class:`~.stream.OpenAIStreamDecoder`, error bodies mapped
by :mod:`.errors`, and the pure wire helpers live in
:mod:`.wire`. The concrete providers set class attributes and small
overrides: auth headers, the ``max_tokens`` field name, the wire role of
``developer`` messages, how ``reasoning`` and ``cache`` are sent, whether
reasoning details go back, and how strictly a stream must end with ``[DONE]``.

Answers: ``message.refusal`` gives ``finish_reason == "refusal"`` and
:attr:`ModelResponse.refusal` (``native_finish_reason`` keeps the wire
value); ``message.reasoning`` / ``reasoning_content`` / ``reasoning_details``
give one :class:`~modelprov.types.ReasoningPart` first in ``content``.
"""

import json
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ...exceptions import ModelProvError, ResponseError
from ...types import (
    ChatRequest,
    EmbeddingResponse,
    HTTPRequest,
    ImagePart,
    Message,
    ModelInfo,
    ModelResponse,
    ProviderCapabilities,
    ReasoningPart,
    TextPart,
    ToolCall,
    Usage,
)
from ..base import ModelProvider
from .errors import error_from_payload, map_error
from .stream import OpenAIStreamDecoder
from .wire import (
    as_dict,
    content_text,
    decode_vector,
    iso_date,
    normalize_finish_reason,
    parse_usage,
    reasoning_part,
    to_int,
    tool_call,
)

__all__ = ["OPENAI_WIRE_CAPABILITIES", "OpenAICompatProvider", "OpenAIStreamDecoder", "normalize_finish_reason", "parse_usage"]


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
    :meth:`auth_headers`, :meth:`reasoning_fields`, :meth:`cache_fields` and
    :meth:`error_hint`.
    """

    stream_format = "sse"
    #: Body field carrying ``ChatRequest.max_tokens``.
    max_tokens_field = "max_tokens"
    #: When False, a stream that ends without ``[DONE]`` is accepted if a
    #: ``finish_reason`` arrived (some compatible servers just close).
    require_done = True
    #: The wire role of ``developer`` messages (``system`` unless the server knows ``developer``).
    developer_role = "system"
    #: Whether streams ask for usage with ``stream_options.include_usage``.
    stream_usage_option = True
    #: Whether assistant turns carry their reasoning parts back as ``reasoning_details`` (OpenRouter).
    sends_reasoning_details = False

    # ------------------------------------------------------------- headers
    def auth_headers(self) -> Dict[str, str]:
        """``Authorization: Bearer <key>`` when a key is configured."""
        key = self.config.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    # ------------------------------------------------------------- request
    def reasoning_fields(self, reasoning: Any) -> Dict[str, Any]:
        """Body fields for the ``reasoning`` option (not ``None``); OpenAI's ``reasoning_effort`` by default."""
        from .options import effort_of

        return {"reasoning_effort": effort_of(reasoning)}

    def cache_fields(self, req: ChatRequest) -> Dict[str, Any]:
        """Body fields for ``cache=True``: none, as OpenAI-style servers cache prompts by themselves."""
        return {}

    def _message(self, msg: Message) -> Dict[str, Any]:
        role = msg.role
        out: Dict[str, Any] = {"role": self.developer_role if role == "developer" else role}
        if role == "tool":
            out["tool_call_id"] = msg.tool_call_id
            out["content"] = msg.text
            return out
        if role == "user" and msg.images:
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
        elif role == "assistant" and msg.tool_calls:
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
        if role == "assistant" and self.sends_reasoning_details and type(msg.content) is list:
            details = [d for p in msg.content if isinstance(p, ReasoningPart) and p.sendable_to(self.instance_name) for d in p.details]
            if details:
                out["reasoning_details"] = [dict(d) for d in details]
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
        if req.reasoning is not None:
            body.update(self.reasoning_fields(req.reasoning))
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
        if req.cache:
            body.update(self.cache_fields(req))
        if req.stream:
            body["stream"] = True
            if self.stream_usage_option:
                body["stream_options"] = {"include_usage": True}
        for key, value in req.provider_options.items():
            if value is None:
                body.pop(key, None)  # e.g. stream_options=None for servers that reject it
            else:
                body[key] = value
        return HTTPRequest(method="POST", path="/chat/completions", json=body, stream=req.stream)

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
        calls = [c for c in (tool_call(tc, i) for i, tc in enumerate(wire_calls)) if c is not None] if wire_calls else []
        finish = normalize_finish_reason(native)
        if calls and finish == "stop":
            finish = "tool_calls"
        refusal = message.get("refusal")
        if refusal is not None:
            if type(refusal) is str and refusal:
                finish = "refusal"
            else:
                refusal = None
        parts: List[Any] = []
        if "reasoning" in message or "reasoning_details" in message or "reasoning_content" in message:
            part = reasoning_part(message, self.instance_name)
            if part is not None:
                parts.append(part)
        upstream = choice.get("native_finish_reason")
        if type(upstream) is str:  # OpenRouter: the upstream's own value
            native = upstream
        created = body.get("created")
        created_at = float(created) if type(created) is int or type(created) is float else time.time()
        content = message.get("content")
        model = body.get("model")
        rid = body.get("id")
        return ModelResponse(
            text=content if type(content) is str else content_text(content),
            content=parts,
            tool_calls=calls,
            finish_reason=finish,
            native_finish_reason=native if type(native) is str else None,
            usage=parse_usage(body.get("usage")) or Usage(),
            model=model if type(model) is str else None,
            provider=self.instance_name,
            id=rid if type(rid) is str else None,
            created_at=created_at,
            raw=body,
            refusal=refusal,
        )

    def new_stream_decoder(self, req: ChatRequest) -> OpenAIStreamDecoder:
        """A decoder for one streamed chat completion."""
        return OpenAIStreamDecoder(self, require_done=self.require_done)

    # --------------------------------------------------------------- errors
    def parse_error(self, status: int, body: Any, text: str, headers: Mapping[str, str]) -> Optional[ModelProvError]:
        """Map an OpenAI / OpenRouter / vLLM / llama.cpp error body to a modelprov exception."""
        return map_error(self, status, body, text)

    def error_hint(self, exc: ModelProvError, message: str) -> Optional[str]:
        """A provider-specific hint for ``exc`` (``None`` keeps the class default)."""
        return None

    # ----------------------------------------------------------- embeddings
    def build_embed_request(self, inputs: List[str], model: str, options: Dict[str, Any]) -> HTTPRequest:
        """``POST /embeddings`` asking for float vectors; ``options`` (e.g. ``dimensions``) merged in."""
        body: Dict[str, Any] = {"model": model, "input": list(inputs), "encoding_format": "float"}
        body.update(options)
        return HTTPRequest(method="POST", path="/embeddings", json=body)

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
            index = to_int(item.get("index"))
            items.append((pos if index is None else index, decode_vector(item.get("embedding"), pos)))
        items.sort(key=lambda pair: pair[0])
        u = as_dict(body.get("usage"))
        usage = Usage(input_tokens=to_int(u.get("prompt_tokens")) or 0, total_tokens=to_int(u.get("total_tokens")))
        model = body.get("model") if isinstance(body.get("model"), str) else None
        return EmbeddingResponse(embeddings=[vec for _, vec in items], model=model, provider=self.instance_name, usage=usage, raw=body)

    # --------------------------------------------------------------- models
    #: The model-listing field holding the date the model stops answering (OpenAI ``shutdown_date``).
    retirement_field = "shutdown_date"

    def build_models_request(self, cursor: Optional[str]) -> HTTPRequest:
        """``GET /models`` (one page: these APIs do not paginate by default)."""
        return HTTPRequest(method="GET", path="/models")

    def parse_models_response(self, body: Any) -> Tuple[List[ModelInfo], Optional[str]]:
        """Models from ``{"data": [...]}``; context size from ``context_length`` or ``max_model_len``.

        Lifecycle: the :attr:`retirement_field` (OpenAI ``shutdown_date``,
        OpenRouter ``expiration_date``) becomes ``retirement_date`` and marks
        the model ``deprecated``; when the field is present but null the model
        is not deprecated; when absent, ``deprecated`` stays ``None``.
        """
        data = body.get("data") if isinstance(body, dict) else body
        if not isinstance(data, list):
            raise ResponseError("the models response has no 'data' list", provider=self.instance_name)
        models: List[ModelInfo] = []
        for item in data:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            created = item.get("created")
            ctx = to_int(item.get("context_length"))
            info = ModelInfo(
                id=item["id"],
                provider=self.instance_name,
                name=item.get("name") if isinstance(item.get("name"), str) else None,
                created_at=float(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else None,
                context_length=ctx if ctx is not None else to_int(item.get("max_model_len")),
                owned_by=item.get("owned_by") if isinstance(item.get("owned_by"), str) else None,
                raw=item,
            )
            if self.retirement_field in item:
                info.retirement_date = iso_date(item[self.retirement_field])
                info.deprecated = item[self.retirement_field] is not None
            models.append(info)
        return models, None
