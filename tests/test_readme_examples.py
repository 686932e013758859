"""The README's examples run as written."""

from modelprov import Client
from modelprov.testing import MockTransport


def test_mock_transport_example():
    def handler(request):
        return 200, {}, {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}

    client = Client(transport=MockTransport(handler), providers={"openai": {"api_key": "test"}})
    assert client.complete("openai/gpt-5.4-mini", "Hello").text == "hi"
