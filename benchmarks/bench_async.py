"""256 concurrent async calls against a 50 ms loopback server: wall time and client CPU.

The :mod:`_loopback` server (separate process, asyncio, holds hundreds of
connections) waits ``--delay`` seconds (default 0.05) before answering each
OpenAI-style JSON chat call. In the same process and run, each contestant
makes ``--calls`` (default 256) concurrent calls per round:

* ``modelprov``: ``await client.acomplete(...)`` for every call under
  ``asyncio.gather`` (default async bridge and ``pool_size``);
* ``AsyncOpenAI``: ``openai.AsyncOpenAI(max_retries=0)`` when installed (its
  default ``httpx`` limits allow 1000 connections; a second row raises
  ``max_keepalive_connections`` from 100 to the call count, so it keeps every
  connection between rounds);
* ``requests x64 threads``: blocking ``requests`` calls in a 64-thread
  ``ThreadPoolExecutor`` sharing one ``Session`` (``pool_maxsize=64``).

After one warm-up round per contestant (threads and connections created),
rounds are interleaved and the median wall time (``time.perf_counter``) and
client CPU (``time.process_time``, all threads) are reported, plus the TCP
connections the server accepted per round and urllib3's "connection pool is
full, discarding connection" warnings per round.

The sweep then runs modelprov with the bridge's pool at 16, 32, 64, 128 and
256 workers (``modelprov.async_bridge.DEFAULT_MAX_WORKERS`` set, then
``reset_bridge()``, so ``get_bridge()`` builds a bridge of that size), each
with the transport's ``pool_size`` at the default (32) and equal to the
worker count, to choose ``DEFAULT_MAX_WORKERS`` and the ``pool_size``
default from data.

Target: modelprov wall <= 0.6x AsyncOpenAI's, and less CPU. SDKs that are not
installed are skipped. Usage::

    python benchmarks/bench_async.py [--quick] [-r 5] [--calls 256] [--delay 0.05] [--no-sweep]
"""

import argparse
import asyncio
import gc
import logging
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _loopback import OPENAI_PATH, LoopbackServer  # noqa: E402

__all__ = ["SWEEP_POOL_SIZES", "SWEEP_WORKERS", "WALL_TARGET", "main", "run"]

#: modelprov wall time / AsyncOpenAI wall time.
WALL_TARGET = 0.6
SWEEP_WORKERS = (16, 32, 64, 128, 256)
#: ``None`` = the ProviderConfig default; ``"workers"`` = equal to the worker count.
SWEEP_POOL_SIZES: Tuple[Any, ...] = (None, "workers")
THREADS = 64
KEY = "sk-bench-0000000000000000"
MESSAGES = [{"role": "user", "content": "Say hello"}]
MAX_TOKENS = 16

Round = Callable[[], Awaitable[None]]


class _DiscardCounter(logging.Handler):
    """Counts (and swallows) urllib3's "Connection pool is full, discarding connection" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "discarding connection" in str(record.msg):
            self.count += 1


def _install_counter() -> Tuple[_DiscardCounter, Callable[[], None]]:
    """Attach a counter to urllib3's pool logger (its warnings are counted, not printed); returns (counter, undo)."""
    counter = _DiscardCounter()
    log = logging.getLogger("urllib3.connectionpool")
    propagate = log.propagate
    log.addHandler(counter)
    log.propagate = False

    def undo() -> None:
        log.removeHandler(counter)
        log.propagate = propagate

    return counter, undo


async def _measure(rounds: Dict[str, Round], repeats: int, server: LoopbackServer, counter: _DiscardCounter) -> Dict[str, Dict[str, float]]:
    """Warm each round function once, then interleave ``repeats`` timed rounds; medians."""
    for fn in rounds.values():
        await fn()
    names = list(rounds)
    data: Dict[str, Dict[str, List[float]]] = {k: {"wall_s": [], "cpu_s": [], "conns": [], "discards": []} for k in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for key in order:
            before = server.stats()["connections"]
            discards = counter.count
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            await rounds[key]()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            d = data[key]
            d["wall_s"].append(wall)
            d["cpu_s"].append(cpu)
            d["conns"].append(server.stats()["connections"] - before)
            d["discards"].append(counter.count - discards)
    return {k: {m: statistics.median(v) for m, v in d.items()} for k, d in data.items()}


def _modelprov_round(base: str, calls: int, pool_size: Optional[int]) -> Tuple[Round, Any]:
    import modelprov

    settings: Dict[str, Any] = {"api_key": KEY, "base_url": base + "/v1"}
    if pool_size is not None:
        settings["pool_size"] = pool_size
    client = modelprov.Client(providers={"openai": settings})

    async def one_round() -> None:
        results = await asyncio.gather(*(client.acomplete("openai/m", MESSAGES, max_tokens=MAX_TOKENS) for _ in range(calls)))
        assert len(results) == calls and results[-1].text

    return one_round, client


_LIBRARY_DEFAULT_WORKERS: List[int] = []


def _set_bridge_workers(workers: Optional[int]) -> int:
    """Make ``get_bridge()`` build a bridge of ``workers`` threads (``None``: the library default).

    ``AsyncBridge()`` reads the module global ``DEFAULT_MAX_WORKERS`` when it is
    built, and ``reset_bridge()`` drops the process-wide bridge, so the next
    ``get_bridge()`` (inside ``Client.acomplete``) builds one of the new size.
    """
    from modelprov import async_bridge

    if not _LIBRARY_DEFAULT_WORKERS:
        _LIBRARY_DEFAULT_WORKERS.append(async_bridge.DEFAULT_MAX_WORKERS)
    async_bridge.DEFAULT_MAX_WORKERS = _LIBRARY_DEFAULT_WORKERS[0] if workers is None else workers
    async_bridge.reset_bridge()
    return async_bridge.get_bridge().max_workers


async def _main_comparison(server: LoopbackServer, calls: int, repeats: int, counter: _DiscardCounter, notes: Dict[str, str]) -> Dict[str, Dict[str, float]]:
    import requests
    from requests.adapters import HTTPAdapter

    base = server.url
    rounds: Dict[str, Round] = {}
    closers: List[Callable[[], Any]] = []
    workers = _set_bridge_workers(None)
    notes["modelprov"] = f"default bridge ({workers} workers), default pool_size"
    mp_round, mp_client = _modelprov_round(base, calls, None)
    rounds["modelprov"] = mp_round
    closers.append(mp_client.close)
    try:
        import openai
    except ImportError:
        openai = None  # type: ignore[assignment]
        notes["AsyncOpenAI"] = "openai not installed: skipped"
    if openai is not None:
        notes["AsyncOpenAI"] = f"openai {openai.__version__}, max_retries=0, default httpx limits"
        aclients = {"AsyncOpenAI": openai.AsyncOpenAI(api_key=KEY, base_url=base + "/v1", max_retries=0)}
        try:
            try:
                import httpx2 as hx  # what newer openai releases build on
            except ImportError:
                import httpx as hx
            limits = hx.Limits(max_connections=max(1000, calls), max_keepalive_connections=calls)
            aclients["AsyncOpenAI keepalive"] = openai.AsyncOpenAI(
                api_key=KEY, base_url=base + "/v1", max_retries=0, http_client=openai.DefaultAsyncHttpxClient(limits=limits)
            )
            notes["AsyncOpenAI keepalive"] = f"as above, max_keepalive_connections={calls}"
        except Exception as exc:  # pragma: no cover - SDK layout changed
            notes["AsyncOpenAI keepalive"] = f"skipped: {exc}"
        for label, ac in aclients.items():
            create = ac.chat.completions.create

            async def oa_round(create: Any = create) -> None:
                results = await asyncio.gather(*(create(model="m", messages=MESSAGES, max_tokens=MAX_TOKENS) for _ in range(calls)))
                assert len(results) == calls and results[-1].choices[0].message.content

            rounds[label] = oa_round
            closers.append(ac.close)
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=THREADS)
    session.mount("http://", adapter)
    pool = ThreadPoolExecutor(THREADS)
    url = base + OPENAI_PATH
    body = {"model": "m", "messages": MESSAGES, "max_tokens": MAX_TOKENS}
    headers = {"Authorization": "Bearer " + KEY}
    notes[f"requests x{THREADS} threads"] = f"ThreadPoolExecutor({THREADS}), one Session, pool_maxsize={THREADS}"

    def post(_: int) -> Any:
        return session.post(url, json=body, headers=headers).json()

    async def rq_round() -> None:
        results = list(pool.map(post, range(calls)))  # blocks the loop: nothing else runs meanwhile
        assert len(results) == calls

    rounds[f"requests x{THREADS} threads"] = rq_round
    try:
        return await _measure(rounds, repeats, server, counter)
    finally:
        for close in closers:
            res = close()
            if asyncio.iscoroutine(res):
                await res
        pool.shutdown()
        session.close()


async def _sweep(server: LoopbackServer, calls: int, repeats: int, counter: _DiscardCounter, workers_list: Sequence[int]) -> List[Dict[str, Any]]:
    from modelprov.types import ProviderConfig

    default_pool = ProviderConfig(name="x").pool_size
    rows: List[Dict[str, Any]] = []
    for workers in workers_list:
        sizes: List[int] = []
        for p in SWEEP_POOL_SIZES:
            size = default_pool if p is None else workers if p == "workers" else int(p)
            if size not in sizes:
                sizes.append(size)
        for size in sizes:
            _set_bridge_workers(workers)
            one_round, client = _modelprov_round(server.url, calls, size)
            try:
                res = await _measure({"modelprov": one_round}, repeats, server, counter)
            finally:
                client.close()
            rows.append(dict(res["modelprov"], workers=workers, pool_size=size))
    _set_bridge_workers(None)
    return rows


def run(calls: int = 256, delay: float = 0.05, repeats: int = 5, sweep: bool = True, workers: Sequence[int] = SWEEP_WORKERS) -> Dict[str, Any]:
    """Run the comparison (and the sweep); returns a dict of medians.

    ``result["main"][contestant]`` holds ``wall_s``, ``cpu_s``, ``conns``
    (server connections accepted per round) and ``discards`` (urllib3 pool-full
    discards per round); ``result["sweep"]`` is a list of the same plus
    ``workers`` and ``pool_size``; ``result["targets"]`` says which targets
    are met (``None`` when AsyncOpenAI is not installed).
    """
    counter, undo = _install_counter()
    result: Dict[str, Any] = {"calls": calls, "delay": delay, "repeats": repeats, "python": platform.python_version(), "notes": {}}
    try:
        with LoopbackServer(delay=delay, chunks=8) as server:

            async def main() -> None:
                result["main"] = await _main_comparison(server, calls, repeats, counter, result["notes"])
                if sweep:
                    result["sweep"] = await _sweep(server, calls, repeats, counter, workers)

            asyncio.run(main())
    finally:
        undo()
    main_res = result["main"]
    ref = main_res.get("AsyncOpenAI")
    mp = main_res["modelprov"]
    if ref is None:
        result["targets"] = {"wall": None, "cpu": None}
    else:
        result["targets"] = {"wall": mp["wall_s"] / ref["wall_s"] <= WALL_TARGET, "cpu": mp["cpu_s"] < ref["cpu_s"]}
    return result


def _print(result: Dict[str, Any]) -> None:
    calls, delay = result["calls"], result["delay"]
    print(
        f"python {result['python']}; {calls} concurrent calls, server waits {delay * 1000:.0f} ms per call; "
        f"median of {result['repeats']} rounds after a warm-up round"
    )
    main_res = result["main"]
    ref = main_res.get("AsyncOpenAI")
    print(f"\n  {'contestant':<26} {'wall s':>7} {'CPU s':>7} {'wall/AOAI':>9} {'CPU/AOAI':>8} {'conns/rnd':>9} {'discards':>8}")
    for name, row in main_res.items():
        rw = f"{row['wall_s'] / ref['wall_s']:9.2f}" if ref else f"{'-':>9}"
        rc = f"{row['cpu_s'] / ref['cpu_s']:8.2f}" if ref else f"{'-':>8}"
        print(f"  {name:<26} {row['wall_s']:7.3f} {row['cpu_s']:7.3f} {rw} {rc} {row['conns']:9.0f} {row['discards']:8.0f}")
    for name, note in result["notes"].items():
        print(f"    {name}: {note}")
    t = result["targets"]
    if t["wall"] is None:
        print("targets: AsyncOpenAI not installed, not checked")
    else:
        mp = main_res["modelprov"]
        print(
            f"targets: wall {mp['wall_s'] / ref['wall_s']:.2f}x AsyncOpenAI (<= {WALL_TARGET}: {'met' if t['wall'] else 'NOT met'}); "
            f"CPU {mp['cpu_s'] / ref['cpu_s']:.2f}x ({'met' if t['cpu'] else 'NOT met'})"
        )
    if result.get("sweep"):
        print("\nmodelprov bridge pool sweep (DEFAULT_MAX_WORKERS x pool_size); floor = ceil(calls / workers) x delay:")
        print(f"  {'workers':>7} {'pool_size':>9} {'floor s':>7} {'wall s':>7} {'CPU s':>7} {'conns/rnd':>9} {'discards':>8}")
        for row in result["sweep"]:
            floor = -(-calls // row["workers"]) * delay
            print(
                f"  {row['workers']:7d} {row['pool_size']:9d} {floor:7.3f} {row['wall_s']:7.3f} {row['cpu_s']:7.3f} "
                f"{row['conns']:9.0f} {row['discards']:8.0f}"
            )


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds, sweep of 32/64/128 workers only")
    ap.add_argument("-r", "--repeats", type=int, default=None, help="timed rounds per contestant (median; default 5)")
    ap.add_argument("--calls", type=int, default=256, help="concurrent calls per round (default 256)")
    ap.add_argument("--delay", type=float, default=0.05, help="server delay per call in seconds (default 0.05)")
    ap.add_argument("--no-sweep", action="store_true", help="skip the bridge pool-size sweep")
    ap.add_argument("--workers", default=None, help="comma-separated worker counts for the sweep (default 16,32,64,128,256)")
    args = ap.parse_args(argv)
    if args.workers:
        workers: Sequence[int] = tuple(int(w) for w in args.workers.split(","))
    else:
        workers = (32, 64, 128) if args.quick else SWEEP_WORKERS
    result = run(
        calls=args.calls,
        delay=args.delay,
        repeats=args.repeats or (3 if args.quick else 5),
        sweep=not args.no_sweep,
        workers=workers,
    )
    _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
