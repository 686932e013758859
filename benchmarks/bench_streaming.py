"""Benchmark: SSEParser + loads_json against a naive requests-style iter_lines loop.

Builds a realistic OpenAI-style chat-completion stream (2,000 ``data: {json}``
chunk events, a usage chunk and ``data: [DONE]``), cuts it into network-like
chunks of varying size, and measures the CPU time (``time.process_time``) of

(a) ``SSEParser.feed`` per chunk plus ``loads_json(event.data)`` per event
    (the path every SSE provider runs), and
(b) a re-implementation of ``requests.Response.iter_lines()`` (``splitlines``
    on accumulated bytes with pending-line handling) followed by stripping the
    ``data: `` prefix and ``json.loads`` on each line,

over the same chunks. The target is ``ratio = (a) / (b) <= 0.8``.

Usage::

    python benchmarks/bench_streaming.py [--repeats N] [--events N]

or ``from bench_streaming import run; run(repeats=5)`` from another benchmark.
"""

import gc
import json
import os
import random
import statistics
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

try:
    from modelprov.streaming import SSEParser, loads_json
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from modelprov.streaming import SSEParser, loads_json

__all__ = ["build_stream", "naive_loop", "parser_loop", "run", "split_chunks"]

#: English-looking tokens as a chat model streams them (leading spaces, punctuation, newlines).
_TOKENS = (
    "The", " model", " returns", " a", " short", " answer", ",", " then", " explains", " why", ".",
    " It", " is", " not", " the", " only", " way", " to", " do", " this", ":", "\n\n", "1", ".",
    " First", " check", " your", " API", " key", " and", " retry", " after", " 30", " seconds", "\n",
    "-", " **", "Note", "**", " you", " can", " also", " use", " `", "stream", "=True", "`", "!",
    " Hello", " world", " of", " in", " on", " for", " with", " that", " response", " JSON", " data",
)
#: Non-ASCII tokens: typographic punctuation, accents, CJK, emoji.
_NON_ASCII = ("\u2014", "\u2019s", " caf\u00e9", " na\u00efve", " \u6f22\u5b57", "\u3002", " \U0001f642", " \u00fcber")
#: Network read sizes in bytes (TCP segments, TLS records, coalesced reads).
_CHUNK_SIZES = (37, 113, 256, 512, 1024, 1460, 2920, 4096, 8192)


def build_stream(events: int = 2000, seed: int = 1, non_ascii: float = 0.03) -> bytes:
    """An OpenAI chat-completions SSE body with ``events`` content chunks.

    Chunks carry current OpenAI fields (``service_tier``, ``obfuscation``) and
    raw UTF-8 (as the API sends it); ``non_ascii`` is the share of tokens that
    are not ASCII.
    """
    rnd = random.Random(seed)
    base = {
        "id": "chatcmpl-9xQpZbFcT3a1Xy7Lm2Nv0KwRd",
        "object": "chat.completion.chunk",
        "created": 1732700000,
        "model": "gpt-5.4-mini-2026-03-17",
        "service_tier": "default",
        "system_fingerprint": "fp_0ba0d124f1",
    }
    pad = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

    def event(choices: List[Any], **extra: Any) -> bytes:
        obj = dict(base, choices=choices, **extra)
        if choices:
            obj["obfuscation"] = "".join(rnd.choice(pad) for _ in range(rnd.randint(1, 12)))
        return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n\n"

    def token() -> str:
        return rnd.choice(_NON_ASCII) if rnd.random() < non_ascii else rnd.choice(_TOKENS)

    out = [event([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}])]
    for _ in range(events - 1):
        out.append(event([{"index": 0, "delta": {"content": token()}, "logprobs": None, "finish_reason": None}]))
    out.append(event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
    usage = {"prompt_tokens": 31, "completion_tokens": events, "total_tokens": events + 31}
    out.append(event([], usage=usage))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def split_chunks(body: bytes, seed: int = 2, sizes: Tuple[int, ...] = _CHUNK_SIZES) -> List[bytes]:
    """Cut ``body`` into chunks whose sizes are drawn from ``sizes``."""
    rnd = random.Random(seed)
    chunks, i = [], 0
    while i < len(body):
        n = rnd.choice(sizes)
        chunks.append(body[i : i + n])
        i += n
    return chunks


def _iter_lines(chunks: List[bytes]) -> Iterator[bytes]:
    # requests.models.Response.iter_lines (delimiter=None, decode_unicode=False)
    pending = None
    for chunk in chunks:
        if pending is not None:
            chunk = pending + chunk
        lines = chunk.splitlines()
        if lines and lines[-1] and chunk and lines[-1][-1] == chunk[-1]:
            pending = lines.pop()
        else:
            pending = None
        yield from lines
    if pending is not None:
        yield pending


def naive_loop(chunks: List[bytes]) -> int:
    """(b): iter_lines + strip ``data: `` + json.loads; returns the number of JSON events."""
    n = 0
    loads = json.loads
    for line in _iter_lines(chunks):
        if not line:
            continue
        if line.startswith(b"data: "):
            data = line[6:]
            if data == b"[DONE]":
                break
            loads(data)
            n += 1
    return n


def parser_loop(chunks: List[bytes]) -> int:
    """(a): SSEParser + loads_json(event.data), what the providers run; returns the number of JSON events."""
    n = 0
    loads = loads_json
    parser = SSEParser()
    done = False
    for chunk in chunks:
        for ev in parser.feed(chunk):
            data = ev.data
            if data == "[DONE]":
                done = True
                break
            loads(data)
            n += 1
        if done:
            break
    parser.close()
    return n


def _parser_only(chunks: List[bytes]) -> int:
    """(a) without json.loads: the parser's own CPU."""
    n = 0
    parser = SSEParser()
    for chunk in chunks:
        for ev in parser.feed(chunk):
            if ev.data == "[DONE]":
                return n
            n += 1
    return n


def _naive_only(chunks: List[bytes]) -> int:
    """(b) without json.loads: iter_lines splitting and prefix stripping."""
    n = 0
    for line in _iter_lines(chunks):
        if line.startswith(b"data: "):
            if line[6:] == b"[DONE]":
                return n
            n += 1
    return n


def _json_floor(datas: List[str]) -> Callable[[List[bytes]], int]:
    """json.loads over pre-split, pre-decoded data: what a zero-cost parser would cost."""

    def loop(_chunks: List[bytes]) -> int:
        n = 0
        loads = json.loads
        for data in datas:
            if data == "[DONE]":
                break
            loads(data)
            n += 1
        return n

    return loop


def _time(fn: Callable[[List[bytes]], int], chunks: List[bytes], inner: int) -> float:
    gc.collect()
    start = time.process_time()
    for _ in range(inner):
        fn(chunks)
    return (time.process_time() - start) / inner


def _compare(chunks: List[bytes], repeats: int, inner: int, detail: bool = False) -> Dict[str, Any]:
    fns: Dict[str, Callable[[List[bytes]], int]] = {"parser": parser_loop, "naive": naive_loop}
    if detail:
        body = b"".join(chunks)
        fns["floor"] = _json_floor([part[6:].decode("utf-8") for part in body.split(b"\n\n") if part])
        fns["parser_only"] = _parser_only
        fns["naive_only"] = _naive_only
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):  # interleaved so drift and load hit every loop alike
        for name, fn in fns.items():
            times[name].append(_time(fn, chunks, inner))
    n = len(chunks)
    ours, naive = times["parser"], times["naive"]
    result = {
        "chunks": n,
        "parser_us_per_chunk_best": min(ours) / n * 1e6,
        "parser_us_per_chunk_median": statistics.median(ours) / n * 1e6,
        "naive_us_per_chunk_best": min(naive) / n * 1e6,
        "naive_us_per_chunk_median": statistics.median(naive) / n * 1e6,
        "ratio_best": min(ours) / min(naive),
        "ratio_median": statistics.median(ours) / statistics.median(naive),
    }
    if detail:
        # floor_ratio: json.loads alone / naive, the best any parser could reach;
        # parse_only_ratio: parser without json / iter_lines without json.
        result["floor_ratio"] = min(times["floor"]) / min(naive)
        result["parse_only_ratio"] = min(times["parser_only"]) / min(times["naive_only"])
        result["parser_only_us_per_event"] = min(times["parser_only"]) / _events_seen(chunks) * 1e6
        result["naive_only_us_per_event"] = min(times["naive_only"]) / _events_seen(chunks) * 1e6
    return result


def _events_seen(chunks: List[bytes]) -> int:
    return max(1, _naive_only(chunks))


def run(repeats: int = 7, events: int = 2000, inner: int = 3, extra: bool = True) -> Dict[str, Any]:
    """Run the benchmark and return its numbers.

    Top-level keys describe the main scenario (3% non-ASCII tokens, network
    chunks of mixed sizes): ``events``, ``bytes``, ``chunks``,
    ``parser_us_per_chunk_best``/``_median``, ``naive_us_per_chunk_best``/``_median``,
    ``ratio_best``, ``ratio_median`` (parser / naive CPU time, lower is better;
    target <= 0.8), ``floor_ratio`` (json.loads alone on pre-split data / naive:
    what a zero-cost parser would score), ``parse_only_ratio`` and
    ``parser_only_us_per_event``/``naive_only_us_per_event`` (both sides without
    json.loads). With ``extra``, ``per_event`` (one network chunk per SSE
    event, as when every token is read as soon as it is flushed) and
    ``non_ascii_heavy`` (30% non-ASCII tokens) hold the same numbers.
    """
    body = build_stream(events)
    chunks = split_chunks(body)
    _check(chunks, events + 2)  # role chunk + content chunks + finish chunk + usage chunk
    result: Dict[str, Any] = {"events": events + 2, "bytes": len(body)}
    result.update(_compare(chunks, repeats, inner, detail=True))
    if extra:
        aligned = [part + b"\n\n" for part in body.split(b"\n\n") if part]
        result["per_event"] = _compare(aligned, repeats, inner)
        heavy = split_chunks(build_stream(events, non_ascii=0.3))
        _check(heavy, events + 2)
        result["non_ascii_heavy"] = _compare(heavy, repeats, inner)
    return result


def _check(chunks: List[bytes], expected: int) -> None:
    got = (parser_loop(chunks), naive_loop(chunks))
    if got != (expected, expected):  # both sides must do the same work
        raise AssertionError(f"event counts differ: parser={got[0]} naive={got[1]} expected={expected}")


def _report(result: Dict[str, Any], label: str) -> None:
    print(
        f"{label}: {result['chunks']} chunks  "
        f"parser {result['parser_us_per_chunk_best']:.2f} us/chunk (median {result['parser_us_per_chunk_median']:.2f})  "
        f"naive {result['naive_us_per_chunk_best']:.2f} us/chunk (median {result['naive_us_per_chunk_median']:.2f})  "
        f"ratio {result['ratio_best']:.3f} (median {result['ratio_median']:.3f})"
    )


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--inner", type=int, default=3, help="stream passes per timed repeat")
    args = ap.parse_args(argv)
    result = run(repeats=args.repeats, events=args.events, inner=args.inner)
    print(f"python {sys.version.split()[0]}, {result['events']} JSON events, {result['bytes']} bytes")
    _report(result, "main (mixed chunk sizes, 3% non-ASCII)")
    print(
        f"  json.loads alone would score {result['floor_ratio']:.3f}; without json.loads: parser "
        f"{result['parser_only_us_per_event']:.3f} us/event, iter_lines {result['naive_only_us_per_event']:.3f} us/event"
    )
    _report(result["per_event"], "one chunk per event")
    _report(result["non_ascii_heavy"], "30% non-ASCII tokens")
    print("target ratio <= 0.8:", "met" if result["ratio_best"] <= 0.8 else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
