"""The Ollama ``/api/chat`` wire: :mod:`.provider` (the codec) and :mod:`.wire` (messages, options, NDJSON decoder)."""

from .provider import OllamaProvider

__all__ = ["OllamaProvider"]
