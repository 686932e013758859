"""``OpenAICompatibleProvider``: any server speaking OpenAI's Chat Completions API.

vLLM, llama.cpp's ``llama-server``, LM Studio, Ollama's ``/v1`` layer and
gateways. Point ``base_url`` at the server's ``.../v1``; the key is optional
(``Authorization: Bearer`` is sent only when one is configured). Follows the
portability rules of WIRE.md §7.4: ``max_tokens`` (not OpenAI's newer name),
integer error codes, flat vLLM errors, and a stream that closes after a
``finish_reason`` without ``[DONE]`` counts as complete.

Roles and options: ``developer`` messages are sent as ``system`` (many
servers' chat templates reject the ``developer`` role); ``reasoning`` is sent
as ``reasoning_effort`` (the effort as given, a token budget mapped to the
nearest effort as for OpenAI), which vLLM, llama.cpp and Ollama's ``/v1``
accept (what a given model does with it depends on its chat template);
``cache=True`` is ignored (these servers reuse their prompt cache by
themselves). Reasoning text that comes back as ``reasoning_content`` (vLLM,
llama.cpp) or ``reasoning`` (Ollama ``/v1``) becomes a ``ReasoningPart``; it
is not sent back (no portable field takes it).

Capabilities describe the protocol; what a given server really supports
depends on its model and flags. A named instance can switch features off with
the ``capabilities`` option (``{"tools": False}`` or ``"tools=false,vision=false"``)
so that calls needing them fail with ``UnsupportedFeatureError`` before any I/O.
``reasoning=false`` there marks the ``reasoning`` option as not taken: it is
refused before any I/O, or left out with ``drop_unsupported``.
"""

import dataclasses
from typing import Any, ClassVar, Dict, Iterable, List, Mapping, Optional, Tuple

from ...exceptions import AuthenticationError, ConfigurationError, ModelNotFoundError, ModelProvError
from ...types import ChatRequest, ProviderCapabilities, ProviderConfig
from .codec import OPENAI_WIRE_CAPABILITIES, OpenAICompatProvider

__all__ = ["OpenAICompatibleProvider"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
#: Switches the ``capabilities`` option takes besides the ProviderCapabilities fields: chat options.
_OPTION_SWITCHES = ("reasoning",)


def _capability_overrides(value: Any, provider: str) -> Dict[str, bool]:
    if value is None or value == "":
        return {}
    items: Iterable[Tuple[Any, Any]]
    if isinstance(value, str):
        pairs: List[Tuple[str, str]] = []
        for item in value.split(","):
            if item.strip():
                key, sep, flag = item.partition("=")
                pairs.append((key.strip(), flag.strip().lower() if sep else "true"))
        items = pairs
    elif isinstance(value, Mapping):
        items = value.items()
    else:
        raise ConfigurationError(f"the capabilities option of {provider} must be a mapping or 'name=bool,...'", provider=provider)
    known = {f.name for f in dataclasses.fields(ProviderCapabilities)} | set(_OPTION_SWITCHES)
    out: Dict[str, bool] = {}
    for key, flag in items:
        if key not in known:
            raise ConfigurationError(f"unknown capability {key!r} for {provider}", provider=provider, hint=f"known: {', '.join(sorted(known))}")
        if isinstance(flag, str):
            if flag not in _TRUE + _FALSE:
                raise ConfigurationError(f"capability {key!r} of {provider} must be true or false, not {flag!r}", provider=provider)
            out[key] = flag in _TRUE
        else:
            out[key] = bool(flag)
    return out


class OpenAICompatibleProvider(OpenAICompatProvider):
    """A generic OpenAI-compatible server (default ``http://localhost:8000/v1``, vLLM's)."""

    name: ClassVar[str] = "openai_compatible"
    capabilities: ClassVar[ProviderCapabilities] = OPENAI_WIRE_CAPABILITIES
    default_base_url: ClassVar[Optional[str]] = "http://localhost:8000/v1"
    default_model: ClassVar[Optional[str]] = None
    api_key_env: ClassVar[Tuple[str, ...]] = ()
    base_url_env: ClassVar[Tuple[str, ...]] = ()
    requires_api_key: ClassVar[bool] = False
    stream_format: ClassVar[str] = "sse"
    require_done = False

    def __init__(self, config: Optional[ProviderConfig] = None) -> None:
        super().__init__(config)
        overrides = _capability_overrides(self.config.option("capabilities"), self.instance_name)
        #: Chat options this server is configured not to take (``capabilities`` switches set to false).
        self._refused_options = {k: f"the {self.instance_name} server is configured without it (capabilities option)"
                                 for k in _OPTION_SWITCHES if overrides.pop(k, True) is False}  # fmt: skip
        if overrides:
            # A per-instance override of the class-level capabilities, from the capabilities option.
            self.capabilities = dataclasses.replace(type(self).capabilities, **overrides)  # type: ignore[misc]

    def unsupported_options(self, req: ChatRequest) -> Dict[str, str]:
        """The chat options switched off with the ``capabilities`` option (e.g. ``reasoning=false``)."""
        return self._refused_options

    def error_hint(self, exc: ModelProvError, message: str) -> Optional[str]:
        """Hints for self-hosted servers (served model names, keys, base URL)."""
        name = self.instance_name
        if isinstance(exc, ModelNotFoundError):
            return (
                f"Check the served model name (modelprov models {name}, or GET {self.config.base_url}/models) "
                "and that base_url includes the API prefix, e.g. http://localhost:8000/v1"
            )
        if isinstance(exc, AuthenticationError):
            return f"The server was started with an API key; set it with: modelprov keys set {name}"
        return None
