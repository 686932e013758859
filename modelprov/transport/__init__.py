"""The only package that talks to requests and urllib3.

* :mod:`.base`: the interface the engine uses: :class:`Transport` (one
  method, ``send(request, deadline, *, attempt=1) -> Response``, plus
  ``close()``) and :class:`Response` (``json()``, ``content``,
  ``iter_bytes()``, ``close()``, ``abort()``, ``drain()``).
* :mod:`.requests_transport`: :class:`RequestsTransport`, the implementation
  on requests + urllib3 (sessions, pooling, proxies and CA bundles,
  redirects, redaction, deadlines enforced at the socket by :mod:`.watchdog`);
  :mod:`.response` its response, :mod:`.endpoint` URL and settings caches,
  :mod:`.net` adapter and reads, :mod:`.chunked` the bulk chunked reader,
  :mod:`.exchange` the link between a send and its connection.
* :mod:`.errors` maps network failures, :mod:`.status` non-2xx answers.
* :mod:`._compat`: every use of a requests/urllib3/http.client internal,
  each with why and the versions checked.

``import modelprov.transport`` loads neither requests nor urllib3; the names
of the requests implementation load them on first access.
"""

from typing import TYPE_CHECKING, Any

from .base import REQUEST_ID_HEADERS, Response, Transport

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import USER_AGENT
    from .net import ConnectionSettings
    from .requests_transport import MAX_REDIRECTS, RequestsTransport
    from .response import RequestsResponse

__all__ = [
    "MAX_REDIRECTS",
    "REQUEST_ID_HEADERS",
    "USER_AGENT",
    "ConnectionSettings",
    "RequestsResponse",
    "RequestsTransport",
    "Response",
    "Transport",
]

_LAZY = {
    "MAX_REDIRECTS": "requests_transport",
    "RequestsTransport": "requests_transport",
    "RequestsResponse": "response",
    "USER_AGENT": "endpoint",
    "ConnectionSettings": "net",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
