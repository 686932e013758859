"""``AnthropicProvider``: the Anthropic Messages API (``POST /v1/messages``).

Codec only (no I/O): builds the request body and headers, parses responses,
error bodies and the model list, and hands out an
:class:`~modelprov.providers._anthropic_stream.AnthropicStreamDecoder` for
streams. Wire facts: WIRE.md §3.

Choices worth knowing:

* ``max_tokens`` is required by the API; when the caller gives none,
  :data:`DEFAULT_MAX_TOKENS` (4096) is sent.
* ``temperature`` must be within 0-1 (Anthropic's range, narrower than the
  0-2 that modelprov accepts for other providers); outside it a
  :class:`~modelprov.exceptions.ValidationError` is raised before any I/O.
* JSON output: ``response_format`` with a JSON schema becomes
  ``output_config.format``. Plain JSON mode (``{"type": "json_object"}``) is
  **not** offered: Anthropic has no schema-less JSON mode and an emulation
  would be guesswork, so ``capabilities.json_mode`` is false and such a call
  fails with :class:`~modelprov.exceptions.UnsupportedFeatureError`
  (pass a schema instead).
* No ``seed`` and no embeddings endpoint exist.
* Beta features: ``anthropic-beta`` comes from the config option ``beta``
  (string or list) plus a per-call ``betas=[...]`` option, joined by commas.
  Every other provider option (``top_k``, ``metadata``, ``thinking``,
  ``service_tier``...) is merged into the top level of the body;
  ``output_config`` is merged key by key with the schema set here.
"""

import time
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..exceptions import ProviderError, ResponseError, ValidationError
from ..types import (
    ChatRequest,
    HTTPRequest,
    MessageInput,
    ModelInfo,
    ModelResponse,
    ProviderCapabilities,
    Tool,
    ToolCall,
)
from ._anthropic_stream import AnthropicStreamDecoder
from ._anthropic_wire import convert_messages, error_from_type, map_stop_reason, normalize_usage
from ._timeparse import parse_rfc3339
from .base import ModelProvider, StreamDecoder

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider", "DEFAULT_MAX_TOKENS"]

#: Sent as ``max_tokens`` when the caller gives none (the API requires the field).
DEFAULT_MAX_TOKENS = 4096
#: The ``anthropic-version`` header value (the only one the official SDK sends).
ANTHROPIC_VERSION = "2023-06-01"

_TOOL_CHOICE = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}
_RESERVED = ("model", "messages", "stream")


def _beta_list(value: Any) -> List[str]:
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(v).strip() for v in items if str(v).strip()]


def _tool(tool: Tool) -> Dict[str, Any]:
    out: Dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = tool.parameters
    return out


def _check_temperature(req: ChatRequest) -> None:
    if req.temperature is not None and not 0.0 <= req.temperature <= 1.0:
        raise ValidationError(
            f"temperature must be between 0 and 1 for Anthropic, not {req.temperature:g}",
            hint="Anthropic's temperature range is 0.0-1.0 (default 1.0)",
        )


class AnthropicProvider(ModelProvider):
    """Anthropic's Messages API (Claude models)."""

    name: ClassVar[str] = "anthropic"
    capabilities: ClassVar[ProviderCapabilities] = ProviderCapabilities(
        chat=True,
        streaming=True,
        tools=True,
        vision=True,
        json_mode=False,
        json_schema=True,
        embeddings=False,
        list_models=True,
        seed=False,
        stop=True,
    )
    default_base_url: ClassVar[Optional[str]] = "https://api.anthropic.com"
    default_model: ClassVar[Optional[str]] = "claude-3-5-haiku-latest"
    api_key_env: ClassVar[Tuple[str, ...]] = ("ANTHROPIC_API_KEY",)
    base_url_env: ClassVar[Tuple[str, ...]] = ("ANTHROPIC_BASE_URL",)
    requires_api_key: ClassVar[bool] = True
    stream_format: ClassVar[str] = "sse"

    # ----------------------------------------------------------- validation
    def make_request(
        self,
        messages: Union[MessageInput, Sequence[MessageInput]],
        *,
        model: Optional[str] = None,
        stream: bool = False,
        **options: Any,
    ) -> ChatRequest:
        """As :meth:`ModelProvider.make_request`, plus Anthropic's 0-1 temperature range."""
        req = super().make_request(messages, model=model, stream=stream, **options)
        _check_temperature(req)
        return req

    # --------------------------------------------------------------- hooks
    def auth_headers(self) -> Dict[str, str]:
        """``x-api-key``, ``anthropic-version`` and, when configured, ``anthropic-beta``."""
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self.config.api_key:
            headers["x-api-key"] = self.config.api_key
        betas = _beta_list(self.config.option("beta"))
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        return headers

    def build_chat_request(self, req: ChatRequest) -> HTTPRequest:
        """The ``POST /v1/messages`` request for ``req``."""
        _check_temperature(req)
        extra = dict(req.provider_options)
        for key in _RESERVED:
            if key in extra:
                raise ValidationError(f"{key!r} cannot be a provider option; pass it as an argument")
        system, messages = convert_messages(req)
        body: Dict[str, Any] = {
            "model": req.model,
            "max_tokens": req.max_tokens if req.max_tokens is not None else DEFAULT_MAX_TOKENS,
            "messages": messages,
        }
        if system:
            body["system"] = system
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
        if req.stop:
            body["stop_sequences"] = list(req.stop)
        if req.tools:
            body["tools"] = [_tool(t) for t in req.tools]
            if req.tool_choice is not None:
                choice = req.tool_choice
                body["tool_choice"] = (
                    dict(_TOOL_CHOICE[choice]) if isinstance(choice, str) else {"type": "tool", "name": choice["name"]}
                )
        if req.response_format and req.response_format.get("type") == "json_schema":
            schema = req.response_format["json_schema"]["schema"]
            body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        if isinstance(extra.get("output_config"), Mapping) and "output_config" in body:
            body["output_config"].update(extra.pop("output_config"))
        headers: Dict[str, str] = {}
        call_betas = _beta_list(extra.pop("betas", None))
        if call_betas:
            merged = _beta_list(self.config.option("beta")) + call_betas
            headers["anthropic-beta"] = ",".join(dict.fromkeys(merged))
        body.update(extra)
        if req.stream:
            body["stream"] = True
        return HTTPRequest("POST", "/v1/messages", headers=headers, json=body, stream=req.stream)

    def parse_chat_response(self, body: Any) -> ModelResponse:
        """A ``/v1/messages`` response body -> :class:`ModelResponse` (thinking blocks stay in ``raw``)."""
        if not isinstance(body, dict) or not isinstance(body.get("content"), list):
            raise ResponseError("Anthropic response has no content list", provider=self.instance_name)
        texts: List[str] = []
        calls: List[ToolCall] = []
        for block in body["content"]:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(block.get("text") or "")
            elif block.get("type") == "tool_use":
                args = block.get("input")
                calls.append(
                    ToolCall(
                        id=str(block.get("id") or ""),
                        name=str(block.get("name") or ""),
                        arguments=dict(args) if isinstance(args, dict) else {},
                    )
                )
        native = body.get("stop_reason")
        # positional: text, content, tool_calls, finish_reason, native_finish_reason, usage, model,
        # provider, id, request_id, latency_s, created_at, raw (tests/test_perf_paths.py pins the order)
        return ModelResponse(
            "".join(texts), [], calls, map_stop_reason(native), native,
            normalize_usage(body.get("usage")), body.get("model"), self.instance_name, body.get("id"),
            None, None, time.time(), body,
        )  # fmt: skip

    def new_stream_decoder(self, req: ChatRequest) -> StreamDecoder:
        """A fresh :class:`AnthropicStreamDecoder`."""
        return AnthropicStreamDecoder(self.instance_name)

    def parse_error(self, status: int, body: Any, text: str, headers: Mapping[str, str]) -> Optional[ProviderError]:
        """``{"type":"error","error":{"type","message"},"request_id"}`` -> the matching exception."""
        if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
            return None
        err = body["error"]
        message = str(err.get("message") or text or f"HTTP {status}")
        request_id = body.get("request_id")
        return error_from_type(
            err.get("type"),
            message,
            provider=self.instance_name,
            status=status,
            request_id=str(request_id) if request_id else None,
        )

    def build_models_request(self, cursor: Optional[str]) -> HTTPRequest:
        """``GET /v1/models`` (1000 per page; ``after_id`` = the previous page's ``last_id``)."""
        params: Dict[str, Any] = {"limit": 1000}
        if cursor:
            params["after_id"] = cursor
        return HTTPRequest("GET", "/v1/models", params=params)

    def parse_models_response(self, body: Any) -> Tuple[List[ModelInfo], Optional[str]]:
        """One page of models and the next cursor (``last_id`` while ``has_more``)."""
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ResponseError("Anthropic model list has no data list", provider=self.instance_name)
        models = [
            ModelInfo(
                id=str(item["id"]),
                provider=self.instance_name,
                name=item.get("display_name"),
                created_at=parse_rfc3339(item.get("created_at")),
                context_length=item.get("max_input_tokens"),
                raw=item,
            )
            for item in body["data"]
            if isinstance(item, dict) and item.get("id")
        ]
        cursor = body.get("last_id") if body.get("has_more") else None
        return models, (str(cursor) if cursor else None)
