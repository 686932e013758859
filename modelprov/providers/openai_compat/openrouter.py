"""``OpenRouterProvider``: OpenRouter's OpenAI-shaped API (``https://openrouter.ai/api/v1``).

Adds the app-attribution headers (config options ``app_url`` ->
``HTTP-Referer``, ``app_title`` -> ``X-OpenRouter-Title`` and the older
``X-Title``). OpenRouter's extras (``provider``, ``models``, ``route``,
``transforms``, ``plugins``, ``top_k`` ...) pass through as provider options
at the top level of the body. Its error shapes (integer ``code``,
``metadata.error_type``, ``availability``) and mid-stream
``finish_reason: "error"`` are handled by the shared codec. Where it differs
from OpenAI (OpenRouter docs, ``OpenRouterTeam/docs``; WIRE.md §5.7):

* ``developer`` messages are sent as ``system`` (the upstream model may not
  know the ``developer`` role);
* ``reasoning`` -> ``reasoning: {"effort": ...}`` for an effort (``"none"``
  included) or ``{"max_tokens": N}`` for a token budget, never both;
* answers carry ``reasoning`` and ``reasoning_details``, kept in a
  :class:`~modelprov.types.ReasoningPart` (``details``); an assistant turn
  sent back to this instance carries them as ``reasoning_details``, unchanged
  and in order (needed for Claude thinking with tools); parts from other
  providers are dropped;
* no ``stream_options.include_usage`` (a deprecated no-op: usage, with its
  ``cost`` in USD, always arrives);
* ``cache=True`` adds the top-level ``cache_control: {"type": "ephemeral"}``
  ("automatic caching", guides/best-practices/prompt-caching.mdx) for
  ``anthropic/`` models only; other models cache by themselves;
* ``GET /models`` ``expiration_date`` -> ``ModelInfo.retirement_date``.
"""

from typing import Any, ClassVar, Dict, Optional, Tuple

from ...exceptions import AuthenticationError, ModelNotFoundError, ModelProvError, QuotaExceededError
from ...types import ChatRequest, ProviderCapabilities
from .codec import OPENAI_WIRE_CAPABILITIES, OpenAICompatProvider

__all__ = ["OpenRouterProvider"]


class OpenRouterProvider(OpenAICompatProvider):
    """OpenRouter; key from ``OPENROUTER_API_KEY``; models named ``vendor/model`` (e.g. ``anthropic/claude-sonnet-5``).

    Config options: ``app_url`` and ``app_title`` for app attribution.
    """

    name: ClassVar[str] = "openrouter"
    capabilities: ClassVar[ProviderCapabilities] = OPENAI_WIRE_CAPABILITIES
    default_base_url: ClassVar[Optional[str]] = "https://openrouter.ai/api/v1"
    default_model: ClassVar[Optional[str]] = None
    api_key_env: ClassVar[Tuple[str, ...]] = ("OPENROUTER_API_KEY",)
    base_url_env: ClassVar[Tuple[str, ...]] = ()
    requires_api_key: ClassVar[bool] = True
    stream_format: ClassVar[str] = "sse"
    stream_usage_option = False
    sends_reasoning_details = True
    retirement_field = "expiration_date"

    def reasoning_fields(self, reasoning: Any) -> Dict[str, Any]:
        """``reasoning: {"effort": e}`` for an effort string, ``{"max_tokens": n}`` for a budget."""
        if isinstance(reasoning, str):
            return {"reasoning": {"effort": reasoning}}
        return {"reasoning": {"max_tokens": reasoning}}

    def cache_fields(self, req: ChatRequest) -> Dict[str, Any]:
        """Top-level ``cache_control`` for Anthropic models (they cache only when asked); nothing otherwise."""
        model = req.model.lstrip("~")
        if model.startswith("anthropic/"):
            return {"cache_control": {"type": "ephemeral"}}
        return {}

    def auth_headers(self) -> Dict[str, str]:
        """Bearer key plus ``HTTP-Referer`` / ``X-OpenRouter-Title`` / ``X-Title`` when configured."""
        headers = super().auth_headers()
        url = self.config.option("app_url")
        title = self.config.option("app_title")
        if url:
            headers["HTTP-Referer"] = str(url)
        if title:
            headers["X-OpenRouter-Title"] = str(title)
            headers["X-Title"] = str(title)
        return headers

    def error_hint(self, exc: ModelProvError, message: str) -> Optional[str]:
        """Hints for OpenRouter's failure modes."""
        name = self.instance_name
        if isinstance(exc, QuotaExceededError):
            return "The OpenRouter account or key is out of credits; add credits or raise the key's limit"
        if isinstance(exc, AuthenticationError):
            return f"Check the key: set OPENROUTER_API_KEY or run: modelprov keys set {name}"
        if isinstance(exc, ModelNotFoundError):
            return f"OpenRouter model ids look like 'vendor/model'; list them with: modelprov models {name}"
        return None
