"""``OllamaProvider``: the Ollama native API (``/api/chat``, ``/api/embed``, ``/api/tags``).

Codec only (no I/O). Wire facts: WIRE.md §4. Choices worth knowing:

* Base URL: ``OLLAMA_HOST`` is often ``host:port`` or ``0.0.0.0`` without a
  scheme (it is also the server's bind address). :meth:`OllamaProvider.normalize_base_url`
  turns any such value into a URL; the constructor applies it to the
  configured ``base_url`` too, so both ``OLLAMA_HOST=0.0.0.0`` and
  ``base_url="localhost:11434"`` work.
* ``stream`` is always sent (the server defaults to streaming).
* Sampling settings go inside ``options`` (``temperature``, ``top_p``,
  ``num_predict`` for ``max_tokens``, ``stop``, ``seed``); a provider option
  ``options={...}`` is merged over them (the caller's values win). Every other
  provider option (``keep_alive``, ``think``, ``truncate``...) goes top level.
* Images are sent as raw base64; remote image URLs are not supported by
  Ollama and raise :class:`~modelprov.exceptions.UnsupportedFeatureError`
  before any I/O.
* ``tool_choice``: Ollama has no such field. ``"auto"`` is its behaviour
  anyway, ``"none"`` is honoured by not sending the tools, and ``"required"``
  or a named tool raise :class:`~modelprov.exceptions.UnsupportedFeatureError`
  (silently ignoring a forced choice would return answers the caller
  explicitly ruled out).
* Tool calls without an ``id`` (older servers) get ``call_<n>``. Tool turns
  sent back carry only the fields Ollama's API defines (ollama-python's
  ``Message``): assistant calls as ``{"function": {"name", "arguments"}}``
  and results as ``{"role": "tool", "content", "tool_name"}``, no call ids.
* ``developer`` messages are sent as ``system``.

Reasoning (WIRE.md §4.11). The ``reasoning`` option becomes ``think``:

=====================  ====================================================
``reasoning``          ``think``
=====================  ====================================================
``None`` (default)     not sent: a thinking model thinks at its default
``"none"``             ``false`` (gpt-oss, which ignores booleans: ``"low"``)
``"minimal"``          ``"low"``
``"low"``              ``"low"``
``"medium"``           ``"medium"``
``"high"``             ``"high"``
``"xhigh"``            ``"max"``
``"max"``              ``"max"`` (gpt-oss itself treats it as ``"high"``)
int token budget       below 4,096: ``"low"``; below 16,384: ``"medium"``;
                       below 32,768: ``"high"``; from 32,768: ``"max"``
=====================  ====================================================

A ``think`` provider option, when given, is sent as is and wins. The answer's
``message.thinking`` becomes a :class:`~modelprov.types.ReasoningPart` (first
in ``content``); stream lines' ``message.thinking`` become
``StreamChunk.reasoning`` deltas. Reasoning parts of an assistant turn are
sent back as its ``thinking``, only to the provider instance they came from.
A truthy ``think`` on a model without the thinking capability (``400
"MODEL" does not support thinking``) or a level the server does not know
(``400 invalid think value``) raises
:class:`~modelprov.exceptions.UnsupportedFeatureError` for option
``reasoning``; with ``drop_unsupported`` the call is resent without it.

Caching: Ollama keeps the prompt's KV cache by itself, so ``cache=True`` is
accepted and ignored; its API reports no cached-token count, so
``Usage.cache_read_tokens`` / ``cache_write_tokens`` stay ``None``.
"""

import dataclasses
import time
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple

from ...exceptions import InvalidRequestError, ModelProvError, ResponseError, UnsupportedFeatureError, ValidationError
from ...types import (
    ChatRequest,
    EmbeddingResponse,
    HTTPRequest,
    ModelInfo,
    ModelResponse,
    ProviderCapabilities,
    ProviderConfig,
    Tool,
)
from ..base import Messages, ModelProvider, StreamDecoder
from ..timeparse import parse_rfc3339
from .wire import (
    DEFAULT_HOST,
    OllamaStreamDecoder,
    check_images,
    convert_messages,
    error_from_message,
    error_text,
    map_done_reason,
    normalize_host,
    normalize_usage,
    parse_tool_calls,
    reasoning_parts,
    think_value,
)

__all__ = ["OllamaProvider"]

_RESERVED = ("model", "messages", "stream")


def _tool(tool: Tool) -> Dict[str, Any]:
    fn: Dict[str, Any] = {"name": tool.name}
    if tool.description:
        fn["description"] = tool.description
    fn["parameters"] = tool.parameters
    return {"type": "function", "function": fn}


def _check_tool_choice(req: ChatRequest, provider: str) -> None:
    if req.tools and req.tool_choice not in (None, "auto", "none"):
        raise UnsupportedFeatureError(
            f"Ollama cannot force a tool call (tool_choice={req.tool_choice!r})",
            provider=provider,
            hint="use tool_choice='auto' (or 'none'), and ask for the tool in the prompt",
        )


class OllamaProvider(ModelProvider):
    """A local (or ollama.com) Ollama server through its native API."""

    name: ClassVar[str] = "ollama"
    capabilities: ClassVar[ProviderCapabilities] = ProviderCapabilities(
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
    default_base_url: ClassVar[Optional[str]] = DEFAULT_HOST
    default_model: ClassVar[Optional[str]] = None
    api_key_env: ClassVar[Tuple[str, ...]] = ("OLLAMA_API_KEY",)
    base_url_env: ClassVar[Tuple[str, ...]] = ("OLLAMA_HOST",)
    requires_api_key: ClassVar[bool] = False
    stream_format: ClassVar[str] = "ndjson"
    #: Hint for a refused connection (for the transport/base to attach; see module docs).
    connection_hint: ClassVar[str] = "is Ollama running? start it with `ollama serve`"

    def __init__(self, config: Optional[ProviderConfig] = None) -> None:
        super().__init__(config)
        url = self.config.base_url
        if url:
            fixed = self.normalize_base_url(url)
            if fixed != url:
                self.config = dataclasses.replace(self.config, base_url=fixed)

    @classmethod
    def normalize_base_url(cls, value: Optional[str]) -> str:
        """A base URL from an ``OLLAMA_HOST``-style value.

        ``"0.0.0.0"`` -> ``http://127.0.0.1:11434``; ``"example.com:8080"`` ->
        ``http://example.com:8080``; ``":9000"`` -> ``http://127.0.0.1:9000``;
        ``"https://ollama.com/"`` -> ``https://ollama.com``; empty -> the
        default. Idempotent; raises :class:`~modelprov.exceptions.ConfigurationError`
        for a malformed port. Config resolution should call it on values read
        from ``OLLAMA_HOST``.
        """
        return normalize_host(value)

    # ----------------------------------------------------------- validation
    def make_request(
        self,
        messages: Messages,
        *,
        model: Optional[str] = None,
        stream: bool = False,
        **options: Any,
    ) -> ChatRequest:
        """As :meth:`ModelProvider.make_request`, plus Ollama's tool_choice and image-URL limits."""
        req = super().make_request(messages, model=model, stream=stream, **options)
        _check_tool_choice(req, self.instance_name)
        check_images(req, self.instance_name)
        return req

    # --------------------------------------------------------------- hooks
    def auth_headers(self) -> Dict[str, str]:
        """``Authorization: Bearer`` when a key is configured (ollama.com); nothing locally."""
        return {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}

    def build_chat_request(self, req: ChatRequest) -> HTTPRequest:
        """The ``POST /api/chat`` request for ``req``."""
        _check_tool_choice(req, self.instance_name)
        extra = dict(req.provider_options)
        for key in _RESERVED:
            if key in extra:
                raise ValidationError(f"{key!r} cannot be a provider option; pass it as an argument")
        body: Dict[str, Any] = {
            "model": req.model,
            "messages": convert_messages(req, self.instance_name),
            "stream": bool(req.stream),
        }
        options: Dict[str, Any] = {}
        for key, value in (
            ("temperature", req.temperature),
            ("top_p", req.top_p),
            ("num_predict", req.max_tokens),
            ("stop", list(req.stop) if req.stop else None),
            ("seed", req.seed),
        ):
            if value is not None:
                options[key] = value
        user_options = extra.pop("options", None)
        if user_options is not None:
            if not isinstance(user_options, Mapping):
                raise ValidationError("the Ollama 'options' provider option must be a dict")
            options.update(user_options)
        if options:
            body["options"] = options
        fmt = req.response_format
        if fmt:
            body["format"] = "json" if fmt.get("type") == "json_object" else fmt["json_schema"]["schema"]
        if req.tools and req.tool_choice != "none":
            body["tools"] = [_tool(t) for t in req.tools]
        think = think_value(req.reasoning, req.model)
        if think is not None:
            body["think"] = think
        body.update(extra)  # cache=True needs nothing: Ollama caches the prompt by itself
        return HTTPRequest(method="POST", path="/api/chat", json=body, stream=req.stream)

    def parse_chat_response(self, body: Any) -> ModelResponse:
        """A non-streamed ``/api/chat`` body -> :class:`ModelResponse` (``message.thinking`` first in ``content``)."""
        if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
            raise ResponseError("Ollama response has no message object", provider=self.instance_name)
        message = body["message"]
        calls = parse_tool_calls(message)
        native = body.get("done_reason") or None
        created = parse_rfc3339(body.get("created_at"))
        return ModelResponse(
            text=message.get("content") or "",
            content=reasoning_parts(message, self.instance_name),
            tool_calls=calls,
            finish_reason=map_done_reason(native, bool(calls)),
            native_finish_reason=native,
            usage=normalize_usage(body),
            model=body.get("model"),
            provider=self.instance_name,
            created_at=time.time() if created is None else created,
            raw=body,
        )

    def new_stream_decoder(self, req: ChatRequest) -> StreamDecoder:
        """A fresh :class:`OllamaStreamDecoder`."""
        return OllamaStreamDecoder(self.instance_name)

    def parse_error(self, status: int, body: Any, text: str, headers: Mapping[str, str]) -> Optional[ModelProvError]:
        """``{"error": "<message>"}`` -> the matching exception.

        404 "not found" gets an ``ollama pull`` hint; a 400 refusing ``think``
        is :class:`UnsupportedFeatureError` for option ``reasoning``.
        """
        if isinstance(body, dict) and body.get("error") is not None:
            return error_from_message(error_text(body["error"]), status=status, provider=self.instance_name)
        if status == 404 and "page not found" in (text or "").lower():
            return InvalidRequestError(
                f"no such endpoint on the Ollama server at {self.config.base_url}",
                provider=self.instance_name,
                status_code=status,
                hint="base_url must be the server root (e.g. http://localhost:11434), without /api or /v1",
            )
        return None

    def build_embed_request(self, inputs: List[str], model: str, options: Dict[str, Any]) -> HTTPRequest:
        """``POST /api/embed``; ``options`` (``options``, ``keep_alive``, ``truncate``, ``dimensions``...) go top level."""
        body: Dict[str, Any] = {"model": model, "input": list(inputs)}
        for key in ("model", "input"):
            if key in options:
                raise ValidationError(f"{key!r} cannot be an embedding option; pass it as an argument")
        body.update(options)
        return HTTPRequest(method="POST", path="/api/embed", json=body)

    def parse_embed_response(self, body: Any) -> EmbeddingResponse:
        """``{"embeddings": [[...]], "prompt_eval_count": N, ...}`` -> :class:`EmbeddingResponse`."""
        if not isinstance(body, dict) or not isinstance(body.get("embeddings"), list):
            raise ResponseError("Ollama embed response has no embeddings list", provider=self.instance_name)
        return EmbeddingResponse(
            embeddings=[list(map(float, vec)) for vec in body["embeddings"]],
            model=body.get("model"),
            provider=self.instance_name,
            usage=normalize_usage(body),
            raw=body,
        )

    def build_models_request(self, cursor: Optional[str]) -> HTTPRequest:
        """``GET /api/tags`` (locally pulled models; no paging)."""
        return HTTPRequest(method="GET", path="/api/tags")

    def parse_models_response(self, body: Any) -> Tuple[List[ModelInfo], Optional[str]]:
        """``{"models": [{"name", "modified_at", ...}]}`` -> models (``id`` = name, ``created_at`` = modified_at)."""
        if not isinstance(body, dict) or not isinstance(body.get("models"), list):
            raise ResponseError("Ollama model list has no models list", provider=self.instance_name)
        models = [
            ModelInfo(
                id=str(item.get("name") or item.get("model")),
                provider=self.instance_name,
                name=item.get("name") or item.get("model"),
                created_at=parse_rfc3339(item.get("modified_at")),
                raw=item,
            )
            for item in body["models"]
            if isinstance(item, dict) and (item.get("name") or item.get("model"))
        ]
        return models, None
