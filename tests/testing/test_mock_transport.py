"""MockTransport: in-process answers, the real transport's error mapping, deadlines, no sockets."""

import socket

import pytest

from modelprov import exceptions as E
from modelprov.deadline import Deadline
from modelprov.testing import (
    MockReply,
    MockTransport,
    chat_body,
    chat_reply,
    chat_stream,
    error_body,
)
from modelprov.transport import Response, Transport
from modelprov.types import HTTPRequest, ProviderConfig

NONE = Deadline()
POST = HTTPRequest("POST", "/chat/completions", json={"model": "m", "messages": []})
STREAM = HTTPRequest("POST", "/chat/completions", json={"model": "m", "stream": True}, stream=True)


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("MockTransport opened a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_json_answer_and_the_request_as_it_would_be_sent():
    mock = MockTransport(lambda request: {"ok": True, "path": request.path})
    view = mock.for_provider(
        ProviderConfig(name="acme", base_url="https://api.acme.test/v1", headers=(("X-Team", "t1"),)),
        auth_headers={"Authorization": "Bearer sk-test"},
    )
    assert isinstance(view, Transport)
    response = view.send(HTTPRequest("POST", "/chat/completions", json={"msg": "héllo"}, params={"a": 1, "b": None}), NONE)
    assert isinstance(response, Response)
    assert response.status_code == 200 and response.json() == {"ok": True, "path": "/v1/chat/completions"}
    sent = mock.last_request
    assert sent is mock.requests[-1] and sent.provider == "acme"
    assert sent.url == "https://api.acme.test/v1/chat/completions?a=1"
    assert sent.body == '{"msg":"héllo"}'.encode()
    assert sent.headers["authorization"] == "Bearer sk-test" and sent.headers["X-Team"] == "t1"
    assert sent.headers["Content-Type"] == "application/json" and sent.json == {"msg": "héllo"}


@pytest.mark.parametrize(
    "answer,status,body",
    [
        (b"raw", 200, b"raw"),
        ("text", 200, b"text"),
        ((201, {"a": 1}), 201, b'{"a": 1}'),
        ((202, {"x-request-id": "rq"}, "t"), 202, b"t"),
        (MockReply(204), 204, b""),
    ],
)
def test_answer_shapes(answer, status, body):
    response = MockTransport([answer]).send(POST, NONE)
    assert (response.status_code, response.content) == (status, body)
    if isinstance(answer, tuple) and len(answer) == 3:
        assert response.request_id == "rq"


def test_error_statuses_map_like_the_real_transport():
    mock = MockTransport([
        MockReply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "7", "x-request-id": "rq1"}),
        MockReply(503, "<html><title>Service Unavailable</title></html>", headers={"Content-Type": "text/html"}),
        (404, {"error": {"message": "no such model"}}),
    ])  # fmt: skip
    with pytest.raises(E.RateLimitError) as info:
        mock.send(POST, NONE)
    assert (info.value.retry_after, info.value.request_id, info.value.message) == (7.0, "rq1", "slow down")
    with pytest.raises(E.OverloadedError, match="Service Unavailable"):
        mock.send(POST, NONE)
    with pytest.raises(E.ModelNotFoundError, match="no such model"):
        mock.send(POST, NONE)


def test_the_providers_error_parser_is_used_once_bound():
    from modelprov.providers.openai_compat.openai import OpenAIProvider

    provider = OpenAIProvider(ProviderConfig(name="openai", api_key="sk-test"))
    body = error_body("openai", 429, "You exceeded your current quota", code="insufficient_quota", type="insufficient_quota")
    view = MockTransport([MockReply(429, body)]).for_provider(provider.config, error_parser=provider.parse_error)
    with pytest.raises(E.QuotaExceededError) as info:
        view.send(POST, NONE)
    assert info.value.provider == "openai" and info.value.retryable is False


def test_streams_chunks_exceptions_and_abort():
    mock = MockTransport([
        MockReply(chunks=["data: 1\n\n", b"data: 2\n\n"]),
        MockReply(chunks=[b"data: 1\n\n", ConnectionResetError(104, "reset")]),
        MockReply(chunks=[b"a", b"b", b"c"]),
    ])  # fmt: skip
    response = mock.send(STREAM, NONE)
    assert response.headers["content-type"] == "text/event-stream"
    assert list(response.iter_bytes()) == [b"data: 1\n\n", b"data: 2\n\n"]
    with pytest.raises(E.ResponseError):
        response.iter_bytes()
    got = []
    with pytest.raises(E.ProviderConnectionError, match="mid-stream"):
        for chunk in mock.send(STREAM, NONE).iter_bytes():
            got.append(chunk)
    assert got == [b"data: 1\n\n"]
    response = mock.send(STREAM, NONE)
    it = response.iter_bytes()
    assert next(it) == b"a"
    response.abort()
    with pytest.raises(E.ProviderConnectionError) as info:
        next(it)
    assert info.value.extra.get("aborted") is True and response.aborted


def test_a_tuple_with_a_list_of_chunks_is_a_stream():
    mock = MockTransport(lambda request: (200, {"Content-Type": "text/event-stream"}, [b"data: 1\n\n", "data: 2\n\n"]))
    response = mock.send(STREAM, NONE)
    assert response.headers["content-type"] == "text/event-stream"
    assert list(response.iter_bytes()) == [b"data: 1\n\n", b"data: 2\n\n"]
    mock = MockTransport([(200, (b"x", ConnectionResetError(104, "reset"))), (200, [b"only"])])
    it = mock.send(STREAM, NONE).iter_bytes()
    assert next(it) == b"x"
    with pytest.raises(E.ProviderConnectionError, match="mid-stream"):
        next(it)
    assert list(mock.send(STREAM, NONE).iter_bytes()) == [b"only"]


@pytest.mark.parametrize("body", [[1, 2, 3], [{"id": "a"}, None], [], ["a", 1]])
def test_a_tuple_with_a_list_of_json_values_stays_a_json_body(body):
    response = MockTransport([(200, {}, body)]).send(POST, NONE)
    assert response.json() == body and response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "answer,match",
    [
        ((200, {}, [b"chunk", 1]), r"tuple the handler returned: its body \(list\).*list of bytes/str chunks"),
        ([b"a", b"b"], r"the list the handler returned: its body \(list\)"),
        ((200, {"a": object()}), r"the tuple the handler returned: its body \(dict\)"),
        (MockReply(chunks=[b"a", 3]), r"the MockReply the handler returned: chunk 1 is a int"),
    ],
)
def test_a_body_that_cannot_be_encoded_is_a_clear_validation_error(answer, match):
    mock = MockTransport(lambda request: answer)
    with pytest.raises(E.ValidationError, match=match):
        mock.send(POST, NONE)


def test_the_deadline_is_checked_before_after_and_between_chunks():
    now = [0.0]
    deadline = Deadline(1.0, clock=lambda: now[0])

    def slow(request):
        now[0] += 2.0  # the "server" took two seconds
        return {"late": True}

    with pytest.raises(E.ProviderTimeoutError):
        MockTransport(slow).send(POST, deadline)  # checked after the handler
    asked = MockTransport([MockReply(chunks=[b"x"])])
    with pytest.raises(E.ProviderTimeoutError):
        asked.send(STREAM, deadline)  # passed before the call: nothing asked
    assert asked.requests == []
    now[0] = 0.0
    deadline = Deadline(1.0, clock=lambda: now[0])
    response = MockTransport([MockReply(chunks=[b"a", b"b", b"c"])]).send(STREAM, deadline)
    it = response.iter_bytes()
    assert next(it) == b"a"
    now[0] = 1.5
    with pytest.raises(E.ProviderTimeoutError):
        next(it)


def test_queue_then_handler_and_an_empty_queue():
    mock = MockTransport()
    with pytest.raises(E.ServerError, match="MockTransport: no reply queued for POST /chat/completions"):
        mock.send(POST, NONE)
    mock.add({"n": 1}, E.ProviderConnectionError("refused"))
    assert mock.send(POST, NONE).json() == {"n": 1}
    with pytest.raises(E.ProviderConnectionError, match="refused"):
        mock.send(POST, NONE)
    assert len(mock.requests) == 3


def test_fakeserver_replies_render_in_process():
    anthropic = HTTPRequest("POST", "/v1/messages", json={"model": "claude", "stream": True}, stream=True)
    mock = MockTransport([chat_reply("anthropic", "Hi there"), chat_reply("openai", "cut", drop_after=2)])
    events = b"".join(mock.send(anthropic, NONE).iter_bytes())
    assert events == b"".join(chat_stream("anthropic", "Hi there", model="claude"))
    with pytest.raises(E.ProviderConnectionError, match="mid-stream"):
        list(mock.send(STREAM, NONE).iter_bytes())
    with pytest.raises(ValueError, match="FakeServer"):
        MockTransport([chat_reply("openai", "x", stall_after=1)]).send(POST, NONE)


def test_closed_transport_and_bad_bodies():
    mock = MockTransport([{}])
    with pytest.raises(E.ValidationError):
        mock.send(HTTPRequest("POST", "/x", json={"nan": float("nan")}), NONE)
    with mock:
        pass
    with pytest.raises(E.ProviderConnectionError, match="closed"):
        mock.send(POST, NONE)


# ------------------------------------------------------- through a real engine
PROTOCOLS = {
    "openai": ("modelprov.providers.openai_compat.openai", "OpenAIProvider"),
    "anthropic": ("modelprov.providers.anthropic.provider", "AnthropicProvider"),
    "ollama": ("modelprov.providers.ollama.provider", "OllamaProvider"),
}


def bound(protocol, mock, **engine):
    import importlib

    from modelprov.engine import bind

    module, name = PROTOCOLS[protocol]
    cls = getattr(importlib.import_module(module), name)
    provider = cls(ProviderConfig(name=protocol, api_key="sk-test-0123456789"))
    view = mock.for_provider(provider.config, error_parser=provider.parse_error)
    return bind(provider, transport=view, sleep=lambda s: None, **engine)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_codecs_and_engine_run_over_the_mock(protocol):
    def handler(request):
        if request.stream:
            return MockReply(chunks=chat_stream(protocol, "streamed words", model="m"))
        return chat_body(protocol, "whole answer", model="m")

    mock = MockTransport(handler)
    mock.add(MockReply(503, error_body(protocol, 503, "busy"), headers={"Retry-After": "0"}))
    provider = bound(protocol, mock)
    assert provider.generate("Hi", model="m").text == "whole answer"  # after one retried 503
    assert len(mock.requests) == 2
    assert "".join(c.text for c in provider.stream("Hi", model="m")) == "streamed words"
    assert mock.last_request.stream and mock.last_request.url.startswith(provider.config.base_url.rstrip("/"))


def test_a_client_over_the_mock_behaves_like_over_the_network():
    from modelprov import Client

    def handler(request):
        if request.json["model"] == "broke":
            return MockReply(429, error_body("openai", 429, "You exceeded your current quota", code="insufficient_quota"))
        if request.stream:
            return MockReply(chunks=chat_stream("openai", "streamed hi", model="m"))
        return 200, {}, {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}

    mock = MockTransport(handler)
    client = Client(transport=mock, providers={"openai": {"api_key": "sk-test-0123456789"}})
    try:
        assert client.complete("openai/gpt-5.4-mini", "Hello").text == "hi"
        sent = mock.last_request
        assert sent.url == "https://api.openai.com/v1/chat/completions" and sent.provider == "openai"
        assert sent.headers["Authorization"] == "Bearer sk-test-0123456789"
        assert "".join(c.text for c in client.stream("openai/m", "Hello")) == "streamed hi"
        with pytest.raises(E.QuotaExceededError):  # the provider's own error mapping
            client.complete("openai/broke", "Hello")
    finally:
        client.close()
