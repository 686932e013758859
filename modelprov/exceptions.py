"""The modelprov exception tree, ``classify()`` and friendly messages.

Standard library only::

    ModelProvError
      ConfigurationError        missing key, bad config file, unknown provider/model
      ValidationError           bad input caught before any I/O (also a ValueError)
      UnsupportedFeatureError   a provider lacks a capability the call needs
      ProviderError             .provider .status_code .request_id .retryable .hint
        AuthenticationError       401
        PermissionDeniedError     403
        ModelNotFoundError        404, "model not found"
        InvalidRequestError       400, 413, 422
          TokenLimitError           context window exceeded (.limit, .requested)
          ContentFilterError        refused by the provider's safety filter
        RateLimitError            429 (.retry_after seconds)
          QuotaExceededError        out of credits / insufficient quota (not retryable)
        ServerError               5xx
          OverloadedError           529 / 503 overloaded
        ProviderConnectionError   DNS, refused, TLS, reset
        ProviderTimeoutError      connect or read timeout, idle or total deadline
        ResponseError             malformed body, stream ended early, bad JSON
      CircuitBreakerError       breaker open (.retry_after)

Every exception takes keyword context (``provider``, ``status_code``,
``request_id``, ``retryable``, ``retry_after``, ``hint``), renders a one-line
message through the redactor (no secret ever reaches ``str(exc)``), and
pickles with all of its fields.
"""

import enum
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

from ._redact import redact

__all__ = [
    "AuthenticationError",
    "CircuitBreakerError",
    "ConfigurationError",
    "ContentFilterError",
    "ErrorCategory",
    "InvalidRequestError",
    "ModelNotFoundError",
    "ModelProvError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "QuotaExceededError",
    "RateLimitError",
    "ResponseError",
    "ServerError",
    "TokenLimitError",
    "UnsupportedFeatureError",
    "ValidationError",
    "classify",
    "error_for_status",
]

_MAX_MESSAGE = 500


class ErrorCategory(str, enum.Enum):
    """Coarse class of a failure, for dashboards, fallbacks and retry logic."""

    AUTH = "auth"
    INVALID_REQUEST = "invalid_request"
    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"
    TRANSIENT = "transient"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    SERVER = "server"
    CIRCUIT_OPEN = "circuit_open"
    UNKNOWN = "unknown"


def _short(text: Any) -> str:
    s = redact(text if text is not None else "")
    s = " ".join(s.split())
    if len(s) > _MAX_MESSAGE:
        s = s[: _MAX_MESSAGE - 3] + "..."
    return s


class ModelProvError(Exception):
    """Base of every error modelprov raises.

    :param message: what went wrong, in one line (redacted and shortened).
    :param provider: provider name, when one is involved.
    :param status_code: HTTP status, when there was a response.
    :param request_id: the provider's request id header, when there was one.
    :param retryable: overrides the class default for retry decisions.
    :param retry_after: seconds the server asked us to wait, when it did.
    :param hint: one short sentence saying what to do about it.
    """

    #: Whether an error of this class is worth retrying by default.
    default_retryable = False
    #: The default hint, used when none is given.
    default_hint: Optional[str] = None
    category = ErrorCategory.UNKNOWN

    def __init__(
        self,
        message: str = "",
        *,
        provider: Optional[str] = None,
        status_code: Optional[int] = None,
        request_id: Optional[str] = None,
        retryable: Optional[bool] = None,
        retry_after: Optional[float] = None,
        hint: Optional[str] = None,
        **extra: Any,
    ) -> None:
        self.message = _short(message) or self.__class__.__name__
        self.provider = provider
        self.status_code = status_code
        self.request_id = request_id
        self.retryable = self.default_retryable if retryable is None else bool(retryable)
        self.retry_after = retry_after
        self.hint = _short(hint) if hint else self.default_hint
        #: Attempts made before this error was raised (filled by retry/fallback).
        self.attempts: List[Dict[str, Any]] = list(extra.pop("attempts", None) or [])
        #: Selected response headers (retry hints), never credentials.
        self.headers: Dict[str, str] = dict(extra.pop("headers", None) or {})
        self.extra: Dict[str, Any] = extra
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = []
        if self.provider:
            parts.append(f"[{self.provider}]")
        parts.append(self.message)
        ctx = []
        if self.status_code is not None:
            ctx.append(f"HTTP {self.status_code}")
        if self.request_id:
            ctx.append(f"request id {self.request_id}")
        if self.retry_after is not None:
            ctx.append(f"retry after {self.retry_after:g}s")
        if ctx:
            parts.append("(" + ", ".join(ctx) + ")")
        text = " ".join(parts)
        if self.hint:
            hint = self.hint.strip()
            text += f". {hint[0].upper()}{hint[1:]}" + ("" if hint[-1] in ".?!" else ".")
        return redact(text)

    def __repr__(self) -> str:
        fields = [repr(self.message)]
        for name in ("provider", "status_code", "request_id", "retry_after"):
            value = getattr(self, name)
            if value is not None:
                fields.append(f"{name}={value!r}")
        return redact(f"{self.__class__.__name__}({', '.join(fields)})")

    def _state(self) -> Dict[str, Any]:
        state = dict(
            provider=self.provider,
            status_code=self.status_code,
            request_id=self.request_id,
            retryable=self.retryable,
            retry_after=self.retry_after,
            hint=self.hint,
            attempts=self.attempts,
            headers=self.headers,
        )
        state.update(self.extra)
        return state

    def __reduce__(self) -> Tuple[Callable[..., "ModelProvError"], Tuple[Any, ...]]:
        return (_rebuild, (self.__class__, self.message, self._state()))

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-friendly view of the error (for ``--json`` output and hooks)."""
        d = {"type": self.__class__.__name__, "message": self.message, "category": classify(self).value}
        for k, v in self._state().items():
            if v not in (None, [], {}):
                d[k] = v
        return d


def _rebuild(cls: Type[ModelProvError], message: str, state: Dict[str, Any]) -> ModelProvError:
    return cls(message, **state)


class ConfigurationError(ModelProvError):
    """Missing key, bad config file, unknown provider or model."""

    category = ErrorCategory.INVALID_REQUEST


class ValidationError(ModelProvError, ValueError):
    """Bad input (messages, options) detected before any I/O."""

    category = ErrorCategory.INVALID_REQUEST


class UnsupportedFeatureError(ModelProvError):
    """The provider does not support a feature the call asked for."""

    category = ErrorCategory.INVALID_REQUEST


class ProviderError(ModelProvError):
    """An error reported by, or while talking to, a provider."""

    category = ErrorCategory.UNKNOWN


class AuthenticationError(ProviderError):
    """401: the key is missing, wrong or revoked."""

    category = ErrorCategory.AUTH
    default_hint = "Check the API key (modelprov keys set NAME, or the provider's *_API_KEY variable)"


class PermissionDeniedError(ProviderError):
    """403: the key is valid but not allowed to do this."""

    category = ErrorCategory.AUTH
    default_hint = "The key lacks access to this model or region; check the account's permissions"


class ModelNotFoundError(ProviderError):
    """404: the model does not exist or the key cannot see it."""

    category = ErrorCategory.INVALID_REQUEST
    default_hint = "Check the model name (modelprov models PROVIDER lists them)"


class InvalidRequestError(ProviderError):
    """400/413/422: the provider rejected the request as malformed."""

    category = ErrorCategory.INVALID_REQUEST


class TokenLimitError(InvalidRequestError):
    """The prompt plus ``max_tokens`` exceed the model's context window."""

    default_hint = "Shorten the conversation or lower max_tokens"

    def __init__(self, message: str = "", *, limit: Optional[int] = None, requested: Optional[int] = None, **kw: Any):
        super().__init__(message, **kw)
        self.limit = limit
        self.requested = requested

    def _state(self) -> Dict[str, Any]:
        state = super()._state()
        state.update(limit=self.limit, requested=self.requested)
        return state


class ContentFilterError(InvalidRequestError):
    """The provider's safety system refused the input or the output."""

    default_hint = "Rephrase the request; the provider's content filter refused it"


class RateLimitError(ProviderError):
    """429: too many requests; ``retry_after`` holds the server's wait."""

    category = ErrorCategory.RATE_LIMIT
    default_retryable = True
    default_hint = "Slow down or retry later"


class QuotaExceededError(RateLimitError):
    """Out of credits or quota: waiting will not help."""

    category = ErrorCategory.QUOTA
    default_retryable = False
    default_hint = "The account is out of credit or quota; check billing"


class ServerError(ProviderError):
    """5xx from the provider."""

    category = ErrorCategory.SERVER
    default_retryable = True


class OverloadedError(ServerError):
    """529 or 503: the provider is overloaded."""

    category = ErrorCategory.TRANSIENT
    default_hint = "The provider is overloaded; retry later or configure a fallback"


class ProviderConnectionError(ProviderError):
    """DNS failure, connection refused or reset, TLS failure."""

    category = ErrorCategory.CONNECTION
    default_retryable = True


class ProviderTimeoutError(ProviderError):
    """Connect or read timeout, or an idle/total deadline that ran out."""

    category = ErrorCategory.TIMEOUT
    default_retryable = True


class ResponseError(ProviderError):
    """A malformed body, bad JSON, or a stream that ended early."""

    category = ErrorCategory.SERVER


class CircuitBreakerError(ModelProvError):
    """The provider's circuit breaker is open; ``retry_after`` says for how long."""

    category = ErrorCategory.CIRCUIT_OPEN
    default_hint = "Too many recent failures; calls are paused to let the provider recover"


def classify(exc: BaseException) -> ErrorCategory:
    """Return the :class:`ErrorCategory` of any exception (``UNKNOWN`` if foreign)."""
    if isinstance(exc, ModelProvError):
        return exc.category
    if isinstance(exc, TimeoutError):
        return ErrorCategory.TIMEOUT
    if isinstance(exc, ConnectionError):
        return ErrorCategory.CONNECTION
    return ErrorCategory.UNKNOWN


_STATUS_MAP: Dict[int, Type[ProviderError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: QuotaExceededError,
    403: PermissionDeniedError,
    404: ModelNotFoundError,
    408: ProviderTimeoutError,
    409: ServerError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
    503: OverloadedError,
    529: OverloadedError,
}


def error_for_status(status: int) -> Type[ProviderError]:
    """The exception class for an HTTP status, before provider-specific refinement."""
    cls = _STATUS_MAP.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return InvalidRequestError
    return ResponseError
