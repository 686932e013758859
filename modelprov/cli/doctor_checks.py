"""The network checks of ``modelprov doctor``: proxy, DNS, TCP connect and TLS handshake.

Standard library only (``truststore`` and ``certifi`` when installed and in
use). Each check returns a :class:`Check` (pass, fail, skip or info, what was
seen, and the fix on failure) and never raises for a network problem. The
proxy and CA bundle are worked out the way the library's transport does:
the provider's ``proxy``/``verify`` settings first, then, when ``trust_env``
is on, the environment (``HTTPS_PROXY``/``NO_PROXY``, ``REQUESTS_CA_BUNDLE``),
then certifi's bundle.
"""

import os
import socket
import ssl
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple
from urllib.parse import unquote, urlsplit

__all__ = ["Check", "Target", "ca_bundle", "check_dns", "check_tcp", "check_tls", "proxy_for", "target_of"]

PASS, FAIL, SKIP, INFO = "ok", "FAIL", "skip", "info"


@dataclass
class Check:
    """One line of the report."""

    scope: str
    check: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> Dict[str, str]:
        """JSON form."""
        return asdict(self)


@dataclass
class Target:
    """Where a provider's connections go: the server, and the proxy in between if any."""

    scheme: str
    host: str
    port: int
    proxy: Optional[str] = None
    proxy_source: str = ""

    @property
    def connect_host(self) -> str:
        """The host the TCP connection opens to (the proxy's when there is one)."""
        return urlsplit(self.proxy).hostname or "" if self.proxy else self.host

    @property
    def connect_port(self) -> int:
        """The port the TCP connection opens to."""
        if self.proxy:
            parts = urlsplit(self.proxy)
            return parts.port or (443 if parts.scheme == "https" else 1080 if parts.scheme.startswith("socks") else 80)
        return self.port

    def via(self) -> str:
        """`` via proxy URL (source)`` or ``""``."""
        from .._redact import redact

        return f" via proxy {redact(self.proxy)} ({self.proxy_source})" if self.proxy else ""


def proxy_for(url: str, proxy: Optional[str], trust_env: bool) -> Tuple[Optional[str], str]:
    """The proxy a request to ``url`` would use and where that came from (``None`` when direct)."""
    if proxy:
        return proxy, "the provider's proxy setting"
    if not trust_env:
        return None, ""
    import urllib.request

    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    host = parts.hostname or ""
    if proxies.get("no") and urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return None, ""
    for key in (parts.scheme.lower(), "all"):
        if proxies.get(key):
            names = [n for n in os.environ if n.lower() == f"{key}_proxy"]
            return proxies[key], (f"environment {names[0]}" if names else "system proxy settings")
    return None, ""


def target_of(base_url: str, proxy: Optional[str], trust_env: bool) -> Target:
    """The :class:`Target` of a base URL."""
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    found, source = proxy_for(base_url, proxy, trust_env)
    return Target(scheme, parts.hostname or "", port, found, source)


def ca_bundle(verify: Any, use_truststore: bool, trust_env: bool) -> Tuple[Optional[ssl.SSLContext], str]:
    """An SSL context verifying the way the transport would, and a description of the CA source."""
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx, "verification off (verify = false)"
    if use_truststore:
        try:
            import truststore

            return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT), "the system trust store (truststore)"
        except ImportError:
            return None, "use_truststore is on but truststore is not installed (pip install truststore)"
    path, label = None, ""
    if isinstance(verify, str):
        path, label = verify, f"{verify} (verify setting)"
    elif trust_env:
        for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            if os.environ.get(var):
                path, label = os.environ[var], f"{os.environ[var]} ({var})"
                break
    if path is None:
        try:
            import certifi

            path, label = certifi.where(), f"{certifi.where()} (certifi)"
        except ImportError:
            label = "the system default CA store"
    if os.environ.get("SSL_CERT_FILE") and "REQUESTS_CA_BUNDLE" not in label:
        label += "; SSL_CERT_FILE is set but requests ignores it (use REQUESTS_CA_BUNDLE)"
    try:
        if path and os.path.isdir(path):
            return ssl.create_default_context(capath=path), label
        return ssl.create_default_context(cafile=path), label
    except (OSError, ssl.SSLError) as exc:
        return None, f"{label}: cannot be loaded ({exc})"


def check_dns(scope: str, target: Target) -> Check:
    """Resolve the host the connection opens to (the proxy's when there is one)."""
    host = target.connect_host
    what = f"proxy host {host}" if target.proxy else host
    try:
        infos = socket.getaddrinfo(host, target.connect_port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        fix = "check the proxy URL" if target.proxy else "check the host name in base_url, your network, or set HTTPS_PROXY"
        return Check(scope, "dns", FAIL, f"cannot resolve {what}: {exc}", fix)
    addresses = sorted({str(i[4][0]) for i in infos})
    return Check(scope, "dns", PASS, f"{what} resolves to {', '.join(addresses[:3])}" + (" (the proxy is asked to reach the server)" if target.proxy else ""))


def _connect(target: Target, timeout: float) -> socket.socket:
    return socket.create_connection((target.connect_host, target.connect_port), timeout=timeout)


def check_tcp(scope: str, target: Target, timeout: float, hint: Optional[str]) -> Check:
    """Open a TCP connection to the server (or the proxy)."""
    where = f"{target.connect_host}:{target.connect_port}"
    what = f"proxy {where}" if target.proxy else where
    try:
        _connect(target, timeout).close()
    except socket.timeout:
        return Check(scope, "tcp", FAIL, f"connecting to {what} timed out after {timeout:g}s",
                     "a firewall may drop the connection: check the address, or set HTTPS_PROXY if you must use a proxy")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        fix = "check the proxy setting" if target.proxy else (hint or "is the server running? check the host and port in base_url")
        return Check(scope, "tcp", FAIL, f"cannot connect to {what}: {reason}", fix)
    return Check(scope, "tcp", PASS, f"connected to {what}")


def _tunnel(target: Target, timeout: float) -> socket.socket:
    """A TCP connection through an HTTP proxy's CONNECT tunnel (raises ConnectionError with the proxy's answer)."""
    import base64

    sock = _connect(target, timeout)
    parts = urlsplit(target.proxy or "")
    lines = [f"CONNECT {target.host}:{target.port} HTTP/1.1", f"Host: {target.host}:{target.port}"]
    if parts.username:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(pair).decode())
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        piece = sock.recv(4096)
        if not piece:
            break
        data += piece
    status = data.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    if status.split(" ")[1:2] != ["200"]:
        sock.close()
        raise ConnectionError(f"the proxy refused the tunnel: {status or 'no answer'}")
    return sock


def check_tls(scope: str, target: Target, timeout: float, verify: Any, use_truststore: bool, trust_env: bool,
              cert: Any = None) -> Check:
    """A TLS handshake with the server (through the proxy's CONNECT tunnel when there is one)."""
    ctx, label = ca_bundle(verify, use_truststore, trust_env)
    if ctx is None:
        return Check(scope, "tls", FAIL, f"CA bundle: {label}", "fix the verify setting or REQUESTS_CA_BUNDLE")
    if target.proxy and not urlsplit(target.proxy).scheme.lower() == "http":
        return Check(scope, "tls", SKIP, f"not checked through a {urlsplit(target.proxy).scheme} proxy; CA bundle {label}")
    if cert:
        try:
            ctx.load_cert_chain(*(cert if isinstance(cert, tuple) else (cert,)))
        except (OSError, ssl.SSLError) as exc:
            return Check(scope, "tls", FAIL, f"cannot load the client certificate: {exc}", "check the cert setting")
    try:
        raw = _tunnel(target, timeout) if target.proxy else _connect(target, timeout)
        with ctx.wrap_socket(raw, server_hostname=target.host) as tls:
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return Check(scope, "tls", FAIL, f"the certificate of {target.host} is not trusted ({exc.verify_message}); CA bundle {label}",
                     "point REQUESTS_CA_BUNDLE or the verify setting (modelprov config set provider."
                     f"{scope}.verify /path/to/ca.pem) at your organisation's CA bundle, or set use_truststore = true")
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        plain = reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG")
        fix = ("the server does not speak TLS on this port: if it is plain HTTP, write http:// in base_url" if plain
               else "check the server, the proxy and the CA bundle")
        return Check(scope, "tls", FAIL, f"TLS handshake with {target.host}:{target.port} failed ({reason}){target.via()}", fix)
    except socket.timeout:
        return Check(scope, "tls", FAIL, f"TLS handshake with {target.host}:{target.port} timed out after {timeout:g}s{target.via()}",
                     "the server or the proxy accepted the connection but did not answer the handshake")
    except OSError as exc:
        reason = str(exc) if isinstance(exc, ConnectionError) and not exc.errno else (exc.strerror or type(exc).__name__)
        return Check(scope, "tls", FAIL, f"TLS handshake with {target.host}:{target.port} failed: {reason}{target.via()}",
                     "check the proxy credentials and that it allows CONNECT" if target.proxy else "check the server")
    return Check(scope, "tls", PASS, f"{version} with {target.host}, certificate trusted by {label}{target.via()}")
