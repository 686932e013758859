"""The transport interface: one method to send a request, a response read whole or iterated.

The engine talks to the network only through :class:`Transport`::

    response = transport.send(request, deadline, attempt=n)   # 2xx, or a typed exception
    data = response.json()                                     # a JSON call
    for piece in response.iter_bytes(): ...                    # a stream

:class:`~modelprov.transport.requests_transport.RequestsTransport` is the real
implementation (requests + urllib3); :class:`modelprov.testing.MockTransport`
answers in-process from a handler, without sockets. Any other transport
(a signing proxy, a recorder) subclasses :class:`Transport` and returns a
:class:`Response`.

The contract every implementation keeps:

* ``send`` returns only for a 2xx status; any other status raises the
  exception the provider's ``error_parser`` (or the generic mapping) gives,
  network failures raise :class:`~modelprov.exceptions.ProviderConnectionError`
  / :class:`~modelprov.exceptions.ProviderTimeoutError`, never a foreign
  exception.
* The :class:`~modelprov.deadline.Deadline` bounds the whole exchange in wall
  time: connecting, waiting for headers and reading the body (whole or
  streamed). When it passes, the pending read is interrupted and
  ``ProviderTimeoutError`` is raised.
* A streamed body (``request.stream``) is read with :meth:`Response.iter_bytes`;
  the connection is released however the iteration ends. :meth:`Response.abort`
  may be called from any thread to unblock a pending read.

This module imports neither requests nor urllib3.
"""

import abc
import json
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Tuple, Union

from ..deadline import Deadline
from ..exceptions import ModelProvError, ResponseError
from ..types import HTTPRequest, ProviderConfig

__all__ = ["DRAIN_LIMIT", "DRAIN_TIMEOUT", "REQUEST_ID_HEADERS", "ErrorParser", "HeadersArg", "Response", "Transport", "request_id"]

#: Response headers holding a request id, in order of preference (first found wins).
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-generation-id", "x-amzn-requestid")
#: Seconds :meth:`Response.drain` waits, in all, for the rest of a finished stream's body.
DRAIN_TIMEOUT = 0.05
#: Bytes :meth:`Response.drain` reads at most before giving up on reusing the connection.
DRAIN_LIMIT = 64 * 1024

#: Headers as callers give them: a mapping or ``(name, value)`` pairs.
HeadersArg = Union[Mapping[str, str], Sequence[Tuple[str, str]], None]

#: ``error_parser(status, body_json_or_None, text, headers) -> Optional[ModelProvError]``: a
#: provider's hook turning a non-2xx answer into its exception (``None``: use the generic mapping).
ErrorParser = Callable[[int, Any, str, Mapping[str, str]], Optional[ModelProvError]]


def request_id(headers: Mapping[str, str]) -> Optional[str]:
    """The first request-id header present in ``headers`` (a case-insensitive mapping)."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


class Response(abc.ABC):
    """A response whose status was 2xx, as :meth:`Transport.send` returns it.

    Attributes every implementation sets: ``status_code``, ``headers`` (a
    case-insensitive mapping), ``request_id`` (from :data:`REQUEST_ID_HEADERS`),
    ``latency_s`` (seconds from sending to the headers, or to the whole body
    for a JSON call), ``url`` and ``provider``.
    """

    __slots__ = ()

    status_code: int
    headers: Mapping[str, str]
    request_id: Optional[str]
    latency_s: float
    url: str
    provider: Optional[str]

    # -- body ---------------------------------------------------------------

    @property
    @abc.abstractmethod
    def content(self) -> bytes:
        """The whole body (reads the rest of a streamed body)."""

    def read(self) -> bytes:
        """The whole body; same as :attr:`content`."""
        return self.content

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    @property
    def source(self) -> str:
        """Who answered, for messages (a host name)."""
        return self.provider or "the server"

    def json(self) -> Any:
        """The body parsed as JSON; :class:`ResponseError` with a short excerpt if it is not."""
        data = self.content
        try:
            return json.loads(data)
        except ValueError as exc:
            excerpt = data[:120].decode("utf-8", errors="replace")
            raise ResponseError(
                f"invalid JSON from {self.source}: {exc} (body starts {excerpt!r})",
                provider=self.provider,
                status_code=self.status_code,
                request_id=self.request_id,
            ) from exc

    @abc.abstractmethod
    def iter_bytes(self) -> Iterator[bytes]:
        """Yield body pieces as they arrive; the connection is released however iteration ends.

        May be called once for a streamed body (a second call raises
        :class:`ResponseError`); for a body already read it yields it whole.
        """

    # -- lifecycle ----------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection (closed if the body was not read to its end). Never raises."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Stop the response from any thread, unblocking a read pending elsewhere.

        The reader then gets :class:`~modelprov.exceptions.ProviderConnectionError`
        with ``extra["aborted"] = True`` (not retryable).
        """

    @property
    @abc.abstractmethod
    def aborted(self) -> bool:
        """True once :meth:`abort` was called."""

    def drain(self, timeout: float = DRAIN_TIMEOUT, limit: int = DRAIN_LIMIT) -> bool:
        """Finish a stream whose protocol already ended so its connection can be reused.

        Reads what is left (normally the final zero-length chunk) for at most
        ``timeout`` seconds and ``limit`` bytes, then releases the connection.
        Never raises; True when the connection went back to the pool. This
        default just closes.
        """
        self.close()
        return False

    def coalesce(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """From now on :meth:`iter_bytes` may join pieces that arrived together (same bytes, fewer items).

        A stream runner calls it once piece boundaries no longer matter to it.
        Optional: this default does nothing.
        """

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        rid = f" request_id={self.request_id!r}" if getattr(self, "request_id", None) else ""
        return f"<{type(self).__name__} [{getattr(self, 'status_code', '?')}] provider={getattr(self, 'provider', None)!r}{rid}>"


class Transport(abc.ABC):
    """Sends one HTTP request for a codec; see the module docstring for the contract."""

    @abc.abstractmethod
    def send(self, request: HTTPRequest, deadline: Deadline, *, attempt: int = 1) -> Response:
        """Send ``request`` within ``deadline``; a 2xx :class:`Response`, else a typed exception.

        ``attempt`` (1 for the first try) is only reported (logs, records).
        """

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release every connection; later sends raise. This default does nothing."""

    def for_provider(
        self,
        config: ProviderConfig,
        *,
        error_parser: Optional[ErrorParser] = None,
        auth_headers: HeadersArg = None,
    ) -> "Transport":
        """This transport set up for one provider (its base URL, error parser and credentials).

        The engine calls it once when it is handed a transport it did not
        build (``Client(transport=...)``), so one transport object can serve
        every provider. This default returns ``self`` unchanged (a transport
        built for one endpoint keeps its own settings).
        """
        return self

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
