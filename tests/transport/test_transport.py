"""Transport tests driven by ``responses``: status -> exception mapping, error bodies,
request-id and retry headers, request encoding, config plumbing, proxies/CA
resolution, truststore, redirects, and the failure mapping table.

Real-socket behaviour (timeouts, resets, streaming, abort, leaks, proxies,
netrc) lives in ``test_transport_live.py``.
"""

import json
import re
import ssl
import sys
import types

import pytest
import requests
import responses
import urllib3

from modelprov import exceptions as E
from modelprov.deadline import Deadline
from modelprov.transport import MAX_REDIRECTS, USER_AGENT, RequestsTransport, Response
from modelprov.transport import errors as terr
from modelprov.types import HTTPRequest, ProviderConfig

BASE = "https://api.example.test/v1"
URL = BASE + "/chat/completions"
KEY = "sk-SENTINEL0123456789abcdef"


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


NONE = Deadline()  # no deadline


def make(**kw):
    kw.setdefault("provider", "testprov")
    return RequestsTransport(kw.pop("base_url", BASE), **kw)


def post(t, json_body=None, deadline=NONE, **kw):
    return t.send(HTTPRequest("POST", "/chat/completions", json=json_body or {"x": 1}, **kw), deadline)


# --------------------------------------------------------------------------
# status -> exception
# --------------------------------------------------------------------------

STATUS_CASES = [
    (400, E.InvalidRequestError, False),
    (401, E.AuthenticationError, False),
    (403, E.PermissionDeniedError, False),
    (404, E.ModelNotFoundError, False),
    (408, E.ProviderTimeoutError, True),
    (409, E.ServerError, True),
    (413, E.InvalidRequestError, False),
    (422, E.InvalidRequestError, False),
    (429, E.RateLimitError, True),
    (500, E.ServerError, True),
    (502, E.ServerError, True),
    (503, E.OverloadedError, True),
    (529, E.OverloadedError, True),
]


@pytest.mark.parametrize("status,cls,retryable", STATUS_CASES)
def test_status_maps_to_exception(mocked, status, cls, retryable):
    mocked.add(responses.POST, URL, status=status, json={"error": {"message": "boom", "type": "x"}},
               headers={"x-request-id": "req_abc"})  # fmt: skip
    with pytest.raises(cls) as info:
        post(make())
    exc = info.value
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.provider == "testprov"
    assert exc.request_id == "req_abc"
    assert exc.message == "boom"
    assert exc.retryable is retryable
    assert len(mocked.calls) == 1
    assert "HTTP %d" % status in str(exc) and "req_abc" in str(exc)


@pytest.mark.parametrize(
    "body,content_type,expected",
    [
        ({"error": {"message": "nested message", "type": "invalid_request_error"}}, None, "nested message"),
        ({"error": "flat error string"}, None, "flat error string"),
        ({"message": "top-level message"}, None, "top-level message"),
        ({"detail": "detail string"}, None, "detail string"),
        ({"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}, None, "messages: field required"),
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, None, "Overloaded"),
        ({"unknown": "shape"}, None, '{"unknown": "shape"}'),
        ("upstream connect error or disconnect", "text/plain", "upstream connect error or disconnect"),
    ],
)
def test_error_body_shapes(mocked, body, content_type, expected):
    kw = {"json": body} if content_type is None else {"body": body, "content_type": content_type}
    mocked.add(responses.POST, URL, status=400, **kw)
    with pytest.raises(E.InvalidRequestError) as info:
        post(make())
    assert info.value.message == expected


def test_html_error_page_uses_title(mocked):
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1>" + "x" * 50000 + "</body></html>"
    mocked.add(responses.POST, URL, status=502, body=page, content_type="text/html")
    with pytest.raises(E.ServerError) as info:
        post(make())
    msg = info.value.message
    assert "502 Bad Gateway" in msg and "HTML error page from api.example.test" in msg
    assert len(msg) <= 200 and len(str(info.value)) < 400


def test_html_error_page_without_title_is_stripped_and_short(mocked):
    page = "<!DOCTYPE html><html><body><script>var a = 1;</script><p>Access &amp; denied by proxy</p>" + (
        "<div>filler text</div>" * 3000
    ) + "</body></html>"
    mocked.add(responses.POST, URL, status=403, body=page, content_type="text/html; charset=utf-8")
    with pytest.raises(E.PermissionDeniedError) as info:
        post(make())
    msg = info.value.message
    assert "Access & denied by proxy" in msg
    assert "<" not in msg and "var a" not in msg
    assert len(msg) <= 200


def test_empty_and_long_plain_bodies(mocked):
    mocked.add(responses.POST, URL, status=500, body=b"")
    mocked.add(responses.POST, URL, status=500, body="e" * 10000, content_type="text/plain")
    t = make()
    with pytest.raises(E.ServerError) as info:
        post(t)
    assert "HTTP 500" in info.value.message and "api.example.test" in info.value.message
    with pytest.raises(E.ServerError) as info:
        post(t)
    assert len(info.value.message) <= 200


def test_non_utf8_error_body(mocked):
    mocked.add(responses.POST, URL, status=400, body=b"bad \xff\xfe bytes", content_type="text/plain")
    with pytest.raises(E.InvalidRequestError) as info:
        post(make())
    assert info.value.message.startswith("bad ")


def test_error_body_read_is_capped(mocked):
    seen = {}

    def parser(status, body, text, headers):
        seen["len"] = len(text)
        return None

    mocked.add(responses.POST, URL, status=500, body="z" * 300_000, content_type="text/plain")
    with pytest.raises(E.ServerError):
        post(make(error_parser=parser))
    assert 0 < seen["len"] <= terr.MAX_ERROR_BODY


# --------------------------------------------------------------------------
# error parser hook and filled fields
# --------------------------------------------------------------------------


def test_error_parser_result_is_filled_in(mocked):
    calls = []

    def parser(status, body, text, headers):
        calls.append((status, body, text, headers.get("Retry-After")))
        return E.QuotaExceededError("out of credit")

    mocked.add(responses.POST, URL, status=429, json={"error": {"code": "insufficient_quota"}},
               headers={"Retry-After": "7", "request-id": "req_q", "x-ratelimit-remaining": "0"})  # fmt: skip
    with pytest.raises(E.QuotaExceededError) as info:
        post(make(error_parser=parser))
    exc = info.value
    assert calls == [(429, {"error": {"code": "insufficient_quota"}}, '{"error": {"code": "insufficient_quota"}}', "7")]
    assert (exc.provider, exc.status_code, exc.request_id) == ("testprov", 429, "req_q")
    assert exc.retry_after == 7.0
    assert exc.headers == {"retry-after": "7"}
    assert exc.retryable is False


def test_error_parser_values_win(mocked):
    def parser(status, body, text, headers):
        return E.RateLimitError("slow down", request_id="from-body", retry_after=1.0, provider="custom")

    mocked.add(responses.POST, URL, status=429, body="{}", headers={"x-request-id": "hdr", "retry-after": "30"})
    with pytest.raises(E.RateLimitError) as info:
        post(make(error_parser=parser))
    assert (info.value.request_id, info.value.retry_after, info.value.provider) == ("from-body", 1.0, "custom")


@pytest.mark.parametrize("result", [None, "raise"])
def test_error_parser_none_or_broken_falls_back(mocked, result):
    def parser(status, body, text, headers):
        if result == "raise":
            raise KeyError("parser bug")
        return None

    mocked.add(responses.POST, URL, status=404, json={"error": {"message": "no such model"}})
    with pytest.raises(E.ModelNotFoundError) as info:
        post(make(error_parser=parser))
    assert info.value.message == "no such model"


def test_error_parser_may_raise_provider_error(mocked):
    def parser(status, body, text, headers):
        raise E.ContentFilterError("filtered")

    mocked.add(responses.POST, URL, status=400, json={})
    with pytest.raises(E.ContentFilterError) as info:
        post(make(error_parser=parser))
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    "headers,expected_after,expected_headers",
    [
        ({"Retry-After": "7"}, 7.0, {"retry-after": "7"}),
        ({"retry-after-ms": "1500", "Retry-After": "7"}, 1.5, {"retry-after": "7", "retry-after-ms": "1500"}),
        ({"X-Should-Retry": "false"}, None, {"x-should-retry": "false"}),
        ({"Retry-After": "soon", "X-RateLimit-Limit": "10", "Set-Cookie": "a=b"}, None, {"retry-after": "soon"}),
    ],
)
def test_retry_headers_captured(mocked, headers, expected_after, expected_headers):
    mocked.add(responses.POST, URL, status=429, json={"error": "rate"}, headers=headers)
    with pytest.raises(E.RateLimitError) as info:
        post(make())
    assert info.value.retry_after == expected_after
    assert info.value.headers == expected_headers


# --------------------------------------------------------------------------
# success path: request ids, headers, body encoding
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers,expected",
    [
        ({"x-request-id": "a"}, "a"),
        ({"request-id": "b"}, "b"),
        ({"X-Generation-Id": "gen-c"}, "gen-c"),
        ({"x-amzn-RequestId": "d"}, "d"),
        ({"request-id": "second", "x-request-id": "first"}, "first"),
        ({}, None),
    ],
)
def test_request_id_captured(mocked, headers, expected):
    mocked.add(responses.POST, URL, json={"ok": True}, headers=headers)
    r = post(make())
    assert r.request_id == expected
    assert r.json() == {"ok": True}


def test_request_headers_and_compact_body(mocked):
    mocked.add(responses.POST, URL, json={"ok": True})
    t = make(headers={"X-Extra": "1"}, auth_headers={"Authorization": "Bearer " + KEY})
    r = post(t, {"msg": "héllo ✓", "n": [1, 2], "nested": {"a": None}})
    req = mocked.calls[0].request
    assert req.headers["User-Agent"] == USER_AGENT
    assert re.fullmatch(r"modelprov/\S+ python/\d+\.\d+\.\d+", USER_AGENT)
    assert req.headers["Accept"] == "application/json"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Extra"] == "1"
    assert req.headers["Authorization"] == "Bearer " + KEY
    expected = '{"msg":"héllo ✓","n":[1,2],"nested":{"a":null}}'.encode("utf-8")
    assert req.body == expected
    assert req.headers["Content-Length"] == str(len(expected))
    assert r.status_code == 200 and r.latency_s >= 0
    assert len(mocked.calls) == 1


def test_request_headers_override_and_remove(mocked):
    mocked.add(responses.POST, URL, body="data: x\n\n", content_type="text/event-stream")
    t = make(headers={"X-Drop": "1"})
    t.send(HTTPRequest("POST", "/chat/completions", json={}, stream=True,
                       headers={"Accept": "text/event-stream", "X-Drop": None}), NONE).close()  # fmt: skip
    req = mocked.calls[0].request
    assert req.headers["Accept"] == "text/event-stream"
    assert "X-Drop" not in req.headers


def test_get_with_params_and_no_body(mocked):
    mocked.add(responses.GET, BASE + "/models", json={"data": []})
    t = make()
    r = t.send(HTTPRequest("GET", "/models", params={"limit": 5, "after": "m 1", "skip": None}), NONE)
    req = mocked.calls[0].request
    assert req.url == BASE + "/models?limit=5&after=m+1"
    assert req.body is None and "Content-Type" not in req.headers
    assert r.json() == {"data": []}


def test_absolute_url_path(mocked):
    mocked.add(responses.GET, "https://other.example.test/x", json=[1])
    assert make().send(HTTPRequest("GET", "https://other.example.test/x"), NONE).json() == [1]


def test_base_url_join_variants(mocked):
    mocked.add(responses.POST, "https://api.example.test/v1/messages", json={})
    make(base_url="https://api.example.test/v1/").send(HTTPRequest("POST", "messages", json={}), NONE)
    assert mocked.calls[0].request.url == "https://api.example.test/v1/messages"


def test_exactly_one_call_per_send(mocked):
    mocked.add(responses.POST, URL, status=503, json={"error": "busy"})
    mocked.add(responses.POST, URL, status=429, json={"error": "slow"}, headers={"Retry-After": "1"})
    t = make()
    for cls in (E.OverloadedError, E.RateLimitError):
        before = len(mocked.calls)
        with pytest.raises(cls):
            post(t)
        assert len(mocked.calls) == before + 1


def test_unserialisable_body_is_validation_error(mocked):
    with pytest.raises(E.ValidationError):
        post(make(), {"x": float("nan")})
    with pytest.raises(E.ValidationError):
        post(make(), {"x": object()})
    assert len(mocked.calls) == 0


# --------------------------------------------------------------------------
# Response
# --------------------------------------------------------------------------


def test_invalid_json_raises_response_error_with_short_excerpt(mocked):
    mocked.add(responses.POST, URL, body="<html>" + "oops " * 5000, content_type="text/html", headers={"x-request-id": "r1"})
    r = post(make())
    with pytest.raises(E.ResponseError) as info:
        r.json()
    exc = info.value
    assert "invalid JSON" in str(exc) and "oops" in str(exc)
    assert len(str(exc)) < 600
    assert exc.status_code == 200 and exc.request_id == "r1" and exc.provider == "testprov"
    assert isinstance(exc.__cause__, ValueError)


def test_streamed_response_via_responses(mocked):
    mocked.add(responses.POST, URL, body=b"data: 1\n\ndata: 2\n\n", content_type="text/event-stream")
    r = post(make(), stream=True)
    assert isinstance(r, Response)
    assert b"".join(r.iter_bytes()) == b"data: 1\n\ndata: 2\n\n"
    with pytest.raises(E.ResponseError):
        r.iter_bytes()


def test_streamed_error_reads_body_before_raising(mocked):
    mocked.add(responses.POST, URL, status=401, json={"error": {"message": "bad key"}}, headers={"request-id": "rq"})
    with pytest.raises(E.AuthenticationError) as info:
        post(make(), stream=True)
    assert info.value.message == "bad key" and info.value.request_id == "rq"


def test_non_stream_response_content_text_iter(mocked):
    mocked.add(responses.POST, URL, body="héllo".encode(), content_type="text/plain")
    r = post(make())
    assert r.content == "héllo".encode() and r.text == "héllo"
    assert list(r.iter_bytes()) == ["héllo".encode()]
    r.abort()  # harmless on a read response
    r.close()
    assert "200" in repr(r)


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------


def test_adapter_pool_and_retries():
    t = make(pool_size=7)
    ad = t.adapter
    assert ad._pool_connections == 7 and ad._pool_maxsize == 7
    assert ad.poolmanager.connection_pool_kw["maxsize"] == 7
    assert ad.max_retries.total == 0 and ad.max_retries.read is False
    assert t.session.trust_env is False
    assert t.session.get_adapter("https://x.test/") is ad and t.session.get_adapter("http://x.test/") is ad


def test_from_config_plumbs_everything(mocked):
    cfg = ProviderConfig(name="acme", base_url=BASE, timeout=30.0, connect_timeout=4.0, proxy="http://proxy.test:3128",
                         verify="/etc/ca.pem", cert=("/c.pem", "/k.pem"), pool_size=3, headers=(("X-Team", "t1"),),
                         api_key="acmekey-123456789")  # fmt: skip
    t = RequestsTransport.from_config(cfg, auth_headers={"x-api-key": "acmekey-123456789"})
    assert t.provider == "acme" and t.pool_size == 3 and t.adapter._pool_maxsize == 3
    mocked.add(responses.POST, URL, json={})
    post(t)
    call = mocked.calls[0].request
    assert call.req_kwargs["timeout"] == (4.0, 30.0)
    assert call.req_kwargs["verify"] == "/etc/ca.pem"
    assert call.req_kwargs["cert"] == ("/c.pem", "/k.pem")
    assert call.req_kwargs["proxies"] == {"https": "http://proxy.test:3128"}
    assert call.headers["X-Team"] == "t1" and call.headers["x-api-key"] == "acmekey-123456789"
    assert "acmekey-123456789" not in str(E.ProviderError("echo acmekey-123456789"))


def test_from_config_timeouts(mocked):
    mocked.add(responses.POST, URL, json={})
    t = RequestsTransport.from_config(ProviderConfig(name="p", base_url=BASE))
    post(t)
    assert mocked.calls[-1].request.req_kwargs["timeout"] == (5.0, 600.0)
    t = RequestsTransport.from_config(ProviderConfig(name="p", base_url=BASE, timeout=2.0))
    post(t)
    assert mocked.calls[-1].request.req_kwargs["timeout"] == (2.0, 2.0)
    frozen = lambda: 100.0
    post(t, deadline=Deadline(1.0, clock=frozen))
    assert mocked.calls[-1].request.req_kwargs["timeout"] == (1.0, 1.0)
    t = make(connect_timeout=5.0, read_timeout=600.0)
    post(t, deadline=Deadline(30.0, clock=frozen))
    assert mocked.calls[-1].request.req_kwargs["timeout"] == (5.0, 30.0)
    with pytest.raises(E.ConfigurationError):
        RequestsTransport.from_config(ProviderConfig(name="p"))


def test_socket_timeouts_are_capped_by_the_deadline_and_streams_by_idle_timeout(mocked):
    now = [100.0]
    clock = lambda: now[0]
    mocked.add(responses.POST, URL, json={})
    t = make(connect_timeout=5.0, read_timeout=600.0, idle_timeout=20.0)
    deadline = Deadline(60.0, clock=clock)
    post(t, deadline=deadline)
    assert mocked.calls[-1].request.req_kwargs["timeout"] == (5.0, 60.0)
    post(t, deadline=deadline, stream=True).close()
    assert mocked.calls[-1].request.req_kwargs["timeout"] == (5.0, 20.0)  # a stream's read waits at most idle_timeout
    now[0] += 58.0
    post(t, deadline=deadline)
    assert mocked.calls[-1].request.req_kwargs["timeout"] == pytest.approx((2.0, 2.0))
    now[0] += 2.0
    calls = len(mocked.calls)
    with pytest.raises(E.ProviderTimeoutError, match="deadline of 60s passed"):
        post(t, deadline=deadline)
    assert len(mocked.calls) == calls  # nothing sent once the deadline passed
    cfg = ProviderConfig(name="p", base_url=BASE, read_timeout=30.0, idle_timeout=300.0)
    assert RequestsTransport.from_config(cfg)._stream_read_timeout == 30.0


@pytest.mark.parametrize("bad", ["api.example.test/v1", "ftp://api.example.test/", "http://", "http:///v1", ""])
def test_invalid_base_url_is_configuration_error(bad):
    with pytest.raises(E.ConfigurationError) as info:
        RequestsTransport(bad, provider="p")
    assert info.value.__cause__ is not None


def test_closed_transport_and_context_manager(mocked):
    with make() as t:
        pass
    with pytest.raises(E.ProviderConnectionError):
        post(t)
    assert "testprov" in repr(t)


# --------------------------------------------------------------------------
# proxies / CA bundle resolution
# --------------------------------------------------------------------------


def _clear_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_env_proxy_resolution(monkeypatch):
    _clear_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://envproxy.test:8080")
    t = make()
    s = t.connection_settings()
    assert s.proxies == {"https": "http://envproxy.test:8080"} and s.proxy == "http://envproxy.test:8080"
    for host in ("127.0.0.1", "127.3.4.5", "localhost", "[::1]"):
        assert make(base_url=f"https://{host}:8443/v1").connection_settings().proxies == {}
    assert make(trust_env=False).connection_settings().proxies == {}
    explicit = make(base_url="https://127.0.0.1:9/v1", proxy="http://corp.test:3128").connection_settings()
    assert explicit.proxies == {"https": "http://corp.test:3128"}
    monkeypatch.setenv("NO_PROXY", "example.test")
    assert make().connection_settings().proxies == {}


def test_all_proxy_used(monkeypatch):
    _clear_proxy_env(monkeypatch)
    monkeypatch.setenv("ALL_PROXY", "socks5://allproxy.test:1080")
    assert make().connection_settings().proxy == "socks5://allproxy.test:1080"


def test_settings_resolved_once_per_host(monkeypatch, mocked):
    from modelprov.transport import net as _transport_net

    _clear_proxy_env(monkeypatch)
    counts = {"env": 0}
    real = _transport_net.get_environ_proxies

    def counting(url, no_proxy=None):
        counts["env"] += 1
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(_transport_net, "get_environ_proxies", counting)
    monkeypatch.setattr(requests.Session, "merge_environment_settings", lambda *a, **k: pytest.fail("merged env"))
    monkeypatch.setattr(requests.utils, "get_netrc_auth", lambda *a, **k: pytest.fail("netrc consulted"))
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", lambda *a, **k: pytest.fail("netrc consulted"))
    mocked.add(responses.POST, URL, json={})
    mocked.add(responses.GET, "https://other.example.test/x", json={})
    t = make()
    for _ in range(5):
        post(t)
    assert counts["env"] == 1
    t.send(HTTPRequest("GET", "https://other.example.test/x"), NONE)
    assert counts["env"] == 2


def test_explicit_verify_beats_requests_ca_bundle(monkeypatch, mocked):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/ca-bundle.pem")
    mocked.add(responses.POST, URL, json={})
    for verify, expected in [("/explicit/ca.pem", "/explicit/ca.pem"), (True, True), (False, False), (None, "/env/ca-bundle.pem")]:
        t = make(verify=verify)
        assert t.connection_settings().verify == expected
        post(t)
        assert mocked.calls[-1].request.req_kwargs["verify"] == expected
    assert make(trust_env=False).connection_settings().verify is True
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/curl/ca.pem")
    assert make().connection_settings().verify == "/curl/ca.pem"


def test_truststore_missing_is_configuration_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "truststore", None)
    with pytest.raises(E.ConfigurationError) as info:
        make(use_truststore=True)
    assert "pip install truststore" in str(info.value)


def test_truststore_context_goes_to_pool_managers(monkeypatch):
    made = []
    fake = types.ModuleType("truststore")

    def SSLContext(protocol):
        ctx = ssl.SSLContext(protocol)
        made.append((protocol, ctx))
        return ctx

    fake.SSLContext = SSLContext
    fake.inject_into_ssl = lambda: pytest.fail("inject_into_ssl must not be called")
    monkeypatch.setitem(sys.modules, "truststore", fake)
    t = make(use_truststore=True)
    assert len(made) == 1 and made[0][0] == ssl.PROTOCOL_TLS_CLIENT
    ctx = made[0][1]
    assert t.adapter.poolmanager.connection_pool_kw["ssl_context"] is ctx
    assert t.adapter.proxy_manager_for("http://proxy.test:3128").connection_pool_kw["ssl_context"] is ctx
    assert ssl.SSLContext.__init__ is not None  # nothing patched globally


# --------------------------------------------------------------------------
# redirects (responses); live cross-host variant in test_transport_live.py
# --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_cross_host_redirect_refused(mocked, status):
    mocked.add(responses.POST, URL, status=status, headers={"Location": "https://evil.test/steal?key=" + KEY})
    mocked.add(responses.POST, "https://evil.test/steal", json={})
    t = make(auth_headers={"x-api-key": KEY})
    with pytest.raises(E.ProviderError) as info:
        post(t)
    assert "redirect refused" in str(info.value) and info.value.retryable is False
    assert len(mocked.calls) == 1
    assert KEY not in str(info.value) and KEY not in repr(info.value)


def test_same_origin_307_followed_with_body(mocked):
    mocked.add(responses.POST, URL, status=307, headers={"Location": "/v2/chat/completions"})
    mocked.add(responses.POST, "https://api.example.test/v2/chat/completions", json={"moved": True})
    t = make(auth_headers={"Authorization": "Bearer " + KEY})
    assert post(t, {"a": 1}).json() == {"moved": True}
    second = mocked.calls[1].request
    assert second.body == b'{"a":1}' and second.headers["Authorization"] == "Bearer " + KEY


def test_same_origin_302_for_post_refused_but_followed_for_get(mocked):
    mocked.add(responses.POST, URL, status=302, headers={"Location": "/v1/elsewhere"})
    mocked.add(responses.GET, BASE + "/models", status=301, headers={"Location": BASE + "/models/"})
    mocked.add(responses.GET, BASE + "/models/", json={"data": []})
    t = make()
    with pytest.raises(E.ProviderError, match="redirect refused"):
        post(t)
    assert t.send(HTTPRequest("GET", "/models"), NONE).json() == {"data": []}


def test_too_many_redirects(mocked):
    mocked.add(responses.POST, URL, status=308, headers={"Location": URL})
    with pytest.raises(E.ProviderConnectionError, match="too many redirects") as info:
        post(make())
    assert len(mocked.calls) == MAX_REDIRECTS + 1
    assert isinstance(info.value.__cause__, requests.TooManyRedirects)


# --------------------------------------------------------------------------
# failure mapping table (synthetic exceptions, as requests/urllib3 raise them)
# --------------------------------------------------------------------------


def _chained(outer_factory, inner):
    try:
        try:
            raise inner
        except BaseException as e:
            raise outer_factory(e) from e
    except BaseException as outer:
        return outer


def _max_retry(reason):
    return urllib3.exceptions.MaxRetryError(None, "/v1/chat/completions?key=" + KEY, reason)


def _new_conn(root):
    return _chained(lambda e: urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: %s" % e), root)


MAPPING_CASES = [
    ("dns", lambda: requests.ConnectionError(_max_retry(_new_conn(__import__("socket").gaierror(-2, "Name or service not known")))),
     "request", E.ProviderConnectionError, "DNS lookup failed for api.example.test"),
    ("refused", lambda: requests.ConnectionError(_max_retry(_new_conn(ConnectionRefusedError(111, "Connection refused")))),
     "request", E.ProviderConnectionError, "connection refused by api.example.test"),
    ("reset", lambda: requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))),
     "request", E.ProviderConnectionError, "connection reset by api.example.test"),
    ("remote-disconnected", lambda: requests.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", __import__("http.client").client.RemoteDisconnected("closed"))),
     "request", E.ProviderConnectionError, "closed the connection without a response"),
    ("tls", lambda: requests.exceptions.SSLError(_max_retry(urllib3.exceptions.SSLError(ssl.SSLError(1, "CERTIFICATE_VERIFY_FAILED")))),
     "request", E.ProviderConnectionError, "TLS error talking to api.example.test"),
    ("connect-timeout", lambda: requests.ConnectTimeout(_max_retry(urllib3.exceptions.ConnectTimeoutError(None, "timed out"))),
     "request", E.ProviderTimeoutError, "connect timeout after 5s to api.example.test"),
    ("read-timeout", lambda: requests.ReadTimeout(urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out.")),
     "request", E.ProviderTimeoutError, "read timeout after 30s waiting for api.example.test"),
    ("read-timeout-stream", lambda: urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out."),
     "stream", E.ProviderTimeoutError, "read timeout after 30s waiting for api.example.test mid-stream"),
    ("protocol-stream", lambda: urllib3.exceptions.ProtocolError("Response ended prematurely"),
     "stream", E.ProviderConnectionError, "connection closed mid-stream by api.example.test"),
    ("incomplete-stream", lambda: requests.exceptions.ChunkedEncodingError(urllib3.exceptions.ProtocolError(
        "Connection broken: IncompleteRead(10 bytes read)", urllib3.exceptions.IncompleteRead(10, 5))),
     "stream", E.ProviderConnectionError, "connection closed mid-stream"),
    ("incomplete-body", lambda: __import__("http.client").client.IncompleteRead(b"abc", 10),
     "body", E.ProviderConnectionError, "connection closed while reading the response body"),
    ("reset-stream", lambda: urllib3.exceptions.ProtocolError("Connection broken", ConnectionResetError(104, "reset")),
     "stream", E.ProviderConnectionError, "connection reset by api.example.test mid-stream"),
    ("too-many-redirects", lambda: requests.TooManyRedirects("Exceeded 30 redirects."),
     "request", E.ProviderConnectionError, "too many redirects"),
    ("invalid-url", lambda: requests.exceptions.InvalidURL("Invalid URL 'http://': No host supplied"),
     "request", E.ConfigurationError, "invalid URL"),
    ("proxy", lambda: requests.exceptions.ProxyError(_max_retry(urllib3.exceptions.ProxyError(
        "Unable to connect to proxy", ConnectionRefusedError(111, "Connection refused")))),
     "request", E.ProviderConnectionError, "through proxy"),
    ("decode", lambda: requests.exceptions.ContentDecodingError(urllib3.exceptions.DecodeError("bad gzip")),
     "body", E.ResponseError, "could not decode"),
    ("oserror", lambda: OSError(101, "Network is unreachable"),
     "request", E.ProviderConnectionError, "Network is unreachable"),
]


@pytest.mark.parametrize("name,factory,phase,cls,fragment", MAPPING_CASES, ids=[c[0] for c in MAPPING_CASES])
def test_map_exception_table(name, factory, phase, cls, fragment):
    exc = factory()
    mapped = terr.map_exception(exc, provider="p", method="POST", url=URL + "?key=" + KEY, host="api.example.test",
                                connect_timeout=5.0, read_timeout=30.0, phase=phase, proxy="http://u:pw@proxy.test:1")  # fmt: skip
    assert type(mapped) is cls, mapped
    assert fragment in str(mapped)
    assert KEY not in str(mapped) and "pw@" not in str(mapped)
    if name == "tls":
        assert "verify" in str(mapped) and "REQUESTS_CA_BUNDLE" in str(mapped) and "truststore" in str(mapped)
    if name == "too-many-redirects":
        assert mapped.retryable is False


def test_map_exception_leaves_foreign_errors():
    assert terr.map_exception(ValueError("x"), provider="p", method="GET", url=URL, host="h") is None
    own = E.ResponseError("mine")
    assert terr.map_exception(own, provider="p", method="GET", url=URL, host="h") is own


@pytest.mark.parametrize("name,factory,phase,cls,fragment", [c for c in MAPPING_CASES if c[2] == "request"],
                         ids=[c[0] for c in MAPPING_CASES if c[2] == "request"])  # fmt: skip
def test_send_maps_adapter_failures_from_exc(mocked, name, factory, phase, cls, fragment):
    original = factory()
    mocked.add(responses.POST, URL, body=original)
    with pytest.raises(cls) as info:
        post(make(connect_timeout=5.0, read_timeout=30.0))
    assert info.value.__cause__ is original
    assert info.value.provider == "testprov"
    assert len(mocked.calls) == 1


def test_scrub_chain_redacts_wrapped_messages():
    import traceback

    exc = requests.ConnectionError(_max_retry(_new_conn(ConnectionRefusedError(111, "refused"))))
    assert KEY in str(exc)
    terr.scrub_chain(exc)
    assert KEY not in "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert KEY not in str(exc)


def test_summarize_body_helpers():
    assert terr.summarize_body(500, "Internal", None, "", "", "h") == "HTTP 500 Internal from h"
    long_json = json.dumps({"error": {"message": "m" * 1000}})
    assert len(terr.summarize_body(400, "", json.loads(long_json), long_json, "application/json", "h")) <= 200
    assert terr.retry_headers(requests.structures.CaseInsensitiveDict({"Retry-After": "3", "Other": "x"})) == {"retry-after": "3"}
