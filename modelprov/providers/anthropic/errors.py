"""Anthropic error bodies -> modelprov exceptions.

Classification order (WIRE.md §3.6, §3.9; SDK 2.17 ``_error_classes.py``):

1. ``error.details.error_code`` when present (the SDK picks its subclass by
   ``(status, error_code)``); the code is kept in ``exc.extra["error_code"]``.
2. A 400 that names a request field the model or API version does not take
   ("`temperature` is deprecated for this model.", "temperature: Extra
   inputs are not permitted") -> :class:`UnsupportedFeatureError` with
   ``option`` (the modelprov option name) and ``param`` (the wire name), so
   ``drop_unsupported`` can resend without it. No ``error_code`` names a
   parameter in SDK 2.17, so this one needs the message wording.
3. ``error.type`` (``rate_limit_error``, ``overloaded_error`` ...), refined by
   message wording only as a last resort: the context-overflow messages
   become :class:`TokenLimitError` with the numbers, "credit balance" a
   :class:`QuotaExceededError`.

Decisions: ``organization_on_hold`` (Anthropic disabled the organization for
trust and safety reasons, per the SDK's docstring; billing holds do not get
this code) is a :class:`PermissionDeniedError`, not a quota error: no amount
of credit fixes it. ``cmek_*`` and ``storage_not_ready`` are retryable
:class:`ServerError`\\ s (the SDK documents "retry"); the spend-limit codes are
:class:`QuotaExceededError` (not retried), ``ramp_limit_exceeded`` a
:class:`RateLimitError` (retried after ``retry-after``).
"""

import re
from typing import Any, Dict, Mapping, Optional, Tuple, Type

from ...exceptions import (
    AuthenticationError,
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

__all__ = ["error_from_body", "error_from_type", "unsupported_from_message"]

_ERROR_TYPES: Dict[str, Type[ProviderError]] = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "not_found_error": ModelNotFoundError,
    "request_too_large": InvalidRequestError,
    "rate_limit_error": RateLimitError,
    "billing_error": QuotaExceededError,
    "api_error": ServerError,
    "timeout_error": ProviderTimeoutError,
    "overloaded_error": OverloadedError,
}

_SPEND = "raise the limit in the Anthropic Console (Settings > Limits) or contact Anthropic"
#: error_code -> (exception class, hint); the hints follow the SDK's docstrings of each code.
_CODES: Dict[str, Tuple[Type[ProviderError], str]] = {
    "contract_spend_limit_reached": (QuotaExceededError, "The organization reached its contract's spend limit; contact Anthropic"),
    "enforced_spend_limit_reached": (QuotaExceededError, f"The organization crossed its API tier's monthly usage threshold; {_SPEND}"),
    "linked_organization_spend_limit_reached": (QuotaExceededError, "The organization linked to the user profile reached its spend limit or lacks credit"),
    "linked_organization_billing_unavailable": (QuotaExceededError, "Anthropic cannot bill the organization linked to the user profile; check its account"),
    "ramp_limit_exceeded": (RateLimitError, "Usage grew too fast (ramp limit); retry after the retry-after time and ramp up gradually"),
    "cmek_key_unreachable": (ServerError, "The workspace's encryption key could not be reached; retry, then check the key in your KMS"),
    "cmek_context_unavailable": (ServerError, "The workspace's encryption settings could not be read; retry in a few minutes"),
    "storage_not_ready": (ServerError, "The workspace is still being connected to its storage; retry in a minute"),
    "compaction_unavailable": (OverloadedError, "Compaction is unavailable right now; retry later"),
    "organization_on_hold": (PermissionDeniedError, "Anthropic disabled the organization for trust and safety reasons"),
    "tool_name_conflict": (InvalidRequestError, "A tool's name is already taken by a server tool or an MCP server's tool; rename the tool"),
    "tool_reference_unresolved": (InvalidRequestError, "A tool reference names no available tool; check the tool names"),
    "available_tools_limit_exceeded": (InvalidRequestError, "Too many tools are available to this request; send fewer tools"),
    "request_body_encoding_invalid": (InvalidRequestError, "The request body does not match its Content-Encoding"),
    "request_body_encoding_unsupported": (InvalidRequestError, "The request's Content-Encoding is not supported; send it uncompressed"),
    "request_body_too_large_after_decoding": (InvalidRequestError, "Requests are limited to 32 MB; send fewer or smaller images and documents"),
    "user_profile_required": (InvalidRequestError, "This key needs a user profile; pass user_profile_id"),
    "user_profile_not_found": (InvalidRequestError, "The user profile does not exist; check user_profile_id"),
    "file_not_downloadable": (InvalidRequestError, "The referenced file cannot be downloaded; upload it again"),
    "file_expired": (InvalidRequestError, "The referenced file expired; upload it again"),
    "sandbox_egress_restricted": (PermissionDeniedError, "The sandbox's network egress settings block this request"),
    "user_profile_not_billable": (PermissionDeniedError, "The user profile cannot be billed for this request"),
    "user_profile_billing_not_authorized": (PermissionDeniedError, "The user profile is not authorised to bill this organization"),
    "api_key_requester_unconfirmed": (PermissionDeniedError, "The key's requester has not been confirmed; check the key in the Console"),
}

_PROMPT_TOO_LONG = re.compile(r"prompt is too long:\s*(\d+)\s*tokens?\s*>\s*(\d+)", re.I)
_CONTEXT_LIMIT = re.compile(r"exceed context limit:\s*(\d+)\s*\+\s*(\d+)\s*>\s*(\d+)", re.I)
_DEPRECATED_PARAM = re.compile(r"`?([A-Za-z_][\w.]*)`? is (?:deprecated|not supported) (?:for|with|on) this model", re.I)
_EXTRA_INPUT = re.compile(r"(?:^|[\s`'\"])([A-Za-z_][\w.]*)`?:\s*Extra inputs are not permitted", re.I)
#: Wire name -> modelprov option name, for the options modelprov itself puts on the wire.
_OPTION_OF = {
    "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "stop_sequences": "stop",
    "thinking": "reasoning", "output_config.effort": "reasoning", "cache_control": "cache",
}  # fmt: skip
#: Wire names that are never a droppable option.
_CORE = {"model", "messages", "max_tokens", "stream", "system", "tools"}


def unsupported_from_message(message: str) -> Optional[Tuple[str, str]]:
    """``(option, wire name)`` when a 400 message says a request field is not taken, else ``None``."""
    m = _DEPRECATED_PARAM.search(message) or _EXTRA_INPUT.search(message)
    if m is None:
        return None
    wire = m.group(1)
    option = _OPTION_OF.get(wire)
    if option is None and ("." in wire or wire in _CORE):
        return None
    return option or wire, wire


def _hint_for_code(code: str, details: Mapping[str, Any], default: str) -> str:
    if code == "image_dimensions_too_large":
        side = details.get("max_side_length_pixels")
        paths = details.get("paths")
        where = f" ({', '.join(str(p) for p in paths[:5])})" if isinstance(paths, list) and paths else ""
        limit = f" {side} px" if isinstance(side, int) else " the limit"
        return f"Scale the images{where} so that neither side exceeds{limit}, or leave them out"
    if code == "organization_on_hold" and isinstance(details.get("appeal_url"), str):
        return f"{default}; appeal at {details['appeal_url']}"
    return default


def error_from_type(
    error_type: Optional[str],
    message: str,
    *,
    provider: str,
    status: Optional[int] = None,
    request_id: Optional[str] = None,
    details: Optional[Mapping[str, Any]] = None,
) -> ProviderError:
    """The exception for an Anthropic error (HTTP body or stream ``error`` event); see the module docstring."""
    kw: Dict[str, Any] = {"provider": provider, "status_code": status, "request_id": request_id}
    if error_type:
        kw["error_type"] = error_type
    code = details.get("error_code") if isinstance(details, Mapping) else None
    if isinstance(code, str) and code:
        kw["error_code"] = code
        if code == "image_dimensions_too_large":
            return InvalidRequestError(message, hint=_hint_for_code(code, details or {}, ""), **kw)
        known = _CODES.get(code)
        if known is not None:
            return known[0](message, hint=_hint_for_code(code, details or {}, known[1]), **kw)
    found = _ERROR_TYPES.get(error_type or "")
    if found is None or status in (408, 409):
        found = error_for_status(status) if status else ServerError
    cls: Type[ProviderError] = found
    if cls is InvalidRequestError:
        m = _PROMPT_TOO_LONG.search(message)
        if m:
            return TokenLimitError(message, requested=int(m.group(1)), limit=int(m.group(2)), **kw)
        m = _CONTEXT_LIMIT.search(message)
        if m:
            requested = int(m.group(1)) + int(m.group(2))
            return TokenLimitError(message, requested=requested, limit=int(m.group(3)), **kw)
        if "credit balance" in message.lower():
            return QuotaExceededError(message, **kw)
        if error_type == "request_too_large":
            kw["hint"] = "Requests are limited to 32 MB; send fewer or smaller images and documents"
        elif "cannot both be specified" in message and "top_p" in message:
            kw["hint"] = "This model takes temperature or top_p, not both; pass only one"
        elif "tool_choice forces tool use" in message:
            kw["hint"] = "Anthropic refuses thinking with a forced tool_choice ('required' or a named tool): pass reasoning='none' or tool_choice='auto'"
    elif cls is AuthenticationError:
        kw["hint"] = f"Check ANTHROPIC_API_KEY, or run: modelprov keys set {provider}"
    elif cls is ModelNotFoundError:
        kw["hint"] = f"Check the model name (modelprov models {provider} lists them)"
    elif cls is ProviderTimeoutError:
        kw["hint"] = "Anthropic timed out; retry, or stream long generations"
    return cls(message, **kw)


def error_from_body(body: Any, text: str, *, status: int, provider: str) -> Optional[ModelProvError]:
    """An HTTP error body ``{"type":"error","error":{"type","message","details"?},"request_id"}`` -> exception.

    Returns :class:`UnsupportedFeatureError` for a 400 that names a field the
    target does not take; ``None`` when the body is not Anthropic's error shape.
    """
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None
    err = body["error"]
    message = str(err.get("message") or text or f"HTTP {status}")
    rid = body.get("request_id")
    request_id = str(rid) if rid else None
    details = err.get("details") if isinstance(err.get("details"), dict) else None
    if status == 400 and not (details and details.get("error_code")):
        named = unsupported_from_message(message)
        if named is not None:
            option, wire = named
            return UnsupportedFeatureError(
                message,
                provider=provider,
                status_code=status,
                request_id=request_id,
                option=option,
                param=wire,
                hint=f"leave {option} out, or pass drop_unsupported=True to the Client to drop it automatically",
            )
    return error_from_type(err.get("type"), message, provider=provider, status=status, request_id=request_id, details=details)
