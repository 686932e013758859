"""``RequestsResponse``: the :class:`~modelprov.transport.base.Response` of the requests transport.

Wraps a urllib3 response whose status was 2xx: ``json()``, ``content``,
``text``, and for streamed requests ``iter_bytes()``, which yields chunks as
they arrive and always gives the connection back to the pool (exhaustion,
error, or ``close()`` of the consuming generator), plus ``abort()``, which a
second thread may call to unblock a pending read. A stream runner that saw
its protocol's terminator calls ``drain()`` so the rest of the body (the
final zero-length chunk) is read briefly and the connection is reused, and
``coalesce()`` once chunk boundaries no longer matter to it.

While a streamed body is open its :class:`~.exchange.Exchange` stays
registered with the deadline watchdog: when the call's deadline passes the
socket is shut down and ``iter_bytes()`` raises ``ProviderTimeoutError``.
"""

import json
import logging
import time
from typing import Any, Dict, Iterator, Mapping, Optional

from .._log import get_logger
from .._redact import redact_url
from ..deadline import Deadline
from ..exceptions import ModelProvError, ProviderConnectionError, ResponseError
from . import errors as _errors
from . import net as _net
from .base import DRAIN_LIMIT, DRAIN_TIMEOUT, REQUEST_ID_HEADERS, Response, request_id
from .exchange import EXPIRED, Exchange, shutdown_socket
from .watchdog import Watchdog

__all__ = ["DRAIN_LIMIT", "DRAIN_TIMEOUT", "REQUEST_ID_HEADERS", "RequestsResponse", "request_id"]

_log = get_logger("transport")
_DEBUG = logging.DEBUG


class RequestsResponse(Response):
    """A 2xx response read from a urllib3 response (errors are raised by ``send``).

    For a streamed request read it with :meth:`iter_bytes` (or ``with`` /
    :meth:`close`); the connection goes back to the pool on exhaustion, error
    or close. :meth:`abort` may be called from any thread.
    """

    __slots__ = (
        "status_code", "headers", "request_id", "latency_s", "url", "provider", "attempt",
        "_raw", "_content", "_text", "_consumed", "_aborted", "_closed", "_ctx", "_it", "_join",
        "_exchange", "_deadline", "_watchdog", "__weakref__",
    )  # fmt: skip

    def __init__(
        self,
        *,
        status_code: int,
        headers: Mapping[str, str],
        request_id: Optional[str],
        latency_s: float,
        url: str,
        provider: Optional[str],
        attempt: int,
        raw: Any,
        content: Optional[bytes],
        ctx: Dict[str, Any],
        exchange: Optional[Exchange] = None,
        deadline: Optional[Deadline] = None,
        watchdog: Optional[Watchdog] = None,
    ) -> None:
        self.status_code = status_code
        #: Response headers (case-insensitive mapping).
        self.headers = headers
        #: The provider's request id header, if any.
        self.request_id = request_id
        #: Seconds from sending to headers (streamed) or to the full body.
        self.latency_s = latency_s
        #: The final URL (may hold credentials in query params; redact before showing).
        self.url = url
        self.provider = provider
        self.attempt = attempt
        self._raw = raw
        self._content = content
        self._text: Optional[str] = None  # the body decoded by json(), which then drops _content
        self._consumed = content is not None
        self._aborted = False
        self._closed = content is not None
        self._ctx = ctx
        self._it: Optional[Iterator[bytes]] = None
        self._join = [False]
        self._exchange = exchange
        self._deadline = deadline
        self._watchdog = watchdog

    # -- body ---------------------------------------------------------------

    @property
    def content(self) -> bytes:
        """The whole body (reads the rest of a streamed body)."""
        if self._content is None:
            if self._text is not None:  # json() kept the body as text only: give back the same bytes
                self._content = self._text.encode("utf-8", "surrogatepass")
            else:
                self._content = b"".join(self.iter_bytes())
        return self._content

    def json(self) -> Any:
        """The body parsed as JSON; :class:`ResponseError` with a short excerpt if it is not.

        Results and errors are those of ``json.loads`` on the bytes; only the
        peak memory differs. ``json.loads(bytes)`` holds the body three times
        at its peak (the bytes, their decoded str, the parsed strings); here
        the bytes are released once decoded (kept as the text, re-encoded
        exactly if :attr:`content` is asked for later), so a large UTF-8 body
        peaks at about twice its size (a 20 MB chat body: 3.0x -> 2.0x,
        ``tests/reliability/test_memory.py``). Other encodings (BOM, UTF-16/32)
        take the plain path.
        """
        text = self._text
        if text is None:
            data = self.content
            if json.detect_encoding(data) != "utf-8":
                return super().json()
            try:
                text = data.decode("utf-8", "surrogatepass")  # exactly what json.loads(bytes) does
            except UnicodeDecodeError:
                return super().json()  # its ResponseError
            self._text = text
            self._content = data = None  # type: ignore[assignment]
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ResponseError(
                f"invalid JSON from {self.source}: {exc} (body starts {text[:120]!r})",
                provider=self.provider,
                status_code=self.status_code,
                request_id=self.request_id,
            ) from exc

    @property
    def source(self) -> str:
        """The host that answered."""
        return str(self._ctx["host"])

    @property
    def aborted(self) -> bool:
        """True once :meth:`abort` was called."""
        return self._aborted

    def iter_bytes(self) -> Iterator[bytes]:
        """Yield body chunks as they arrive; releases the connection however it ends.

        Raises :class:`ProviderTimeoutError` (the deadline passed, or a read
        timed out) / :class:`ProviderConnectionError` on a mid-stream failure,
        and ``ProviderConnectionError`` (``aborted=True`` in ``exc.extra``, not
        retryable) after :meth:`abort`.
        """
        if self._content is not None or self._text is not None:
            content = self.content
            return iter((content,) if content else ())
        if self._consumed:
            raise ResponseError("the response body was already consumed", provider=self.provider)
        self._consumed = True
        return self._stream()

    def _abort_error(self) -> ProviderConnectionError:
        return ProviderConnectionError(
            f"stream from {self._ctx['host']} aborted by the caller",
            provider=self.provider,
            request_id=self.request_id,
            retryable=False,
            aborted=True,
        )

    def _expired(self) -> bool:
        exchange = self._exchange
        return exchange is not None and exchange.state == EXPIRED

    def _deadline_error(self) -> ModelProvError:
        deadline = self._deadline if self._deadline is not None else Deadline()
        ctx = self._ctx
        return _errors.deadline_error(
            deadline, provider=self.provider, method=ctx["method"], url=ctx["url"], host=ctx["host"], phase="stream"
        )

    def _stream(self) -> Iterator[bytes]:
        it: Any = None
        total = 0
        started = time.perf_counter()
        outcome = "closed"
        try:
            if self._aborted:
                raise self._abort_error()
            it = self._it = _net.iter_raw(self._raw, _net.READ_SIZE, self._join)
            for chunk in it:
                if chunk:
                    total += len(chunk)
                    yield chunk
            if self._aborted:
                raise self._abort_error()
            if self._expired():  # a close-delimited body ends quietly when the socket is shut down
                raise self._deadline_error()
            outcome = "complete"
        except ModelProvError as exc:
            outcome = type(exc).__name__
            raise
        except Exception as exc:
            if self._aborted:
                outcome = "aborted"
                raise self._abort_error() from exc
            mapped = self._deadline_error() if self._expired() else _errors.map_exception(exc, phase="stream", **self._ctx)
            if mapped is None:
                raise
            outcome = type(mapped).__name__
            _errors.scrub_chain(exc)
            raise mapped from exc
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
            self.close()
            if _log.isEnabledFor(_DEBUG):
                _log.debug(
                    "stream %s %s ended (%s) after %d bytes in %.3fs (attempt %d, request id %s)",
                    self._ctx["method"], redact_url(self._ctx["url"]), outcome, total,
                    time.perf_counter() - started, self.attempt, self.request_id,
                )  # fmt: skip

    def coalesce(self) -> None:
        """From now on :meth:`iter_bytes` may join the HTTP chunks of one read into one item.

        Same bytes, fewer items (cheaper). A stream runner calls it once the
        boundaries no longer matter to it (nothing is retried any more).
        """
        self._join[0] = True

    def drain(self, timeout: float = DRAIN_TIMEOUT, limit: int = DRAIN_LIMIT) -> bool:
        """Finish a stream whose protocol already ended, so its connection can be reused.

        Reads what is left of the body (normally only the final zero-length
        chunk, already received or on its way) for at most ``timeout``
        seconds and ``limit`` bytes, discarding it, then releases the
        connection: back to the pool when the body ended, closed when the
        server sent more or nothing. Never raises, never blocks longer than
        ``timeout``. True when the connection went back to the pool.
        """
        if self._closed:
            return False
        ended = False
        try:
            if not self._aborted and self._it is not None:
                ended = _net.drain(self._raw, self._it, _net.socket_of(self._raw), timeout, limit)
        except Exception:  # a failed read just means: no reuse
            ended = False
        finally:
            self.close()
        return ended

    # -- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        """Release the connection (closed if the body was not read to the end)."""
        if self._closed:
            return
        self._closed = True
        exchange = self._exchange
        if exchange is not None:  # the deadline no longer concerns this connection: before it is pooled
            exchange.finish()
            if exchange.entry is not None and self._watchdog is not None:
                self._watchdog.cancel(exchange.entry)
        try:
            _net.release(self._raw)
        except Exception:  # closing must never raise
            pass

    def abort(self) -> None:
        """Stop the response from any thread, unblocking a read pending elsewhere."""
        self._aborted = True
        if self._closed:
            return
        exchange = self._exchange
        if exchange is not None:
            exchange.adopt(getattr(self._raw, "connection", None))
            exchange.abort()
        else:
            shutdown_socket(_net.socket_of(self._raw))
        if not self._consumed:  # nobody is reading: release now
            self.close()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        rid = f" request_id={self.request_id!r}" if self.request_id else ""
        return f"<Response [{self.status_code}] provider={self.provider!r}{rid}>"
