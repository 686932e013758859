"""modelprov: one small, fast, dependable interface over LLM providers.

>>> import modelprov
>>> modelprov.complete("mock/echo", "Hello").text
'Hello'

Every public name below is loaded on first use, so ``import modelprov`` costs
almost nothing and imports neither ``requests`` nor ``asyncio`` nor any
provider module. The ``modelprov`` logger has a ``NullHandler`` (attached by
the first module that logs).
"""

from ._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

__all__ = [
    "AsyncBridge",
    "AuthenticationError",
    "BatchJob",
    "BatchStatus",
    "ChatRequest",
    "ChatStream",
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitState",
    "Client",
    "ConfigManager",
    "ConfigurationError",
    "ContentFilterError",
    "ConversationLog",
    "EmbeddingResponse",
    "ErrorCategory",
    "ImagePart",
    "InvalidRequestError",
    "Message",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelProvError",
    "ModelProvider",
    "ModelResponse",
    "OverloadedError",
    "PermissionDeniedError",
    "ProviderCapabilities",
    "ProviderConfig",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderPart",
    "ProviderRegistry",
    "ProviderStream",
    "ProviderTimeoutError",
    "QuotaExceededError",
    "RateLimitError",
    "RateLimiter",
    "ReasoningDelta",
    "ReasoningPart",
    "ResponseError",
    "RetryPolicy",
    "ServerError",
    "StreamChunk",
    "TextPart",
    "TokenLimitError",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "UnsupportedFeatureError",
    "Usage",
    "UsageSnapshot",
    "UsageTotals",
    "ValidationError",
    "__version__",
    "acomplete",
    "aembed",
    "astream",
    "classify",
    "collect",
    "complete",
    "embed",
    "get_config",
    "get_registry",
    "models",
    "stream",
]

_EXC = "exceptions"
_TYPES = "types"
_LAZY = {
    "BatchJob": "batch_jobs",
    "BatchStatus": "batch_jobs",
    "ConversationLog": "conversation_log",
    "RateLimiter": "ratelimit",
    "UsageSnapshot": "usage",
    "UsageTotals": "usage",
    "AsyncBridge": "async_bridge",
    "ChatRequest": _TYPES,
    "ChatStream": "fallback",
    "CircuitBreaker": "circuit_breaker",
    "CircuitState": "circuit_breaker",
    "Client": "client",
    "ConfigManager": "config",
    "EmbeddingResponse": _TYPES,
    "ErrorCategory": _EXC,
    "ImagePart": _TYPES,
    "Message": _TYPES,
    "ModelInfo": _TYPES,
    "ModelProvider": "providers.base",
    "ModelResponse": _TYPES,
    "ProviderCapabilities": _TYPES,
    "ProviderConfig": _TYPES,
    "ProviderPart": _TYPES,
    "ProviderRegistry": "registry",
    "ProviderStream": "stream_handle",
    "ReasoningDelta": _TYPES,
    "ReasoningPart": _TYPES,
    "RetryPolicy": "retry",
    "StreamChunk": _TYPES,
    "TextPart": _TYPES,
    "Tool": _TYPES,
    "ToolCall": _TYPES,
    "ToolCallDelta": _TYPES,
    "Usage": _TYPES,
    "acomplete": "api",
    "aembed": "api",
    "astream": "api",
    "classify": _EXC,
    "collect": "_collect",
    "complete": "api",
    "embed": "api",
    "get_config": "config",
    "get_registry": "registry",
    "models": "api",
    "stream": "api",
}
for _name in __all__:
    if _name.endswith("Error") and _name not in _LAZY:
        _LAZY[_name] = _EXC


def __getattr__(name: "str") -> "object":
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelprov' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module("." + module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ._collect import collect
    from .api import acomplete, aembed, astream, complete, embed, models, stream
    from .async_bridge import AsyncBridge
    from .batch_jobs import BatchJob, BatchStatus
    from .circuit_breaker import CircuitBreaker, CircuitState
    from .client import Client
    from .config.manager import ConfigManager, get_config
    from .conversation_log import ConversationLog
    from .exceptions import (
        AuthenticationError,
        CircuitBreakerError,
        ConfigurationError,
        ContentFilterError,
        ErrorCategory,
        InvalidRequestError,
        ModelNotFoundError,
        ModelProvError,
        OverloadedError,
        PermissionDeniedError,
        ProviderConnectionError,
        ProviderError,
        ProviderTimeoutError,
        QuotaExceededError,
        RateLimitError,
        ResponseError,
        ServerError,
        TokenLimitError,
        UnsupportedFeatureError,
        ValidationError,
        classify,
    )
    from .fallback import ChatStream
    from .providers.base import ModelProvider
    from .ratelimit import RateLimiter
    from .registry import ProviderRegistry, get_registry
    from .retry import RetryPolicy
    from .stream_handle import ProviderStream
    from .types import (
        ChatRequest,
        EmbeddingResponse,
        ImagePart,
        Message,
        ModelInfo,
        ModelResponse,
        ProviderCapabilities,
        ProviderConfig,
        StreamChunk,
        TextPart,
        Tool,
        ToolCall,
        ToolCallDelta,
        Usage,
    )
    from .usage import UsageSnapshot, UsageTotals
