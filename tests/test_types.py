"""Message normalisation and validation, parts, tool calls, usage and collect()."""

import base64

import pytest

from modelprov import ValidationError, collect
from modelprov.types import (
    ImagePart,
    Message,
    ModelResponse,
    ProviderConfig,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from modelprov.validation import normalize_messages, normalize_tools

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8


def test_string_becomes_user_message():
    assert normalize_messages("hi") == [Message(role="user", content="hi")]


def test_openai_shaped_dicts_accepted():
    msgs = normalize_messages(
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ]
    )
    assert [m.role for m in msgs] == ["system", "user", "assistant", "tool"]
    assert msgs[1].content == [TextPart("look"), ImagePart(url="https://x/y.png", detail="low")]
    assert msgs[2].tool_calls == [ToolCall(id="c1", name="f", arguments={"a": 1}, raw_arguments='{"a": 1}')]


@pytest.mark.parametrize(
    "messages, fragment",
    [
        ([], "empty"),
        ("", "empty"),
        ([{"role": "wizard", "content": "x"}], "messages[0] has unknown role 'wizard'"),
        (["ok", {"role": "user", "content": 5}], "messages[1].content must be a string"),
        ([{"role": "tool", "content": "x"}], "messages[0] is a tool message without tool_call_id"),
        ([{"role": "user"}], "messages[0] (user) has no content"),
        ([{"role": "user", "content": "x", "colour": "red"}], "unknown key(s): colour"),
        ([42], "messages[0] must be a dict"),
        ([{"role": "user", "content": [{"type": "video"}]}], "messages[0].content[0] has unknown part type"),
        ([{"role": "user", "content": "x", "tool_calls": [{"function": {"name": "f"}}]}], "only assistant"),
        ([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}], "only user messages"),
        (42, "messages must be a string or a list"),
    ],
)
def test_validation_errors_name_the_index(messages, fragment):
    with pytest.raises(ValidationError) as info:
        normalize_messages(messages)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_image_part_needs_exactly_one_source():
    with pytest.raises(ValidationError):
        ImagePart()
    with pytest.raises(ValidationError):
        ImagePart(url="https://x", data=b"1")


def test_image_base64_from_bytes_path_and_data_url(tmp_path):
    f = tmp_path / "pic.png"
    f.write_bytes(PNG)
    b64 = base64.b64encode(PNG).decode()
    assert ImagePart(data=PNG).base64_data() == ("image/png", b64)
    assert ImagePart(path=str(f)).base64_data() == ("image/png", b64)
    assert ImagePart(url=f"data:image/png;base64,{b64}").base64_data() == ("image/png", b64)
    assert ImagePart(data=PNG).data_url() == f"data:image/png;base64,{b64}"
    assert ImagePart(url="https://x/y.png").data_url() == "https://x/y.png"
    with pytest.raises(ValidationError, match="remote"):
        ImagePart(url="https://x/y.png").base64_data()
    with pytest.raises(ValidationError, match="cannot read image file"):
        ImagePart(path=str(tmp_path / "missing.png")).base64_data()


def test_sniffs_media_types():
    assert ImagePart(data=b"\xff\xd8\xff").base64_data()[0] == "image/jpeg"
    assert ImagePart(data=b"GIF89a..").base64_data()[0] == "image/gif"
    assert ImagePart(data=b"RIFF\x00\x00\x00\x00WEBP").base64_data()[0] == "image/webp"


def test_tool_call_from_bad_json_is_flagged_not_raised():
    call = ToolCall.from_json_text("c", "f", '{"a": ')
    assert call.arguments == {} and call.raw_arguments == '{"a": ' and "invalid JSON" in call.arguments_error
    assert ToolCall.from_json_text("c", "f", "[1]").arguments_error == "arguments are not a JSON object"
    assert ToolCall.from_json_text("c", "f", "").arguments == {}


def test_tools_validated():
    tools = normalize_tools([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])
    assert tools[0].name == "get_weather"
    with pytest.raises(ValidationError, match="tools\\[0\\] name"):
        normalize_tools([{"name": "bad name!"}])
    with pytest.raises(ValidationError, match="tools must be a list"):
        normalize_tools("f")


def test_usage_total_defaults_to_sum():
    assert Usage(input_tokens=3, output_tokens=4).total_tokens == 7
    assert Usage(1, 1, total_tokens=10).total_tokens == 10


def test_provider_config_repr_hides_key():
    cfg = ProviderConfig(name="openai", api_key="sk-proj-SENTINELabcdef0123456789")
    assert "SENTINEL" not in repr(cfg) and "SENTINEL" not in str(cfg)
    cfg2 = cfg.with_overrides(base_url="http://x", app_title="t", headers={"X-A": "1"})
    assert cfg2.base_url == "http://x" and cfg2.option("app_title") == "t" and cfg2.headers == (("X-A", "1"),)
    assert hash(cfg2) == hash(cfg.with_overrides(base_url="http://x", app_title="t", headers={"X-A": "1"}))


def test_collect_rebuilds_response():
    chunks = [
        StreamChunk(text="Hel", model="m", id="r1"),
        StreamChunk(text="lo"),
        StreamChunk(tool_calls=[ToolCallDelta(0, id="c1", name="f", arguments='{"a"')]),
        StreamChunk(tool_calls=[ToolCallDelta(1, id="c2", name="g", arguments="{}")]),
        StreamChunk(tool_calls=[ToolCallDelta(0, arguments=": 1}")]),
        StreamChunk(finish_reason="tool_calls", native_finish_reason="tool_use", usage=Usage(5, 2)),
    ]
    resp = collect(chunks)
    assert isinstance(resp, ModelResponse)
    assert resp.text == "Hello" and resp.model == "m" and resp.id == "r1"
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [("c1", "f", {"a": 1}), ("c2", "g", {})]
    assert resp.finish_reason == "tool_calls" and resp.native_finish_reason == "tool_use"
    assert resp.usage.total_tokens == 7


def test_response_to_message_round_trip():
    resp = ModelResponse(text="hi", tool_calls=[ToolCall("c", "f", {"x": 1})])
    msg = resp.to_message()
    assert msg.role == "assistant" and msg.tool_calls[0].name == "f"
    assert normalize_messages([msg])[0] is msg
