"""The Anthropic Messages wire: :mod:`.provider` (the codec), :mod:`.wire` (messages, usage, stop reasons),
:mod:`.stream` (the SSE decoder), :mod:`.errors` (error classification) and :mod:`.models` (what each model takes)."""

from .provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
