"""``OpenAIProvider``: OpenAI's Chat Completions, Embeddings and Models APIs.

The wire codec lives in :mod:`.codec`; this module adds what is
OpenAI's own:

* the ``OpenAI-Organization`` / ``OpenAI-Project`` headers (config options
  ``organization`` and ``project``) and ``max_completion_tokens`` instead of
  the deprecated ``max_tokens``;
* ``developer`` messages are sent with the ``developer`` role (OpenAI's
  instruction role for o1 and later; ``system`` keeps working too);
* ``reasoning`` -> ``reasoning_effort``: the seven efforts as given, a token
  budget mapped to the nearest effort (see :mod:`.options`). Chat
  Completions returns no reasoning text, only
  ``usage.reasoning_tokens``, and takes no reasoning back, so reasoning parts
  in the history are not sent;
* ``cache=True`` is ignored: OpenAI caches prompts of 1,024+ tokens
  automatically (cache reads are reported as ``usage.cache_read_tokens``);
* options documented as refused by a model, and Responses-only models, fail
  before any I/O (see :mod:`.options`); options refused at run time
  (``unsupported_value`` / ``unsupported_parameter``) are
  :class:`~modelprov.exceptions.UnsupportedFeatureError`, left out and
  remembered with ``drop_unsupported``;
* ``GET /models`` ``shutdown_date`` -> ``ModelInfo.retirement_date``.
"""

from typing import ClassVar, Dict, Optional, Tuple

from ...exceptions import AuthenticationError, InvalidRequestError, ModelProvError, UnsupportedFeatureError
from ...types import ChatRequest, ProviderCapabilities
from .codec import OPENAI_WIRE_CAPABILITIES, OpenAICompatProvider
from .options import model_rules, openai_unsupported

__all__ = ["OpenAIProvider"]


class OpenAIProvider(OpenAICompatProvider):
    """OpenAI (``https://api.openai.com/v1``); key from ``OPENAI_API_KEY``; default model ``gpt-5.4-mini``.

    Config options: ``organization`` and ``project`` become the
    ``OpenAI-Organization`` and ``OpenAI-Project`` headers.
    """

    name: ClassVar[str] = "openai"
    capabilities: ClassVar[ProviderCapabilities] = OPENAI_WIRE_CAPABILITIES
    default_base_url: ClassVar[Optional[str]] = "https://api.openai.com/v1"
    default_model: ClassVar[Optional[str]] = "gpt-5.4-mini"
    api_key_env: ClassVar[Tuple[str, ...]] = ("OPENAI_API_KEY",)
    base_url_env: ClassVar[Tuple[str, ...]] = ("OPENAI_BASE_URL",)
    requires_api_key: ClassVar[bool] = True
    stream_format: ClassVar[str] = "sse"
    max_tokens_field = "max_completion_tokens"
    developer_role = "developer"

    def unsupported_options(self, req: ChatRequest) -> Dict[str, str]:
        """Options OpenAI documents as refused by ``req.model``; a Responses-only model raises.

        Raises :class:`UnsupportedFeatureError` (before any I/O) for a model
        that answers only on ``/v1/responses``.
        """
        if model_rules(req.model)[0]:
            raise UnsupportedFeatureError(
                f"{req.model} answers only on OpenAI's /v1/responses; modelprov speaks Chat Completions (/v1/chat/completions)",
                provider=self.instance_name,
                model=req.model,
                hint="use a Chat Completions model instead, e.g. gpt-5.4 or gpt-5.4-mini",
            )
        if req.temperature is None and req.top_p is None and not req.stop:
            return {}  # the plain path: nothing to check
        return openai_unsupported(req.model, req.temperature, req.top_p, req.stop, req.reasoning)

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

    def error_hint(self, exc: ModelProvError, message: str) -> Optional[str]:
        """Hints for OpenAI's own failure modes."""
        name = self.instance_name
        if isinstance(exc, AuthenticationError):
            return f"Check the key: set OPENAI_API_KEY or run: modelprov keys set {name}"
        if type(exc) is InvalidRequestError and "unrecognized request argument" in message.lower():
            return "OpenAI rejects parameters it does not know; remove it from the call's extra options"
        return None
