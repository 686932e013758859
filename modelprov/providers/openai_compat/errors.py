"""Error-body mapping for the OpenAI-family codec (OpenAI, OpenRouter, vLLM, llama.cpp, LM Studio).

:func:`map_error` turns an HTTP status plus an error body into the matching
:class:`~modelprov.exceptions.ProviderError` subclass; :func:`error_from_payload`
does the same for an error that arrives inside a 200 response or a stream.
Shapes handled (WIRE.md §2.6, §5.5, §7): OpenAI ``{"error":{message,type,param,code}}``,
OpenRouter ``{"error":{code:int,message,metadata:{error_type},availability?}}``,
vLLM's nested or flat ``{"object":"error","message","type","code":int}``,
llama.cpp's ``exceed_context_size_error`` with ``n_prompt_tokens``/``n_ctx``,
``{"error": "text"}`` and FastAPI's ``{"detail": ...}``.

A 4xx whose ``code`` is ``unsupported_value`` or ``unsupported_parameter``
and whose ``param`` names a request field (OpenAI's answer to an option a
model does not take, WIRE.md §2.11) becomes
:class:`~modelprov.exceptions.UnsupportedFeatureError` with ``option`` (the
modelprov option name: ``max_completion_tokens`` -> ``max_tokens``,
``reasoning_effort`` -> ``reasoning``, other fields keep their name, as
provider options do) and ``param`` (the wire name), so that
``drop_unsupported`` can resend without it. ``unsupported_value`` (the model
takes the field, not that value: ``temperature=0.2`` on a model that only
takes 1) also sets ``value_specific=True`` in ``exc.extra``, so what is
learned is that value and not the whole option; ``unsupported_parameter``
does not.
"""

import json
import re
from typing import Any, Dict, Mapping, Optional, Protocol, Set, Type

from ...exceptions import (
    AuthenticationError,
    ContentFilterError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelProvError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    TokenLimitError,
    UnsupportedFeatureError,
    error_for_status,
)
from .wire import as_dict

__all__ = ["ErrorSource", "error_from_payload", "map_error", "option_of_param"]

class ErrorSource(Protocol):
    """What the error mapping needs of the provider (an :class:`~.codec.OpenAICompatProvider`)."""

    @property
    def instance_name(self) -> str:
        """The provider instance the errors are for."""

    def error_hint(self, exc: ModelProvError, message: str) -> Optional[str]:
        """A provider-specific hint for ``exc``, or ``None``."""

    def parse_error(self, status: int, body: Any, text: str, headers: Mapping[str, str]) -> Optional[ModelProvError]:
        """The exception for an error body (:func:`map_error` for this codec)."""


_TOKEN_LIMIT = {
    "context_length_exceeded", "max_tokens_exceeded", "token_limit_exceeded", "exceed_context_size_error", "string_above_max_length", "string_too_long",
}  # fmt: skip
_FILTER = {"content_filter", "content_policy_violation", "refusal", "moderation", "moderation_error", "responsibleaipolicyviolation"}
_QUOTA = {"insufficient_quota", "payment_required", "billing_hard_limit_reached", "quota_exceeded", "insufficient_credits"}
_NOT_FOUND = {"model_not_found", "no_endpoints", "model_deprecated"}
_OVERLOADED = {"provider_overloaded", "overloaded", "overloaded_error", "temporarily_unavailable", "unavailable_error"}
#: String codes/types that reveal the HTTP status of an in-stream error.
_STATUS_OF_CODE = {
    "rate_limit_exceeded": 429, "insufficient_quota": 429, "context_length_exceeded": 400,
    "invalid_request_error": 400, "invalid_request": 400, "authentication_error": 401, "invalid_api_key": 401,
    "permission_error": 403, "not_found_error": 404, "model_not_found": 404, "server_error": 500, "server": 500,
    "api_error": 500, "overloaded_error": 503, "provider_overloaded": 503, "provider_unavailable": 502, "timeout": 504,
}  # fmt: skip

#: Error codes meaning "this model does not take that request field" (``param`` names the field).
_UNSUPPORTED = {"unsupported_value", "unsupported_parameter"}
#: Wire field -> modelprov option name, where they differ or the field is a chat option.
_OPTION_OF_PARAM = {
    "max_completion_tokens": "max_tokens", "max_tokens": "max_tokens", "reasoning_effort": "reasoning",
    "reasoning": "reasoning", "temperature": "temperature", "top_p": "top_p", "stop": "stop", "seed": "seed",
    "response_format": "response_format", "tool_choice": "tool_choice",
}  # fmt: skip
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_CONTEXT_MSG = re.compile(
    r"maximum context length|context length exceeded|exceeds? the (?:available )?context (?:size|window)"
    r"|context window (?:is )?(?:full|exceeded)|prompt is too long",
    re.I,
)
_FILTER_MSG = re.compile(r"content management policy|flagged as potentially violating|violat\w* (?:our|the) usage polic|safety system", re.I)
_LIMIT_RE = re.compile(r"(?:maximum context length is|available context size \(|context (?:window|length|size) (?:is|of))\s*([\d,]+)", re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_REQUESTED_RE = re.compile(r"(?:resulted in|you requested|request has|request \()\s*([\d,]+)", re.I)


def _num(match: "Optional[re.Match[str]]") -> Optional[int]:
    return int(match.group(1).replace(",", "")) if match else None


def _as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _error_object(body: Any) -> Dict[str, Any]:
    """The dict holding ``message``/``type``/``code`` in any of the known shapes."""
    if not isinstance(body, dict):
        return {}
    err = body.get("error")
    if isinstance(err, dict):
        return err
    if isinstance(err, str):
        return {"message": err}
    if isinstance(body.get("detail"), str):
        return {"message": body["detail"]}
    if isinstance(body.get("detail"), list):  # FastAPI validation errors: "loc: msg; ..."
        parts = []
        for item in body["detail"][:3]:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc") or () if x != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        return {"message": "; ".join(parts) or "the server rejected the request body"}
    if "message" in body:
        return body
    return {}


def _codes(err: Dict[str, Any]) -> Set[str]:
    meta = as_dict(err.get("metadata"))
    avail = as_dict(err.get("availability"))
    inner = as_dict(err.get("innererror"))
    values = (err.get("type"), err.get("code"), meta.get("error_type"), avail.get("code"), inner.get("code"))
    return {v.lower() for v in values if isinstance(v, str) and v}


def _pick_class(status: int, codes: Set[str], message: str, err: Dict[str, Any]) -> Type[ProviderError]:
    meta = as_dict(err.get("metadata"))
    client_error = status < 500 and status != 429
    if codes & _TOKEN_LIMIT or (client_error and _CONTEXT_MSG.search(message)):
        return TokenLimitError
    if codes & _FILTER or (client_error and (_FILTER_MSG.search(message) or "flagged_input" in meta or "reasons" in meta)):
        return ContentFilterError
    if codes & _QUOTA or status == 402:
        return QuotaExceededError
    if codes & _NOT_FOUND or status == 404:
        return ModelNotFoundError
    if status == 401 or "authentication" in codes:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 408:
        return ProviderTimeoutError
    if status == 429 or "rate_limit_exceeded" in codes or "capacity_exhausted" in codes:
        return RateLimitError
    if codes & _OVERLOADED or status in (503, 529):
        return OverloadedError
    if status >= 500:
        return ServerError
    if status == 413:
        return InvalidRequestError
    return error_for_status(status)


def option_of_param(param: Any) -> Optional[str]:
    """The modelprov option name for a rejected wire field (``None`` for e.g. ``messages[0].role``)."""
    if not isinstance(param, str) or not param:
        return None
    head = param.split(".", 1)[0]
    if head in _OPTION_OF_PARAM:
        return _OPTION_OF_PARAM[head]
    return param if _IDENTIFIER.match(param) else None


def _unsupported(provider: ErrorSource, status: int, err: Dict[str, Any], message: str, body: Any) -> UnsupportedFeatureError:
    param = err.get("param")
    option = option_of_param(param)
    kwargs: Dict[str, Any] = {"provider": provider.instance_name, "status_code": status, "param": param,
                              "error_code": err.get("code")}  # fmt: skip
    if err.get("code") == "unsupported_value":
        kwargs["value_specific"] = True  # the field is taken, this value is not
    if option is not None:
        kwargs["option"] = option
        kwargs["hint"] = (
            f"leave {option} out for this model, or pass drop_unsupported=True to the Client "
            f"(or set drop_unsupported = true for {provider.instance_name} in the config) to drop it automatically"
        )
    if isinstance(err.get("type"), str):
        kwargs["error_type"] = err["type"]
    if isinstance(body, dict) and isinstance(body.get("request_id"), str):
        kwargs["request_id"] = body["request_id"]
    return UnsupportedFeatureError(message, **kwargs)


def map_error(provider: ErrorSource, status: int, body: Any, text: str) -> ModelProvError:
    """The exception for an error response: class by code/type first, then by HTTP status.

    The provider's own message is kept; ``error_code``, ``error_type`` and
    ``param`` go to ``exc.extra``. OpenRouter's ``availability.retryable`` and
    ``retry_after`` override the class defaults. An ``unsupported_value`` /
    ``unsupported_parameter`` 4xx naming a ``param`` is an
    :class:`UnsupportedFeatureError` (see the module docstring).
    """
    err = _error_object(body)
    message = err.get("message") if isinstance(err.get("message"), str) else ""
    if not message:
        stripped = (text or "").strip()
        if stripped.startswith("<"):  # an HTML error page from a proxy or gateway
            title = _TITLE.search(stripped)
            shown = " ".join(title.group(1).split())[:120] if title else ""
            message = f"HTTP {status} from the provider: {shown}" if shown else f"HTTP {status} from the provider (HTML error page)"
        else:
            message = stripped[:300] or f"HTTP {status} from the provider"
    code = err.get("code")
    if isinstance(code, str) and code in _UNSUPPORTED and 400 <= status < 500 and isinstance(err.get("param"), str):
        return _unsupported(provider, status, err, message, body)
    codes = _codes(err)
    cls = _pick_class(status, codes, message, err)
    kwargs: Dict[str, Any] = {"provider": provider.instance_name, "status_code": status}
    for key, name in (("code", "error_code"), ("type", "error_type"), ("param", "param")):
        if err.get(key) is not None:
            kwargs[name] = err[key]
    avail = as_dict(err.get("availability"))
    if isinstance(avail.get("retryable"), bool):
        kwargs["retryable"] = avail["retryable"]
    wait = avail.get("retry_after")
    if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait >= 0:
        kwargs["retry_after"] = float(wait)
    if isinstance(body, dict) and isinstance(body.get("request_id"), str):
        kwargs["request_id"] = body["request_id"]
    if cls is TokenLimitError:
        kwargs["limit"] = _as_int(err.get("n_ctx")) or _num(_LIMIT_RE.search(message))
        kwargs["requested"] = _as_int(err.get("n_prompt_tokens")) or _num(_REQUESTED_RE.search(message))
    exc = cls(message, **kwargs)
    hint = provider.error_hint(exc, message)
    if hint:
        exc.hint = hint
    return exc


def error_from_payload(provider: ErrorSource, payload: Dict[str, Any], status_hint: Optional[int]) -> ModelProvError:
    """The exception for an error found inside a 200 body or a stream event.

    The status comes from an integer ``code`` (OpenRouter, vLLM), a known string
    code/type, or ``status_hint``; when none applies, 500 is assumed for the
    mapping and ``status_code`` is left unset.
    """
    err = _error_object(payload)
    status = _as_int(err.get("code"))
    if status is None or not 400 <= status < 600:
        status = None
        for value in (err.get("code"), as_dict(err.get("metadata")).get("error_type"), err.get("type")):
            if isinstance(value, str) and value.lower() in _STATUS_OF_CODE:
                status = _STATUS_OF_CODE[value.lower()]
                break
    known = status if status is not None else status_hint
    try:
        text = json.dumps(payload)
    except (TypeError, ValueError):  # pragma: no cover - payloads come from json.loads
        text = str(payload)
    exc = provider.parse_error(known or 500, payload, text, {})
    if exc is None:  # pragma: no cover - our parse_error always answers
        exc = ServerError(err.get("message") or "error in the response", provider=provider.instance_name)
    if known is None:
        exc.status_code = None
    if exc.provider is None:
        exc.provider = provider.instance_name
    return exc
