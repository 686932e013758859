"""Every benchmark, one Markdown table: modelprov against raw requests and the peer SDKs.

    python benchmarks/run.py [--quick] [--no-peers] [--only SECTION[,SECTION]] [--out FILE]

A loopback HTTP/1.1 server in a separate process (``_loopback.py``: asyncio,
OpenAI/Anthropic/Ollama chat, JSON and streams, per-URL delay) answers every
call, so only client CPU is counted. Each measurement runs in a fresh
subprocess (``_worker.py``) where isolation matters: imports, RSS, threads.
Every figure is a median over repeats, shown with its ratio to a baseline
measured in the same run, and with its target where the project sets one.
Sections: ``import``, ``json``, ``stream``, ``concurrency``, ``memory``,
``footprint``. Peers (``requirements-peers.txt``: openai, anthropic, ollama,
litellm) are measured when installed and noted as skipped otherwise;
``--no-peers`` leaves them out. ``--quick`` uses fewer repeats and calls
(under 5 minutes on 2 cores); ``--tiny`` shrinks every count so the smoke test
can check that the harness still runs (its figures mean nothing).

Two component benchmarks stay beside it for profiling one layer alone:
``bench_transport.py`` (``Transport.send`` vs a requests loop) and
``bench_streaming.py`` (the SSE parser vs ``iter_lines``, no sockets).
"""

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (HERE, os.path.dirname(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _contestants import BASELINE, PROTOCOLS  # noqa: E402
from _footprint import METHOD, footprint  # noqa: E402
from _loopback import LoopbackServer  # noqa: E402
from _table import Heading, Item, Note, Row, machine, ratio_text, render  # noqa: E402

SECTIONS = ("import", "json", "stream", "concurrency", "memory", "footprint")
PEERS = ("openai", "anthropic", "ollama", "litellm")
#: (calls, server delay s) of the concurrency bursts; --tiny shrinks them.
BURSTS = ((256, 0.05), (2000, 1.0))
#: Targets (issue 13): ratios are modelprov / baseline of the same run.
JSON_VS_REQUESTS, JSON_VS_PROVIDER, STREAM_VS_REQUESTS = 0.45, 1.1, 0.8
BURST_WALL = {256: 0.6, 2000: 0.4}
BURST_CPU = {2000: 0.5}
#: RSS may grow at most this much (MB) from the first calls to the last: "no growth" with allocator noise.
RSS_GROWTH_MB = 1.0
BIG_MULTIPLE = 2.5

#: calls/streams: most per repeat; budget: CPU seconds a contestant may spend per repeat (fewer calls for slow peers).
PLANS: Dict[str, Dict[str, Any]] = {
    "full": {"import_repeats": 11, "calls": 1000, "streams": 20, "budget": 0.6, "chunks": 2000, "repeats": 7, "warmup": 50,
             "burst_repeats": 5, "burst_warmup": 1, "bursts": BURSTS, "max_idle_wait": 180.0, "mem_first": 100, "mem_calls": 1000,
             "big": 20 * 2**20},
    "quick": {"import_repeats": 3, "calls": 300, "streams": 10, "budget": 0.12, "chunks": 2000, "repeats": 4, "warmup": 20,
              "burst_repeats": 3, "burst_warmup": 1, "bursts": BURSTS, "max_idle_wait": 70.0, "mem_first": 100, "mem_calls": 1000,
              "big": 20 * 2**20},
    "tiny": {"import_repeats": 1, "calls": 3, "streams": 1, "budget": 0.01, "chunks": 40, "repeats": 1, "warmup": 1, "burst_repeats": 1,
             "burst_warmup": 0, "bursts": ((8, 0.01), (16, 0.05)), "max_idle_wait": 1.0, "mem_first": 3, "mem_calls": 6, "big": 2**20},
}  # fmt: skip
#: How long contestants without idle retirement (AsyncOpenAI, a plain thread pool) are watched after a burst.
OTHER_IDLE_WAIT = 2.0


def _env(tmp: str) -> Dict[str, str]:
    """The subprocesses' environment: no proxies, no user config or keyring, litellm offline."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(MODELPROV_CONFIG=os.path.join(tmp, "config.ini"), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
               LITELLM_LOCAL_MODEL_COST_MAP="True", NO_PROXY="127.0.0.1,localhost", PYTHONPATH=os.pathsep.join([HERE, env.get("PYTHONPATH", "")]))  # fmt: skip
    return env


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _worker(section: str, args: Dict[str, Any], env: Dict[str, str]) -> Dict[str, Any]:
    proc = subprocess.run([sys.executable, os.path.join(HERE, "_worker.py"), section, json.dumps(args)], env=env, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result: Dict[str, Any] = json.loads(line[7:])
            return result
    raise RuntimeError(f"worker {section} {args.get('protocol') or args.get('contestant') or ''} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# ------------------------------------------------------------------ import
_IMPORT = "import time; t = time.perf_counter(); import {0}; print(time.perf_counter() - t)"


def section_import(plan: Dict[str, Any], peers: List[str], env: Dict[str, str]) -> List[Item]:
    """Import time in fresh interpreters, and start-up of whole processes."""
    mods = ["modelprov", "requests"] + peers
    procs: List[Tuple[str, List[str]]] = [("python -c pass", [sys.executable, "-c", "pass"]),
                                          ("python -m modelprov --help", [sys.executable, "-m", "modelprov", "--help"])]  # fmt: skip
    script = shutil.which("modelprov", path=os.path.dirname(sys.executable)) or shutil.which("modelprov")
    if script:
        procs.append(("modelprov --help (console script)", [script, "--help"]))
    samples: Dict[str, List[float]] = {m: [] for m in mods + [p[0] for p in procs]}
    for _ in range(plan["import_repeats"]):  # interleaved, so drift hits every row alike
        for m in mods:
            out = subprocess.run([sys.executable, "-c", _IMPORT.format(m)], env=env, capture_output=True, text=True, check=True).stdout
            samples[m].append(float(out.split()[-1]))
        for label, argv in procs:
            t0 = time.perf_counter()
            subprocess.run(argv, env=env, capture_output=True, check=True)
            samples[label].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in samples.items()}
    items: List[Item] = [Heading("Import and start-up (ms, wall)",
                                 f"import alone timed inside a fresh interpreter (baseline: import requests); whole processes timed from outside "
                                 f"(baseline: python -c pass); median of {plan['import_repeats']}")]  # fmt: skip
    for m in mods:
        items.append(Row(f"import {m}", m, f"{med[m] * 1e3:.1f} ms", ratio_text(med[m] / med["requests"], m == "requests")))
    for label, _ in procs:
        items.append(Row(label, "process", f"{med[label] * 1e3:.1f} ms", ratio_text(med[label] / med["python -c pass"], label == "python -c pass")))
    if not script:
        items.append(Note("modelprov console script not on PATH: skipped"))
    return items


# ---------------------------------------------------------------- json/stream
def section_cpu(plan: Dict[str, Any], kinds: List[str], peers: bool, url: str, env: Dict[str, str]) -> Dict[str, List[Item]]:
    """Client CPU per JSON call and per stream chunk, per protocol."""
    per = {"json": [Heading("Client CPU per JSON chat call (us)",
                            f"time.process_time, {plan['repeats']} repeats of up to {plan['calls']} calls ({plan['budget']:g} s CPU each), "
                            f"contestants interleaved; baseline: requests Session.post().json(); ratio = median of per-repeat ratios")],
           "stream": [Heading("Client CPU per stream chunk (us)",
                              f"{plan['repeats']} repeats of up to {plan['streams']} streams of {plan['chunks']} chunks ({plan['budget']:g} s CPU "
                              f"each); baseline: requests iter_lines() + json.loads per event")]}  # fmt: skip
    for protocol in PROTOCOLS:
        _log(f"cpu {protocol} ({', '.join(kinds)})")
        args = dict(protocol=protocol, url=url, peers=peers, kinds=kinds, calls=plan["calls"], streams=plan["streams"], chunks=plan["chunks"],
                    repeats=plan["repeats"], warmup=plan["warmup"], budget=plan["budget"])  # fmt: skip
        res = _worker("cpu", args, env)
        for kind in kinds:
            data = res[kind]
            facade, core = ("Client.complete", "provider.generate") if kind == "json" else ("Client.stream", "provider.stream")
            target = JSON_VS_REQUESTS if kind == "json" else STREAM_VS_REQUESTS
            for label, d in data.items():
                goal = label in (facade, core) if kind == "stream" else label == facade
                items_row = Row(f"{protocol}: {'call' if kind == 'json' else 'chunk'}", label, f"{d['us']:.2f} us",
                                ratio_text(d["ratio"], label == BASELINE), f"<= {target}x {BASELINE}" if goal else "",
                                d["ratio"] <= target if goal else None)  # fmt: skip
                per[kind].append(items_row)
            over = statistics.median(a / b for a, b in zip(data[facade]["samples"], data[core]["samples"]))
            extra = data[facade]["us"] - data[core]["us"]
            per[kind].append(Row(f"{protocol}: facade cost", f"{facade} over {core}", f"{extra:+.2f} us", ratio_text(over),
                                 f"<= {JSON_VS_PROVIDER}x {core}", over <= JSON_VS_PROVIDER))  # fmt: skip
            per[kind].extend(Note(n) for n in res["notes"])
    return per


# -------------------------------------------------------------- concurrency
def section_concurrency(plan: Dict[str, Any], peers: bool, url: str, env: Dict[str, str]) -> List[Item]:
    """Bursts of concurrent calls: modelprov's bridge vs AsyncOpenAI vs a requests thread pool."""
    who = ["modelprov"] + (["AsyncOpenAI"] if peers and _installed("openai") else []) + ["requests-threads"]
    base_name = "AsyncOpenAI" if "AsyncOpenAI" in who else "requests-threads"
    items: List[Item] = [Heading("Concurrent calls (OpenAI protocol, JSON)",
                                 f"asyncio.gather of N calls, one fresh process per contestant, {plan['burst_warmup']} warm-up + "
                                 f"{plan['burst_repeats']} timed rounds; baseline: {base_name}; threads: OS threads before the burst "
                                 f"-> peak during it -> after idling")]  # fmt: skip
    if base_name != "AsyncOpenAI":
        items.append(Note("openai not installed or --no-peers: AsyncOpenAI skipped, targets not checked"))
    server_share = 0.0
    for calls, delay in plan["bursts"]:
        res: Dict[str, Dict[str, Any]] = {}
        for w in who:
            _log(f"burst {calls} x {delay:g} s: {w}")
            args = dict(url=url, contestant=w, calls=calls, delay=delay, repeats=plan["burst_repeats"], warmup=plan["burst_warmup"],
                        threads=2048, max_idle_wait=plan["max_idle_wait"], other_idle_wait=OTHER_IDLE_WAIT,
                        watch_idle=calls == max(c for c, _ in plan["bursts"]))  # fmt: skip
            res[w] = _worker("burst", args, env)
            server_share = max(server_share, res[w]["server_cpu_s"] / max(res[w]["wall_s"], 1e-9))
        ref = res[base_name]
        scen = f"{calls} x {delay * 1000:g} ms"
        wall_goal, cpu_goal = BURST_WALL.get(calls), BURST_CPU.get(calls)
        for w, r in res.items():
            mine = w == "modelprov" and base_name == "AsyncOpenAI"
            rw, rc = r["wall_s"] / ref["wall_s"], r["cpu_s"] / max(ref["cpu_s"], 1e-9)
            items.append(Row(f"{scen}: wall", f"{w} ({r['note']})", f"{r['wall_s']:.2f} s", ratio_text(rw, w == base_name),
                             f"<= {wall_goal}x AsyncOpenAI" if mine and wall_goal else "", rw <= wall_goal if mine and wall_goal else None))
            items.append(Row(f"{scen}: CPU", w, f"{r['cpu_s']:.2f} s", ratio_text(rc, w == base_name),
                             f"<= {cpu_goal}x AsyncOpenAI" if mine and cpu_goal else "", rc <= cpu_goal if mine and cpu_goal else None))
            items.append(Row(f"{scen}: peak RSS", w, f"{r['peak_rss_mb']:.0f} MB", ratio_text(r["peak_rss_mb"] / ref["peak_rss_mb"], w == base_name)))
            idle = r["idle_setting"]
            when = (f"{r['idle_waited_s']:.1f} s later" + (f" (idle setting {idle[1]} = {idle[0]:g} s" + (", wait capped" if r["idle_capped"] else "") + ")"
                    if idle else (" (no idle setting found)" if w == "modelprov" else "")))  # fmt: skip
            back = r["threads_after_idle"] <= r["threads_before"]
            goal = w == "modelprov" and calls == max(c for c, _ in plan["bursts"])
            items.append(Row(f"{scen}: threads", w, f"{r['threads_before']} -> {r['peak_threads']} -> {r['threads_after_idle']}, {when}", "",
                             "after idle <= before" if goal else "", back if goal else None))  # fmt: skip
            if r["errors"]:
                items.append(Note(f"{w}: {r['errors']} calls failed in {scen}"))
    items.append(Note(f"server check: the loopback server's own CPU was at most {server_share:.0%} of a burst's wall time (it has one core)"))
    return items


# ------------------------------------------------------------------ memory
def section_memory(plan: Dict[str, Any], url: str, env: Dict[str, str]) -> List[Item]:
    """RSS growth over many calls and the peak while a large answer is parsed."""
    res: Dict[str, Dict[str, Any]] = {}
    for w in ("Client.complete", BASELINE):
        _log(f"memory: {w}")
        res[w] = _worker("memory", dict(url=url, contestant=w, first=plan["mem_first"], calls=plan["mem_calls"], big=plan["big"]), env)
    mb = plan["big"] / 2**20
    items: List[Item] = [Heading("Memory (OpenAI protocol, one fresh process each)",
                                 f"RSS (/proc) after {plan['mem_first']} and after {plan['mem_calls']} JSON calls; tracemalloc peak while one "
                                 f"{mb:g} MiB JSON answer is read and parsed, after a warm-up call; baseline: requests")]  # fmt: skip
    for w, r in res.items():
        mine = w != BASELINE
        items.append(Row(f"RSS growth, call {plan['mem_first']} -> {plan['mem_calls']}", w,
                         f"{r['growth_mb']:+.2f} MB ({r['rss_first_mb']:.1f} -> {r['rss_last_mb']:.1f})", "",
                         f"<= {RSS_GROWTH_MB:g} MB" if mine else "", r["growth_mb"] <= RSS_GROWTH_MB if mine else None))  # fmt: skip
    for w, r in res.items():
        mine = w != BASELINE
        items.append(Row(f"peak parsing a {mb:g} MiB answer", w, f"{r['multiple']:.2f}x body ({r['peak_bytes'] / 1e6:.0f} MB)",
                         ratio_text(r["multiple"] / res[BASELINE]["multiple"], not mine), f"<= {BIG_MULTIPLE}x body" if mine else "",
                         r["multiple"] <= BIG_MULTIPLE if mine else None))  # fmt: skip
    return items


def section_footprint(peers: List[str]) -> List[Item]:
    """Distributions and MB of each package's dependency closure."""
    items: List[Item] = [Heading("Installed footprint", METHOD + "; baseline: requests")]
    base, _ = footprint("requests")
    for name in ["modelprov", "requests"] + peers:
        fp, note = footprint(name)
        if fp is None or base is None:
            items.append(Note(note or f"{name}: not measured"))
            continue
        items.append(Row(f"{name}: distributions", name, f"{fp['dists']}", ratio_text(fp["dists"] / base["dists"], name == "requests")))
        items.append(Row(f"{name}: size", name, f"{fp['mb']:.1f} MB", ratio_text(fp["mb"] / base["mb"], name == "requests")))
        if note:
            items.append(Note(f"{name}: {note}"))
    return items


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the options, run the sections asked for, print (and write) the Markdown."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and calls (under 5 minutes on 2 cores)")
    ap.add_argument("--tiny", action="store_true", help="tiny counts, for the smoke test: checks the harness, not the library")
    ap.add_argument("--no-peers", action="store_true", help="leave the peer SDKs out even when they are installed")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--out", default=None, help="also write the Markdown to this file")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s): {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
    plan = PLANS["tiny" if args.tiny else "quick" if args.quick else "full"]
    peers = [] if args.no_peers else list(PEERS)
    present = [p for p in peers if _installed(p)]
    started = time.perf_counter()
    items: List[Item] = []
    with tempfile.TemporaryDirectory(prefix="modelprov-bench-") as tmp:
        env = _env(tmp)
        if "import" in only:
            _log("import")
            items += section_import(plan, present, env)
            items += [Note(f"{p} not installed: skipped") for p in peers if p not in present]
        kinds = [k for k in ("json", "stream") if k in only]
        if kinds or "concurrency" in only or "memory" in only:
            with LoopbackServer(chunks=plan["chunks"]) as server:
                if kinds:
                    cpu = section_cpu(plan, kinds, not args.no_peers, server.url, env)
                    for k in kinds:
                        items += cpu[k]
                if "concurrency" in only:
                    items += section_concurrency(plan, not args.no_peers, server.url, env)
                if "memory" in only:
                    items += section_memory(plan, server.url, env)
        if "footprint" in only:
            items += section_footprint(present)
            items += [Note(f"{p} not installed: skipped") for p in peers if p not in present]
    mode = "tiny (harness check only)" if args.tiny else "quick" if args.quick else "full"
    command = [os.path.basename(sys.executable), "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]
    text = "\n".join([
        f"# modelprov benchmarks ({mode})", "", machine(command, present), "",
        render(items), "", f"Ran in {time.perf_counter() - started:.0f} s. Medians over repeats; ratios against the baseline of the same run.",
    ])  # fmt: skip
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
