"""Every ``/api/chat`` body the Ollama codec builds, checked against ollama-python's request types.

ollama-python describes the request with pydantic models (``ollama._types.ChatRequest``,
``Message``, ``Message.ToolCall``, ``Tool``, ``Options``...) that ignore unknown keys, so besides
``model_validate`` (and the client's own serialisation round trip) a strict walker here fails on
any key those models do not define: it proves modelprov sends only fields Ollama's API defines
(no tool-call ``id``, no ``tool_call_id``). Skipped when the SDK is not installed.
"""

import base64
import collections.abc
import typing
from typing import Any, List

import pytest

from modelprov.providers.ollama.provider import OllamaProvider
from modelprov.types import REASONING_EFFORTS, ImagePart, Message, ProviderConfig, ReasoningPart, TextPart, Tool, ToolCall

ollama_types = pytest.importorskip("ollama._types", reason="the ollama SDK is not installed (pip install -e '.[test,sdk]')")
pydantic = pytest.importorskip("pydantic")

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
WEATHER = {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]}
TOOLS = [Tool("get_weather", "Weather for a city", WEATHER), Tool("get_time", None, {"type": "object", "properties": {}})]


# ------------------------------------------------------------------ the strict walker
def _overrides():
    t = ollama_types
    # Fields typed loosely (a Mapping alternative) that the client itself fills from a model.
    return {(t.ChatRequest, "messages"): typing.Sequence[t.Message], (t.ChatRequest, "options"): t.Options}


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _walk(value: Any, tp: Any, path: str) -> List[str]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is ollama_types.Image:
        if not isinstance(value, str):
            return [f"{path}: an image must be a base64 string"]
        try:
            ollama_types.Image(value=value).model_dump()
        except ValueError as exc:
            return [f"{path}: {exc}"]
        return []
    if _is_model(tp):
        return strict_errors(value, tp, path)
    if origin is typing.Union:
        models = [a for a in args if _is_model(a) or typing.get_origin(a) is not None]
        if isinstance(value, dict):
            models = [a for a in models if _is_model(a) or typing.get_origin(a) in (dict, collections.abc.Mapping)]
        elif isinstance(value, list):
            models = [a for a in models if typing.get_origin(a) in (list, collections.abc.Sequence)]
        else:
            return []
        results = [_walk(value, a, path) for a in models]
        return min(results, key=len) if results else []
    if origin in (list, collections.abc.Sequence):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [e for i, v in enumerate(value) for e in _walk(v, args[0], f"{path}[{i}]")]
    if origin in (dict, collections.abc.Mapping) and len(args) == 2 and isinstance(value, dict):
        return [e for k, v in value.items() for e in _walk(v, args[1], f"{path}.{k}")]
    return []


def strict_errors(value: Any, model: Any, path: str = "body") -> List[str]:
    """Keys of ``value`` (recursively) that the pydantic ``model`` tree does not define."""
    if not isinstance(value, dict):
        return [f"{path}: expected an object for {model.__qualname__}"]
    by_key = {(f.alias or name): name for name, f in model.model_fields.items()}
    errs = [f"{path}: unknown key {key!r} for {model.__qualname__}" for key in value if key not in by_key]
    overrides = _overrides()
    for key, item in value.items():
        name = by_key.get(key)
        if name is not None:
            tp = overrides.get((model, name), model.model_fields[name].annotation)
            errs.extend(_walk(item, tp, f"{path}.{key}"))
    return errs


def assert_ollama_valid(body: dict) -> None:
    """``body`` is a ChatRequest the ollama client could have sent, with no key its types lack."""
    t = ollama_types
    errs = strict_errors(body, t.ChatRequest)
    assert not errs, "request body does not match ollama._types.ChatRequest:\n  " + "\n  ".join(errs)
    # The client's own path: Message.model_validate per message (images wrapped), then ChatRequest.
    messages = [t.Message.model_validate({k: [t.Image(value=i) for i in v] if k == "images" else v for k, v in m.items()})
                for m in body["messages"]]  # fmt: skip
    request = t.ChatRequest.model_validate(dict(body, messages=messages))
    dumped = request.model_dump(exclude_none=True, by_alias=True)
    assert dumped == body, "the ollama client would send a different body"


# ------------------------------------------------------------------ bodies
def provider(name="ollama"):
    return OllamaProvider(ProviderConfig(name=name, type="ollama", base_url="http://localhost:11434"))


def body_for(messages, model="qwen3", stream=False, **options):
    p = provider()
    return p.build_chat_request(p.make_request(messages, model=model, stream=stream, **options)).json


def test_the_walker_rejects_fields_ollama_does_not_define():
    body = {"model": "m", "stream": False, "messages": [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": {}}}]},
        {"role": "tool", "content": "1", "tool_name": "f", "tool_call_id": "call_1"}],
        "temperature": 0.2, "options": {"max_tokens": 5}}  # fmt: skip
    errs = strict_errors(body, ollama_types.ChatRequest)
    assert sorted(e.split(": ")[1] for e in errs) == sorted([
        "unknown key 'temperature' for ChatRequest", "unknown key 'id' for Message.ToolCall",
        "unknown key 'tool_call_id' for Message", "unknown key 'max_tokens' for Options"])  # fmt: skip
    with pytest.raises(AssertionError):
        assert_ollama_valid(body)


def test_plain_and_streamed():
    assert_ollama_valid(body_for("Hello"))
    assert_ollama_valid(body_for("Hello", stream=True))


def test_system_and_developer():
    body = body_for([{"role": "system", "content": "Be terse."}, {"role": "developer", "content": "JSON only."}, "Hi"],
                    system="You are a bot.")  # fmt: skip
    assert [m["role"] for m in body["messages"]] == ["system", "system", "system", "user"]
    assert_ollama_valid(body)


def test_tools_and_every_sampling_option():
    body = body_for("Weather?", tools=TOOLS, tool_choice="auto", temperature=0.3, top_p=0.9, max_tokens=256, stop=["END"],
                    seed=7, keep_alive="10m", options={"num_ctx": 8192, "top_k": 20})  # fmt: skip
    assert set(body) == {"model", "messages", "stream", "options", "tools", "keep_alive"}
    assert_ollama_valid(body)


def test_images(tmp_path):
    path = tmp_path / "pic.png"
    path.write_bytes(PNG)
    content = [TextPart("What is this?"), ImagePart(data=PNG), ImagePart(path=str(path)),
               ImagePart(url="data:image/png;base64," + base64.b64encode(PNG).decode())]  # fmt: skip
    assert_ollama_valid(body_for([{"role": "user", "content": content}], model="gemma3"))


@pytest.mark.parametrize("reasoning", list(REASONING_EFFORTS) + [1024, 8192, 20000, 64000])
def test_think_levels(reasoning):
    body = body_for("17 × 23?", reasoning=reasoning)
    assert body["think"] in (False, "low", "medium", "high", "max")
    assert_ollama_valid(body)


@pytest.mark.parametrize("fmt", ["json", {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER}}])
def test_structured_output(fmt):
    assert_ollama_valid(body_for("City?", response_format=fmt))


@pytest.mark.parametrize("stream", [False, True])
def test_history_with_thinking_tool_calls_and_tool_results(stream):
    calls = [ToolCall("call_a", "get_weather", {"city": "Oslo"}), ToolCall("call_b", "get_time", {})]
    history = [
        Message("developer", "Answer briefly."),
        Message("user", "Weather and time in Oslo?"),
        Message("assistant", [ReasoningPart("Two tools needed.", provider="ollama"),
                              ReasoningPart("foreign", signature="sig", provider="anthropic")], tool_calls=calls),
        Message.tool_result(calls[0], {"temp_c": 3}),
        Message.tool_result(calls[1], "09:00"),
        Message("assistant", [ReasoningPart("Summarise.", provider="ollama"), TextPart("3 °C, 09:00.")]),
        Message("user", [TextPart("And this picture?"), ImagePart(data=PNG)]),
    ]  # fmt: skip
    body = body_for(history, stream=stream, tools=TOOLS, reasoning="high", cache=True)
    assert body["messages"][2] == {"role": "assistant", "content": "", "thinking": "Two tools needed.", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        {"function": {"name": "get_time", "arguments": {}}}]}  # fmt: skip
    assert body["messages"][3] == {"role": "tool", "content": '{"temp_c": 3}', "tool_name": "get_weather"}
    assert body["think"] == "high" and "cache" not in body
    assert_ollama_valid(body)
