"""The HTTP/1.1 server and request handler behind :class:`~modelprov.testing.FakeServer`.

Standard library only (``http.server``, ``socket``, ``select``). The handler
records each request, asks the owning FakeServer for a reply and writes it:
a fixed body with ``Content-Length``, or chunk by chunk (each write sent at
once, ``TCP_NODELAY``), applying the reply's faults. Waits poll the socket
(``poll``/``select`` + ``recv(MSG_PEEK)``) so a client that goes away is
noticed within a few tens of milliseconds, and they wake at once when the
server stops.
"""

import io
import json
import select
import socket
import socketserver
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, List, Optional, Protocol, Tuple
from urllib.parse import parse_qs

from .._log import get_logger
from .replies import Headers, Payload, RecordedRequest, Reply


class Owner(Protocol):
    """What the handler needs from its :class:`~modelprov.testing.FakeServer` (no import: no cycle)."""

    _stop: threading.Event

    def _conn_opened(self, sock: socket.socket) -> None: ...  # pragma: no cover - protocol

    def _conn_closed(self, sock: socket.socket) -> None: ...  # pragma: no cover - protocol

    def _record(self, req: RecordedRequest) -> None: ...  # pragma: no cover - protocol

    def _take(self, req: RecordedRequest) -> Tuple[Optional[Reply], Payload]: ...  # pragma: no cover - protocol

    def _note_disconnect(self, during_reply: bool) -> None: ...  # pragma: no cover - protocol

__all__ = ["FakeHTTPServer", "FakeHandler", "Owner", "POLL_INTERVAL"]

log = get_logger("testing")

#: Seconds between liveness checks while a reply waits (delay, chunk_delay, stall).
POLL_INTERVAL = 0.02
_PHRASES = {429: "Too Many Requests", 499: "Client Closed Request", 529: "Overloaded"}
_LINGER_RST = struct.pack("HH", 1, 0) if sys.platform == "win32" else struct.pack("ii", 1, 0)


class FakeHTTPServer(ThreadingHTTPServer):
    """Threading HTTP server: daemon handler threads, large backlog, no reverse DNS on bind."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: Tuple[str, int], fake: Owner) -> None:
        self.fake = fake
        super().__init__(address, FakeHandler)

    def server_bind(self) -> None:
        """Bind without ``socket.getfqdn`` (slow where DNS is missing)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors are routine here; log anything else without printing to stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ValueError)):
            log.debug("FakeServer connection error from %s: %r", client_address, exc)
        else:
            log.exception("FakeServer handler error")


class FakeHandler(BaseHTTPRequestHandler):
    """Serves one connection (keep-alive) for a :class:`FakeServer`."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeServer/1.0"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.fake: Owner = self.server.fake  # type: ignore[attr-defined]
        self._in_reply = False
        self._gone = False
        self._closed_by_us = False
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover
            pass
        self.fake._conn_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.fake._conn_closed(self.connection)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("FakeServer: " + format, *args)

    # -- request side -------------------------------------------------------------------------

    def handle_one_request(self) -> None:
        self._in_reply = False
        try:
            line = self.rfile.readline(65537)
        except (OSError, ValueError):
            line = b""
        if not line:
            self._client_gone()
            self.close_connection = True
            return
        if len(line) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return
        self.raw_requestline = line
        try:
            if not self.parse_request():
                return
            self._serve()
        except (OSError, ValueError) as exc:
            log.debug("FakeServer: connection ended during a reply: %r", exc)
            self._client_gone()
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: List[bytes] = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        path, _, qs = self.path.partition("?")
        body = self._read_body()
        query = {k: v[0] for k, v in parse_qs(qs, keep_blank_values=True).items()}
        parsed: Any = None
        if body.strip():
            try:
                parsed = json.loads(body.decode("utf-8"))
            except ValueError:
                parsed = None
        req = RecordedRequest(self.command, path, query, Headers(self.headers.items()), body, parsed)
        self.fake._record(req)
        reply, payload = self.fake._take(req)
        self._in_reply = True
        self._write(reply, payload)
        self._in_reply = False

    # -- response side ------------------------------------------------------------------------

    def _write(self, reply: Optional[Reply], payload: Payload) -> None:
        delay = reply.delay if reply else 0.0
        if delay and not self._pause(delay):
            return
        self.send_response(payload.status, _PHRASES.get(payload.status))
        names = {k.lower() for k, _ in payload.headers}
        for name, value in payload.headers:
            self.send_header(name, value)
        faulty = reply is not None and (reply.stall_after is not None or reply.drop_after is not None or reply.truncate)
        if payload.chunks is None and not payload.body and faulty:
            payload = Payload(payload.status, payload.headers, chunks=[])  # "Content-Length: 0" would be complete
        if payload.chunks is None:
            mode, units = "fixed", ([payload.body] if payload.body else [])
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(payload.body)))
        else:
            units = [c for c in payload.chunks if c]
            mode = "chunked" if payload.chunked else "raw"
            if mode == "chunked" and "transfer-encoding" not in names:
                self.send_header("Transfer-Encoding", "chunked")
            if mode == "raw":
                self.send_header("Connection", "close")
        trickle = reply.trickle if reply else 0.0
        if trickle and reply is not None and reply.trickle_headers:
            real, self.wfile = self.wfile, io.BytesIO()  # capture the header block, then trickle it
            try:
                self.end_headers()
            finally:
                captured, self.wfile = self.wfile, real
            if not self._send(captured.getvalue(), trickle):
                return
        else:
            self.end_headers()
        if self.command == "HEAD":
            return
        drop_after = reply.drop_after if reply else None
        stall_after = reply.stall_after if reply else None
        truncate = reply.truncate if reply else False
        chunk_delay = reply.chunk_delay if reply else 0.0
        for i, unit in enumerate(units):
            if drop_after is not None and i >= drop_after:
                return self._drop()
            if stall_after is not None and i >= stall_after:
                return self._stall()
            if i and chunk_delay and not self._pause(chunk_delay):
                return
            if mode == "fixed" and truncate:
                self._send(unit[: len(unit) // 2], trickle)
                return self._close_soft()
            if not self._send(b"%x\r\n%s\r\n" % (len(unit), unit) if mode == "chunked" else unit, trickle):
                return
        if drop_after is not None:
            return self._drop()
        if stall_after is not None:
            return self._stall()
        if mode == "chunked":
            if truncate:
                return self._close_soft()
            self._send(b"0\r\n\r\n", trickle)
        elif mode == "raw":
            self._close_soft()

    def _send(self, data: bytes, trickle: float) -> bool:
        """Write ``data`` at once, or one byte every ``trickle`` seconds; False if the client left meanwhile."""
        if not trickle:
            self.wfile.write(data)
            return True
        for i in range(len(data)):
            if i and not self._pause(trickle):
                return False
            self.wfile.write(data[i : i + 1])
        return True

    def _peer_closed(self) -> bool:
        """True when the client closed or reset the connection (pending data does not count)."""
        sock = self.connection
        try:
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
                if not poller.poll(0):
                    return False
            elif not select.select([sock], [], [], 0)[0]:  # pragma: no cover - Windows
                return False
            return bool(sock.recv(1, socket.MSG_PEEK) == b"")
        except (OSError, ValueError):
            return True

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``; False (and the connection marked for closing) if the client left or the server stopped."""
        deadline = time.monotonic() + seconds
        stop = self.fake._stop
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if self._peer_closed():
                self._client_gone()
                self.close_connection = True
                return False
            if stop.wait(min(remaining, POLL_INTERVAL)):
                self.close_connection = True
                return False

    def _stall(self) -> None:
        """Hang until the client disconnects or the server stops, then close the connection."""
        self.close_connection = True
        stop = self.fake._stop
        while not stop.is_set():
            if self._peer_closed():
                self._client_gone()
                return
            stop.wait(POLL_INTERVAL)

    def _close_soft(self) -> None:
        """End the connection with a normal FIN once the handler returns."""
        self.close_connection = True
        self._closed_by_us = True

    def _drop(self) -> None:
        """Close the socket abruptly: RST via ``SO_LINGER`` 0 where the platform allows it."""
        self.close_connection = True
        self._closed_by_us = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        except OSError:  # pragma: no cover
            pass
        try:
            self.rfile.close()
            sock.close()
        except OSError:  # pragma: no cover
            pass

    def _client_gone(self) -> None:
        """Record (once) that the client closed this connection, unless we or the server closed it."""
        if self._gone or self._closed_by_us or self.fake._stop.is_set():
            return
        self._gone = True
        self.fake._note_disconnect(self._in_reply)
