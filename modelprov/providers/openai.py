"""``OpenAIProvider``: OpenAI's Chat Completions, Embeddings and Models APIs.

The wire codec lives in :mod:`._openai_compat`; this module adds what is
OpenAI's own: the ``OpenAI-Organization`` / ``OpenAI-Project`` headers (config
options ``organization`` and ``project``), ``max_completion_tokens`` instead of
the deprecated ``max_tokens``, and hints for OpenAI's error messages.
"""

from typing import ClassVar, Dict, Optional, Tuple

from ..exceptions import AuthenticationError, InvalidRequestError, ProviderError
from ..types import ProviderCapabilities
from ._openai_compat import OPENAI_WIRE_CAPABILITIES, OpenAICompatProvider

__all__ = ["OpenAIProvider"]


class OpenAIProvider(OpenAICompatProvider):
    """OpenAI (``https://api.openai.com/v1``); key from ``OPENAI_API_KEY``.

    Config options: ``organization`` and ``project`` become the
    ``OpenAI-Organization`` and ``OpenAI-Project`` headers.
    """

    name: ClassVar[str] = "openai"
    capabilities: ClassVar[ProviderCapabilities] = OPENAI_WIRE_CAPABILITIES
    default_base_url: ClassVar[Optional[str]] = "https://api.openai.com/v1"
    default_model: ClassVar[Optional[str]] = "gpt-4o-mini"
    api_key_env: ClassVar[Tuple[str, ...]] = ("OPENAI_API_KEY",)
    base_url_env: ClassVar[Tuple[str, ...]] = ("OPENAI_BASE_URL",)
    requires_api_key: ClassVar[bool] = True
    stream_format: ClassVar[str] = "sse"
    max_tokens_field = "max_completion_tokens"

    def auth_headers(self) -> Dict[str, str]:
        """Bearer key plus the optional organization and project headers."""
        headers = super().auth_headers()
        org = self.config.option("organization")
        project = self.config.option("project")
        if org:
            headers["OpenAI-Organization"] = str(org)
        if project:
            headers["OpenAI-Project"] = str(project)
        return headers

    def error_hint(self, exc: ProviderError, message: str) -> Optional[str]:
        """Hints for OpenAI's own failure modes."""
        name = self.instance_name
        if isinstance(exc, AuthenticationError):
            return f"Check the key: set OPENAI_API_KEY or run: modelprov keys set {name}"
        if type(exc) is InvalidRequestError and "unrecognized request argument" in message.lower():
            return "OpenAI rejects parameters it does not know; remove it from the call's extra options"
        return None
