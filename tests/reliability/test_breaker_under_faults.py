"""Circuit breaker and fallback under injected faults, over real loopback sockets.

Pass criteria, per test: a provider failing 100% opens its breaker after exactly
``failure_threshold`` failed attempts, after which the failing server receives no more
requests (its request count proves it) while the fallback answers every call; once the
recovery timeout has passed on the injected clock and the server is healthy again, one trial
request reaches it and the breaker closes. Breaker statistics add up to the calls made. No
connection is left open after ``close()`` (GC off) and no thread is left running.
"""

import pytest

from modelprov import Client, RetryPolicy
from modelprov import exceptions as E
from modelprov.testing.factories import chat_reply, error_reply, raw_reply

pytestmark = pytest.mark.usefixtures("no_gc")  # connections must close without the garbage collector

PROTOCOLS = ("openai", "openrouter", "anthropic", "ollama")
THRESHOLD = 3
RECOVERY = 30.0


class Clock:
    """The breaker's clock, moved by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def fake_clock():
    return Clock()


def breaker_client(make_client, protocol, server, fake_clock, fallbacks=("mock/echo",), retries=0, threshold=THRESHOLD):
    return make_client(protocol, server, retries=retries, fallbacks=list(fallbacks), clock=fake_clock,
                       breaker={"failure_threshold": threshold, "recovery_timeout": RECOVERY})


FAULTS = {
    "500-json": lambda p: error_reply(500, protocol=p, message="internal"),
    "503-html": lambda p: error_reply(503, b"<html><body>503 Service Unavailable</body></html>", {"Content-Type": "text/html"}),
    "reset": lambda p: raw_reply(200, {"Content-Type": "application/json"}, b'{"x": 1}', drop_after=0),
    "truncated-json": lambda p: raw_reply(200, {"Content-Type": "application/json"}, b'{"id": "cut'),
    "html-200": lambda p: raw_reply(200, {"Content-Type": "text/html"}, b"<html>login</html>"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_breaker_opens_fallback_serves_then_recovers(protocol, fault, server, make_client, fake_clock, closed):
    """Fault injected on every request: the first THRESHOLD calls reach the server (THRESHOLD requests),
    the next 7 do not (still THRESHOLD requests, 7 rejections); all 10 are answered by mock/echo.
    After RECOVERY s on the fake clock with the server healthy, the next call is served by the
    primary (THRESHOLD + 1 requests) and the breaker is CLOSED."""
    server.set_default(FAULTS[fault](protocol))
    client, model = breaker_client(make_client, protocol, server, fake_clock)
    for i in range(10):
        resp = client.complete(model, "echo %d" % i)
        assert "echo %d" % i in resp.text, resp.text
    assert len(server.requests) == THRESHOLD, "the open breaker must keep calls away from the server"
    breaker = client.breaker(protocol)
    assert breaker.state.value == "open"
    stats = breaker.stats()
    assert (stats.failures, stats.rejections, stats.successes) == (THRESHOLD, 10 - THRESHOLD, 0), stats
    # recovery
    server.set_default(chat_reply(protocol, "primary is back", stream=False))
    fake_clock.advance(RECOVERY - 1)
    client.complete(model, "still open")
    assert len(server.requests) == THRESHOLD, "no trial before the recovery timeout"
    fake_clock.advance(1.5)
    assert client.complete(model, "trial").text == "primary is back"
    assert len(server.requests) == THRESHOLD + 1
    assert breaker.state.value == "closed"
    assert client.complete(model, "again").text == "primary is back"
    assert len(server.requests) == THRESHOLD + 2
    stats = breaker.stats()
    assert stats.calls == stats.successes + stats.failures + stats.ignored, stats
    assert stats.calls + stats.rejections == 13, stats
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_failed_trial_reopens_and_keeps_calls_away(protocol, server, make_client, fake_clock, closed):
    """Still failing after the recovery timeout: exactly one trial request, the breaker reopens, and the
    next calls (clock not moved) send nothing; the fallback answers all of them."""
    server.set_default(error_reply(503, protocol=protocol, message="down"))
    client, model = breaker_client(make_client, protocol, server, fake_clock)
    for _ in range(THRESHOLD + 2):
        client.complete(model, "x")
    assert len(server.requests) == THRESHOLD
    fake_clock.advance(RECOVERY + 1)
    assert "trial" in client.complete(model, "trial").text
    assert len(server.requests) == THRESHOLD + 1
    assert client.breaker(protocol).state.value == "open"
    for _ in range(5):
        client.complete(model, "x")
    assert len(server.requests) == THRESHOLD + 1
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_second_fake_server_as_fallback(protocol, server, server2, make_client, fake_clock, closed):
    """Primary refuses to answer (500), fallback is a second FakeServer (an OpenAI-compatible endpoint):
    10 calls give 10 fallback answers, the primary sees THRESHOLD requests, the fallback 10; a call made
    while open records the primary's CircuitBreakerError attempt, then the backup's answer."""
    server.set_default(error_reply(500, protocol=protocol, message="boom"))
    server2.set_default(chat_reply("openai_compatible", "from the backup", stream=False))
    client, model = make_client(protocol, server)  # only for its provider settings and model name
    client.close()
    providers = {protocol: dict(client._init_args["providers"][protocol]),
                 "backup": {"type": "openai_compatible", "base_url": server2.base_url("openai_compatible")}}
    client = Client(providers=providers, fallbacks=["backup/llama"], clock=fake_clock, sleep=lambda s: None,
                    retry=RetryPolicy(max_retries=0), breaker={"failure_threshold": THRESHOLD, "recovery_timeout": RECOVERY})
    answers = [client.complete(model, "q%d" % i) for i in range(10)]
    assert [a.text for a in answers] == ["from the backup"] * 10
    assert len(server.requests) == THRESHOLD and len(server2.requests) == 10
    assert [(r["provider"], r.get("error")) for r in answers[-1].attempts] == [
        (protocol, "CircuitBreakerError"), ("backup", None)], "the rejection is recorded, with no request sent"
    client.close()
    closed(server, server2)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_retries_count_against_the_breaker(protocol, server, make_client, fake_clock, closed):
    """With 1 retry per call and threshold 4, two calls make 4 failing attempts (4 requests) and open the
    breaker; the 3rd and later calls send nothing."""
    server.set_default(error_reply(500, protocol=protocol, message="boom"))
    client, model = breaker_client(make_client, protocol, server, fake_clock, retries=1, threshold=4)
    for _ in range(6):
        client.complete(model, "x")
    assert len(server.requests) == 4
    assert client.breaker(protocol).state.value == "open"
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_caller_errors_do_not_open_the_breaker(protocol, server, make_client, fake_clock, closed):
    """400s are the caller's fault: 10 calls raise InvalidRequestError, all 10 reach the server, the
    breaker stays CLOSED and counts them as ignored."""
    server.set_default(error_reply(400, protocol=protocol, message="bad request"))
    client, model = breaker_client(make_client, protocol, server, fake_clock, fallbacks=())
    for _ in range(10):
        with pytest.raises(E.InvalidRequestError):
            client.complete(model, "x")
    assert len(server.requests) == 10
    breaker = client.breaker(protocol)
    assert breaker.state.value == "closed"
    assert breaker.stats().ignored == 10 and breaker.stats().failures == 0
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_open_breaker_without_fallback_raises_circuit_breaker_error(protocol, server, make_client, fake_clock, closed):
    """No fallback: THRESHOLD ServerErrors, then CircuitBreakerError with no request sent."""
    server.set_default(error_reply(500, protocol=protocol, message="boom"))
    client, model = breaker_client(make_client, protocol, server, fake_clock, fallbacks=())
    for _ in range(THRESHOLD):
        with pytest.raises(E.ServerError):
            client.complete(model, "x")
    for _ in range(3):
        with pytest.raises(E.CircuitBreakerError):
            client.complete(model, "x")
    assert len(server.requests) == THRESHOLD
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_streams_open_the_breaker_and_fall_back(protocol, server, make_client, fake_clock, closed):
    """Streamed calls failing before the first byte (500): THRESHOLD requests, then the fallback streams
    every answer and the server sees nothing more."""
    server.set_default(error_reply(500, protocol=protocol, message="boom"))
    client, model = breaker_client(make_client, protocol, server, fake_clock)
    for i in range(8):
        text = "".join(c.text or "" for c in client.stream(model, "stream %d" % i))
        assert "stream %d" % i in text, text
    assert len(server.requests) == THRESHOLD
    assert client.breaker(protocol).state.value == "open"
    client.close()
    closed(server)


def test_client_breaker_settings_are_validated():
    """Unknown breaker settings are a ValidationError at construction, before any I/O."""
    with pytest.raises(E.ValidationError):
        Client(breaker={"failure_threshhold": 3})
