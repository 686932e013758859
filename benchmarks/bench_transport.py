"""Client CPU per JSON POST: ``Transport.send(...).json()`` vs a naive requests loop.

A loopback HTTP/1.1 keep-alive server runs in a separate process (so its CPU
does not count) and answers every POST with a small JSON body. In the same run
the client measures ``time.process_time`` per call for:

* ``modelprov``: ``Transport.send(HTTPRequest("POST", ..., json=body)).json()``
* ``requests``: ``requests.Session().post(url, json=body).json()``

N calls each (default 2000) after a warm-up, several repeats (alternating
order), median per side; prints both and the ratio (target <= 0.55).

If ``modelprov/streaming.py`` and ``benchmarks/bench_streaming.py`` exist, the
SSE-parse ratio from ``bench_streaming.run()`` is printed too (target <= 0.8).

Usage: ``python benchmarks/bench_transport.py [-n 2000] [-r 5]``
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

BODY = (
    b'{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"Hello there!"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}'
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-request-id: req_bench\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY
REQUEST_JSON = {
    "model": "m",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
    "max_tokens": 16,
}


# --------------------------------------------------------------------------
# server (runs in its own process)
# --------------------------------------------------------------------------


def _handle(conn: socket.socket) -> None:
    buf = b""
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                length = 0
                for line in buf[:end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(buf) < end + 4 + length:
                    break
                buf = buf[end + 4 + length :]
                conn.sendall(RESPONSE)
    except OSError:
        pass
    finally:
        conn.close()


def serve() -> None:
    """Listen on 127.0.0.1 (port printed on stdout); exit when stdin closes."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print(srv.getsockname()[1], flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_handle, args=(conn,), daemon=True).start()


# --------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------


def _cpu_per_call(fn: Callable[[], Any], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def run(n: int = 2000, repeats: int = 5, warmup: int = 300) -> Dict[str, Any]:
    """Run both loops against a fresh server process; returns the medians and the ratio."""
    import requests

    from modelprov.deadline import Deadline
    from modelprov.transport import RequestsTransport
    from modelprov.types import HTTPRequest

    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        base = f"http://127.0.0.1:{port}/v1"
        url = base + "/chat/completions"
        transport = RequestsTransport(base, provider="bench", auth_headers={"Authorization": "Bearer sk-bench-0000000000"})
        request = HTTPRequest("POST", "/chat/completions", json=REQUEST_JSON)
        session = requests.Session()
        auth = {"Authorization": "Bearer sk-bench-0000000000"}

        def ours() -> Any:
            return transport.send(request, Deadline()).json()

        def ours_deadline() -> Any:
            return transport.send(request, Deadline(60.0)).json()

        def naive() -> Any:
            return session.post(url, json=REQUEST_JSON, headers=auth).json()

        assert ours() == naive() == ours_deadline()
        for _ in range(warmup):
            ours()
            naive()
            ours_deadline()
        res_ours, res_naive, res_deadline = [], [], []
        for i in range(repeats):
            order = [(ours, res_ours), (naive, res_naive), (ours_deadline, res_deadline)]
            if i % 2:
                order.reverse()
            for fn, out in order:
                out.append(_cpu_per_call(fn, n))
        transport.close()
        session.close()
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=5)
    ours_us = statistics.median(res_ours) * 1e6
    naive_us = statistics.median(res_naive) * 1e6
    deadline_us = statistics.median(res_deadline) * 1e6
    return {"n": n, "repeats": repeats, "modelprov_us": ours_us, "requests_us": naive_us, "ratio": ours_us / naive_us,
            "deadline_us": deadline_us, "deadline_ratio": deadline_us / naive_us}


def _streaming_result() -> Optional[Any]:
    try:
        import modelprov.streaming  # noqa: F401

        if HERE not in sys.path:
            sys.path.insert(0, HERE)
        import bench_streaming  # type: ignore[import-not-found]
    except ImportError:
        return None
    return bench_streaming.run()


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="calls per measurement (default 2000)")
    parser.add_argument("-r", "--repeats", type=int, default=5, help="repeats (median is reported)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    res = run(args.n, args.repeats)
    print(f"JSON POST client CPU, N={res['n']}, median of {res['repeats']}:")
    print(f"  requests.Session().post(...).json()  {res['requests_us']:8.1f} us/call")
    print(f"  Transport.send(...).json()           {res['modelprov_us']:8.1f} us/call")
    print(f"  ratio modelprov/requests              {res['ratio']:8.3f}  (target <= 0.55)")
    print(f"  ... with Deadline(60) (watchdog)      {res['deadline_us']:8.1f} us/call, ratio {res['deadline_ratio']:.3f}")
    stream = _streaming_result()
    if stream is not None:
        ratio = None
        if isinstance(stream, dict):
            ratio = stream.get("ratio", stream.get("ratio_median"))
        if isinstance(ratio, (int, float)):
            print(f"  SSE parse ratio (bench_streaming)     {ratio:8.3f}  (target <= 0.8)")
        else:
            print(f"  bench_streaming: {stream!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
