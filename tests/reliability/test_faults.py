"""Fault battery, non-streaming calls, over the four protocols (openai, openrouter, anthropic, ollama).

Every case: the call ends in the stated typed exception (or the stated result after the stated
number of server requests), within its time limit, and after ``client.close()`` the server sees
no client connection left open (GC is off; see conftest). No thread is left running (autouse guard).
"""

import email.utils
import json
import socket
import time

import pytest

from modelprov import exceptions as E

pytestmark = pytest.mark.usefixtures("no_gc")  # connections must close without the garbage collector

PROTOCOLS = ("openai", "openrouter", "anthropic", "ollama")
KEYED = ("openai", "openrouter", "anthropic")
JSON = {"Content-Type": "application/json"}
HTML = {"Content-Type": "text/html; charset=utf-8"}
PROXY_PAGE = b"<html><head><title>%d</title></head><body><center><h1>%d Bad Gateway</h1></center><hr><center>nginx</center></body></html>"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -- connection-level faults ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connection_refused(protocol, make_client, timer):
    """Nothing listens on the port: ProviderConnectionError (retried twice, no waiting) in < 2 s."""
    client, model = make_client(protocol, "http://127.0.0.1:%d" % free_port(), retries=2)
    with timer(2.0), pytest.raises(E.ProviderConnectionError):
        client.complete(model, "hi")
    client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dns_failure(protocol, make_client, timer):
    """An unresolvable ``.invalid`` host: ProviderConnectionError in < 2 s, naming the host."""
    client, model = make_client(protocol, "http://modelprov-nohost.invalid", retries=1)
    with timer(2.0), pytest.raises(E.ProviderConnectionError) as info:
        client.complete(model, "hi")
    assert "modelprov-nohost.invalid" in str(info.value), str(info.value)
    client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reset_before_the_response(protocol, make_client, resetting_server, timer):
    """The server reads the request and resets (no status line): ProviderConnectionError after
    1 + 1 retry = 2 requests seen by the server, in < 2 s."""
    client, model = make_client(protocol, resetting_server, retries=1)
    with timer(2.0), pytest.raises(E.ProviderConnectionError):
        client.complete(model, "hi")
    client.close()
    assert resetting_server.requests == 2, resetting_server.requests


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reset_after_headers(protocol, server, make_client, closed, timer):
    """Headers then RST before the body (``drop_after=0``): ProviderConnectionError after 2 requests, none left open."""
    server.set_default(server.add_raw(body=b'{"x": 1}', headers=JSON, drop_after=0))
    client, model = make_client(protocol, server, retries=1)
    with timer(2.0), pytest.raises(E.ProviderConnectionError):
        client.complete(model, "hi")
    client.close()
    assert len(server.requests) == 2
    closed(server)


@pytest.mark.slow
def test_connect_timeout(make_client, timer):
    """A listener whose backlog is full drops SYNs: with connect_timeout=0.2 the call raises
    ProviderTimeoutError in < 1.5 s (skipped where the kernel does not drop the SYN)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        probe_timed_out = False
        for _ in range(3):  # fill the backlog until a connect hangs
            s = socket.socket()
            s.settimeout(0.1)
            fillers.append(s)
            try:
                s.connect(("127.0.0.1", port))
            except socket.timeout:
                probe_timed_out = True
                break
        if not probe_timed_out:
            pytest.skip("this kernel does not drop SYNs to a full backlog: no fast connect timeout")
        client, model = make_client("openai", "http://127.0.0.1:%d/v1" % port, provider={"connect_timeout": 0.2})
        with timer(1.5), pytest.raises(E.ProviderTimeoutError):
            client.complete(model, "hi")
        client.close()
    finally:
        for s in fillers:
            s.close()
        listener.close()


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_accepts_and_never_answers(protocol, server, make_client, closed, timer):
    """Accepted, no status line ever (``delay=30``): read_timeout=0.2 gives ProviderTimeoutError in < 1.5 s,
    the server saw exactly 1 request (no retry) and no connection is left open after close()."""
    server.add_raw(body=b"{}", headers=JSON, delay=30)
    client, model = make_client(protocol, server, provider={"read_timeout": 0.2})
    with timer(1.5), pytest.raises(E.ProviderTimeoutError):
        client.complete(model, "hi")
    client.close()
    assert len(server.requests) == 1
    closed(server)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_read_timeout_in_the_body(protocol, server, make_client, closed, timer):
    """Headers sent, then the body never comes (``stall=True``): ProviderTimeoutError in < 1.5 s with
    read_timeout=0.2, and no connection left open after close()."""
    server.add_raw(headers=JSON, stall=True)
    client, model = make_client(protocol, server, provider={"read_timeout": 0.2})
    with timer(1.5), pytest.raises(E.ProviderTimeoutError):
        client.complete(model, "hi")
    client.close()
    closed(server)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_trickling_json_body_cannot_stretch_the_deadline(protocol, server, make_client, closed, timer):
    """One byte every 20 ms (never a read timeout) and a 0.4 s overall timeout: ProviderTimeoutError
    in < 1.2 s, and no connection left open after close()."""
    server.add_chat(protocol, " ".join(["word"] * 100), stream=False, trickle=0.02)
    client, model = make_client(protocol, server, timeout=0.4)
    with timer(1.2), pytest.raises(E.ProviderTimeoutError):
        client.complete(model, "hi")
    client.close()
    closed(server)


# -- bad bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_truncated_json_body(protocol, server, make_client, closed, timer):
    """A complete HTTP response whose JSON is cut off: ResponseError, 1 request (not retried), none left open."""
    server.add_raw(body=b'{"id": "x", "choices": [{"message": {"content": "hel', headers=JSON)
    client, model = make_client(protocol, server, retries=2)
    with timer(2.0), pytest.raises(E.ResponseError):
        client.complete(model, "hi")
    client.close()
    assert len(server.requests) == 1
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_body_shorter_than_content_length(protocol, server, make_client, closed, timer):
    """Content-Length promises more than is sent, then the connection closes (``truncate``):
    ProviderConnectionError, retried once (2 requests), none left open."""
    server.set_default(server.add_raw(body=b'{"id": "x", "object": "chat.completion"}', headers=JSON, truncate=True))
    client, model = make_client(protocol, server, retries=1)
    with timer(2.0), pytest.raises(E.ProviderConnectionError):
        client.complete(model, "hi")
    client.close()
    assert len(server.requests) == 2
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_200_with_html(protocol, server, make_client, closed, timer):
    """A captive portal's 200 HTML page: ResponseError mentioning the content, 1 request, none left open."""
    server.add_raw(body=b"<!DOCTYPE html><html><body>Sign in to the Wi-Fi</body></html>", headers=HTML)
    client, model = make_client(protocol, server, retries=2)
    with timer(2.0), pytest.raises(E.ResponseError):
        client.complete(model, "hi")
    client.close()
    assert len(server.requests) == 1
    closed(server)


@pytest.mark.parametrize("status", [502, 503])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_proxy_html_error_page(protocol, status, server, make_client, closed, timer):
    """A proxy's HTML 502/503 page: ServerError carrying the status, retried (1 + 2 = 3 requests), none left open."""
    server.set_default(server.add_error(status, PROXY_PAGE % (status, status), HTML))
    client, model = make_client(protocol, server, retries=2)
    with timer(2.0), pytest.raises(E.ServerError) as info:
        client.complete(model, "hi")
    assert info.value.status_code == status
    assert "<html" not in str(info.value).lower() or len(str(info.value)) < 400, "the raw page should not flood the message"
    client.close()
    assert len(server.requests) == 3
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_20mb_json_body(protocol, server, make_client, closed, timer):
    """A 20 MB chat answer arrives whole and exact (length and ends checked) in < 3 s; none left open."""
    text = "a" * (20 * 1024 * 1024 - 7) + "-THEEND"
    server.add_chat(protocol, text, stream=False, chunk_words=False)
    client, model = make_client(protocol, server)
    with timer(3.0):
        resp = client.complete(model, "hi")
    assert len(resp.text) == len(text) and resp.text.endswith("-THEEND")
    client.close()
    closed(server)


# -- status codes and retry hints -------------------------------------------------------------------


def _hint_headers(form):
    if form == "seconds":
        return {"Retry-After": "3"}, 3.0
    if form == "http-date":
        return {"Retry-After": email.utils.formatdate(time.time() + 5, usegmt=True)}, 5.0
    if form == "ms":
        return {"retry-after-ms": "1500"}, 1.5
    return {}, None


@pytest.mark.parametrize("form", ["seconds", "http-date", "ms", "none"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_429_retry_hints(protocol, form, server, make_client, closed):
    """429 then success: the answer comes from the 2nd request; the one wait equals the hint
    (seconds 3, HTTP date about 5 s ahead, ``retry-after-ms`` 1.5 s) or, with no hint, the backoff (<= 2 ms)."""
    headers, expected = _hint_headers(form)
    server.add_error(429, protocol=protocol, message="slow down", headers=headers)
    server.add_chat(protocol, "after the wait", stream=False)
    waits = []
    client, model = make_client(protocol, server, retries=2, sleep=waits.append)
    resp = client.complete(model, "hi")
    assert resp.text == "after the wait"
    assert len(server.requests) == 2
    assert len(waits) == 1, waits
    if expected is None:
        assert waits[0] <= 0.002, waits
    elif form == "http-date":
        assert expected - 2.0 <= waits[0] <= expected + 0.01, waits  # one-second date resolution
    else:
        assert waits[0] == pytest.approx(expected, abs=0.01), waits
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_429_hint_longer_than_allowed_raises_at_once(protocol, server, make_client, closed):
    """A Retry-After beyond max_retry_after: RateLimitError at once (1 request, no wait) with retry_after set."""
    server.add_error(429, protocol=protocol, message="come back tomorrow", headers={"Retry-After": "86400"})
    waits = []
    client, model = make_client(protocol, server, retries=3, sleep=waits.append)
    with pytest.raises(E.RateLimitError) as info:
        client.complete(model, "hi")
    assert info.value.retry_after == pytest.approx(86400)
    assert len(server.requests) == 1 and waits == []
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_x_should_retry_false_stops_a_retryable_500(protocol, server, make_client, closed):
    """500 with ``x-should-retry: false``: ServerError after exactly 1 request."""
    server.set_default(server.add_error(500, protocol=protocol, message="no", headers={"x-should-retry": "false"}))
    client, model = make_client(protocol, server, retries=3)
    with pytest.raises(E.ServerError):
        client.complete(model, "hi")
    assert len(server.requests) == 1
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_x_should_retry_true_retries_a_409(protocol, server, make_client, closed):
    """409 with ``x-should-retry: true`` then success: the answer after exactly 2 requests."""
    server.add_error(409, protocol=protocol, message="conflict", headers={"x-should-retry": "true"})
    server.add_chat(protocol, "second time lucky", stream=False)
    client, model = make_client(protocol, server, retries=3)
    assert client.complete(model, "hi").text == "second time lucky"
    assert len(server.requests) == 2
    client.close()
    closed(server)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_529_overloaded(protocol, server, make_client, closed):
    """529: OverloadedError after 1 + 2 retries = 3 requests; none left open."""
    server.set_default(server.add_error(529, protocol=protocol, message="Overloaded"))
    client, model = make_client(protocol, server, retries=2)
    with pytest.raises(E.OverloadedError):
        client.complete(model, "hi")
    assert len(server.requests) == 3
    client.close()
    closed(server)


# -- redirects --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("protocol", KEYED)
def test_redirect_to_another_host_forwards_no_key(protocol, status, server, server2, make_client, closed):
    """A redirect to another host (another port): whatever the outcome, the other host receives no
    Authorization / x-api-key header and no key anywhere in its request headers."""
    server2.set_default(protocol, "from the other host", stream=False)
    target = server2.base_url(protocol) + "/redirected"
    server.set_default(server.add_raw(status, {"Location": target, "Content-Length": "0"}, b""))
    client, model = make_client(protocol, server)
    try:
        client.complete(model, "hi")
    except E.ModelProvError:
        pass
    client.close()
    for req in server2.requests:
        names = {k.lower() for k in req.headers}
        assert "authorization" not in names and "x-api-key" not in names, req.headers.to_dict()
        assert all("RELIABILITY-SENTINEL" not in v for v in req.headers.to_dict().values())
    closed(server, server2)


def test_every_request_carried_the_key(server, make_client):
    """Control for the redirect test: the first host does receive the key (so the check above is meaningful)."""
    server.add_chat("openai", "ok", stream=False)
    client, model = make_client("openai", server)
    client.complete(model, "hi")
    assert "RELIABILITY-SENTINEL" in server.last_request.headers["Authorization"]
    assert json.loads(server.last_request.body)["model"] == "gpt-test"
    client.close()
