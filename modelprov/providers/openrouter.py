"""``OpenRouterProvider``: OpenRouter's OpenAI-shaped API (``https://openrouter.ai/api/v1``).

Adds the app-attribution headers (config options ``app_url`` ->
``HTTP-Referer``, ``app_title`` -> ``X-OpenRouter-Title`` and the older
``X-Title``). OpenRouter's extras (``provider``, ``models``, ``route``,
``transforms``, ``plugins``, ``reasoning``, ``top_k`` ...) pass through as
provider options at the top level of the body. Its error shapes (integer
``code``, ``metadata.error_type``, ``availability``) and mid-stream
``finish_reason: "error"`` are handled by the shared codec.
"""

from typing import ClassVar, Dict, Optional, Tuple

from ..exceptions import AuthenticationError, ModelNotFoundError, ProviderError, QuotaExceededError
from ..types import ProviderCapabilities
from ._openai_compat import OPENAI_WIRE_CAPABILITIES, OpenAICompatProvider

__all__ = ["OpenRouterProvider"]


class OpenRouterProvider(OpenAICompatProvider):
    """OpenRouter; key from ``OPENROUTER_API_KEY``; models named ``vendor/model``.

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

    def error_hint(self, exc: ProviderError, message: str) -> Optional[str]:
        """Hints for OpenRouter's failure modes."""
        name = self.instance_name
        if isinstance(exc, QuotaExceededError):
            return "The OpenRouter account or key is out of credits; add credits or raise the key's limit"
        if isinstance(exc, AuthenticationError):
            return f"Check the key: set OPENROUTER_API_KEY or run: modelprov keys set {name}"
        if isinstance(exc, ModelNotFoundError):
            return f"OpenRouter model ids look like 'vendor/model'; list them with: modelprov models {name}"
        return None
