"""The one mechanism for options a target does not take: refuse before I/O, or drop and learn."""

import json
import logging

import pytest
import responses

from modelprov import Client, ModelResponse, UnsupportedFeatureError, ValidationError, collect
from modelprov.engine import bind
from modelprov.exceptions import InvalidRequestError
from modelprov.providers.base import ModelProvider, StreamDecoder
from modelprov.providers.request import drop_option, option_present
from modelprov.types import ChatRequest, HTTPRequest, ProviderConfig, StreamChunk

URL = "http://codec.test"


class Decoder(StreamDecoder):
    def feed(self, event):
        data = json.loads(event.data)
        if data.get("end"):
            self.done = True
            return [StreamChunk(finish_reason="stop")]
        return [StreamChunk(text=data["text"])]


class Codec(ModelProvider):
    """A minimal codec: model "strict" is known not to take top_p; a 400 naming a param is a rejection."""

    name = "codec"
    default_base_url = URL

    def unsupported_options(self, req):
        return {"top_p": "strict models take no top_p"} if req.model == "strict" else {}

    def build_chat_request(self, req: ChatRequest) -> HTTPRequest:
        body = {"model": req.model, "stream": req.stream}
        for key in ("temperature", "top_p", "stop", "reasoning"):
            if getattr(req, key) is not None:
                body[key] = getattr(req, key)
        body.update(req.provider_options)
        return HTTPRequest("POST", "/chat", json=body, stream=req.stream)

    def parse_chat_response(self, body):
        return ModelResponse(text=body["text"])

    def new_stream_decoder(self, req):
        return Decoder()

    def parse_error(self, status, body, text, headers):
        if isinstance(body, dict) and body.get("param"):
            return UnsupportedFeatureError(f"{body['param']} is not supported", option=body["param"], status_code=status)
        return InvalidRequestError(text, status_code=status)


def sent():
    return [json.loads(c.request.body) for c in responses.calls]


def reject_then_answer(param):
    def callback(request):
        body = json.loads(request.body)
        if param in body:
            return 400, {}, json.dumps({"param": param})
        if body["stream"]:
            return 200, {"content-type": "text/event-stream"}, 'data: {"text": "ok"}\n\ndata: {"end": true}\n\n'
        return 200, {}, json.dumps({"text": "ok"})

    responses.add_callback(responses.POST, URL + "/chat", callback=callback)


def codec(drop=False):
    return bind(Codec(ProviderConfig(name="codec", base_url=URL, drop_unsupported=drop)))


@responses.activate
def test_a_known_unsupported_option_raises_before_any_io():
    with pytest.raises(UnsupportedFeatureError) as info:
        codec().generate("hi", model="strict", top_p=0.5)
    assert not responses.calls
    exc = info.value
    assert exc.extra["option"] == "top_p" and exc.extra["model"] == "strict" and exc.provider == "codec"
    assert "'top_p'" in str(exc) and "drop_unsupported=True" in str(exc)
    with pytest.raises(UnsupportedFeatureError):
        codec().stream("hi", model="strict", top_p=0.5)
    assert not responses.calls


@responses.activate
def test_a_known_unsupported_option_is_dropped_and_named(caplog):
    reject_then_answer("never")
    with caplog.at_level(logging.WARNING, logger="modelprov"):
        r = codec(drop=True).generate("hi", model="strict", top_p=0.5, temperature=0.3)
        codec(drop=True).generate("hi", model="strict", top_p=0.5)
    assert r.dropped_options == ["top_p"]
    assert sent() == [{"model": "strict", "stream": False, "temperature": 0.3}, {"model": "strict", "stream": False}]
    warnings = [rec for rec in caplog.records if "top_p" in rec.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING  # once per (provider, model, option)


@responses.activate
def test_a_rejected_option_raises_without_drop_unsupported():
    reject_then_answer("temperature")
    with pytest.raises(UnsupportedFeatureError) as info:
        codec().generate("hi", model="m", temperature=0.2)
    assert len(responses.calls) == 1 and info.value.status_code == 400 and not info.value.retryable


@responses.activate
def test_a_rejected_option_is_resent_once_then_remembered():
    reject_then_answer("temperature")
    p = codec(drop=True)
    first = p.generate("hi", model="m", temperature=0.2)
    assert first.text == "ok" and first.dropped_options == ["temperature"]
    assert [("temperature" in b) for b in sent()] == [True, False]
    second = p.generate("hi", model="m", temperature=0.9)
    assert second.dropped_options == ["temperature"] and len(responses.calls) == 3 and "temperature" not in sent()[2]
    other = p.generate("hi", model="other", temperature=0.9)  # learned per model
    assert other.dropped_options == ["temperature"] and len(responses.calls) == 5


@responses.activate
def test_a_provider_option_can_be_learned_too():
    reject_then_answer("top_k")
    r = codec(drop=True).generate("hi", model="m", top_k=5)
    assert r.dropped_options == ["top_k"] and "top_k" not in sent()[-1]


@responses.activate
def test_streams_drop_and_learn_the_same_way():
    reject_then_answer("temperature")
    p = codec(drop=True)
    chunks = list(p.stream("hi", model="m", temperature=0.2))
    assert collect(chunks).text == "ok" and collect(chunks).dropped_options == ["temperature"]
    assert [("temperature" in b) for b in sent()] == [True, False]
    list(p.stream("hi", model="m", temperature=0.2))
    assert len(responses.calls) == 3


@responses.activate
def test_an_option_that_was_not_sent_is_not_resent():
    responses.add(responses.POST, URL + "/chat", json={"param": "seed"}, status=400)
    with pytest.raises(UnsupportedFeatureError):
        codec(drop=True).generate("hi", model="m")
    assert len(responses.calls) == 1


def test_option_helpers():
    req = ChatRequest(messages=[], model="m", temperature=0.1, provider_options={"top_k": 3})
    assert option_present(req, "temperature") and option_present(req, "top_k") and not option_present(req, "seed")
    dropped = drop_option(drop_option(req, "temperature"), "top_k")
    assert dropped.temperature is None and dropped.provider_options == {} and dropped.dropped == ["temperature", "top_k"]
    assert req.temperature == 0.1 and req.dropped == []  # the original is untouched


def test_client_sets_drop_unsupported_for_its_providers():
    client = Client(drop_unsupported=True, providers={"mock": {}})
    assert client.provider("mock").config.drop_unsupported is True
    assert Client(providers={"mock": {}}).provider("mock").config.drop_unsupported is False
    assert Client(drop_unsupported=True, providers={"mock": {"drop_unsupported": False}}).provider("mock").config.drop_unsupported is False
    with pytest.raises(ValidationError, match="drop_unsupported must be True or False"):
        Client(drop_unsupported="yes")  # type: ignore[arg-type]


def test_drop_unsupported_is_a_config_key(tmp_path, monkeypatch):
    path = tmp_path / "c.ini"
    path.write_text("[modelprov]\ndrop_unsupported = true\n[provider:mock]\n")
    monkeypatch.setenv("MODELPROV_CONFIG", str(path))
    assert Client().provider("mock").config.drop_unsupported is True


@pytest.mark.parametrize("value", ["huge", "", 0, -5, True, 1.5, ["low"]])
def test_reasoning_values_are_validated(value):
    with pytest.raises(ValidationError, match="reasoning"):
        Client().complete("mock/echo", "hi", reasoning=value)


@pytest.mark.parametrize("value", ["none", "minimal", "LOW", "medium", "high", "xhigh", "max", 2048])
def test_reasoning_values_accepted(value):
    assert Client().complete("mock/echo", "hi", reasoning=value).text == "hi"


def test_cache_must_be_a_bool():
    with pytest.raises(ValidationError, match="cache must be True or False"):
        Client().complete("mock/echo", "hi", cache="yes")
