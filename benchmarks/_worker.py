"""One measurement in a fresh process: ``python _worker.py SECTION JSON-ARGS`` prints ``RESULT {json}``.

``run.py`` starts one worker per measurement where isolation matters (memory,
RSS, thread counts, imported modules), each against the loopback server whose
URL it passes. Sections:

* ``cpu``: client CPU per JSON call and per stream chunk for one protocol,
  every contestant of :mod:`_contestants` in the same process, interleaved
  (order rotated per repeat); ratios are the median of per-repeat ratios.
* ``burst``: N concurrent chat calls at the server's delay for one contestant
  (``modelprov``, ``AsyncOpenAI``, ``requests-threads``): wall and CPU per
  round, peak RSS, thread counts before, during and after idling.
* ``memory``: RSS after the first calls vs after all calls, and the
  ``tracemalloc`` peak while one large JSON answer is read and parsed.
"""

import asyncio
import gc
import json
import os
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (HERE, os.path.dirname(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _contestants import BASELINE, KEY, contestants  # noqa: E402
from _loopback import OPENAI_PATH, big_response, raise_fd_limit, server_stats  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say hello"}]
MAX_TOKENS = 16


def _status(field: str) -> int:
    """A number from ``/proc/self/status`` (``VmRSS``/``VmHWM`` in kB, ``Threads``); 0 where there is none."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count() if field == "Threads" else 0


def _rss_mb() -> float:
    """Resident set size now, MB (``/proc/self/statm``; the peak from getrusage where there is no /proc)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, AttributeError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


# --------------------------------------------------------------------- cpu
def _measure(benches: Dict[str, Callable[[], Any]], max_calls: int, repeats: int, warmup: int, budget: float) -> Dict[str, List[float]]:
    """CPU seconds per call of each bench, one sample per repeat, benches interleaved (order rotated per repeat).

    Each bench makes as many calls per repeat as fit in ``budget`` CPU seconds
    (measured after its warm-up), at least one and at most ``max_calls``, so a
    slow peer does not stretch the run while a fast one still gets many calls.
    """
    counts: Dict[str, int] = {}
    for key, fn in benches.items():
        for _ in range(max(0, warmup - 1)):
            fn()
        start = time.process_time()
        fn()
        cost = max(time.process_time() - start, 1e-6)
        counts[key] = max(1, min(max_calls, int(budget / cost)))
    names = list(benches)
    cpu: Dict[str, List[float]] = {k: [] for k in names}
    for r in range(repeats):
        for key in names[r % len(names) :] + names[: r % len(names)]:
            fn, calls = benches[key], counts[key]
            gc.collect()
            start = time.process_time()
            for _ in range(calls):
                fn()
            cpu[key].append((time.process_time() - start) / calls)
    return cpu


def _summarise(cpu: Dict[str, List[float]], per: int) -> Dict[str, Dict[str, Any]]:
    base = cpu[BASELINE]
    return {
        k: {"us": statistics.median(v) / per * 1e6, "ratio": statistics.median(a / b for a, b in zip(v, base)),
            "samples": [x / per * 1e6 for x in v]}
        for k, v in cpu.items()
    }  # fmt: skip


def section_cpu(a: Dict[str, Any]) -> Dict[str, Any]:
    """Client CPU per JSON call and per stream chunk for one protocol."""
    jsons, streams, notes, closers = contestants(a["protocol"], a["url"], a["peers"])
    out: Dict[str, Any] = {"notes": notes}
    try:
        short = {k: n for k, n in ((k, fn()) for k, fn in streams.items()) if n < a["chunks"]}
        if short:
            raise AssertionError(f"streams yielded fewer than {a['chunks']} items: {short}")
        if "json" in a["kinds"]:
            out["json"] = _summarise(_measure(jsons, a["calls"], a["repeats"], a["warmup"], a["budget"]), 1)
        if "stream" in a["kinds"]:
            out["stream"] = _summarise(_measure(streams, a["streams"], a["repeats"], 2, a["budget"]), a["chunks"])
    finally:
        for close in closers:
            close()
    return out


# ------------------------------------------------------------------- burst
class _Sampler(threading.Thread):
    """Samples the OS thread count every ``interval`` s (this thread itself is left out)."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak, self.stop = interval, 0, threading.Event()

    def now(self) -> int:
        return _status("Threads") - 1

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.peak = max(self.peak, self.now())


def bridge_idle_setting() -> Optional[Tuple[float, str]]:
    """``(seconds, where)`` of the async bridge's idle retirement setting, if it exposes one."""
    from modelprov import async_bridge

    bridge = async_bridge.get_bridge()
    for attr in ("idle_timeout", "idle_seconds", "idle_time", "idle"):
        value = getattr(bridge, attr, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value), f"AsyncBridge.{attr}"
    for name in sorted(dir(async_bridge)):
        value = getattr(async_bridge, name)
        if "IDLE" in name.upper() and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value), f"async_bridge.{name}"
    return None


def _burst_rounds(a: Dict[str, Any]) -> Tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any], str]:
    """``(one round, one warm call, close, note)`` for the contestant; a round returns its error count."""
    base = f"{a['url']}/_d/{int(round(a['delay'] * 1000))}"
    calls, who = a["calls"], a["contestant"]
    if who == "modelprov":
        import modelprov

        client = modelprov.Client(providers={"openai": {"api_key": KEY, "base_url": base + "/v1"}})

        async def mp_round(n: int = calls) -> int:
            res = await asyncio.gather(*(client.acomplete("openai/m", MESSAGES, max_tokens=MAX_TOKENS) for _ in range(n)), return_exceptions=True)
            return sum(isinstance(r, BaseException) for r in res)

        return mp_round, lambda: mp_round(1), client.close, "Client.acomplete, default bridge and pool"
    if who == "AsyncOpenAI":
        import openai

        oc = openai.AsyncOpenAI(api_key=KEY, base_url=base + "/v1")
        create = oc.chat.completions.create

        async def oa_round(n: int = calls) -> int:
            res = await asyncio.gather(*(create(model="m", messages=MESSAGES, max_tokens=MAX_TOKENS) for _ in range(n)), return_exceptions=True)  # type: ignore[arg-type]
            return sum(isinstance(r, BaseException) for r in res)

        return oa_round, lambda: oa_round(1), oc.close, f"openai {openai.__version__}, defaults"
    from concurrent.futures import ThreadPoolExecutor

    import requests
    from requests.adapters import HTTPAdapter

    threads = min(calls, a["threads"])
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=threads))
    pool = ThreadPoolExecutor(threads)
    url = base + OPENAI_PATH
    body = {"model": "m", "messages": MESSAGES, "max_tokens": MAX_TOKENS}
    headers = {"Authorization": "Bearer " + KEY}

    def post(_: int) -> int:
        try:
            session.post(url, json=body, headers=headers).json()
            return 0
        except Exception:
            return 1

    async def rq_round(n: int = calls) -> int:
        return sum(pool.map(post, range(n)))  # blocks the loop: nothing else runs meanwhile

    def close() -> None:
        pool.shutdown()
        session.close()

    return rq_round, lambda: rq_round(1), close, f"ThreadPoolExecutor({threads}), one Session, pool_maxsize={threads}"


async def _burst(a: Dict[str, Any]) -> Dict[str, Any]:
    one_round, warm, close, note = _burst_rounds(a)
    await warm()
    sampler = _Sampler()
    sampler.start()
    out: Dict[str, Any] = {"note": note, "threads_before": sampler.now()}
    data: Dict[str, List[float]] = {"wall_s": [], "cpu_s": [], "server_cpu_s": []}
    errors = 0
    try:
        for i in range(a["warmup"] + a["repeats"]):
            gc.collect()
            s0 = server_stats(a["url"])["cpu_s"]
            c0, w0 = time.process_time(), time.perf_counter()
            errors += await one_round()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            if i >= a["warmup"]:
                data["wall_s"].append(wall)
                data["cpu_s"].append(cpu)
                data["server_cpu_s"].append(server_stats(a["url"])["cpu_s"] - s0)
        out.update({k: statistics.median(v) for k, v in data.items()})
        out.update(errors=errors, peak_threads=max(sampler.peak, sampler.now()), peak_rss_mb=_status("VmHWM") / 1e3)
        idle = bridge_idle_setting() if a["contestant"] == "modelprov" else None
        limit = a["max_idle_wait"] if idle is None else min(a["max_idle_wait"], 2 * idle[0] + 1.0)
        if a["contestant"] != "modelprov" or not a["watch_idle"]:
            limit = min(limit, a["other_idle_wait"])
        out["idle_setting"] = None if idle is None else list(idle)
        out["idle_capped"] = idle is not None and limit < 2 * idle[0] + 1.0
        start = time.monotonic()
        while time.monotonic() - start < limit and sampler.now() > out["threads_before"]:
            await asyncio.sleep(0.25)
        out["idle_waited_s"] = time.monotonic() - start
        out["threads_after_idle"] = sampler.now()
    finally:
        sampler.stop.set()
        res = close()
        if asyncio.iscoroutine(res):
            await res
    return out


def section_burst(a: Dict[str, Any]) -> Dict[str, Any]:
    """Concurrent calls for one contestant (see the module docstring)."""
    raise_fd_limit()
    return asyncio.run(_burst(a))


# ------------------------------------------------------------------ memory
def section_memory(a: Dict[str, Any]) -> Dict[str, Any]:
    """RSS growth over many calls, then the traced peak while one large answer is parsed."""
    import tracemalloc

    import requests

    import modelprov

    who = a["contestant"]
    session = requests.Session()

    def caller(base: str) -> Tuple[Callable[[], Any], Callable[[], Any]]:
        if who == BASELINE:
            url = base + OPENAI_PATH
            return lambda: session.post(url, json={"model": "m", "messages": MESSAGES}, headers={"Authorization": "Bearer " + KEY}).json(), session.close
        client = modelprov.Client(providers={"openai": {"api_key": KEY, "base_url": base + "/v1"}})
        return lambda: client.complete("openai/m", MESSAGES), client.close

    call, close = caller(a["url"])
    for _ in range(a["first"]):
        call()
    gc.collect()
    first = _rss_mb()
    for _ in range(a["calls"] - a["first"]):
        call()
    gc.collect()
    out: Dict[str, Any] = {"rss_first_mb": first, "rss_last_mb": _rss_mb()}
    out["growth_mb"] = out["rss_last_mb"] - first
    close()
    raw = big_response(OPENAI_PATH, a["big"])
    body_len = len(raw) - raw.index(b"\r\n\r\n") - 4
    del raw
    small, _ = caller(f"{a['url']}/_big/1000")
    small()  # the large-body path, warm (lazy imports are not counted)
    big, close = caller(f"{a['url']}/_big/{a['big']}")
    gc.collect()
    tracemalloc.start()
    try:
        result = big()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = result["choices"][0]["message"]["content"] if isinstance(result, dict) else result.text
    if len(text) < a["big"] - 200:
        raise AssertionError(f"the large answer came back short: {len(text)} characters")
    del result, text
    close()
    out.update(body_bytes=body_len, peak_bytes=peak, multiple=peak / body_len)
    return out


SECTIONS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {"cpu": section_cpu, "burst": section_burst, "memory": section_memory}


def main(argv: Optional[List[str]] = None) -> int:
    """Run one section with its JSON arguments and print ``RESULT {json}`` on the last line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in SECTIONS:
        print(f"usage: _worker.py {{{','.join(SECTIONS)}}} JSON-ARGS", file=sys.stderr)
        return 2
    result = SECTIONS[args[0]](json.loads(args[1]))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
