"""The OpenAI Chat Completions wire: OpenAI, OpenRouter and OpenAI-compatible servers.

:mod:`.codec` holds the shared codec, :mod:`.stream` its stream decoder,
:mod:`.wire` the response helpers, :mod:`.errors` the error mapping and
:mod:`.options` what each OpenAI model takes; :mod:`.openai`,
:mod:`.openrouter` and :mod:`.compatible` are the three providers.
"""

from .codec import OpenAICompatProvider
from .compatible import OpenAICompatibleProvider
from .openai import OpenAIProvider
from .openrouter import OpenRouterProvider

__all__ = ["OpenAICompatProvider", "OpenAICompatibleProvider", "OpenAIProvider", "OpenRouterProvider"]
