"""``Endpoint``: where a transport sends, resolved once: URLs, origins and connection settings.

A provider's requests go to paths under one base URL (and now and then to an
absolute URL). :meth:`Endpoint.target` turns a path into the validated URL,
its ``(scheme, netloc)`` origin and host, cached per path, so the per-call
cost is a dict lookup instead of URL parsing; :meth:`Endpoint.settings`
resolves proxies, ``verify`` and ``cert`` once per origin
(:func:`.net.resolve_settings`). :func:`base_headers` builds the headers sent
with every request and registers credential values for redaction.
"""

import sys
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

import requests
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict

from .._redact import SECRET_HEADERS, register_secret
from .._version import __version__
from . import errors as _errors
from . import net as _net
from .net import ConnectionSettings

__all__ = ["USER_AGENT", "Endpoint", "HeadersArg", "Origin", "base_headers"]

#: ``User-Agent`` sent with every request.
USER_AGENT = "modelprov/%s python/%s" % (__version__, ".".join(str(n) for n in sys.version_info[:3]))
_URL_CACHE_MAX = 512

HeadersArg = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]
#: ``(scheme, netloc)`` of a URL, lower-cased, without credentials.
Origin = Tuple[str, str]


def _pairs(headers: HeadersArg) -> Iterable[Tuple[str, str]]:
    if not headers:
        return ()
    return headers.items() if isinstance(headers, Mapping) else headers


def _register_header_secrets(name: str, value: object) -> None:
    if name.lower() in SECRET_HEADERS and isinstance(value, str):
        register_secret(value)
        scheme, _, token = value.partition(" ")
        if token and scheme.lower() in ("bearer", "token", "basic"):
            register_secret(token.strip())


def base_headers(headers: HeadersArg, auth_headers: HeadersArg) -> "CaseInsensitiveDict[str]":
    """User-Agent, Accept-Encoding and Accept, overlaid with ``headers`` then ``auth_headers`` (secrets registered)."""
    base: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    base["User-Agent"] = USER_AGENT
    base["Accept-Encoding"] = requests.utils.default_headers()["Accept-Encoding"]
    base["Accept"] = "application/json"
    for name, value in list(_pairs(headers)) + list(_pairs(auth_headers)):
        _register_header_secrets(name, value)
        base[name] = value
    return base


class Endpoint:
    """One base URL and its connection settings, with per-path and per-origin caches."""

    def __init__(
        self,
        base_url: str,
        *,
        provider: Optional[str],
        proxy: Optional[str],
        verify: Union[bool, str, None],
        cert: Union[str, Tuple[str, str], None],
        trust_env: bool,
    ) -> None:
        self.base_url = base_url
        self.provider = provider
        self.proxy = proxy
        self.verify = verify
        self.cert = cert
        self.trust_env = trust_env
        self._urls: Dict[str, Tuple[str, Origin, str]] = {}
        self._settings: Dict[Origin, ConnectionSettings] = {}
        self.target("")  # validate base_url now (ConfigurationError if bad)

    def target(self, path: str) -> Tuple[str, Origin, str]:
        """(validated URL, origin, host) for a path under the base URL or an absolute URL."""
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
            url = str(prep.url)
            parts = urlsplit(url)
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
        hit = (url, (parts.scheme.lower(), netloc), host)
        if len(self._urls) >= _URL_CACHE_MAX:
            self._urls.clear()
        self._urls[path] = hit
        return hit

    def settings(self, origin: Origin) -> ConnectionSettings:
        """Proxies/verify/cert for ``origin``, resolved on first use."""
        found = self._settings.get(origin)
        if found is not None:
            return found
        url = f"{origin[0]}://{origin[1]}/"
        host = urlsplit(url).hostname or ""
        found = _net.resolve_settings(url, host, proxy=self.proxy, verify=self.verify, cert=self.cert, trust_env=self.trust_env)
        self._settings[origin] = found
        return found
