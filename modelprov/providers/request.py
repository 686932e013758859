"""Validation of chat-call arguments into a :class:`~modelprov.types.ChatRequest`.

Everything a user can pass to ``generate``/``stream``/``complete`` is checked
here, before any I/O, with errors that name the argument at fault.
"""

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ..exceptions import ConfigurationError, ValidationError
from ..messages import MessageInput, Tool
from ..types import REASONING_EFFORTS, ChatRequest
from ..validation import normalize_messages, normalize_tools

__all__ = [
    "DROPPABLE_FIELDS",
    "build_chat_request_object",
    "drop_option",
    "normalize_reasoning",
    "normalize_response_format",
    "normalize_tool_choice",
    "option_present",
    "option_value",
    "pop_timeout",
]


def _number(name: str, value: Any, lo: float, hi: float) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValidationError(f"{name} must be a number, not {value!r}")
    if not lo <= value <= hi:
        raise ValidationError(f"{name} must be between {lo:g} and {hi:g}, not {value!r}")
    return float(value)


def _int(name: str, value: Any, lo: int) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer, not {value!r}")
    if value < lo:
        raise ValidationError(f"{name} must be >= {lo}, not {value!r}")
    return value


def _stop(value: Any) -> Optional[List[str]]:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) and s for s in items):
        raise ValidationError("stop must be a non-empty string or a list of non-empty strings")
    return list(items) or None


def normalize_reasoning(value: Any) -> Union[str, int, None]:
    """``None``, an effort from :data:`~modelprov.types.REASONING_EFFORTS` or a positive token budget."""
    if value is None:
        return None
    if isinstance(value, str):
        effort = value.strip().lower()
        if effort in REASONING_EFFORTS:
            return effort
    elif isinstance(value, int) and not isinstance(value, bool):
        if value >= 1:
            return value
        raise ValidationError(f"reasoning as a token budget must be a positive integer, not {value!r}")
    raise ValidationError(
        f"reasoning must be one of {', '.join(REASONING_EFFORTS)} or a token budget (int), not {value!r}"
    )


def normalize_tool_choice(choice: Any, tools: Optional[List[Tool]]) -> Union[str, Dict[str, Any], None]:
    """``"auto" | "none" | "required" | {"name": X}`` from the shapes users pass."""
    if choice is None:
        return None
    name: Optional[str] = None
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            if choice == "required" and not tools:
                raise ValidationError("tool_choice='required' needs tools")
            return choice
        if choice == "any":
            return normalize_tool_choice("required", tools)
        name = choice
    elif isinstance(choice, Mapping):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else choice.get("name")
        if choice.get("type") in ("auto", "none") and name is None:
            return str(choice["type"])
        if choice.get("type") in ("any", "required") and name is None:
            return normalize_tool_choice("required", tools)
    if not isinstance(name, str) or not name:
        raise ValidationError(f"tool_choice must be 'auto', 'none', 'required' or a tool name, not {choice!r}")
    if not tools or name not in {t.name for t in tools}:
        raise ValidationError(f"tool_choice names tool {name!r}, which is not among the tools given")
    return {"name": name}


def normalize_response_format(fmt: Any) -> Optional[Dict[str, Any]]:
    """OpenAI-shaped ``response_format`` from ``"json"``, a schema dict or OpenAI's own shapes."""
    if fmt is None:
        return None
    if fmt in ("json", "json_object"):
        return {"type": "json_object"}
    if fmt == "text":
        return None
    if not isinstance(fmt, Mapping):
        raise ValidationError("response_format must be 'json', a JSON schema dict or an OpenAI response_format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = fmt.get("json_schema", fmt)
        if not isinstance(spec, Mapping):
            raise ValidationError("response_format json_schema must be an object with a 'schema'")
        schema = spec.get("schema")
        if not isinstance(schema, Mapping):
            raise ValidationError("response_format json_schema needs a 'schema' object")
        name = spec.get("name") or "response"
        if not isinstance(name, str) or len(name) > 64 or not all(c.isalnum() or c in "_-" for c in name):
            raise ValidationError("response_format schema name must be 1-64 letters, digits, '_' or '-'")
        out: Dict[str, Any] = {"name": name, "schema": dict(schema)}
        if spec.get("strict") is not None:
            out["strict"] = bool(spec["strict"])
        if spec.get("description"):
            out["description"] = spec["description"]
        return {"type": "json_schema", "json_schema": out}
    if kind in (None, "object") and ("properties" in fmt or kind == "object"):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": dict(fmt)}}
    raise ValidationError(f"unknown response_format type {kind!r}")


def build_chat_request_object(
    messages: Union[MessageInput, Sequence[MessageInput]],
    *,
    model: Optional[str],
    stream: bool = False,
    provider: Optional[str] = None,
    system: Optional[str] = None,
    temperature: Any = None,
    top_p: Any = None,
    max_tokens: Any = None,
    stop: Any = None,
    seed: Any = None,
    tools: Any = None,
    tool_choice: Any = None,
    response_format: Any = None,
    reasoning: Any = None,
    cache: Any = None,
    provider_options: Optional[Mapping[str, Any]] = None,
    **extra: Any,
) -> ChatRequest:
    """Validate everything a chat call takes; unknown keywords become provider options."""
    if not model or not isinstance(model, str):
        raise ConfigurationError(
            f"no model given for {provider or 'this provider'}",
            provider=provider,
            hint="pass model=..., or set default_model in the provider's config",
        )
    if system is not None and not isinstance(system, str):
        raise ValidationError("system must be a string")
    if provider_options is not None and not isinstance(provider_options, Mapping):
        raise ValidationError("provider_options must be a dict")
    opts: Dict[str, Any] = dict(provider_options or {})
    opts.update(extra)
    norm_tools = normalize_tools(tools)
    if cache is not None and not isinstance(cache, bool):
        raise ValidationError(f"cache must be True or False, not {cache!r}")
    return ChatRequest(
        messages=normalize_messages(messages),
        model=model,
        system=system or None,
        temperature=_number("temperature", temperature, 0.0, 2.0),
        top_p=_number("top_p", top_p, 0.0, 1.0),
        max_tokens=_int("max_tokens", max_tokens, 1),
        stop=_stop(stop),
        seed=_int("seed", seed, -(2**63)),
        tools=norm_tools or None,
        tool_choice=normalize_tool_choice(tool_choice, norm_tools),
        response_format=normalize_response_format(response_format),
        stream=bool(stream),
        provider_options=opts,
        reasoning=normalize_reasoning(reasoning),
        cache=cache,
    )


#: ChatRequest fields that are chat options a target may not take (and so may be dropped).
DROPPABLE_FIELDS = ("system", "temperature", "top_p", "max_tokens", "stop", "seed", "tool_choice", "response_format", "reasoning", "cache")


def option_value(req: ChatRequest, name: str) -> Any:
    """The value of chat option ``name`` (a field or a provider option) on ``req``; ``None`` when unset."""
    if name in DROPPABLE_FIELDS:
        return getattr(req, name)
    return req.provider_options.get(name)


def option_present(req: ChatRequest, name: str) -> bool:
    """Whether chat option ``name`` (a field or a provider option) is set on ``req``."""
    return option_value(req, name) is not None


def drop_option(req: ChatRequest, name: str) -> ChatRequest:
    """A copy of ``req`` without option ``name``, with ``name`` added to ``dropped``."""
    from dataclasses import replace

    changes: Dict[str, Any] = {"dropped": list(req.dropped) + [name]}
    if name in DROPPABLE_FIELDS:
        changes[name] = None
    else:
        opts = dict(req.provider_options)
        opts.pop(name, None)
        changes["provider_options"] = opts
    return replace(req, **changes)


def pop_timeout(options: Dict[str, Any]) -> Any:
    """Pop the per-call ``timeout`` from ``options`` (checked once, by the call's Deadline); refuse a ``stream`` option."""
    if "stream" in options:
        raise ValidationError("pass no 'stream' option: call stream() for a stream, generate() for a whole answer")
    return options.pop("timeout", None)
