"""``RequestsTransport``: the :class:`~modelprov.transport.base.Transport` built on requests and urllib3.

It owns one ``requests.Session`` + ``HTTPAdapter`` per provider endpoint,
prepares each request itself and calls the adapter's ``send()`` directly,
with proxies/``verify``/``cert`` resolved once per scheme+host (explicit
settings, else requests' environment conventions), so no per-request
environment merging, hooks or ``~/.netrc`` lookups happen. Redirects are
followed only within the same origin (307/308, or any 30x for GET/HEAD), at
most :data:`MAX_REDIRECTS` times; a redirect to another host is refused so
credentials never leave the configured host.

Time: ``send(request, deadline)`` gives the socket
``deadline.cap(connect_timeout)`` to connect and ``deadline.cap(read_timeout)``
per read, and registers the exchange with the deadline watchdog
(:mod:`.watchdog`), which shuts the socket down when the deadline passes, so
a server trickling its headers or body cannot stretch the call: the pending
read returns and ``ProviderTimeoutError`` is raised (headers, JSON bodies and
streams alike).

Every failure becomes a :mod:`modelprov.exceptions` error (:mod:`.errors`);
non-2xx responses go through the provider's ``error_parser`` hook
(:mod:`.status`). ``close()`` closes every connection the transport opened,
idle or checked out, at once. Requests are logged at DEBUG on
``modelprov.transport`` with redacted URLs and headers.
"""

import json
import logging
import threading
import time
import weakref
from typing import Any, Optional, Tuple, Union, cast
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict

from .._log import get_logger
from .._redact import redact, redact_headers, redact_url, register_secret
from ..deadline import Deadline
from ..exceptions import ConfigurationError, ModelProvError, ProviderConnectionError, ProviderError, ValidationError
from ..types import HTTPRequest, ProviderConfig
from . import _compat
from . import errors as _errors
from . import net as _net
from .base import REQUEST_ID_HEADERS, ErrorParser, Transport
from .base import request_id as _request_id
from .endpoint import USER_AGENT, Endpoint, HeadersArg, Origin, base_headers
from .exchange import EXPIRED, ConnectionRegistry, Exchange, sending
from .net import ConnectionSettings
from .response import RequestsResponse
from .watchdog import Watchdog, watchdog

__all__ = ["MAX_REDIRECTS", "REQUEST_ID_HEADERS", "USER_AGENT", "ConnectionSettings", "RequestsResponse", "RequestsTransport"]

_log = get_logger("transport")
_DEBUG = logging.DEBUG

#: Same-origin redirects followed before giving up.
MAX_REDIRECTS = 3
_REDIRECT_CODES = frozenset((301, 302, 303, 307, 308))
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


Timeout = Tuple[Optional[float], Optional[float]]


class RequestsTransport(Transport):
    """HTTP for one provider endpoint: pooling, proxies/CA, deadlines, errors, logging.

    :param base_url: e.g. ``https://api.openai.com/v1``; request paths are joined to it.
    :param provider: provider name, put on every exception and log line.
    :param connect_timeout: seconds to connect (``None``: no limit but the deadline's).
    :param read_timeout: seconds one socket read may wait (``None``: no limit but the deadline's).
    :param idle_timeout: for streamed requests, the read timeout is at most this
        (a stream silent that long is idle); ``None``: ``read_timeout`` only.
    :param proxy: explicit proxy URL (used for every host, loopback too).
    :param verify: ``True``/``False`` or CA bundle path; wins over ``REQUESTS_CA_BUNDLE``.
    :param cert: client certificate path or ``(cert, key)``.
    :param pool_size: idle connections kept per host however long they idle. A burst
        of more calls at once opens one connection per call and returns every one of
        them to the pool (no "pool is full" discarding); those beyond ``pool_size``
        close after idling :data:`~modelprov.transport._compat.POOL_IDLE_SECONDS`.
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
        idle_timeout: Optional[float] = None,
        proxy: Optional[str] = None,
        verify: Union[bool, str, None] = None,
        cert: Union[str, Tuple[str, str], None] = None,
        pool_size: int = 32,
        trust_env: bool = True,
        use_truststore: bool = False,
        headers: HeadersArg = None,
        error_parser: Optional[ErrorParser] = None,
        auth_headers: HeadersArg = None,
    ) -> None:
        self.base_url = base_url
        self.provider = provider
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.proxy = proxy
        self.verify = verify
        self.cert = cert
        self.pool_size = pool_size
        self.trust_env = trust_env
        self.use_truststore = use_truststore
        self.error_parser = error_parser
        self._stream_read_timeout = read_timeout
        if idle_timeout is not None and (read_timeout is None or idle_timeout < read_timeout):
            self._stream_read_timeout = idle_timeout
        self._closed = False
        self._registry = ConnectionRegistry()
        self._lock = threading.Lock()
        self._watchdog: Optional[Watchdog] = None
        self._watchdog_release: Any = None  # a weakref.finalize releasing the watchdog
        self._base_headers = base_headers(headers, auth_headers)
        self._endpoint = Endpoint(base_url, provider=provider, proxy=proxy, verify=verify, cert=cert, trust_env=trust_env)
        self._adapter = _net.make_adapter(pool_size, use_truststore)
        self._session = _net.make_session(self._adapter)

    @classmethod
    def from_config(
        cls,
        cfg: ProviderConfig,
        *,
        error_parser: Optional[ErrorParser] = None,
        auth_headers: HeadersArg = None,
    ) -> "RequestsTransport":
        """Build from a :class:`ProviderConfig`.

        ``read_timeout``, ``connect_timeout`` and ``idle_timeout`` (streams) are
        the socket timeouts; ``timeout``, when set, caps them too (the engine
        also makes it the call's deadline).
        """
        if not cfg.base_url:
            raise ConfigurationError(f"no base_url configured for provider {cfg.name!r}", provider=cfg.name)
        register_secret(cfg.api_key)
        read: Optional[float] = cfg.read_timeout
        connect: Optional[float] = cfg.connect_timeout
        if cfg.timeout is not None:
            read = cfg.timeout if read is None else min(read, cfg.timeout)
            connect = cfg.timeout if connect is None else min(connect, cfg.timeout)
        return cls(
            cfg.base_url,
            provider=cfg.name,
            connect_timeout=connect,
            read_timeout=read,
            idle_timeout=cfg.idle_timeout,
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

    @property
    def open_connections(self) -> int:
        """Connections this transport opened that are still alive (pooled or in use)."""
        return len(self._registry)

    def connection_settings(self, url: Optional[str] = None) -> ConnectionSettings:
        """Proxies/verify/cert the transport passes to the adapter for ``url`` (default: base URL)."""
        return self._endpoint.settings(self._endpoint.target(url or "")[1])

    def close(self) -> None:
        """Close every connection now, pooled or checked out by an unfinished response; later sends raise.

        Deterministic: the pools are closed and every socket this transport
        opened is shut down and closed, whoever still holds a reference to it.
        """
        self._closed = True
        for manager in (self._adapter.poolmanager, *self._adapter.proxy_manager.values()):
            _compat.close_pools(manager)  # their idle connections now, and off the reaper's list
        self._session.close()
        self._registry.close_all()
        with self._lock:
            release, self._watchdog_release, self._watchdog = self._watchdog_release, None, None
        if release is not None:
            release()

    def __repr__(self) -> str:
        return f"RequestsTransport(provider={self.provider!r}, base_url={redact_url(self.base_url)!r})"

    # -- internals ----------------------------------------------------------

    def _encode(self, payload: Any) -> bytes:
        try:
            return _ENCODER.encode(payload).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"request body is not JSON-serialisable: {exc}", provider=self.provider) from None

    def _watch(self, exchange: Exchange, left: float) -> Watchdog:
        """Register ``exchange`` with the watchdog: it expires ``left`` seconds from now."""
        dog = watchdog()
        if dog is not self._watchdog:  # first deadline on this transport (or in a forked child)
            with self._lock:
                if dog is not self._watchdog:
                    if self._watchdog_release is not None:
                        self._watchdog_release.detach()
                    dog.retain()
                    self._watchdog = dog
                    self._watchdog_release = weakref.finalize(self, dog.release)  # a transport never closed
                    self._watchdog_release.atexit = False  # at exit the daemon thread just ends
        exchange.entry = dog.schedule(time.monotonic() + left, exchange.expire)
        return dog

    def _roundtrip(
        self,
        method: str,
        url: str,
        origin: Origin,
        host: str,
        headers: "CaseInsensitiveDict[str]",
        body: Optional[bytes],
        timeout: Timeout,
        settings: ConnectionSettings,
        exchange: Exchange,
    ) -> _net.Answer:
        """One adapter send, following only same-origin redirects."""
        send = self._adapter.send
        for _ in range(MAX_REDIRECTS + 1):
            prep = PreparedRequest()
            prep.method = method
            prep.url = url
            prep.headers = cast("CaseInsensitiveDict[Union[str, bytes]]", headers)
            prep.body = body
            prep.mp_origin = origin  # type: ignore[attr-defined]  # the adapter's pool cache (see net.Adapter)
            sending(exchange)  # the connection that carries it attaches itself (see exchange.py)
            try:
                sent = send(prep, stream=True, timeout=timeout, verify=settings.verify, cert=settings.cert, proxies=settings.proxies)
                resp = cast(_net.Answer, sent)  # net.Adapter.build_response answers our requests with an Answer
            finally:
                sending(None)
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

    def send(self, request: HTTPRequest, deadline: Deadline, *, attempt: int = 1) -> RequestsResponse:
        """Send ``request`` within ``deadline``; returns a 2xx :class:`RequestsResponse` or raises a mapped exception.

        Non-2xx responses raise the ``error_parser``'s exception (or the
        generic one) with provider, status, request id, ``retry_after`` and
        the retry-hint headers filled in. When the deadline passes while
        connecting, waiting for headers or reading the body, the read is
        interrupted and :class:`~modelprov.exceptions.ProviderTimeoutError` raised.
        """
        if self._closed:
            raise ProviderConnectionError(f"the transport for {self.provider} is closed", provider=self.provider, retryable=False)
        method = request.method.upper()
        provider = self.provider
        read = self._stream_read_timeout if request.stream else self.read_timeout
        tmo = (deadline.cap(self.connect_timeout, provider), deadline.cap(read, provider))  # raises once passed
        exchange = Exchange(self._registry)
        left = deadline.remaining()
        dog = self._watch(exchange, left) if left is not None else None
        started = time.perf_counter()
        endpoint = self._endpoint
        url, host, phase, resp, settings, raw = request.path, "?", "request", None, None, None
        try:
            url, origin, host = endpoint.target(request.path)
            if request.params:
                query = urlencode([(k, v) for k, v in request.params.items() if v is not None], doseq=True)
                if query:
                    url = url + ("&" if "?" in url else "?") + query
            settings = endpoint.settings(origin)
            headers = self._base_headers.copy()
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
            elif request.body is not None:
                body = bytes(request.body)
                headers["Content-Length"] = str(len(body))
            resp = self._roundtrip(method, url, origin, host, headers, body, tmo, settings, exchange)
            raw = resp.raw
            if exchange.state == EXPIRED:  # cut while reading the headers: what arrived is not an answer
                raise _errors.deadline_error(deadline, provider=provider, method=method, url=url, host=host, phase=phase)
            status = resp.status_code
            phase = "body"
            if 200 <= status < 300:
                content = None if request.stream else _net.read_all(raw)
            else:
                content = _net.read_capped(raw, _errors.MAX_ERROR_BODY)
                _net.release(raw)
            if content is not None and exchange.finish() == EXPIRED:  # a body cut short by the deadline
                _net.release(raw)
                raise _errors.deadline_error(deadline, provider=self.provider, method=method, url=url, host=host, phase=phase)
        except BaseException as exc:
            expired = exchange.finish() == EXPIRED
            if dog is not None:
                dog.cancel(exchange.entry)
            if resp is not None:
                try:
                    _net.release(resp.raw)
                except Exception:
                    pass
                resp = raw = None  # the exception's frames must not hold the response
            if not isinstance(exc, Exception):  # KeyboardInterrupt & co: connection released, no mapping
                raise
            if expired and not isinstance(exc, ModelProvError):
                mapped: Optional[ModelProvError] = _errors.deadline_error(
                    deadline, provider=self.provider, method=method, url=url, host=host, phase=phase
                )
            else:
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
        if content is not None and dog is not None:
            dog.cancel(exchange.entry)
        if not 200 <= status < 300:
            reason = resp.reason or ""
            resp = raw = None  # the exception's frames must not hold the response
            error = _errors.error_from_status(
                status=status, reason=reason, headers=rheaders, body=content or b"",
                provider=self.provider, host=host, request_id=rid, error_parser=self.error_parser,
            )  # fmt: skip
            self._log_failure(method, url, started, attempt, error)
            raise error
        ctx = {
            "provider": self.provider, "method": method, "url": url, "host": host,
            "connect_timeout": tmo[0], "read_timeout": tmo[1], "proxy": settings.proxy,
        }  # fmt: skip
        return RequestsResponse(
            status_code=status, headers=rheaders, request_id=rid, latency_s=latency, url=url,
            provider=self.provider, attempt=attempt, raw=raw, content=content, ctx=ctx,
            exchange=exchange, deadline=deadline, watchdog=dog,
        )  # fmt: skip

    def _log_failure(self, method: str, url: str, started: float, attempt: int, exc: BaseException) -> None:
        if _log.isEnabledFor(_DEBUG):
            text = str(exc) if isinstance(exc, ModelProvError) else type(exc).__name__
            _log.debug(
                "%s %s failed after %.3fs (provider %s, attempt %d): %s",
                method, redact_url(url), time.perf_counter() - started, self.provider, attempt, redact(text),
            )  # fmt: skip
