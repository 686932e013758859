"""The contestants of the per-call CPU benchmarks: one JSON chat call or one whole stream each.

For each protocol (``openai``, ``anthropic``, ``ollama``) :func:`contestants`
returns zero-argument callables that make the same chat call against the
loopback server, keyed by the label the table prints:

* ``Client.complete`` / ``Client.stream``: the facade (``modelprov.Client``);
* ``provider.generate`` / ``provider.stream``: the provider the client bound
  (``Client.provider(name)``), so the difference is the facade's own cost;
* ``requests``: a naive ``requests.Session().post(...).json()`` (streams:
  ``iter_lines()`` + ``json.loads`` per event), the baseline;
* the official SDK's sync client and ``litellm.completion`` when installed.

Every stream callable returns the number of items it consumed, so the caller
can check that each contestant saw every event.
"""

import json
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from _loopback import ANTHROPIC_PATH, OLLAMA_PATH, OPENAI_PATH

__all__ = ["BASELINE", "KEY", "PROTOCOLS", "Bench", "contestants", "peer_version"]

PROTOCOLS = ("openai", "anthropic", "ollama")
BASELINE = "requests"
KEY = "sk-bench-0000000000000000"
SYSTEM = "Be brief."
USER = "Say hello"
MAX_TOKENS = 16

Bench = Callable[[], Any]


def peer_version(name: str) -> Optional[str]:
    """The installed version of distribution ``name`` (``None`` when it is not installed or cannot import)."""
    try:
        __import__(name)
    except Exception:  # a peer that fails to import counts as missing
        return None
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _drain_sse(resp: Any) -> int:
    n = 0
    loads = json.loads
    for line in resp.iter_lines():
        if line.startswith(b"data: "):
            data = line[6:]
            if data != b"[DONE]":
                loads(data)
                n += 1
    return n


def _drain_ndjson(resp: Any) -> int:
    n = 0
    loads = json.loads
    for line in resp.iter_lines():
        if line:
            loads(line)
            n += 1
    return n


def _count(items: Any) -> int:
    n = 0
    for _ in items:
        n += 1
    return n


def contestants(protocol: str, base: str, peers: bool) -> Tuple[Dict[str, Bench], Dict[str, Bench], List[str], List[Callable[[], Any]]]:
    """``(json benches, stream benches, notes, closers)`` for ``protocol`` against the server at ``base``."""
    import requests

    import modelprov

    msgs = [{"role": "user", "content": USER}]
    wire_msgs = [{"role": "system", "content": SYSTEM}] + msgs
    session = requests.Session()
    notes: List[str] = []
    if protocol == "openai":
        cfg: Dict[str, Any] = {"api_key": KEY, "base_url": base + "/v1"}
        url, headers = base + OPENAI_PATH, {"Authorization": "Bearer " + KEY}
        body: Dict[str, Any] = {"model": "m", "messages": wire_msgs, "max_completion_tokens": MAX_TOKENS}
        sbody = dict(body, stream=True, stream_options={"include_usage": True})
        drain = _drain_sse
    elif protocol == "anthropic":
        cfg = {"api_key": KEY, "base_url": base}
        url, headers = base + ANTHROPIC_PATH, {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        body = {"model": "m", "max_tokens": MAX_TOKENS, "system": SYSTEM, "messages": msgs}
        sbody = dict(body, stream=True)
        drain = _drain_sse
    else:
        cfg = {"base_url": base}
        url, headers = base + OLLAMA_PATH, {}
        body = {"model": "m", "messages": wire_msgs, "stream": False, "options": {"num_predict": MAX_TOKENS}}
        sbody = dict(body, stream=True)
        drain = _drain_ndjson
    client = modelprov.Client(providers={protocol: cfg})
    provider = client.provider(protocol)
    target = protocol + "/m"
    closers: List[Callable[[], Any]] = [client.close, session.close]

    jsons: Dict[str, Bench] = {
        "Client.complete": lambda: client.complete(target, msgs, system=SYSTEM, max_tokens=MAX_TOKENS),
        "provider.generate": lambda: provider.generate(msgs, model="m", system=SYSTEM, max_tokens=MAX_TOKENS),
        BASELINE: lambda: session.post(url, json=body, headers=headers).json(),
    }

    def rq_stream() -> int:
        with session.post(url, json=sbody, headers=headers, stream=True) as resp:
            return drain(resp)

    streams: Dict[str, Bench] = {
        "Client.stream": lambda: _count(client.stream(target, msgs, system=SYSTEM, max_tokens=MAX_TOKENS)),
        "provider.stream": lambda: _count(provider.stream(msgs, model="m", system=SYSTEM, max_tokens=MAX_TOKENS)),
        BASELINE: rq_stream,
    }
    if not peers:
        return jsons, streams, notes, closers
    version = peer_version(protocol)
    if version is None:
        notes.append(f"{protocol} SDK not installed: skipped")
    else:
        label = f"{protocol} SDK {version}"
        jsons[label], streams[label] = _sdk(protocol, base, msgs, wire_msgs, closers)
    lversion = peer_version("litellm")
    if lversion is None:
        notes.append("litellm not installed: skipped")
    else:
        label = f"litellm {lversion}"
        jsons[label], streams[label] = _litellm(protocol, base, msgs)
    return jsons, streams, notes, closers


def _sdk(protocol: str, base: str, msgs: List[Dict[str, str]], wire_msgs: List[Dict[str, str]], closers: List[Callable[[], Any]]) -> Tuple[Bench, Bench]:
    """The official SDK's sync client: (JSON call, whole stream); default settings except ``max_retries=0``."""
    if protocol == "openai":
        import openai

        oc = openai.OpenAI(api_key=KEY, base_url=base + "/v1", max_retries=0)
        closers.append(oc.close)
        create = oc.chat.completions.create
        return (
            lambda: create(model="m", messages=wire_msgs, max_completion_tokens=MAX_TOKENS),  # type: ignore[arg-type]
            lambda: _count(create(model="m", messages=wire_msgs, max_completion_tokens=MAX_TOKENS, stream=True,  # type: ignore[arg-type]
                                  stream_options={"include_usage": True})),  # fmt: skip
        )
    if protocol == "anthropic":
        import anthropic

        ac = anthropic.Anthropic(api_key=KEY, base_url=base, max_retries=0)
        closers.append(ac.close)
        mcreate = ac.messages.create
        return (
            lambda: mcreate(model="m", max_tokens=MAX_TOKENS, system=SYSTEM, messages=msgs),  # type: ignore[arg-type]
            lambda: _count(mcreate(model="m", max_tokens=MAX_TOKENS, system=SYSTEM, messages=msgs, stream=True)),  # type: ignore[arg-type]
        )
    import ollama

    lc = ollama.Client(host=base)
    closers.append(getattr(getattr(lc, "_client", None), "close", lambda: None))
    opts = {"num_predict": MAX_TOKENS}
    return (
        lambda: lc.chat(model="m", messages=wire_msgs, options=opts),
        lambda: _count(lc.chat(model="m", messages=wire_msgs, options=opts, stream=True)),
    )


def _litellm(protocol: str, base: str, msgs: List[Dict[str, str]]) -> Tuple[Bench, Bench]:
    """``litellm.completion`` (JSON call, whole stream) over the same protocol."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price list
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    model, api_base = {"openai": ("openai/m", base + "/v1"), "anthropic": ("anthropic/m", base),
                       "ollama": ("ollama_chat/m", base)}[protocol]  # fmt: skip
    kw: Dict[str, Any] = {"model": model, "api_base": api_base, "api_key": KEY, "messages": [{"role": "system", "content": SYSTEM}] + msgs,
                          "max_tokens": MAX_TOKENS, "num_retries": 0}  # fmt: skip
    completion = litellm.completion
    return lambda: completion(**kw), lambda: _count(completion(stream=True, **kw))


if __name__ == "__main__":  # pragma: no cover - a library module
    sys.exit("run benchmarks/run.py")
