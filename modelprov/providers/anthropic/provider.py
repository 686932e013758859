"""``AnthropicProvider``: the Anthropic Messages API (``POST /v1/messages``).

Codec only (no I/O): builds the request body and headers, parses responses,
error bodies and the model list, and hands out an
:class:`~.stream.AnthropicStreamDecoder` for
streams. Wire facts: WIRE.md §3 (§3.9 for the changes through 2026-12).

Choices worth knowing:

* **API version**: the provider setting ``api_version`` (config key
  ``api_version``, environment ``ANTHROPIC_API_VERSION``) is ``2026-10-21``
  (the default, what the official SDK sends since 2.0) or ``2023-06-01``
  (SDK 1.x). Each is sent as that SDK sends it: ``2026-10-21`` with
  ``Authorization: Bearer <key>``, ``2023-06-01`` with ``x-api-key``. Any other
  value is a :class:`~modelprov.exceptions.ConfigurationError` before I/O.
* **Sampling options**: ``2026-10-21`` removed ``temperature``, ``top_p`` and
  ``top_k`` (a 400 even at their defaults), so they are refused before I/O
  (:meth:`AnthropicProvider.unsupported_options`; ``drop_unsupported`` leaves
  them out instead). Under ``2023-06-01`` they are sent, except to the models
  that take none (Opus 4.7+, the Claude 5 family; rule in
  :mod:`.models`), and ``temperature`` must be within 0-1.
* **System prompts**: ``system=`` and the leading ``system``/``developer``
  messages form the top-level ``system``; under ``2026-10-21`` a later one
  stays in place as a ``role: "system"`` message on models that take them
  (Opus 4.8 and later; older ones answer 400) where the API's placement rules
  allow it: right after a user turn, followed by an assistant turn or last
  (docs "Mid-conversation system messages"). Elsewhere, on older models and
  under ``2023-06-01`` it is joined into ``system`` as well (rule in
  :func:`.wire.convert_messages`). ``developer`` is treated as ``system``.
* **max_tokens** is required by the API; when the caller gives none,
  :data:`DEFAULT_MAX_TOKENS` (16000) is sent. 4096 left thinking models
  without room for the answer. 16000 fits every current model's output limit
  (64k and more; Haiku 4.5: 64k) and stays below what the official SDK
  allows without streaming (it refuses non-streamed calls whose
  ``3600 s x max_tokens / 128000`` exceeds its 600 s timeout, i.e. above
  21,333 tokens).
* **reasoning** (``None``, an effort or a token budget) becomes ``thinking``
  and ``output_config.effort`` per model; the table is in
  :mod:`.models`. Answers keep ``thinking`` / ``redacted_thinking``
  blocks as :class:`~modelprov.types.ReasoningPart` (with the signature) and
  other native blocks as :class:`~modelprov.types.ProviderPart`, so
  ``response.message`` goes back unchanged in a tool loop or after
  ``pause_turn`` (:mod:`.wire`).
* **Finish reasons**: ``refusal`` -> ``"refusal"`` (``response.refusal`` is
  ``stop_details.explanation``), ``pause_turn`` -> ``"pause"``,
  ``max_tokens`` and ``model_context_window_exceeded`` -> ``"length"``.
* **cache=True** sends the top-level ``cache_control: {"type": "ephemeral"}``
  (the API puts the marker on the last cacheable block).
* JSON output: ``response_format`` with a JSON schema becomes
  ``output_config.format``. Plain JSON mode (``{"type": "json_object"}``) is
  **not** offered (Anthropic has no schema-less JSON mode), so such a call
  fails with :class:`~modelprov.exceptions.UnsupportedFeatureError`.
* **Forced tools and thinking**: the API refuses thinking while
  ``tool_choice`` forces a tool (``"required"`` or a named tool): ``enabled``
  thinking on every model, adaptive thinking before Opus 4.8 (rule in
  :mod:`.models`). Such a ``reasoning`` (or ``thinking`` provider option) is
  refused before I/O with :class:`~modelprov.exceptions.UnsupportedFeatureError`
  naming both options; with ``drop_unsupported`` the thinking is left out and
  the forced tool kept (the caller asked for that tool, and those models,
  but for the retired Mythos preview, do not think by default).
* No ``seed`` and no embeddings endpoint exist.
* Beta features: ``anthropic-beta`` comes from the config option ``beta``
  (string or list) plus a per-call ``betas=[...]`` option, joined by commas.
  Every other provider option (``top_k``, ``metadata``, ``thinking``,
  ``service_tier``...) is merged into the top level of the body (a given
  ``thinking`` wins over the one ``reasoning`` builds); ``output_config`` is
  merged key by key with the one set here.
"""

import time
from datetime import datetime, timezone
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple

from ...exceptions import ConfigurationError, ModelProvError, ResponseError, ValidationError
from ...types import (
    ChatRequest,
    HTTPRequest,
    ModelInfo,
    ModelResponse,
    ProviderCapabilities,
    Tool,
)
from ..base import Messages, ModelProvider, StreamDecoder
from ..timeparse import parse_rfc3339
from ..unsupported import unsupported_error
from .models import forced_tool_conflict, model_traits, plan_reasoning
from .stream import AnthropicStreamDecoder
from .wire import convert_messages, error_from_body, map_stop_reason, normalize_usage, parse_content, refusal_of

__all__ = ["ANTHROPIC_VERSION", "API_VERSIONS", "AnthropicProvider", "DEFAULT_MAX_TOKENS", "LEGACY_VERSION"]

#: Sent as ``max_tokens`` when the caller gives none (the API requires the field); see the module docstring.
DEFAULT_MAX_TOKENS = 16000
#: The default ``anthropic-version`` (official SDK 2.x).
ANTHROPIC_VERSION = "2026-10-21"
#: The previous API version (official SDK 1.x and older): takes sampling options on older models.
LEGACY_VERSION = "2023-06-01"
#: The API versions this codec speaks.
API_VERSIONS = (ANTHROPIC_VERSION, LEGACY_VERSION)

_TOOL_CHOICE = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}
_UNFORCED = ("auto", "none")
_RESERVED = ("model", "messages", "stream")
_SAMPLING = ("temperature", "top_p", "top_k")
_REMOVED = dict.fromkeys(_SAMPLING, f"API version {ANTHROPIC_VERSION} removed it (a 400 even at its default)")


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


def _forced_tool_conflict(req: ChatRequest) -> Dict[str, str]:
    """``{option: reason}`` when the thinking this request turns on cannot go with its forced ``tool_choice``."""
    given = req.provider_options.get("thinking")
    if isinstance(given, Mapping):  # a thinking provider option wins over reasoning
        option, kind = "thinking", given.get("type")
    elif req.reasoning is not None:
        option, kind = "reasoning", plan_reasoning(req.model, req.reasoning, req.max_tokens, DEFAULT_MAX_TOKENS).thinking["type"]
    else:
        return {}
    if not forced_tool_conflict(req.model, kind if isinstance(kind, str) else None):
        return {}
    forced = "'required'" if req.tool_choice == "required" else "a named tool"
    return {option: f"Anthropic refuses {kind} thinking while tool_choice forces a tool ({forced}); "
                    "pass tool_choice='auto', or reasoning='none' to keep the forced tool"}  # fmt: skip


def _check_temperature(req: ChatRequest) -> None:
    if req.temperature is not None and not 0.0 <= req.temperature <= 1.0:
        raise ValidationError(
            f"temperature must be between 0 and 1 for Anthropic, not {req.temperature:g}",
            hint="Anthropic's temperature range is 0.0-1.0 (default 1.0)",
        )


def _iso_date(value: Any) -> Optional[str]:
    """``YYYY-MM-DD`` (UTC) of an RFC 3339 timestamp or a bare date, else ``None``."""
    stamp = parse_rfc3339(value)
    if stamp is not None:
        return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d")
    if isinstance(value, str) and len(value) == 10 and parse_rfc3339(value + "T00:00:00Z") is not None:
        return value
    return None


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
    default_model: ClassVar[Optional[str]] = "claude-haiku-4-5"
    api_key_env: ClassVar[Tuple[str, ...]] = ("ANTHROPIC_API_KEY",)
    base_url_env: ClassVar[Tuple[str, ...]] = ("ANTHROPIC_BASE_URL",)
    option_env: ClassVar[Dict[str, Tuple[str, ...]]] = {"api_version": ("ANTHROPIC_API_VERSION",)}
    requires_api_key: ClassVar[bool] = True
    stream_format: ClassVar[str] = "sse"

    # ----------------------------------------------------------- validation
    @property
    def api_version(self) -> str:
        """The configured ``anthropic-version``; :class:`ConfigurationError` for an unknown one."""
        value = self.config.option("api_version")
        version = ANTHROPIC_VERSION if value is None else str(value).strip()
        if version in API_VERSIONS:
            return version
        raise ConfigurationError(
            f"unknown Anthropic api_version {value!r}; modelprov speaks {' and '.join(API_VERSIONS)}",
            provider=self.instance_name,
            hint=f"set api_version (or ANTHROPIC_API_VERSION) to {ANTHROPIC_VERSION} (the default) or {LEGACY_VERSION}",
        )

    def validate_config(self) -> None:
        """As :meth:`ModelProvider.validate_config`, plus a known ``api_version``."""
        super().validate_config()
        self.api_version  # noqa: B018 - raises ConfigurationError for an unknown version

    def unsupported_options(self, req: ChatRequest) -> Dict[str, str]:
        """Sampling options (all of them under 2026-10-21; under 2023-06-01 for models that take none),
        and thinking while ``tool_choice`` forces a tool (see the module docstring)."""
        refused: Dict[str, str] = {}
        if req.temperature is not None or req.top_p is not None or "top_k" in req.provider_options:
            if self.api_version == ANTHROPIC_VERSION:
                refused.update(_REMOVED)
            elif not model_traits(req.model).sampling:
                reason = "the model accepts no sampling options (Opus 4.7 and later, the Claude 5 family)"
                refused.update(dict.fromkeys(_SAMPLING, reason))
        if req.tools and req.tool_choice is not None and req.tool_choice not in _UNFORCED:
            refused.update(_forced_tool_conflict(req))
        return refused

    def make_request(
        self,
        messages: Messages,
        *,
        model: Optional[str] = None,
        stream: bool = False,
        **options: Any,
    ) -> ChatRequest:
        """As :meth:`ModelProvider.make_request`, plus Anthropic's 0-1 temperature range and the reasoning budget."""
        req = super().make_request(messages, model=model, stream=stream, **options)
        _check_temperature(req)
        if req.reasoning is not None:
            plan_reasoning(req.model, req.reasoning, req.max_tokens, DEFAULT_MAX_TOKENS)
        return req

    # --------------------------------------------------------------- hooks
    def auth_headers(self) -> Dict[str, str]:
        """``anthropic-version``, the key as the SDK of that version sends it and, when configured, ``anthropic-beta``."""
        version = self.api_version
        headers = {"anthropic-version": version}
        if self.config.api_key:
            if version == LEGACY_VERSION:
                headers["x-api-key"] = self.config.api_key
            else:
                headers["Authorization"] = f"Bearer {self.config.api_key}"
        betas = _beta_list(self.config.option("beta"))
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        return headers

    def build_chat_request(self, req: ChatRequest) -> HTTPRequest:
        """The ``POST /v1/messages`` request for ``req``."""
        legacy = self.api_version == LEGACY_VERSION
        extra = dict(req.provider_options)
        if legacy:
            _check_temperature(req)
        elif req.temperature is not None or req.top_p is not None or extra.get("top_k") is not None:
            name = "temperature" if req.temperature is not None else "top_p" if req.top_p is not None else "top_k"
            raise unsupported_error(self, name, req.model, _REMOVED[name])
        for key in _RESERVED:
            if key in extra:
                raise ValidationError(f"{key!r} cannot be a provider option; pass it as an argument")
        system, messages = convert_messages(req, self.instance_name, not legacy and model_traits(req.model).system_messages)
        body: Dict[str, Any] = {
            "model": req.model,
            "max_tokens": req.max_tokens if req.max_tokens is not None else DEFAULT_MAX_TOKENS,
            "messages": messages,
        }
        if system:
            body["system"] = system
        if legacy:
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
        output: Dict[str, Any] = {}
        if req.response_format and req.response_format.get("type") == "json_schema":
            output["format"] = {"type": "json_schema", "schema": req.response_format["json_schema"]["schema"]}
        if req.reasoning is not None:
            plan = plan_reasoning(req.model, req.reasoning, req.max_tokens, DEFAULT_MAX_TOKENS)
            body["thinking"] = plan.thinking
            body["max_tokens"] = plan.max_tokens
            if plan.effort:
                output["effort"] = plan.effort
        if output:
            body["output_config"] = output
        if req.cache:
            body["cache_control"] = {"type": "ephemeral"}
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
        return HTTPRequest(method="POST", path="/v1/messages", headers=headers, json=body, stream=req.stream)

    def parse_chat_response(self, body: Any) -> ModelResponse:
        """A ``/v1/messages`` response body -> :class:`ModelResponse` (content order: see :mod:`.wire`)."""
        if not isinstance(body, dict) or not isinstance(body.get("content"), list):
            raise ResponseError("Anthropic response has no content list", provider=self.instance_name)
        text, parts, calls = parse_content(body["content"], self.instance_name)
        native = body.get("stop_reason")
        return ModelResponse(
            text=text,
            content=parts,
            tool_calls=calls,
            finish_reason=map_stop_reason(native),
            native_finish_reason=native,
            usage=normalize_usage(body.get("usage")),
            model=body.get("model"),
            provider=self.instance_name,
            id=body.get("id"),
            created_at=time.time(),
            raw=body,
            refusal=refusal_of(body.get("stop_details")) if native == "refusal" else None,
        )

    def new_stream_decoder(self, req: ChatRequest) -> StreamDecoder:
        """A fresh :class:`AnthropicStreamDecoder`."""
        return AnthropicStreamDecoder(self.instance_name)

    def parse_error(self, status: int, body: Any, text: str, headers: Mapping[str, str]) -> Optional[ModelProvError]:
        """``{"type":"error","error":{"type","message","details"?},"request_id"}`` -> the matching exception.

        A 400 naming an option the model or API version does not take gives
        :class:`~modelprov.exceptions.UnsupportedFeatureError` (see :mod:`.errors`).
        """
        return error_from_body(body, text, status=status, provider=self.instance_name)

    def build_models_request(self, cursor: Optional[str]) -> HTTPRequest:
        """``GET /v1/models`` (1000 per page; ``after_id`` = the previous page's ``last_id``)."""
        params: Dict[str, Any] = {"limit": 1000}
        if cursor:
            params["after_id"] = cursor
        return HTTPRequest(method="GET", path="/v1/models", params=params)

    def _model_info(self, item: Dict[str, Any]) -> ModelInfo:
        lifecycle = item.get("lifecycle")
        deprecated_at = _iso_date(item.get("deprecated_at"))
        if isinstance(lifecycle, str):
            deprecated: Optional[bool] = lifecycle in ("deprecated", "retired")
        else:
            deprecated = True if deprecated_at else None
        return ModelInfo(
            id=str(item["id"]),
            provider=self.instance_name,
            name=item.get("display_name"),
            created_at=parse_rfc3339(item.get("created_at")),
            context_length=item.get("max_input_tokens"),
            raw=item,
            deprecated=deprecated,
            deprecation_date=deprecated_at,
            retirement_date=_iso_date(item.get("retires_at")),
        )

    def parse_models_response(self, body: Any) -> Tuple[List[ModelInfo], Optional[str]]:
        """One page of models (with lifecycle data) and the next cursor (``last_id`` while ``has_more``)."""
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ResponseError("Anthropic model list has no data list", provider=self.instance_name)
        models = [self._model_info(item) for item in body["data"] if isinstance(item, dict) and item.get("id")]
        cursor = body.get("last_id") if body.get("has_more") else None
        return models, (str(cursor) if cursor else None)
