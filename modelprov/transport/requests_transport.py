"""The one module that talks to ``requests``: HTTP for every provider.

:class:`Transport` owns one ``requests.Session`` + ``HTTPAdapter`` per provider
endpoint. Its fast path prepares each request itself and calls the adapter's
``send()`` directly, with proxies/``verify``/``cert`` resolved once per
scheme+host (explicit settings, else requests' environment conventions), so
no per-request environment merging, hooks or ``~/.netrc`` lookups happen.
Redirects are followed only within the same origin (307/308, or any 30x for
GET/HEAD), at most :data:`MAX_REDIRECTS` times; a redirect to another host is
refused so credentials never leave the configured host.

Every failure becomes a :mod:`modelprov.exceptions` error (mapping lives in
:mod:`modelprov._transport_errors`); non-2xx responses go through the
provider's ``error_parser`` hook. :class:`Response` exposes ``json()``,
``content``, ``iter_bytes()`` (prompt, always releases the connection) and a
thread-safe ``abort()``. Requests are logged at DEBUG on ``modelprov.transport``
with redacted URLs and headers.
"""

import json
import logging
import sys
import time
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, Union
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict

from . import errors as _errors
from . import net as _net
from .._log import get_logger
from .._redact import SECRET_HEADERS, redact, redact_headers, redact_url, register_secret
from .net import ConnectionSettings
from .response import REQUEST_ID_HEADERS, Response, request_id as _request_id
from .._version import __version__
from ..exceptions import ConfigurationError, ModelProvError, ProviderConnectionError, ProviderError, ValidationError
from ..types import HTTPRequest, ProviderConfig

__all__ = ["MAX_REDIRECTS", "REQUEST_ID_HEADERS", "USER_AGENT", "ConnectionSettings", "Response", "Transport"]

_log = get_logger("transport")
_DEBUG = logging.DEBUG

#: ``User-Agent`` sent with every request.
USER_AGENT = "modelprov/%s python/%d.%d.%d" % ((__version__,) + tuple(sys.version_info[:3]))
#: Same-origin redirects followed before giving up.
MAX_REDIRECTS = 3
_REDIRECT_CODES = frozenset((301, 302, 303, 307, 308))
_URL_CACHE_MAX = 512
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)



class _RedactingFilter(logging.Filter):
    """Redacts urllib3's own DEBUG lines, which print request URLs (query keys included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            clean = redact(message)
            if clean != message:
                record.msg, record.args = clean, ()
        except Exception:  # never break logging
            pass
        return True


def _install_log_redaction() -> None:
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactingFilter) for f in target.filters):
        target.addFilter(_RedactingFilter())


_install_log_redaction()

HeadersArg = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]
Timeout = Tuple[Optional[float], Optional[float]]


def _pairs(headers: HeadersArg) -> Iterable[Tuple[str, str]]:
    if not headers:
        return ()
    return headers.items() if isinstance(headers, Mapping) else headers


def _register_header_secrets(name: str, value: Any) -> None:
    if name.lower() in SECRET_HEADERS and isinstance(value, str):
        register_secret(value)
        scheme, _, token = value.partition(" ")
        if token and scheme.lower() in ("bearer", "token", "basic"):
            register_secret(token.strip())


class Transport:
    """HTTP for one provider endpoint: pooling, proxies/CA, timeouts, errors, logging.

    :param base_url: e.g. ``https://api.openai.com/v1``; request paths are joined to it.
    :param provider: provider name, put on every exception and log line.
    :param connect_timeout: seconds to connect (``None``: no limit).
    :param read_timeout: seconds between bytes from the server (``None``: no limit).
    :param proxy: explicit proxy URL (used for every host, loopback too).
    :param verify: ``True``/``False`` or CA bundle path; wins over ``REQUESTS_CA_BUNDLE``.
    :param cert: client certificate path or ``(cert, key)``.
    :param pool_size: connections kept per host.
    :param trust_env: use proxy and CA-bundle environment variables (never ``~/.netrc``).
    :param use_truststore: verify with the OS trust store (needs ``truststore``).
    :param headers: extra headers for every request.
    :param error_parser: ``(status, body_json_or_None, text, headers) -> Optional[ProviderError]``.
    :param auth_headers: credential headers for every request (registered for redaction).
    """

    def __init__(
        self,
        base_url: str,
        *,
        provider: str,
        connect_timeout: Optional[float] = 5.0,
        read_timeout: Optional[float] = 600.0,
        proxy: Optional[str] = None,
        verify: Union[bool, str, None] = None,
        cert: Union[str, Tuple[str, str], None] = None,
        pool_size: int = 32,
        trust_env: bool = True,
        use_truststore: bool = False,
        headers: HeadersArg = None,
        error_parser: Optional[_errors.ErrorParser] = None,
        auth_headers: HeadersArg = None,
    ) -> None:
        self.base_url = base_url
        self.provider = provider
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.proxy = proxy
        self.verify = verify
        self.cert = cert
        self.pool_size = pool_size
        self.trust_env = trust_env
        self.use_truststore = use_truststore
        self.error_parser = error_parser
        self._timeout: Timeout = (connect_timeout, read_timeout)
        self._closed = False
        self._urls: Dict[str, Tuple[str, Tuple[str, str], str]] = {}
        self._settings: Dict[Tuple[str, str], ConnectionSettings] = {}
        base: CaseInsensitiveDict = CaseInsensitiveDict()
        base["User-Agent"] = USER_AGENT
        base["Accept-Encoding"] = requests.utils.default_headers()["Accept-Encoding"]
        base["Accept"] = "application/json"
        for name, value in list(_pairs(headers)) + list(_pairs(auth_headers)):
            _register_header_secrets(name, value)
            base[name] = value
        self._base_store = base._store
        self._target("")  # validate base_url now (ConfigurationError if bad)
        self._adapter = _net.make_adapter(pool_size, use_truststore)
        self._session = _net.make_session(self._adapter)

    @classmethod
    def from_config(
        cls,
        cfg: ProviderConfig,
        *,
        error_parser: Optional[_errors.ErrorParser] = None,
        auth_headers: HeadersArg = None,
    ) -> "Transport":
        """Build from a :class:`ProviderConfig` (``timeout``, when set, is the read timeout and caps connect)."""
        if not cfg.base_url:
            raise ConfigurationError(f"no base_url configured for provider {cfg.name!r}", provider=cfg.name)
        register_secret(cfg.api_key)
        read, connect = cfg.read_timeout, cfg.connect_timeout
        if cfg.timeout is not None:
            read = cfg.timeout
            connect = cfg.timeout if connect is None else min(connect, cfg.timeout)
        return cls(
            cfg.base_url,
            provider=cfg.name,
            connect_timeout=connect,
            read_timeout=read,
            proxy=cfg.proxy,
            verify=cfg.verify,
            cert=cfg.cert,
            pool_size=cfg.pool_size,
            trust_env=cfg.trust_env,
            use_truststore=cfg.use_truststore,
            headers=cfg.headers,
            error_parser=error_parser,
            auth_headers=auth_headers,
        )

    # -- public helpers -----------------------------------------------------

    @property
    def session(self) -> requests.Session:
        """The underlying session (``trust_env`` off; our adapter mounted)."""
        return self._session

    @property
    def adapter(self) -> requests.adapters.HTTPAdapter:
        """The adapter holding the connection pools."""
        return self._adapter

    def connection_settings(self, url: Optional[str] = None) -> ConnectionSettings:
        """Proxies/verify/cert the transport passes to the adapter for ``url`` (default: base URL)."""
        _, origin, _ = self._target(url or "")
        return self._settings.get(origin) or self._resolve(origin)

    def close(self) -> None:
        """Close every pooled connection; later sends raise."""
        self._closed = True
        self._session.close()

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Transport(provider={self.provider!r}, base_url={redact_url(self.base_url)!r})"

    # -- internals ----------------------------------------------------------

    def _target(self, path: str) -> Tuple[str, Tuple[str, str], str]:
        """(validated URL, (scheme, netloc) origin, host) for a path or absolute URL."""
        hit = self._urls.get(path)
        if hit is not None:
            return hit
        if "://" in path:
            raw = path
        elif path:
            raw = self.base_url.rstrip("/") + "/" + path.lstrip("/")
        else:
            raw = self.base_url
        try:
            scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
            if scheme not in ("http", "https"):
                raise requests.exceptions.InvalidSchema(f"unsupported URL scheme {scheme or '(none)'!r}")
            prep = PreparedRequest()
            prep.prepare_url(raw, None)
            parts = urlsplit(prep.url)
            host = parts.hostname or ""
            if not host:
                raise requests.exceptions.InvalidURL("no host in URL")
            netloc = parts.netloc.rsplit("@", 1)[-1].lower()
        except Exception as exc:
            mapped = _errors.map_exception(exc, provider=self.provider, method="-", url=raw, host="?")
            if mapped is None:
                raise
            _errors.scrub_chain(exc)
            raise mapped from exc
        hit = (prep.url, (parts.scheme.lower(), netloc), host)
        if len(self._urls) >= _URL_CACHE_MAX:
            self._urls.clear()
        self._urls[path] = hit
        return hit

    def _resolve(self, origin: Tuple[str, str]) -> ConnectionSettings:
        url = f"{origin[0]}://{origin[1]}/"
        host = urlsplit(url).hostname or ""
        settings = _net.resolve_settings(
            url, host, proxy=self.proxy, verify=self.verify, cert=self.cert, trust_env=self.trust_env
        )
        self._settings[origin] = settings
        return settings

    def _encode(self, payload: Any) -> bytes:
        try:
            return _ENCODER.encode(payload).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"request body is not JSON-serialisable: {exc}", provider=self.provider) from None

    def _exchange(
        self,
        method: str,
        url: str,
        origin: Tuple[str, str],
        host: str,
        headers: CaseInsensitiveDict,
        body: Optional[bytes],
        timeout: Timeout,
        settings: ConnectionSettings,
    ) -> requests.Response:
        """One adapter send, following only same-origin redirects."""
        send = self._adapter.send
        for _ in range(MAX_REDIRECTS + 1):
            prep = PreparedRequest()
            prep.method = method
            prep.url = url
            prep.headers = headers
            prep.body = body
            prep.mp_origin = origin  # type: ignore[attr-defined]  # our adapter's fast path (see _transport_net.Adapter)
            resp = send(prep, stream=True, timeout=timeout, verify=settings.verify, cert=settings.cert, proxies=settings.proxies)
            status = resp.status_code
            location = resp.headers.get("location") if status in _REDIRECT_CODES else None
            if not location:
                return resp
            try:
                _net.read_capped(resp.raw, _errors.MAX_ERROR_BODY)
            finally:
                _net.release(resp.raw)
            target = urljoin(url, location)
            tparts = urlsplit(target)
            same = (tparts.scheme.lower(), tparts.netloc.lower()) == origin
            if not same or not (status in (307, 308) or method in ("GET", "HEAD")):
                if same:
                    why = f"to {_errors.short_url(target)}: a {method} must not be re-sent as GET after HTTP {status}"
                else:
                    why = f"to another host ({redact(tparts.scheme + '://' + (tparts.hostname or '?'))})"
                raise ProviderError(
                    f"redirect refused: {host} answered HTTP {status} redirecting {method} {_errors.short_url(url)} "
                    f"{why}; credentials are never sent on redirects",
                    provider=self.provider,
                    status_code=status,
                    request_id=_request_id(resp.headers),
                    retryable=False,
                    hint="Set base_url to the final URL",
                )
            url = target
        raise requests.exceptions.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    def send(self, request: HTTPRequest, *, timeout: Optional[float] = None, attempt: int = 1) -> Response:
        """Send ``request``; returns a 2xx :class:`Response` or raises a mapped exception.

        ``timeout`` overrides the read timeout for this call and caps the
        connect timeout. Non-2xx responses raise the ``error_parser``'s
        exception (or the generic one) with provider, status, request id,
        ``retry_after`` and the retry-hint headers filled in.
        """
        if self._closed:
            raise ProviderConnectionError(f"the transport for {self.provider} is closed", provider=self.provider, retryable=False)
        method = request.method.upper()
        if timeout is None:
            tmo = self._timeout
        else:
            ct = self.connect_timeout
            tmo = (timeout if ct is None else min(ct, timeout), timeout)
        started = time.perf_counter()
        url, host, phase, resp, settings = request.path, "?", "request", None, None
        try:
            url, origin, host = self._target(request.path)
            if request.params:
                query = urlencode([(k, v) for k, v in request.params.items() if v is not None], doseq=True)
                if query:
                    url = url + ("&" if "?" in url else "?") + query
            settings = self._settings.get(origin) or self._resolve(origin)
            headers = CaseInsensitiveDict()
            headers._store = self._base_store.copy()
            if request.headers:
                for name, value in request.headers.items():
                    if value is None:
                        headers.pop(name, None)
                    else:
                        headers[name] = value
            body = None
            if request.json is not None:
                body = self._encode(request.json)
                headers["Content-Length"] = str(len(body))
                if "content-type" not in headers:
                    headers["Content-Type"] = "application/json"
            resp = self._exchange(method, url, origin, host, headers, body, tmo, settings)
            status = resp.status_code
            phase = "body"
            if 200 <= status < 300:
                content = None if request.stream else _net.read_all(resp.raw)
            else:
                content = _net.read_capped(resp.raw, _errors.MAX_ERROR_BODY)
                _net.release(resp.raw)
        except BaseException as exc:
            if resp is not None:
                try:
                    _net.release(resp.raw)
                except Exception:
                    pass
            if not isinstance(exc, Exception):  # KeyboardInterrupt & co: connection released, no mapping
                raise
            mapped = _errors.map_exception(
                exc, provider=self.provider, method=method, url=url, host=host,
                connect_timeout=tmo[0], read_timeout=tmo[1], phase=phase,
                proxy=settings.proxy if settings is not None else None,
            )  # fmt: skip
            self._log_failure(method, url, started, attempt, mapped or exc)
            if mapped is None or mapped is exc:
                raise
            _errors.scrub_chain(exc)
            raise mapped from exc
        latency = time.perf_counter() - started
        rheaders = resp.headers
        rid = _request_id(rheaders)
        if _log.isEnabledFor(_DEBUG):
            _log.debug(
                "%s %s -> %d in %.3fs (provider %s, attempt %d, request id %s, headers %s)",
                method, redact_url(url), status, latency, self.provider, attempt, rid, redact_headers(headers),
            )  # fmt: skip
        if not 200 <= status < 300:
            error = _errors.error_from_status(
                status=status, reason=resp.reason or "", headers=rheaders, body=content or b"",
                provider=self.provider, host=host, request_id=rid, error_parser=self.error_parser,
            )  # fmt: skip
            self._log_failure(method, url, started, attempt, error)
            raise error
        ctx = {
            "provider": self.provider, "method": method, "url": url, "host": host,
            "connect_timeout": tmo[0], "read_timeout": tmo[1], "proxy": settings.proxy,
        }  # fmt: skip
        return Response(
            status_code=status, headers=rheaders, request_id=rid, latency_s=latency, url=url,
            provider=self.provider, attempt=attempt, raw=resp.raw, content=content, ctx=ctx,
        )  # fmt: skip

    def _log_failure(self, method: str, url: str, started: float, attempt: int, exc: BaseException) -> None:
        if _log.isEnabledFor(_DEBUG):
            text = str(exc) if isinstance(exc, ModelProvError) else type(exc).__name__
            _log.debug(
                "%s %s failed after %.3fs (provider %s, attempt %d): %s",
                method, redact_url(url), time.perf_counter() - started, self.provider, attempt, redact(text),
            )  # fmt: skip
