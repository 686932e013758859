"""Transport tests against real loopback sockets (127.0.0.1 / localhost only).

A small threaded HTTP/1.1 server (raw sockets, port 0, daemon threads,
bounded waits) lets each test script the server side: stalls, resets, a body
cut short, streamed chunks with a handshake, redirects, a fake proxy. Covers
timeouts, mid-stream failures, streaming promptness, connection release (no
pool leaks), abort from another thread, cross-host redirect refusal,
environment proxies vs loopback, explicit proxies, ``~/.netrc`` being ignored,
concurrency, and that a secret never reaches logs or exceptions.
"""

import gc
import http.client
import json
import logging
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import traceback

import pytest
import requests

from modelprov import exceptions as E
from modelprov.deadline import Deadline
from modelprov.transport import MAX_REDIRECTS, RequestsTransport
from modelprov.types import HTTPRequest

NONE = Deadline()  # no deadline

KEY = "sk-SENTINEL0123456789abcdef"
WAIT = 2.0  # upper bound for every server-side wait


# --------------------------------------------------------------------------
# loopback server
# --------------------------------------------------------------------------


def read_request(rfile):
    """(method, target, headers(lower-cased), body) or None at EOF."""
    line = rfile.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while True:
        h = rfile.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = rfile.read(int(headers.get("content-length", 0) or 0))
    return method, target, headers, body


def head(conn, status=200, headers=(), chunked=False, length=None, version="HTTP/1.1"):
    lines = [f"{version} {status} X"] + [f"{k}: {v}" for k, v in headers]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def chunk(conn, data):
    conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))


def end_chunks(conn):
    conn.sendall(b"0\r\n\r\n")


def send_json(conn, obj, status=200, headers=()):
    body = json.dumps(obj).encode()
    head(conn, status, [("Content-Type", "application/json")] + list(headers), length=len(body))
    conn.sendall(body)


def wait_closed(conn, limit=WAIT):
    """Block until the client closes (or ``limit`` passes)."""
    conn.settimeout(limit)
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass


class Loopback:
    """A threaded HTTP server on 127.0.0.1; ``handler(conn, request) -> keep_alive``."""

    def __init__(self, handler=None, tls=None):
        self.handler = handler or (lambda conn, req: send_json(conn, {"ok": True}) or True)
        self.tls = tls
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests = []
        self.errors = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, host="127.0.0.1"):
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(WAIT + 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        rfile = None
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            rfile = conn.makefile("rb")
            while not self._stop.is_set():
                req = read_request(rfile)
                if req is None:
                    break
                self.requests.append(req)
                if self.handler(conn, req) is not True:
                    break
        except OSError:
            pass
        except Exception as exc:  # surfaced by tests that care
            self.errors.append(exc)
        finally:
            try:
                if rfile is not None:
                    rfile.close()
                conn.close()
            except OSError:
                pass

    def close(self):
        self._stop.set()
        self.sock.close()


@pytest.fixture
def servers():
    made = []

    def factory(handler=None, tls=None):
        s = Loopback(handler, tls)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.close()


def transport(server, **kw):
    kw.setdefault("provider", "loop")
    return RequestsTransport(server.url(kw.pop("host", "127.0.0.1")) + "/v1", **kw)


POST = HTTPRequest("POST", "/chat/completions", json={"model": "m"})
STREAM = HTTPRequest("POST", "/chat/completions", json={"model": "m", "stream": True}, stream=True)


def free_slots(t):
    """Idle slots in the transport's (single) connection pool; == pool_size when nothing leaked.

    The pool keeps every connection opened during a burst (more than pool_size at once); those are not free slots.
    """
    pm = t.adapter.poolmanager
    keys = list(pm.pools.keys())
    assert len(keys) == 1, keys
    pool = pm.pools[keys[0]]
    assert pool.num_connections >= 1
    return pool.pool.qsize() - max(0, pool.num_connections - pool.pool.keep)  # the pool grows to what was in use at once


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# basic I/O, keep-alive, concurrency
# --------------------------------------------------------------------------


def test_small_body_goes_out_with_the_headers_in_one_write(servers, monkeypatch):
    from modelprov.transport import _compat

    writes = []
    real_send = http.client.HTTPConnection.send

    def counting_send(self, data):
        writes.append(bytes(data))
        return real_send(self, data)

    monkeypatch.setattr(http.client.HTTPConnection, "send", counting_send)
    srv = servers()
    t = transport(srv)
    t.send(POST, NONE)
    assert len(writes) == 1
    assert writes[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert writes[0].endswith(b"\r\n\r\n" + b'{"model":"m"}')
    writes.clear()
    t.send(HTTPRequest("GET", "/models"), NONE)
    assert len(writes) == 1 and writes[0].endswith(b"\r\n\r\n")
    writes.clear()
    big = "x" * (_compat.ONE_WRITE_MAX + 10)
    t.send(HTTPRequest("POST", "/big", json={"big": big}), NONE)
    assert len(writes) >= 2
    assert srv.requests[-1][3] == json.dumps({"big": big}, separators=(",", ":")).encode()
    assert [r[3] for r in srv.requests[:2]] == [b'{"model":"m"}', b""]


def test_roundtrip_reuses_one_connection(servers):
    srv = servers()
    t = transport(srv, pool_size=4)
    for _ in range(20):
        assert t.send(POST, NONE).json() == {"ok": True}
    assert srv.connections == 1 and len(srv.requests) == 20
    method, target, headers, body = srv.requests[0]
    assert (method, target, body) == ("POST", "/v1/chat/completions", b'{"model":"m"}')
    assert headers["content-type"] == "application/json" and "transfer-encoding" not in headers
    t.close()


def test_concurrent_sends_from_many_threads(servers):
    srv = servers()
    t = transport(srv, pool_size=4)
    errors, results = [], []

    def worker():
        try:
            for _ in range(25):
                results.append(t.send(POST, NONE).json())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert not errors and len(results) == 200 and len(srv.requests) == 200
    assert free_slots(t) == 4


# --------------------------------------------------------------------------
# connection failures and timeouts
# --------------------------------------------------------------------------


def test_connect_refused():
    port = closed_port()
    t = RequestsTransport(f"http://127.0.0.1:{port}/v1", provider="loop")
    start = time.monotonic()
    with pytest.raises(E.ProviderConnectionError) as info:
        t.send(POST, NONE)
    assert time.monotonic() - start < 2
    assert "connection refused by 127.0.0.1" in str(info.value)
    assert info.value.retryable and info.value.__cause__ is not None


def test_dns_failure(monkeypatch):
    real = socket.getaddrinfo

    def fake(host, *a, **k):
        if host == "dns-fail.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *a, **k)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    t = RequestsTransport("http://dns-fail.invalid/v1", provider="loop", trust_env=False)
    with pytest.raises(E.ProviderConnectionError, match="DNS lookup failed for dns-fail.invalid"):
        t.send(POST, NONE)


def test_read_timeout(servers):
    release = threading.Event()
    srv = servers(lambda conn, req: release.wait(WAIT))
    try:
        t = transport(srv, read_timeout=0.2)
        start = time.monotonic()
        with pytest.raises(E.ProviderTimeoutError, match="read timeout after 0.2s waiting for 127.0.0.1"):
            t.send(POST, NONE)
        assert time.monotonic() - start < 1.5
        # a per-call deadline caps a long read timeout
        t2 = transport(srv, read_timeout=600.0)
        start = time.monotonic()
        with pytest.raises(E.ProviderTimeoutError):
            t2.send(POST, Deadline(0.2))
        assert time.monotonic() - start < 1.5
    finally:
        release.set()


def test_connect_timeout_when_backlog_is_full():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue; further SYNs are dropped
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.05)
        probe = socket.socket()
        probe.settimeout(0.2)
        try:
            probe.connect(("127.0.0.1", port))
            pytest.skip("this kernel accepts connections beyond the backlog")
        except socket.timeout:
            pass
        finally:
            probe.close()
        t = RequestsTransport(f"http://127.0.0.1:{port}/v1", provider="loop", connect_timeout=0.2)
        start = time.monotonic()
        with pytest.raises(E.ProviderTimeoutError, match="connect timeout after 0.2s to 127.0.0.1"):
            t.send(POST, NONE)
        assert time.monotonic() - start < 1.5
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_body_cut_short(servers):
    def handler(conn, req):
        head(conn, 200, [("Content-Type", "application/json")], length=100)
        conn.sendall(b'{"partial":')
        return False

    srv = servers(handler)
    with pytest.raises(E.ProviderConnectionError, match="while reading the response body") as info:
        transport(srv).send(POST, NONE)
    assert info.value.__cause__ is not None


def test_server_closes_mid_chunked_stream(servers):
    def handler(conn, req):
        head(conn, 200, [("Content-Type", "text/event-stream")], chunked=True)
        chunk(conn, b"data: 1\n\n")
        return False  # close without the terminating chunk

    srv = servers(handler)
    t = transport(srv, pool_size=2)
    r = t.send(STREAM, NONE)
    got = []
    with pytest.raises(E.ProviderConnectionError, match="connection closed mid-stream by 127.0.0.1") as info:
        for c in r.iter_bytes():
            got.append(c)
    assert got == [b"data: 1\n\n"] and info.value.__cause__ is not None
    assert free_slots(t) == 2


def test_reset_mid_stream(servers):
    def handler(conn, req):
        head(conn, 200, [("Content-Type", "text/event-stream")], chunked=True)
        chunk(conn, b"data: 1\n\n")
        time.sleep(0.05)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
        return False

    srv = servers(handler)
    r = transport(srv).send(STREAM, NONE)
    it = r.iter_bytes()
    assert next(it) == b"data: 1\n\n"
    with pytest.raises(E.ProviderConnectionError, match="mid-stream") as info:
        next(it)
    assert info.value.retryable


def test_read_timeout_mid_stream(servers):
    release = threading.Event()

    def handler(conn, req):
        head(conn, 200, [("Content-Type", "text/event-stream")], chunked=True)
        chunk(conn, b"data: 1\n\n")
        release.wait(WAIT)
        return False

    srv = servers(handler)
    try:
        r = transport(srv, read_timeout=0.2).send(STREAM, NONE)
        it = r.iter_bytes()
        assert next(it) == b"data: 1\n\n"
        start = time.monotonic()
        with pytest.raises(E.ProviderTimeoutError, match="mid-stream"):
            next(it)
        assert time.monotonic() - start < 1.5
    finally:
        release.set()


# --------------------------------------------------------------------------
# streaming promptness and connection release
# --------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "content-length", "close-delimited"])
def test_stream_yields_first_event_before_second_is_sent(servers, framing):
    got_first = threading.Event()
    order = []
    e1, e2 = b"data: first\n\n", b"data: second\n\n"

    def handler(conn, req):
        hdrs = [("Content-Type", "text/event-stream")]
        if framing == "chunked":
            head(conn, 200, hdrs, chunked=True)
            chunk(conn, e1)
        elif framing == "content-length":
            head(conn, 200, hdrs, length=len(e1) + len(e2))
            conn.sendall(e1)
        else:
            head(conn, 200, hdrs, version="HTTP/1.0")
            conn.sendall(e1)
        order.append("client saw first before second was sent" if got_first.wait(WAIT) else "timed out")
        if framing == "chunked":
            chunk(conn, e2)
            end_chunks(conn)
            return True
        conn.sendall(e2)
        return framing == "content-length"

    srv = servers(handler)
    r = transport(srv).send(STREAM, NONE)
    chunks = []
    for c in r.iter_bytes():
        chunks.append(c)
        got_first.set()
    assert chunks[0] == e1
    assert b"".join(chunks) == e1 + e2
    assert order == ["client saw first before second was sent"]


def _streaming_server(servers, events=3, stall_after=1):
    def handler(conn, req):
        head(conn, 200, [("Content-Type", "text/event-stream")], chunked=True)
        for i in range(events):
            if i == stall_after:
                # wait for the client to hang up (abandoned stream) or time out
                conn.settimeout(0.5)
                try:
                    if conn.recv(1) == b"":
                        return False
                except socket.timeout:
                    pass
                except OSError:
                    return False
                conn.settimeout(WAIT + 1)
            chunk(conn, b"data: %d\n\n" % i)
        end_chunks(conn)
        return True

    return servers(handler)


def test_abandoned_streams_do_not_leak_connections(servers):
    srv = _streaming_server(servers, events=3, stall_after=1)
    t = transport(srv, pool_size=2)
    for i in range(25):
        r = t.send(STREAM, NONE)
        it = r.iter_bytes()
        assert next(it) == b"data: 0\n\n"
        if i % 3 == 0:
            it.close()  # GeneratorExit in the consuming generator
        elif i % 3 == 1:
            r.close()
            it.close()
        else:
            with r:
                pass
            it.close()
        assert free_slots(t) == 2
    # responses that are never iterated are released when closed or collected
    with t.send(STREAM, NONE):
        pass
    r = t.send(STREAM, NONE)
    del r
    gc.collect()
    assert free_slots(t) == 2


def test_completed_streams_reuse_one_connection(servers):
    srv = _streaming_server(servers, events=3, stall_after=99)
    t = transport(srv, pool_size=2)
    for _ in range(10):
        assert b"".join(t.send(STREAM, NONE).iter_bytes()) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert srv.connections == 1
    assert free_slots(t) == 2


def test_failed_streams_release_connections(servers):
    def handler(conn, req):
        head(conn, 200, [], chunked=True)
        chunk(conn, b"x")
        return False

    srv = servers(handler)
    t = transport(srv, pool_size=2)
    for _ in range(10):
        with pytest.raises(E.ProviderConnectionError):
            for _c in t.send(STREAM, NONE).iter_bytes():
                pass
    assert free_slots(t) == 2


def test_error_status_on_stream_releases_connection(servers):
    srv = servers(lambda conn, req: send_json(conn, {"error": {"message": "nope"}}, status=400) or True)
    t = transport(srv, pool_size=2)
    for _ in range(5):
        with pytest.raises(E.InvalidRequestError, match="nope"):
            t.send(STREAM, NONE)
    assert srv.connections == 1


@pytest.mark.parametrize("mechanism", ["default", "socket-fallback"])
def test_abort_unblocks_reader_in_another_thread(servers, monkeypatch, mechanism):
    if mechanism == "socket-fallback":  # as on urllib3 < 2.3: no HTTPResponse.shutdown()
        import urllib3.response

        monkeypatch.setattr(urllib3.response.HTTPResponse, "shutdown", None, raising=False)
    srv = _streaming_server(servers, events=3, stall_after=1)
    t = transport(srv, read_timeout=30.0, pool_size=2)
    r = t.send(STREAM, NONE)
    first = threading.Event()
    outcome = {}

    def reader():
        try:
            for c in r.iter_bytes():
                outcome.setdefault("chunks", []).append(c)
                first.set()
            outcome["result"] = "returned"
        except Exception as exc:
            outcome["result"] = exc
        outcome["at"] = time.monotonic()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    assert first.wait(WAIT)
    time.sleep(0.1)  # the reader is now blocked in recv
    aborted_at = time.monotonic()
    r.abort()
    th.join(1.0)
    assert not th.is_alive(), "abort() did not unblock the reader"
    assert outcome["at"] - aborted_at < 1.0
    exc = outcome["result"]
    assert isinstance(exc, E.ProviderConnectionError) and exc.extra.get("aborted") is True
    assert exc.retryable is False and r.aborted
    assert outcome["chunks"] == [b"data: 0\n\n"]
    assert free_slots(t) == 2


def test_abort_before_reading(servers):
    srv = _streaming_server(servers, events=3, stall_after=1)
    t = transport(srv, pool_size=1)
    r = t.send(STREAM, NONE)
    r.abort()
    with pytest.raises(E.ProviderConnectionError, match="aborted"):
        list(r.iter_bytes())
    assert free_slots(t) == 1


# --------------------------------------------------------------------------
# TLS (self-signed loopback certificate made with the openssl CLI)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not available")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip("openssl could not make a certificate")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return str(cert), ctx


def test_https_with_explicit_ca_bundle(servers, tls_files):
    cert, ctx = tls_files
    srv = servers(tls=ctx)
    t = transport(srv, verify=cert)
    for _ in range(3):
        assert t.send(POST, NONE).json() == {"ok": True}
    assert srv.connections == 1 and srv.requests[0][3] == b'{"model":"m"}'


def test_https_untrusted_certificate_is_tls_error_with_hint(servers, tls_files, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    srv = servers(tls=tls_files[1])
    with pytest.raises(E.ProviderConnectionError) as info:
        transport(srv).send(POST, NONE)
    text = str(info.value)
    assert "TLS error talking to 127.0.0.1" in text
    assert "REQUESTS_CA_BUNDLE" in text and "truststore" in text and "verify" in text
    assert info.value.__cause__ is not None


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_requests_ca_bundle_is_used_but_explicit_verify_wins(servers, tls_files, monkeypatch):
    cert, ctx = tls_files
    srv = servers(tls=ctx)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    assert transport(srv).send(POST, NONE).json() == {"ok": True}  # env CA bundle honoured on the fast path
    with pytest.raises(E.ProviderConnectionError, match="TLS error"):
        transport(srv, verify=True).send(POST, NONE)  # explicit verify=True: default CAs, env ignored
    assert transport(srv, verify=False).send(POST, NONE).json() == {"ok": True}


def test_missing_ca_bundle_file_is_configuration_error(servers, tls_files, tmp_path):
    srv = servers(tls=tls_files[1])
    with pytest.raises(E.ConfigurationError, match="TLS file not found"):
        transport(srv, verify=str(tmp_path / "missing.pem")).send(POST, NONE)


def test_plain_http_server_on_https_url_is_tls_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(WAIT)

    def answer_in_plain_http():
        try:
            conn, _ = listener.accept()
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            conn.close()
        except OSError:
            pass

    threading.Thread(target=answer_in_plain_http, daemon=True).start()
    t = RequestsTransport(f"https://127.0.0.1:{listener.getsockname()[1]}/v1", provider="loop", verify=False)
    try:
        with pytest.raises(E.ProviderConnectionError, match="TLS error talking to 127.0.0.1"):
            t.send(POST, NONE)
    finally:
        listener.close()


# --------------------------------------------------------------------------
# redirects across hosts
# --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 307, 308])
def test_cross_host_redirect_is_refused(servers, status):
    other = servers()  # reached as "localhost": a different host

    def handler(conn, req):
        head(conn, status, [("Location", other.url("localhost") + "/v1/chat/completions"), ("Content-Length", "0")])
        return True

    srv = servers(handler)
    t = transport(srv, auth_headers={"x-api-key": KEY, "Authorization": "Bearer " + KEY})
    with pytest.raises(E.ProviderError, match="redirect refused") as info:
        t.send(POST, NONE)
    assert other.connections == 0 and other.requests == []
    assert info.value.status_code == status
    assert KEY not in str(info.value)


def test_same_origin_redirect_followed_and_loop_stopped(servers):
    def handler(conn, req):
        target = req[1]
        if target.endswith("/loop"):
            head(conn, 307, [("Location", "/v1/loop")], length=0)
        elif target == "/v1/chat/completions":
            head(conn, 308, [("Location", "/v2/chat/completions")], length=0)
        else:
            send_json(conn, {"target": target})
        return True

    srv = servers(handler)
    t = transport(srv, auth_headers={"x-api-key": KEY})
    assert t.send(POST, NONE).json() == {"target": "/v2/chat/completions"}
    assert srv.requests[1][2]["x-api-key"] == KEY and srv.requests[1][3] == b'{"model":"m"}'
    before = len(srv.requests)
    with pytest.raises(E.ProviderConnectionError, match="too many redirects"):
        t.send(HTTPRequest("POST", "/loop", json={}), NONE)
    assert len(srv.requests) - before == MAX_REDIRECTS + 1
    assert srv.connections == 1


# --------------------------------------------------------------------------
# proxies, netrc
# --------------------------------------------------------------------------


def _no_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_env_proxy_is_bypassed_for_loopback(servers, monkeypatch):
    _no_proxy_env(monkeypatch)
    dead = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead)
    srv = servers()
    assert transport(srv).send(POST, NONE).json() == {"ok": True}
    assert transport(srv, host="localhost").send(POST, NONE).json() == {"ok": True}
    # the same environment proxy IS used (resolved once, fast path) for other hosts
    t = transport(srv)
    assert t.connection_settings("http://api.remote.test/v1").proxy == dead
    with pytest.raises(E.ProviderConnectionError, match="through proxy"):
        t.send(HTTPRequest("GET", "http://api.remote.test/v1/models"), NONE)


def test_explicit_proxy_is_used_even_for_loopback(servers, monkeypatch):
    _no_proxy_env(monkeypatch)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    target = servers()
    proxy = servers(lambda conn, req: send_json(conn, {"via": "proxy", "target": req[1]}) or True)
    t = transport(target, proxy=proxy.url())
    assert t.send(POST, NONE).json() == {"via": "proxy", "target": target.url() + "/v1/chat/completions"}
    assert target.connections == 0


def test_netrc_is_never_used(servers, monkeypatch, tmp_path):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrcuser password netrcpass\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    srv = servers()
    # sanity: plain requests would send the netrc credentials
    requests.get(srv.url() + "/probe", timeout=WAIT)
    assert srv.requests[-1][2].get("authorization", "").startswith("Basic ")
    transport(srv, auth_headers={"Authorization": "Bearer " + KEY}).send(POST, NONE)
    assert srv.requests[-1][2]["authorization"] == "Bearer " + KEY
    transport(srv).send(POST, NONE)
    assert "authorization" not in srv.requests[-1][2]


# --------------------------------------------------------------------------
# secrets never reach logs or exceptions
# --------------------------------------------------------------------------


def test_sentinel_never_logged_or_in_exceptions(servers, caplog):
    caplog.set_level(logging.DEBUG)  # everything, urllib3's own DEBUG lines included
    release = threading.Event()

    def handler(conn, req):
        target = req[1]
        if "/echo" in target:
            send_json(conn, {"error": {"message": "invalid key " + KEY}}, status=401, headers=[("x-request-id", "r1")])
        elif "/html" in target:
            body = ("<html><title>Denied " + KEY + "</title></html>").encode()
            head(conn, 403, [("Content-Type", "text/html")], length=len(body))
            conn.sendall(body)
        elif "/stall" in target:
            release.wait(WAIT)
            return False
        elif "/redirect" in target:
            head(conn, 302, [("Location", "http://localhost:1/steal?key=" + KEY)], length=0)
        elif "/stream-cut" in target:
            head(conn, 200, [], chunked=True)
            chunk(conn, b"data: " + KEY.encode() + b"\n\n")
            return False
        elif "/stream" in target:
            head(conn, 200, [], chunked=True)
            chunk(conn, b"data: ok\n\n")
            end_chunks(conn)
        else:
            send_json(conn, {"ok": True})
        return True

    srv = servers(handler)
    auth = {"Authorization": "Bearer " + KEY, "x-api-key": KEY}
    t = transport(srv, auth_headers=auth, read_timeout=0.3)
    dead = RequestsTransport(f"http://127.0.0.1:{closed_port()}/v1", provider="loop", auth_headers=auth)
    q = {"key": KEY, "api_key": KEY}
    errors = []

    def attempt(fn):
        try:
            return fn()
        except E.ModelProvError as exc:
            errors.append(exc)

    try:
        attempt(lambda: t.send(HTTPRequest("POST", "/ok", json={}, params=q), NONE).json())
        attempt(lambda: t.send(HTTPRequest("POST", "/echo", json={}, params=q), NONE))
        attempt(lambda: t.send(HTTPRequest("GET", "/html", params=q), NONE))
        attempt(lambda: dead.send(HTTPRequest("POST", "/x", json={}, params=q), NONE))
        attempt(lambda: t.send(HTTPRequest("POST", "/stall", json={}, params=q), NONE))
        attempt(lambda: t.send(HTTPRequest("POST", "/redirect", json={}, params=q), NONE))
        attempt(lambda: b"".join(t.send(HTTPRequest("POST", "/stream", json={}, params=q, stream=True), NONE).iter_bytes()))
        attempt(lambda: b"".join(t.send(HTTPRequest("POST", "/stream-cut", json={}, params=q, stream=True), NONE).iter_bytes()))
    finally:
        release.set()
    kinds = sorted(type(e).__name__ for e in errors)
    assert kinds == sorted(["AuthenticationError", "PermissionDeniedError", "ProviderConnectionError",
                            "ProviderTimeoutError", "ProviderError", "ProviderConnectionError"])  # fmt: skip
    assert caplog.records, "nothing was logged at DEBUG"
    assert any(r.name == "modelprov.transport" for r in caplog.records)
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    text = caplog.text
    assert "***" in text and "/ok" in text
    assert KEY not in text
    for exc in errors:
        assert KEY not in str(exc) and KEY not in repr(exc)
        assert KEY not in "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        assert KEY not in json.dumps(exc.to_dict(), default=str)
