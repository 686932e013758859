"""A bulk reader for chunked response bodies, used by :func:`modelprov.transport.net.iter_raw`.

urllib3's ``read_chunked`` costs about fifteen Python calls per HTTP chunk (a
``readline`` for the size line, two ``_safe_read`` calls, decoder checks),
and streaming APIs send one HTTP chunk per token. :func:`iter_chunked` asks
the socket's buffered reader for whatever has arrived (``read1``), splits the
HTTP chunks in one pass and yields one item per HTTP chunk, so the stream
runner sees exactly the boundaries urllib3 would give it, only cheaper.

After the terminating zero-length chunk it consumes the trailer section and
closes the ``http.client`` response *before* yielding the last items, so a
consumer that stops at the protocol's own terminator (``[DONE]``,
``message_stop``, ``done: true``) still leaves a connection the pool can
reuse. Bytes after the trailers mean the connection is not clean: it is
closed instead.

A caller may pass ``join``, a one-element list: once ``join[0]`` is true,
the complete chunks of one read are joined into one item (fewer items, same
bytes). The stream runner turns it on once nothing can be retried any more.

It applies only to what it understands: an identity-encoded chunked body not
read yet, on an ``http.client``-backed urllib3 response (1.26 and 2.x; the
check lives in :func:`._compat.bulk_chunked_source`); :func:`iter_chunked`
returns ``None`` for anything else and the caller falls back to urllib3's own
reader. Kept for its measured gain (see :mod:`._compat`, item 2): urllib3's
reader costs 1.33x-1.57x the client CPU per stream chunk.
"""

from typing import Any, Iterator, List, Optional

from urllib3.exceptions import ProtocolError

from ._compat import bulk_chunked_source

__all__ = ["MAX_LINE", "iter_chunked"]

#: Longest chunk-size or trailer line accepted (urllib3's limit too).
MAX_LINE = 65536


def iter_chunked(raw: Any, size: int, join: Optional[List[bool]] = None) -> Optional[Iterator[bytes]]:
    """The bulk reader for urllib3 response ``raw``, or ``None`` when it does not apply.

    :param size: bytes asked for per ``read1`` call.
    :param join: a one-element list; once its item is true, complete chunks of
        one read are yielded joined as one item.
    """
    source = bulk_chunked_source(raw)
    if source is None:
        return None
    original, fp = source
    return _read(raw, original, fp, size, join if join is not None else [False])


def _size(line: bytes) -> int:
    """The length in a chunk-size line with extensions (``1a;name=value``)."""
    try:
        return int(line.split(b";", 1)[0], 16)
    except ValueError:
        raise ProtocolError(f"Invalid chunk length {line[:40]!r}") from None


def _read(raw: Any, original: Any, fp: Any, size: int, join: List[bool]) -> Iterator[bytes]:
    read1 = fp.read1
    left = 0  # payload bytes still due in the current chunk
    skip = 0  # bytes of the CRLF after a payload still due
    line = b""  # an unfinished chunk-size line
    parts: List[bytes] = []  # pieces of an unfinished chunk's payload
    while True:
        data = read1(size)
        if not data:
            raise ProtocolError("Response ended prematurely")
        if line:
            data = line + data
            line = b""
        n = len(data)
        pos = 0
        ready: List[bytes] = []  # payloads of the chunks completed by this read
        while pos < n:
            if skip:
                take = skip if skip <= n - pos else n - pos
                pos += take
                skip -= take
            elif left:
                end = pos + left
                if end <= n:
                    if parts:
                        parts.append(data[pos:end])
                        ready.append(b"".join(parts))
                        parts = []
                    else:
                        ready.append(data[pos:end])
                    pos = end
                    left = 0
                    skip = 2
                else:
                    parts.append(data[pos:])
                    left = end - n
                    pos = n
            else:
                eol = data.find(b"\n", pos)
                if eol < 0:
                    line = data[pos:]
                    if len(line) > MAX_LINE:
                        raise ProtocolError("Response chunk size line exceeded maximum allowed length")
                    break
                try:
                    length = int(data[pos:eol], 16)  # int() ignores the CR and surrounding spaces
                except ValueError:
                    length = _size(data[pos:eol])  # chunk extensions, or an error
                pos = eol + 1
                if length <= 0:
                    if length:
                        raise ProtocolError(f"Invalid chunk length {length}")
                    _finish(raw, original, fp, data[pos:])
                    if len(ready) > 1 and join[0]:
                        yield b"".join(ready)
                    else:
                        yield from ready
                    return
                end = pos + length
                if end + 2 <= n:  # the whole chunk is here (the common case)
                    ready.append(data[pos:end])
                    pos = end + 2
                else:
                    left = length
        if len(ready) > 1 and join[0]:
            yield b"".join(ready)
        else:
            yield from ready


def _finish(raw: Any, original: Any, fp: Any, rest: bytes) -> None:
    """Consume the trailer section after the last chunk, then close the http.client response."""
    if rest != b"\r\n":
        while True:
            eol = rest.find(b"\n")
            if eol < 0:
                if len(rest) > MAX_LINE:
                    raise ProtocolError("Response chunk trailer line exceeded maximum allowed length")
                more = fp.readline(MAX_LINE + 1)
                if not more:  # some servers just close after the last chunk
                    rest = b""
                    break
                rest += more
                continue
            end_of_trailers = eol <= 1 and rest[:eol] in (b"", b"\r")
            rest = rest[eol + 1 :]
            if end_of_trailers:
                break
    else:
        rest = b""
    original.close()  # read to the end: the connection can go back to the pool
    if rest:  # bytes after the response: the connection is not clean, never reuse it
        raw.close()
