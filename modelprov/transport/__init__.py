"""The only package that talks to requests and urllib3.

:mod:`.requests_transport` sends requests (sessions, pooling, proxies and CA
bundles, redirects, redaction); :mod:`.response` wraps a response whose body
is read whole or iterated; :mod:`.errors` maps statuses and network failures
to modelprov exceptions; :mod:`.net` and :mod:`.chunked` hold the fast paths.
"""

from .requests_transport import MAX_REDIRECTS, REQUEST_ID_HEADERS, USER_AGENT, ConnectionSettings, Response, Transport

__all__ = ["MAX_REDIRECTS", "REQUEST_ID_HEADERS", "USER_AGENT", "ConnectionSettings", "Response", "Transport"]
