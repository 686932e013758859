"""Client CPU per JSON call and per stream chunk: modelprov codecs vs raw requests vs the official SDKs.

For the OpenAI, Anthropic and Ollama codecs, against the loopback server of
:mod:`_loopback` (raw HTTP/1.1 keep-alive, canned bytes, separate process, so
only client CPU is counted by ``time.process_time()``):

* **JSON call**: ``provider.generate(...)`` (provider built directly from a
  ``ProviderConfig``) and ``Client.complete(...)`` vs a naive
  ``requests.Session().post(url, json=body, headers=...).json()`` loop vs the
  official SDK (``openai.OpenAI().chat.completions.create``,
  ``anthropic.Anthropic().messages.create``, ``ollama.Client().chat``) when it
  is installed. Targets: modelprov <= 0.55x requests, ahead of every SDK.
* **Stream chunk**: streams of ``--chunks`` content events (one HTTP chunk per
  event, as real servers flush them), every ``StreamChunk`` consumed:
  ``provider.stream(...)`` and ``Client.stream(...)`` vs a naive
  ``iter_lines()`` + ``json.loads`` loop vs the SDK's streaming. CPU per
  content event. Targets: modelprov <= 0.8x naive, ahead of every SDK.

Each measurement runs all contestants in the same process, interleaved (order
rotated per repeat), and reports the median over repeats; ratios are the
median of per-repeat ratios (each contestant against the requests loop of the
same repeat), which cancels most drift on a shared machine. The ``conns/req``
column is the number of TCP connections the server accepted per request during
the measurement (1.0 means no connection reuse at all).

SDKs that are not installed are skipped, so this runs in the project's dev
venv too. Usage::

    python benchmarks/bench_providers.py [--quick] [-r 5] [-n 1000] [-s 40] [--chunks 500]
        [--providers openai,anthropic,ollama] [--only json|stream] [--json]
"""

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _loopback import ANTHROPIC_PATH, OLLAMA_PATH, OPENAI_PATH, LoopbackServer  # noqa: E402

__all__ = ["JSON_TARGET", "PROVIDERS", "STREAM_TARGET", "main", "run"]

PROVIDERS = ("openai", "anthropic", "ollama")
#: modelprov CPU per JSON call / naive requests loop.
JSON_TARGET = 0.55
#: modelprov CPU per stream chunk / naive iter_lines loop.
STREAM_TARGET = 0.8

SYSTEM = "Be brief."
USER = "Say hello"
MAX_TOKENS = 16
KEY = "sk-bench-0000000000000000"

Bench = Callable[[], Any]


def _sdk(name: str) -> Optional[Any]:
    try:
        return __import__(name)
    except ImportError:
        return None


def _drain_lines_sse(resp: Any) -> int:
    n = 0
    loads = json.loads
    for line in resp.iter_lines():
        if line.startswith(b"data: "):
            data = line[6:]
            if data != b"[DONE]":
                loads(data)
                n += 1
    return n


def _drain_lines_ndjson(resp: Any) -> int:
    n = 0
    loads = json.loads
    for line in resp.iter_lines():
        if line:
            loads(line)
            n += 1
    return n


def _contestants(name: str, base: str, modelprov: Any) -> Tuple[Dict[str, Bench], Dict[str, Bench], Dict[str, str], List[Callable[[], Any]]]:
    """(JSON benches, stream benches, notes, closers) for one provider; keys: modelprov, client, requests, sdk."""
    import requests

    from modelprov.engine import bind
    from modelprov.types import ProviderConfig

    msgs = [{"role": "user", "content": USER}]
    wire_msgs = [{"role": "system", "content": SYSTEM}] + msgs
    session = requests.Session()
    notes: Dict[str, str] = {}
    if name == "openai":
        from modelprov.providers.openai_compat.openai import OpenAIProvider

        cfg: Dict[str, Any] = {"api_key": KEY, "base_url": base + "/v1"}
        provider = bind(OpenAIProvider(ProviderConfig(name="openai", **cfg)))
        url = base + OPENAI_PATH
        headers = {"Authorization": "Bearer " + KEY}
        body: Dict[str, Any] = {"model": "m", "messages": wire_msgs, "max_completion_tokens": MAX_TOKENS}
        sbody = dict(body, stream=True, stream_options={"include_usage": True})
        naive_lines = _drain_lines_sse
    elif name == "anthropic":
        from modelprov.providers.anthropic.provider import AnthropicProvider

        cfg = {"api_key": KEY, "base_url": base}
        provider = bind(AnthropicProvider(ProviderConfig(name="anthropic", **cfg)))
        url = base + ANTHROPIC_PATH
        headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        body = {"model": "m", "max_tokens": MAX_TOKENS, "system": SYSTEM, "messages": msgs}
        sbody = dict(body, stream=True)
        naive_lines = _drain_lines_sse
    else:
        from modelprov.providers.ollama.provider import OllamaProvider

        cfg = {"base_url": base}
        provider = bind(OllamaProvider(ProviderConfig(name="ollama", **cfg)))
        url = base + OLLAMA_PATH
        headers = {}
        body = {"model": "m", "messages": wire_msgs, "stream": False, "options": {"num_predict": MAX_TOKENS}}
        sbody = dict(body, stream=True)
        naive_lines = _drain_lines_ndjson
    client = modelprov.Client(providers={name: cfg})
    target = name + "/m"
    closers: List[Callable[[], Any]] = [provider.close, client.close, session.close]

    def mp_json() -> Any:
        return provider.generate(msgs, model="m", system=SYSTEM, max_tokens=MAX_TOKENS)

    def mp_stream() -> int:
        n = 0
        for _ in provider.stream(msgs, model="m", system=SYSTEM, max_tokens=MAX_TOKENS):
            n += 1
        return n

    def client_json() -> Any:
        return client.complete(target, msgs, system=SYSTEM, max_tokens=MAX_TOKENS)

    def client_stream() -> int:
        n = 0
        for _ in client.stream(target, msgs, system=SYSTEM, max_tokens=MAX_TOKENS):
            n += 1
        return n

    def rq_json() -> Any:
        return session.post(url, json=body, headers=headers).json()

    def rq_stream() -> int:
        with session.post(url, json=sbody, headers=headers, stream=True) as resp:
            return naive_lines(resp)

    jsons: Dict[str, Bench] = {"modelprov": mp_json, "client": client_json, "requests": rq_json}
    streams: Dict[str, Bench] = {"modelprov": mp_stream, "client": client_stream, "requests": rq_stream}
    sdk = _sdk(name)
    if sdk is None:
        notes["sdk"] = f"{name} SDK not installed: skipped"
        return jsons, streams, notes, closers
    notes["sdk"] = f"{name} {getattr(sdk, '__version__', '?')}"
    if name == "openai":
        oc = sdk.OpenAI(api_key=KEY, base_url=base + "/v1", max_retries=0)
        closers.append(oc.close)
        create = oc.chat.completions.create

        def sdk_json() -> Any:
            return create(model="m", messages=wire_msgs, max_completion_tokens=MAX_TOKENS)

        def sdk_stream() -> int:
            n = 0
            for _ in create(model="m", messages=wire_msgs, max_completion_tokens=MAX_TOKENS, stream=True,
                            stream_options={"include_usage": True}):  # fmt: skip
                n += 1
            return n

    elif name == "anthropic":
        ac = sdk.Anthropic(api_key=KEY, base_url=base, max_retries=0)
        closers.append(ac.close)
        mcreate = ac.messages.create

        def sdk_json() -> Any:
            return mcreate(model="m", max_tokens=MAX_TOKENS, system=SYSTEM, messages=msgs)

        def sdk_stream() -> int:
            n = 0
            for _ in mcreate(model="m", max_tokens=MAX_TOKENS, system=SYSTEM, messages=msgs, stream=True):
                n += 1
            return n

    else:
        lc = sdk.Client(host=base)
        closers.append(getattr(getattr(lc, "_client", None), "close", lambda: None))

        def sdk_json() -> Any:
            return lc.chat(model="m", messages=wire_msgs, options={"num_predict": MAX_TOKENS})

        def sdk_stream() -> int:
            n = 0
            for _ in lc.chat(model="m", messages=wire_msgs, options={"num_predict": MAX_TOKENS}, stream=True):
                n += 1
            return n

    jsons["sdk"] = sdk_json
    streams["sdk"] = sdk_stream
    return jsons, streams, notes, closers


def _measure(benches: Dict[str, Bench], calls: int, repeats: int, warmup: int, server: LoopbackServer) -> Dict[str, Dict[str, float]]:
    """Median CPU seconds per call and TCP connections per call for each bench, interleaved."""
    for fn in benches.values():
        for _ in range(warmup):
            fn()
    names = list(benches)
    cpu: Dict[str, List[float]] = {k: [] for k in names}
    conns: Dict[str, List[float]] = {k: [] for k in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for key in order:
            fn = benches[key]
            before = server.stats()["connections"]
            gc.collect()
            start = time.process_time()
            for _ in range(calls):
                fn()
            cpu[key].append((time.process_time() - start) / calls)
            conns[key].append((server.stats()["connections"] - before) / calls)
    base = cpu.get("requests")
    out: Dict[str, Dict[str, float]] = {}
    for k in names:
        out[k] = {"cpu_s": statistics.median(cpu[k]), "conns_per_req": statistics.median(conns[k])}
        if base:  # ratio of measurements taken side by side in the same repeat, then the median
            out[k]["ratio"] = statistics.median(a / b for a, b in zip(cpu[k], base))
    return out


def _run_provider(
    result: Dict[str, Any],
    name: str,
    jsons: Dict[str, Bench],
    sbenches: Dict[str, Bench],
    server: LoopbackServer,
    calls: int,
    streams: int,
    chunks: int,
    repeats: int,
    kinds: Tuple[str, ...],
    verbose: bool,
) -> None:
    """Measure one provider's contestants into ``result``."""
    # sanity: every streaming contestant sees every content event
    expect = {k: fn() for k, fn in sbenches.items()}
    if verbose:
        print(f"[{name}] items per stream: {expect}", file=sys.stderr)
    short = {k: n for k, n in expect.items() if n < chunks}
    if short:
        raise AssertionError(f"{name}: streams yielded fewer than {chunks} items: {short}")
    targets = result["targets"][name] = {}
    if "json" in kinds:
        if verbose:
            print(f"[{name}] JSON calls ...", file=sys.stderr)
        jres = _measure(jsons, calls, repeats, max(20, calls // 10), server)
        j = result["json"][name] = {
            k: {"us": v["cpu_s"] * 1e6, "ratio": v["ratio"], "conns_per_req": v["conns_per_req"]} for k, v in jres.items()
        }
        targets["json_vs_requests"] = j["modelprov"]["ratio"] <= JSON_TARGET
        targets["json_vs_sdk"] = ("sdk" not in j) or j["modelprov"]["us"] < j["sdk"]["us"]
    if "stream" in kinds:
        if verbose:
            print(f"[{name}] streams ...", file=sys.stderr)
        sres = _measure(sbenches, streams, repeats, max(2, streams // 10), server)
        s = result["stream"][name] = {
            k: {"us": v["cpu_s"] / chunks * 1e6, "us_per_stream": v["cpu_s"] * 1e6, "ratio": v["ratio"],
                "conns_per_req": v["conns_per_req"]}
            for k, v in sres.items()
        }  # fmt: skip
        targets["stream_vs_requests"] = s["modelprov"]["ratio"] <= STREAM_TARGET
        targets["stream_vs_sdk"] = ("sdk" not in s) or s["modelprov"]["us"] < s["sdk"]["us"]


def run(
    calls: int = 1000,
    streams: int = 40,
    chunks: int = 500,
    repeats: int = 5,
    providers: Tuple[str, ...] = PROVIDERS,
    verbose: bool = False,
    kinds: Tuple[str, ...] = ("json", "stream"),
) -> Dict[str, Any]:
    """Run the benchmark; returns ``{"json": {...}, "stream": {...}, "targets": {...}, ...}``.

    ``result["json"][provider][contestant]`` holds ``us`` (CPU per call),
    ``ratio`` (to the naive requests loop) and ``conns_per_req``;
    ``result["stream"][provider][contestant]`` holds ``us`` per chunk,
    ``us_per_stream``, ``ratio`` and ``conns_per_req``. Contestants:
    ``modelprov`` (provider), ``client`` (``modelprov.Client``), ``requests``,
    and ``sdk`` when the official SDK is installed.
    ``result["targets"]`` says which targets are met. ``kinds`` selects
    ``"json"`` and/or ``"stream"``.
    """
    import modelprov

    result: Dict[str, Any] = {
        "calls": calls, "streams": streams, "chunks": chunks, "repeats": repeats,
        "python": platform.python_version(), "json": {}, "stream": {}, "notes": {}, "targets": {},
    }  # fmt: skip
    try:
        import requests
        import urllib3

        result["requests"] = f"requests {requests.__version__}, urllib3 {urllib3.__version__}"
    except ImportError:  # pragma: no cover - requests is a runtime dependency
        pass
    with LoopbackServer(delay=0.0, chunks=chunks) as server:
        for name in providers:
            jsons, sbenches, notes, closers = _contestants(name, server.url, modelprov)
            result["notes"][name] = notes
            try:
                _run_provider(result, name, jsons, sbenches, server, calls, streams, chunks, repeats, kinds, verbose)
            finally:
                for close in closers:
                    close()
    result["all_targets_met"] = all(all(t.values()) for t in result["targets"].values())
    return result


_LABELS = {
    "json": {
        "modelprov": "modelprov provider.generate()",
        "client": "modelprov Client.complete()",
        "requests": "requests Session.post().json()",
        "sdk": "official SDK",
    },
    "stream": {
        "modelprov": "modelprov provider.stream()",
        "client": "modelprov Client.stream()",
        "requests": "requests iter_lines+json.loads",
        "sdk": "official SDK (stream=True)",
    },
}


def _print(result: Dict[str, Any]) -> None:
    print(
        f"python {result['python']}, {result.get('requests', '')}; median of {result['repeats']} repeats; "
        f"client CPU (time.process_time) only, server in another process"
    )
    for kind, unit, target, per in (
        ("json", "us/call", JSON_TARGET, f"{result['calls']} calls"),
        ("stream", "us/chunk", STREAM_TARGET, f"{result['streams']} streams x {result['chunks']} chunks"),
    ):
        if not result[kind]:
            continue
        title = "JSON call" if kind == "json" else "Stream chunk"
        print(f"\n{title}: client CPU, {per} per repeat (target modelprov <= {target}x requests, ahead of every SDK)")
        print(f"  {'provider':<10} {'contestant':<34} {unit:>9} {'x requests':>10} {'conns/req':>9}")
        for name, rows in result[kind].items():
            for key in ("modelprov", "client", "requests", "sdk"):
                if key not in rows:
                    continue
                row = rows[key]
                label = _LABELS[kind][key]
                if key == "sdk":
                    label = result["notes"][name]["sdk"].split()[0] + " SDK" + (" (stream=True)" if kind == "stream" else "")
                print(f"  {name:<10} {label:<34} {row['us']:9.2f} {row['ratio']:10.3f} {row['conns_per_req']:9.2f}")
            if "sdk" not in rows:
                print(f"  {name:<10} ({result['notes'][name]['sdk']})")
    print("\nTargets:")
    for name, t in result["targets"].items():
        parts = []
        for kind, label in (("json", "JSON"), ("stream", "stream")):
            rows = result[kind].get(name)
            if not rows:
                continue
            ok = t[kind + "_vs_requests"]
            parts.append(f"{label} {rows['modelprov']['ratio']:.3f}x requests ({'met' if ok else 'NOT met'})")
            if "sdk" in rows:
                ok = t[kind + "_vs_sdk"]
                parts.append(f"{label} vs SDK {rows['modelprov']['us'] / rows['sdk']['us']:.3f}x ({'met' if ok else 'NOT met'})")
            else:
                parts.append(f"{label} vs SDK: not installed")
        print(f"  {name:<10} " + "; ".join(parts))
    print("all targets met" if result["all_targets_met"] else "some targets NOT met")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls and repeats (a rough number in ~20 s)")
    ap.add_argument("-r", "--repeats", type=int, default=None, help="repeats per measurement (median reported; default 5)")
    ap.add_argument("-n", "--calls", type=int, default=None, help="JSON calls per repeat (default 1000)")
    ap.add_argument("-s", "--streams", type=int, default=None, help="streams per repeat (default 40)")
    ap.add_argument("--chunks", type=int, default=500, help="content events per stream (default 500)")
    ap.add_argument("--providers", default=",".join(PROVIDERS), help="comma-separated subset of " + ",".join(PROVIDERS))
    ap.add_argument("--only", choices=("json", "stream"), default=None, help="run only the JSON or only the stream part")
    ap.add_argument("--json", action="store_true", help="print the result dict as JSON instead of tables")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    names = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    unknown = [p for p in names if p not in PROVIDERS]
    if unknown:
        ap.error(f"unknown provider(s): {', '.join(unknown)}")
    quick = args.quick
    result = run(
        calls=args.calls or (200 if quick else 1000),
        streams=args.streams or (10 if quick else 40),
        chunks=args.chunks,
        repeats=args.repeats or (3 if quick else 5),
        providers=names,
        verbose=args.verbose,
        kinds=(args.only,) if args.only else ("json", "stream"),
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
