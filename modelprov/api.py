"""The module-level API: :func:`complete`, :func:`stream`, :func:`embed` and the rest on a default client.

Each function is the :class:`~modelprov.client.Client` method of the same
name called on one lazily created, process-wide client
(:func:`get_default_client`, configured from the config file and the
environment); :func:`reset_default_client` drops it and closes its
connections.
"""

from typing import Any, AsyncIterator, List, Optional, Sequence, Union

from ._singleton import Singleton
from .client import Client, Messages, Reasoning, ResponseFormat, Stop, ToolChoice, Tools
from .fallback import ChatStream
from .types import EmbeddingResponse, ModelInfo, ModelResponse, StreamChunk

__all__ = ["acomplete", "aembed", "astream", "complete", "embed", "get_default_client", "models", "reset_default_client", "stream"]

_default: Singleton[Client] = Singleton(Client, dispose=Client.close)


def get_default_client() -> Client:
    """The lazily created client behind the module-level functions."""
    return _default.get()


def reset_default_client() -> None:
    """Drop the default client (tests use this); its connections are closed."""
    _default.reset()


def complete(
    model: Optional[str], messages: Messages, *, system: Optional[str] = None, temperature: Optional[float] = None, top_p: Optional[float] = None,
    max_tokens: Optional[int] = None, stop: Stop = None, seed: Optional[int] = None, tools: Tools = None, tool_choice: ToolChoice = None,
    response_format: ResponseFormat = None, reasoning: Reasoning = None, cache: Optional[bool] = None, timeout: Optional[float] = None,
    **provider_options: Any,
) -> ModelResponse:  # fmt: skip
    """``Client().complete`` on the default client."""
    return get_default_client().complete(model, messages, system=system, temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=stop,
                                         seed=seed, tools=tools, tool_choice=tool_choice, response_format=response_format, reasoning=reasoning,
                                         cache=cache, timeout=timeout, **provider_options)  # fmt: skip


def stream(
    model: Optional[str], messages: Messages, *, system: Optional[str] = None, temperature: Optional[float] = None, top_p: Optional[float] = None,
    max_tokens: Optional[int] = None, stop: Stop = None, seed: Optional[int] = None, tools: Tools = None, tool_choice: ToolChoice = None,
    response_format: ResponseFormat = None, reasoning: Reasoning = None, cache: Optional[bool] = None, timeout: Optional[float] = None,
    **provider_options: Any,
) -> ChatStream:  # fmt: skip
    """``Client().stream`` on the default client."""
    return get_default_client().stream(model, messages, system=system, temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=stop,
                                       seed=seed, tools=tools, tool_choice=tool_choice, response_format=response_format, reasoning=reasoning,
                                       cache=cache, timeout=timeout, **provider_options)  # fmt: skip


async def acomplete(
    model: Optional[str], messages: Messages, *, system: Optional[str] = None, temperature: Optional[float] = None, top_p: Optional[float] = None,
    max_tokens: Optional[int] = None, stop: Stop = None, seed: Optional[int] = None, tools: Tools = None, tool_choice: ToolChoice = None,
    response_format: ResponseFormat = None, reasoning: Reasoning = None, cache: Optional[bool] = None, timeout: Optional[float] = None,
    **provider_options: Any,
) -> ModelResponse:  # fmt: skip
    """``Client().acomplete`` on the default client."""
    return await get_default_client().acomplete(model, messages, system=system, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                                stop=stop, seed=seed, tools=tools, tool_choice=tool_choice, response_format=response_format,
                                                reasoning=reasoning, cache=cache, timeout=timeout, **provider_options)  # fmt: skip


def astream(
    model: Optional[str], messages: Messages, *, system: Optional[str] = None, temperature: Optional[float] = None, top_p: Optional[float] = None,
    max_tokens: Optional[int] = None, stop: Stop = None, seed: Optional[int] = None, tools: Tools = None, tool_choice: ToolChoice = None,
    response_format: ResponseFormat = None, reasoning: Reasoning = None, cache: Optional[bool] = None, timeout: Optional[float] = None,
    **provider_options: Any,
) -> AsyncIterator[StreamChunk]:  # fmt: skip
    """``Client().astream`` on the default client."""
    return get_default_client().astream(model, messages, system=system, temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=stop,
                                        seed=seed, tools=tools, tool_choice=tool_choice, response_format=response_format, reasoning=reasoning,
                                        cache=cache, timeout=timeout, **provider_options)  # fmt: skip


def embed(model: Optional[str], inputs: Union[str, Sequence[str]], *, timeout: Optional[float] = None, **options: Any) -> EmbeddingResponse:
    """``Client().embed`` on the default client."""
    return get_default_client().embed(model, inputs, timeout=timeout, **options)


def models(provider: str) -> List[ModelInfo]:
    """``Client().models`` on the default client."""
    return get_default_client().models(provider)


async def aembed(model: Optional[str], inputs: Union[str, Sequence[str]], *, timeout: Optional[float] = None, **options: Any) -> EmbeddingResponse:
    """``Client().aembed`` on the default client."""
    return await get_default_client().aembed(model, inputs, timeout=timeout, **options)
