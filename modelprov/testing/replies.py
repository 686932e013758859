"""Reply objects for :class:`~modelprov.testing.FakeServer` and the requests it records.

* :class:`RecordedRequest` and :class:`Headers`: what a client sent.
* :class:`Payload`: one rendered HTTP response (status, headers, a body or a
  list of chunk writes).
* :class:`Reply`: a queued reply: a renderer (request -> payload), an
  optional path prefix to match, and fault injection (``delay``,
  ``chunk_delay``, ``drop_after``, ``stall_after``, ``truncate``).

Fault semantics (applied by the server when it writes the payload):
``delay`` seconds pass before the status line; ``chunk_delay`` seconds pass
between chunk writes; ``drop_after=N`` closes the socket abruptly (RST) after
N chunk writes; ``stall_after=N`` sends N chunks and then hangs until the
client disconnects or the server stops; ``truncate`` ends a chunked body
without its terminating zero-length chunk (a fixed body: sends half of it);
``trickle`` sends the body one byte at a time, ``trickle`` seconds apart (a
server that is never silent long enough for a read timeout, so only a
wall-clock deadline stops it), and with ``trickle_headers=True`` the status
line and headers too.
A fixed (``Content-Length``) body counts as one chunk, so ``drop_after=0`` /
``stall_after=0`` act right after the headers; an empty body with a fault is
sent as an (unfinished) chunked body, since ``Content-Length: 0`` would
already be complete. Every wait is interrupted by
``FakeServer.close()``.

The ``*_reply`` factories below build the replies that the ``FakeServer.add_*``
methods queue; use them with ``FakeServer.add`` or ``FakeServer.set_default``.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from .._redact import redact, redact_headers

__all__ = ["Headers", "HeadersInput", "Payload", "RecordedRequest", "Reply", "merge_headers"]

#: Headers as a test gives them: a mapping or a sequence of ``(name, value)`` pairs.
HeadersInput = Union[Mapping[str, str], Iterable[Tuple[str, str]]]


def _pairs(headers: Optional[HeadersInput]) -> List[Tuple[str, str]]:
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k), str(v)) for k, v in items]


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive header mapping; repeated headers are joined with ``", "``.

    Iteration yields names as sent. The ``repr`` redacts credentials.
    """

    def __init__(self, items: Optional[HeadersInput] = None) -> None:
        self._data: Dict[str, Tuple[str, str]] = {}
        for name, value in _pairs(items):
            key = name.lower()
            if key in self._data:
                value = self._data[key][1] + ", " + value
                name = self._data[key][0]
            self._data[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._data[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._data

    def to_dict(self) -> Dict[str, str]:
        """A plain ``dict`` copy (names as sent)."""
        return dict(self._data.values())

    def __repr__(self) -> str:
        return "Headers(%r)" % (redact_headers(self.to_dict()),)


def merge_headers(defaults: Iterable[Tuple[str, str]], extra: Optional[HeadersInput]) -> List[Tuple[str, str]]:
    """``defaults`` with every header named in ``extra`` replaced (case-insensitively) by ``extra``'s value."""
    extra_pairs = _pairs(extra)
    names = {k.lower() for k, _ in extra_pairs}
    return [(k, v) for k, v in defaults if k.lower() not in names] + extra_pairs


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received.

    ``query`` maps each query parameter to its first value; ``headers`` is a
    case-insensitive :class:`Headers`; ``body`` the raw bytes (chunked request
    bodies are de-chunked); ``json`` the parsed body, or ``None`` when it is
    empty or not JSON.
    """

    method: str
    path: str
    query: Dict[str, str]
    headers: Headers
    body: bytes
    json: Any

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return "RecordedRequest(method=%r, path=%r, query=%s, headers=%r, body=%s)" % (
            self.method, self.path, redact(self.query), self.headers, redact(body))


@dataclass
class Payload:
    """A rendered response.

    ``chunks is None``: a fixed body sent with ``Content-Length``. Otherwise
    the chunks are written one by one, with ``Transfer-Encoding: chunked``
    when ``chunked`` (empty chunks are skipped), else raw with
    ``Connection: close`` and the end of the body marked by closing the
    connection. The server adds ``Content-Length`` / ``Transfer-Encoding``
    unless ``headers`` already has them. ``final=False`` keeps the reply at
    the head of the queue for the next matching request (paged listings).
    """

    status: int = 200
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunks: Optional[List[bytes]] = None
    chunked: bool = True
    final: bool = True


#: A renderer: turns the matched request into the payload to send.
Renderer = Callable[[RecordedRequest], Payload]


class Reply:
    """A queued reply: how to render it, which requests it matches, and which faults to inject.

    ``path`` (optional) is a prefix the request path (without query) must
    start with. ``served`` counts the requests this reply answered.
    ``stall_after=0`` is what ``stall=True`` means elsewhere.
    """

    def __init__(
        self,
        render: Renderer,
        *,
        path: Optional[str] = None,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        drop_after: Optional[int] = None,
        stall_after: Optional[int] = None,
        truncate: bool = False,
        trickle: float = 0.0,
        trickle_headers: bool = False,
        label: str = "reply",
    ) -> None:
        for name, value in (("delay", delay), ("chunk_delay", chunk_delay), ("trickle", trickle)):
            if value < 0:
                raise ValueError("%s must be >= 0" % name)
        for name, count in (("drop_after", drop_after), ("stall_after", stall_after)):
            if count is not None and count < 0:
                raise ValueError("%s must be >= 0" % name)
        self.render = render
        self.path = path
        self.delay = float(delay)
        self.chunk_delay = float(chunk_delay)
        self.drop_after = drop_after
        self.stall_after = stall_after
        self.truncate = bool(truncate)
        self.trickle = float(trickle)
        self.trickle_headers = bool(trickle_headers)
        self.label = label
        self.served = 0

    def matches(self, request: RecordedRequest) -> bool:
        """True when this reply may answer ``request`` (no ``path``, or the path starts with it)."""
        return self.path is None or request.path.startswith(self.path)

    def __repr__(self) -> str:
        items = [("delay", self.delay or None), ("chunk_delay", self.chunk_delay or None),
                 ("drop_after", self.drop_after), ("stall_after", self.stall_after), ("truncate", self.truncate or None),
                 ("trickle", self.trickle or None), ("trickle_headers", self.trickle_headers or None)]
        faults = ", ".join("%s=%r" % (k, v) for k, v in items if v is not None)
        return "Reply(%s, path=%r%s)" % (self.label, self.path, ", " + faults if faults else "")
