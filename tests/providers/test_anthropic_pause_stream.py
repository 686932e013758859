"""A paused Anthropic turn with server-tool blocks: streamed and JSON answers agree, and both resume."""

import json

from modelprov import Client, ProviderPart, ReasoningPart, TextPart, collect
from modelprov.testing import FakeServer, sse_event

MODEL = "claude-sonnet-4-6"
SERVER_USE = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "paris weather"}}
SERVER_RESULT = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
                 "content": [{"type": "web_search_result", "url": "https://example.com", "title": "Weather",
                              "encrypted_content": "EnC", "page_age": None}]}
MESSAGE = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
    "content": [{"type": "thinking", "thinking": "Search first.", "signature": "sig-1"},
                {"type": "text", "text": "Let me look."}, SERVER_USE, SERVER_RESULT],
    "stop_reason": "pause_turn", "stop_sequence": None, "stop_details": None,
    "usage": {"input_tokens": 10, "output_tokens": 20},
}


def stream_events():
    def ev(name, **data):
        return sse_event(dict(type=name, **data), event=name)

    start = dict(MESSAGE, content=[], stop_reason=None, usage={"input_tokens": 10, "output_tokens": 1})
    use_start = dict(SERVER_USE, input={})
    return [
        ev("message_start", message=start),
        ev("content_block_start", index=0, content_block={"type": "thinking", "thinking": "", "signature": ""}),
        ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Search first."}),
        ev("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "sig-1"}),
        ev("content_block_stop", index=0),
        ev("content_block_start", index=1, content_block={"type": "text", "text": ""}),
        ev("content_block_delta", index=1, delta={"type": "text_delta", "text": "Let me look."}),
        ev("content_block_stop", index=1),
        ev("content_block_start", index=2, content_block=use_start),
        ev("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": '{"query": '}),
        ev("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": '"paris weather"}'}),
        ev("content_block_stop", index=2),
        ev("content_block_start", index=3, content_block=SERVER_RESULT),
        ev("content_block_stop", index=3),
        ev("message_delta", delta={"stop_reason": "pause_turn", "stop_sequence": None}, usage={"output_tokens": 20}),
        ev("message_stop"),
    ]


def test_streamed_and_json_paused_turns_agree_and_resume():
    with FakeServer() as server:
        client = Client(providers={"anthropic": {"api_key": "k", "base_url": server.url}})
        server.add_raw(200, {"Content-Type": "application/json"}, json.dumps(MESSAGE).encode())
        server.add_raw(200, {"Content-Type": "text/event-stream"}, chunks=stream_events())
        whole = client.complete("anthropic/" + MODEL, "weather?")
        streamed = collect(client.stream("anthropic/" + MODEL, "weather?"))
        expected = [ReasoningPart("Search first.", signature="sig-1", provider="anthropic"), TextPart("Let me look."),
                    ProviderPart("anthropic", SERVER_USE), ProviderPart("anthropic", SERVER_RESULT)]
        assert whole.content == expected and streamed.content == expected
        assert whole.finish_reason == streamed.finish_reason == "pause"
        assert whole.native_finish_reason == streamed.native_finish_reason == "pause_turn"
        for answer in (whole, streamed):
            server.add_chat("anthropic", "Sunny.")
            client.complete("anthropic/" + MODEL, ["weather?", answer.message])
            turn = server.last_request.json["messages"][1]
            assert turn["role"] == "assistant"
            assert turn["content"] == [MESSAGE["content"][0], MESSAGE["content"][1], SERVER_USE, SERVER_RESULT]
