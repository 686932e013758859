"""``Client.batch``: run many completions on a bounded thread pool, results in input order."""

import threading
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from ._log import get_logger
from .exceptions import ValidationError
from .types import ModelResponse

__all__ = ["parse_batch_item", "run_batch"]

log = get_logger("client")


class Completer(Protocol):
    """What a batch runs on (:class:`~modelprov.client.Client`)."""

    def complete(self, model: Optional[str], messages: Any, **options: Any) -> ModelResponse: ...  # pragma: no cover - protocol


def parse_batch_item(index: int, item: Any) -> Tuple[Optional[str], Any, Dict[str, Any]]:
    """``(model, messages, options)`` from a prompt, a ``(model, messages)`` pair or a dict."""
    if isinstance(item, str):
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
    raise ValidationError(f"requests[{index}] must be a prompt string, a (model, messages) pair or a dict")


def run_batch(
    client: Completer,
    requests: Sequence[Any],
    max_concurrency: int,
    on_progress: Optional[Callable[[int, int], None]],
    return_exceptions: bool,
) -> List[Any]:
    """Run ``client.complete`` for each request with at most ``max_concurrency`` at once; results in input order.

    Each request is a prompt string (default model), a ``(model, messages)``
    pair, or a dict with ``model``, ``messages`` and any chat options.
    ``on_progress(done, total)`` is called after each one finishes. With
    ``return_exceptions=True`` a failed request's exception takes its place
    in the list; otherwise the first failure is raised once all are done.
    """
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise ValidationError("max_concurrency must be a positive integer")
    if not isinstance(requests, (list, tuple)):
        raise ValidationError(f"requests must be a list, not {type(requests).__name__}")
    items = [parse_batch_item(i, r) for i, r in enumerate(requests)]
    total = len(items)
    results: List[Any] = [None] * total
    if not total:
        return results
    done = [0]  # a list: the worker closure counts into it
    lock = threading.Lock()

    def one(index: int) -> None:
        model, messages, opts = items[index]
        try:
            results[index] = client.complete(model, messages, **opts)
        except Exception as exc:  # kept in place; raised later when asked
            results[index] = exc
        with lock:  # held across the callback so counts arrive in order, one at a time
            done[0] += 1
            if on_progress is not None:
                try:
                    on_progress(done[0], total)
                except Exception:
                    log.exception("the batch on_progress callback raised; ignored")

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(max_concurrency, total), thread_name_prefix="modelprov-batch") as pool:
        list(pool.map(one, range(total)))
    if not return_exceptions:
        for r in results:
            if isinstance(r, Exception):
                raise r
    return results
