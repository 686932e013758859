"""The transport interface, lazy loading, and the rule that internals of requests/urllib3 live in _compat."""

import ast
import pathlib
import subprocess
import sys

import pytest

import modelprov
from modelprov.deadline import Deadline
from modelprov.transport import RequestsResponse, RequestsTransport, Response, Transport
from modelprov.types import HTTPRequest, ProviderConfig

PKG = pathlib.Path(modelprov.__file__).parent

#: Private names of requests, urllib3 and http.client the transport used to reach for (and may again).
FOREIGN_PRIVATE = {
    "_fp", "_original_response", "_pool", "_connection", "_store", "_decoder", "_method",
    "_content_consumed", "_next", "_sock", "_sslobj", "_tunnel_host", "_fp_bytes_read",
}  # fmt: skip


def test_importing_the_interface_loads_neither_requests_nor_urllib3():
    code = (
        "import sys, modelprov.transport as t, modelprov.testing\n"
        "print(sorted({'requests', 'urllib3'} & set(sys.modules)))\n"
        "t.RequestsTransport\n"
        "print(sorted({'requests', 'urllib3'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", "['requests', 'urllib3']"]


def test_the_interface_is_abstract_and_the_implementations_follow_it():
    with pytest.raises(TypeError):
        Transport()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        Response()  # type: ignore[abstract]
    assert issubclass(RequestsTransport, Transport) and issubclass(RequestsResponse, Response)
    t = RequestsTransport("http://127.0.0.1:9/v1", provider="p")
    assert t.for_provider(ProviderConfig(name="q", base_url="http://x.test")) is t  # built for one endpoint
    assert "RequestsTransport" in repr(t)
    t.close()


def test_a_transport_of_ones_own():
    class Canned(Response):
        def __init__(self, body):
            self.status_code, self.headers, self.request_id, self.latency_s = 200, {}, None, 0.0
            self.url, self.provider, self._body, self._aborted = "http://canned", "canned", body, False

        @property
        def content(self):
            return self._body

        def iter_bytes(self):
            return iter([self._body])

        def close(self):
            pass

        def abort(self):
            self._aborted = True

        @property
        def aborted(self):
            return self._aborted

    class CannedTransport(Transport):
        def send(self, request, deadline, *, attempt=1):
            deadline.check("canned")
            return Canned(b'{"path": "%s"}' % request.path.encode())

    with CannedTransport() as t:
        response = t.send(HTTPRequest("GET", "/models"), Deadline())
        assert response.json() == {"path": "/models"} and response.read() == response.content
        assert response.text.startswith("{") and not response.drain() and response.coalesce() is None
        with response as r:
            assert r is response
        assert "Canned [200]" in repr(response)
    bad = CannedTransport().send(HTTPRequest("GET", "/x"), Deadline())
    bad._body = b"<html>"
    with pytest.raises(modelprov.ResponseError, match="invalid JSON from canned"):
        bad.json()


def _private_uses(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FOREIGN_PRIVATE:
            yield node.lineno, node.attr
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr", "setattr"):
            args = node.args
            if len(args) >= 2 and isinstance(args[1], ast.Constant) and args[1].value in FOREIGN_PRIVATE:
                yield node.lineno, args[1].value


def test_private_names_of_requests_and_urllib3_live_only_in_compat():
    found = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel == "transport/_compat.py":
            continue
        if rel.startswith("testing/") or not rel.startswith("transport/"):
            # outside the transport nothing may touch requests/urllib3 at all (test_public_api checks imports)
            continue
        found.extend(f"{rel}:{line}: {name}" for line, name in _private_uses(path))
    assert found == []
    compat = list(_private_uses(PKG / "transport" / "_compat.py"))
    assert {name for _, name in compat} >= {"_fp", "_original_response", "_decoder", "_method"}
