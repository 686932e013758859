"""``Client.batch``: many completions on a bounded thread pool, or in chunks on any ``concurrent.futures.Executor``.

Results come back in input order either way. With ``executor=`` (a
``ProcessPoolExecutor``, a Dask ``distributed`` client's ``get_executor()``,
anything with ``submit`` returning ``concurrent.futures.Future`` objects) the
requests are cut into chunks, one task each; every task carries the pickled
client (a few hundred bytes: its settings, API keys included) and a token
(a hash of that pickle). Each worker process unpickles a client once per
token and keeps it (:data:`CACHED_CLIENTS` most recent), so its connections,
breakers and limits serve every later chunk; inside a task the chunk runs on
up to ``max_concurrency`` threads. In the caller's own process (a thread
pool) the caller's client itself is used. Rate limits and usage totals are
per process.
"""

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from ._log import get_logger
from .exceptions import ModelProvError, ValidationError
from .types import ModelResponse

__all__ = ["CACHED_CLIENTS", "MAX_CHUNK", "parse_batch_item", "run_batch", "run_chunk"]

log = get_logger("client")


class Completer(Protocol):
    """What a batch runs on (:class:`~modelprov.client.Client`)."""

    def complete(self, model: Optional[str], messages: Any, **options: Any) -> ModelResponse: ...  # pragma: no cover - protocol


def parse_batch_item(index: int, item: Any) -> Tuple[Optional[str], Any, Dict[str, Any]]:
    """``(model, messages, options)`` from a prompt, a message list, a ``(model, messages)`` pair or a dict."""
    if isinstance(item, (str, list)):
        return None, item, {}
    if isinstance(item, tuple) and len(item) == 2:
        return item[0], item[1], {}
    if isinstance(item, dict):
        opts = dict(item)
        messages = opts.pop("messages", None)
        prompt = opts.pop("prompt", None)
        if messages is None:
            messages = prompt
        if messages is None:
            raise ValidationError(f"requests[{index}] needs 'messages' (or 'prompt')")
        return opts.pop("model", None), messages, opts
    raise ValidationError(f"requests[{index}] must be a prompt string, a message list, a (model, messages) pair or a dict, not {type(item).__name__}")


#: Unpickled clients each process keeps (by token), most recently used last.
CACHED_CLIENTS = 8
#: Requests per executor task at most, when ``chunk_size`` is not given.
MAX_CHUNK = 100
_clients: "OrderedDict[Tuple[int, str], Any]" = OrderedDict()
#: The callers' own clients while their batches run in this process: (pid, token) -> [client, batches running]; never evicted.
_own: Dict[Tuple[int, str], List[Any]] = {}
_clients_lock = threading.Lock()
Item = Tuple[Optional[str], Any, Dict[str, Any]]


def _after_fork() -> None:
    """In a forked child: a fresh lock, and no client of the parent (its connections are the parent's)."""
    global _clients_lock
    _clients_lock = threading.Lock()
    _clients.clear()
    _own.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def run_batch(
    client: Completer,
    requests: Sequence[Any],
    max_concurrency: int,
    on_progress: Optional[Callable[[int, int], None]],
    return_exceptions: bool,
    *,
    executor: Any = None,
    chunk_size: Optional[int] = None,
) -> List[Any]:
    """Run ``client.complete`` for each request with at most ``max_concurrency`` at once; results in input order.

    Each request is a prompt string or a message list (default model), a ``(model, messages)``
    pair, or a dict with ``model``, ``messages`` and any chat options.
    ``on_progress(done, total)`` is called after each one finishes (after
    each chunk with an executor). With ``return_exceptions=True`` a failed
    request's exception takes its place in the list; otherwise the first
    failure is raised once all are done.

    ``executor``: run on this ``concurrent.futures.Executor`` in chunks of
    ``chunk_size`` requests (default: about 1/32 of them, 1 to
    :data:`MAX_CHUNK`), each chunk on up to ``max_concurrency`` threads of
    its worker (see the module docstring). The client must pickle.
    """
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise ValidationError("max_concurrency must be a positive integer")
    if not isinstance(requests, (list, tuple)):
        raise ValidationError(f"requests must be a list, not {type(requests).__name__}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValidationError(f"chunk_size must be a positive integer, not {chunk_size!r}")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ValidationError(f"executor must be a concurrent.futures.Executor (with submit()), not {type(executor).__name__}")
    items = [parse_batch_item(i, r) for i, r in enumerate(requests)]
    total = len(items)
    if not total:
        return []
    if executor is None:
        results = _run_threads(client, items, max_concurrency, on_progress, total)
    else:
        results = _run_executor(client, items, max_concurrency, on_progress, executor, chunk_size)
    if not return_exceptions:
        for r in results:
            if isinstance(r, Exception):
                raise r
    return results


def _run_threads(client: Completer, items: List[Item], max_concurrency: int, on_progress: Optional[Callable[[int, int], None]], total: int) -> List[Any]:
    """Every item on a thread pool of at most ``max_concurrency`` threads; each result or exception in its place."""
    results: List[Any] = [None] * len(items)
    done = [0]  # a list: the worker closure counts into it
    lock = threading.Lock()

    def one(index: int) -> None:
        model, messages, opts = items[index]
        try:
            results[index] = client.complete(model, messages, **opts)
        except Exception as exc:  # kept in place; raised later when asked
            results[index] = exc
        if on_progress is None:
            return
        with lock:  # held across the callback so counts arrive in order, one at a time
            done[0] += 1
            try:
                on_progress(done[0], total)
            except Exception:
                log.exception("the batch on_progress callback raised; ignored")

    if min(max_concurrency, len(items)) == 1:
        for index in range(len(items)):
            one(index)
        return results
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(max_concurrency, len(items)), thread_name_prefix="modelprov-batch") as pool:
        list(pool.map(one, range(len(items))))
    return results


def _run_executor(
    client: Completer, items: List[Item], max_concurrency: int, on_progress: Optional[Callable[[int, int], None]], executor: Any, chunk_size: Optional[int]
) -> List[Any]:
    """The items in chunks on ``executor``; results (and exceptions) back in input order."""
    import pickle
    from concurrent.futures import as_completed

    blob = pickle.dumps(client)  # a client that cannot travel says so here, before any task runs
    # the object's id too: two clients with the same settings are still two (their usage totals, their limits)
    token = f"{hashlib.sha256(blob).hexdigest()[:32]}-{id(client):x}"
    total = len(items)
    size = chunk_size or max(1, min(MAX_CHUNK, -(-total // 32)))
    pid = os.getpid()
    key = (pid, token)
    with _clients_lock:  # in this process, tasks use the caller's own client, however many batches it runs
        _own.setdefault(key, [client, 0])[1] += 1
    results: List[Any] = [None] * total
    futures: Dict[Any, range] = {}
    try:
        for start in range(0, total, size):
            span = range(start, min(start + size, total))
            futures[executor.submit(run_chunk, pid, token, blob, items[span.start : span.stop], max_concurrency)] = span
        done = 0
        for future in as_completed(futures):
            span = futures[future]
            try:
                out = future.result()
            except Exception as exc:  # the task itself failed (a worker died...): every request of it failed so
                out = [exc] * len(span)
            for index, result in zip(span, out):
                results[index] = result
            done += len(span)
            if on_progress is not None:
                try:
                    on_progress(done, total)
                except Exception:
                    log.exception("the batch on_progress callback raised; ignored")
    finally:
        for future in futures:
            future.cancel()
        with _clients_lock:
            entry = _own[key]
            entry[1] -= 1
            if not entry[1]:
                del _own[key]
    return results


def _client_for(token: str, blob: bytes) -> Any:
    """This process's client for ``token``: cached, else unpickled from ``blob`` (never under the lock)."""
    key = (os.getpid(), token)
    with _clients_lock:
        own = _own.get(key)
        if own is not None:
            return own[0]
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
    import pickle

    client = pickle.loads(blob)
    with _clients_lock:
        kept = _clients.setdefault(key, client)
        while len(_clients) > CACHED_CLIENTS:
            _clients.popitem(last=False)
    return kept


def _portable(result: Any) -> Any:
    """``result``, or for an exception that does not pickle a :class:`ModelProvError` saying what it was."""
    if not isinstance(result, BaseException):
        return result
    import pickle

    try:
        pickle.loads(pickle.dumps(result))
        return result
    except Exception:
        return ModelProvError(f"{type(result).__name__}: {result}", provider=getattr(result, "provider", None))


def run_chunk(parent_pid: int, token: str, blob: bytes, items: List[Item], max_concurrency: int) -> List[Any]:
    """One executor task: ``items`` on this process's client for ``token``; results in order, exceptions in place.

    Module level, so executors pickle it by reference (workers import modelprov).
    """
    client = _client_for(token, blob)
    results = _run_threads(client, items, max_concurrency, None, len(items))
    if os.getpid() != parent_pid:
        results = [_portable(r) for r in results]
    return results
