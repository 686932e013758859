"""``modelprov doctor``: every check against FakeServer, a closed port, plain HTTP behind https, a proxy, bad config."""

import json
import socket

import pytest

from modelprov.cli.main import main
from modelprov.testing import FakeServer

SENTINEL = "sk-proj-SENTINEL0123456789abcdef"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def config(tmp_path, text):
    path = tmp_path / "modelprov-config.ini"
    path.write_text(text)
    path.chmod(0o600)
    return path


def checks(capsys, *argv):
    code, out, err = run(capsys, "doctor", "--json", "--timeout", "2", *argv)
    data = json.loads(out)
    assert data["ok"] is (code == 0)
    return code, {(c["scope"], c["check"]): c for c in data["checks"]}, err


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


def test_all_pass_against_fakeserver(capsys, tmp_path, server):
    server.add_models("openai_compatible", ["m1", "m2"])
    server.add_models("openai_compatible", ["m1", "m2"])
    config(tmp_path, f"[provider:local]\ntype = openai_compatible\nbase_url = {server.base_url('openai_compatible')}\n"
                     f"api_key = {SENTINEL}\n")
    code, found, _ = checks(capsys)
    assert code == 0
    assert found[("local", "key")]["status"] == "ok" and "config file" in found[("local", "key")]["detail"]
    assert found[("local", "dns")]["status"] == "ok" and found[("local", "tcp")]["status"] == "ok"
    assert found[("local", "tls")]["status"] == "skip"  # plain http
    assert found[("local", "api")] == {"scope": "local", "check": "api", "status": "ok", "detail": "authenticated model list: 2 models", "fix": ""}
    assert found[("setup", "config file")]["status"] == "ok"
    assert server.last_request.headers.get("Authorization") == "Bearer " + SENTINEL
    code, out, err = run(capsys, "doctor", "local")
    assert code == 0 and out.splitlines()[-1] == "all checks passed" and SENTINEL not in out + err


def test_closed_port_fails_tcp_with_the_fix(capsys, tmp_path):
    config(tmp_path, f"[provider:local]\ntype = openai_compatible\nbase_url = http://127.0.0.1:{closed_port()}/v1\n")
    code, found, _ = checks(capsys)
    assert code == 1
    tcp = found[("local", "tcp")]
    assert tcp["status"] == "FAIL" and "cannot connect to 127.0.0.1:" in tcp["detail"] and "is the server running?" in tcp["fix"]
    assert found[("local", "api")]["status"] == "skip"
    code, out, _ = run(capsys, "doctor", "local")
    assert code == 1 and "fix: is the server running?" in out


def test_ollama_connection_hint(capsys, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    code, found, _ = checks(capsys)  # OLLAMA_HOST makes ollama a configured provider
    assert code == 1 and "ollama serve" in found[("ollama", "tcp")]["fix"]


def test_https_served_by_plain_http_fails_tls(capsys, tmp_path, server):
    config(tmp_path, f"[provider:local]\ntype = openai_compatible\nbase_url = https://127.0.0.1:{server.port}/v1\n")
    code, found, _ = checks(capsys, "local")
    tls = found[("local", "tls")]
    assert code == 1 and tls["status"] == "FAIL" and "TLS handshake with 127.0.0.1" in tls["detail"]
    assert "write http:// in base_url" in tls["fix"]


def test_tls_through_a_proxy_names_it_and_dns_tcp_target_the_proxy(capsys, tmp_path, server, monkeypatch):
    config(tmp_path, "[provider:far]\ntype = openai_compatible\nbase_url = https://llm.example.invalid/v1\n")
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:{SENTINEL}@127.0.0.1:{server.port}")
    code, found, err = checks(capsys, "far")
    assert found[("far", "dns")]["detail"].startswith("proxy host 127.0.0.1 resolves")
    assert found[("far", "tcp")]["detail"] == f"connected to proxy 127.0.0.1:{server.port}"
    tls = found[("far", "tls")]
    assert code == 1 and tls["status"] == "FAIL" and "via proxy http://***@127.0.0.1" in tls["detail"] and "HTTPS_PROXY" in tls["detail"]
    assert SENTINEL not in json.dumps(list(found.values())) + err


def test_unknown_type_is_a_failure(capsys, tmp_path):
    config(tmp_path, "[provider:vllm]\ntype = openai_compat\n")
    code, found, _ = checks(capsys)
    cfg = found[("vllm", "config")]
    assert code == 1 and cfg["status"] == "FAIL" and "unknown provider type 'openai_compat'" in cfg["detail"]
    assert "openai_compatible" in cfg["fix"]


def test_missing_key_and_mock(capsys):
    code, found, _ = checks(capsys, "openai")
    assert code == 1 and found[("openai", "key")]["status"] == "FAIL" and "OPENAI_API_KEY" in found[("openai", "key")]["fix"]
    assert found[("openai", "api")]["status"] == "skip"
    code, found, _ = checks(capsys, "mock")
    assert code == 0 and found[("mock", "network")]["detail"] == "offline provider: no network needed"
    assert ("mock", "dns") not in found


def test_nothing_configured_and_bad_file(capsys, tmp_path):
    code, found, _ = checks(capsys)
    assert code == 1 and found[("setup", "providers")]["status"] == "FAIL"
    assert found[("setup", "config file")]["status"] == "info"  # not created yet
    config(tmp_path, "[modelprov\n")
    code, found, _ = checks(capsys, "mock")
    assert code == 1 and found[("setup", "config file")]["status"] == "FAIL" and "line 1" in found[("setup", "config file")]["detail"]


def test_keyring_named_and_not_installed(capsys, monkeypatch):
    import sys

    code, found, _ = checks(capsys, "mock")
    assert code == 0 and found[("setup", "keyring")]["status"] == "info"
    assert "null Keyring" in found[("setup", "keyring")]["detail"] and "keyring 2" in found[("setup", "keyring")]["detail"]
    monkeypatch.setitem(sys.modules, "keyring", None)
    code, found, _ = checks(capsys, "mock")
    assert "not installed" in found[("setup", "keyring")]["detail"]


def test_usage_errors(capsys):
    assert run(capsys, "doctor", "--timeout", "0")[0] == 2
    code, _, err = run(capsys, "doctor", "opnai")
    assert code == 2 and "did you mean 'openai'?" in err.lower()
