"""What ``modelprov batch`` writes: one JSON result line per request (and the :class:`Job` it answers), and resuming.

A result line holds ``id`` (and ``custom_id`` when the input used that name),
``line``, then ``text``, ``model``, ``usage`` (with ``cost`` when known),
``finish_reason`` -- or ``error`` ``{type, message}`` (redacted). Live and
provider-batch runs write the same lines through :class:`ResultWriter`.
"""

import contextlib
import json
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Set, TextIO, Tuple, Union

from .._redact import redact
from ..exceptions import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from ..types import ModelResponse

__all__ = ["Id", "Job", "ResultWriter", "load_done", "result_record"]

Id = Union[str, int]


class Job(NamedTuple):
    """One input line ready to send: its id, 1-based line number, model, messages and ``complete`` keywords."""

    id: Id
    line: int
    model: Optional[str]
    messages: Any
    kwargs: Dict[str, Any]
    custom_id: bool = False


def _usage_dict(usage: Any) -> Dict[str, Any]:
    d: Dict[str, Any] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "total_tokens": usage.total_tokens}
    for name in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost"):
        value = getattr(usage, name, None)
        if value is not None:
            d[name] = value
    return d


def result_record(id: Id, line: Optional[int], result: "Union[ModelResponse, BaseException]", *, custom_id: bool = False) -> Dict[str, Any]:
    """The output object for one request: ``id``, ``line`` then the answer's fields, or ``error`` ``{type, message}`` (redacted)."""
    rec: Dict[str, Any] = {"id": id}
    if custom_id:
        rec["custom_id"] = id
    rec["line"] = line
    if isinstance(result, BaseException):
        rec["error"] = {"type": type(result).__name__, "message": redact(str(result) or type(result).__name__)}
        return rec
    rec["text"] = result.text
    rec["model"] = f"{result.provider}/{result.model}" if result.provider else result.model
    rec["usage"] = _usage_dict(result.usage)
    rec["finish_reason"] = result.finish_reason
    if result.tool_calls:
        rec["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in result.tool_calls]
    if result.refusal:
        rec["refusal"] = result.refusal
    return rec


class ResultWriter:
    """Writes result lines to a text stream, one JSON object a line, each flushed at once (thread safe)."""

    def __init__(self, stream: TextIO, before_write: Optional[Callable[[], None]] = None) -> None:
        self.stream = stream
        self.before_write = before_write
        self._lock = threading.Lock()

    def write(self, id: Id, line: Optional[int], result: "Union[ModelResponse, BaseException]", *, custom_id: bool = False) -> Dict[str, Any]:
        """Write the line for one finished request (a ``ModelResponse`` or the exception it raised); returns the record."""
        rec = result_record(id, line, result, custom_id=custom_id)
        text = json.dumps(rec, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self.before_write is not None:
                self.before_write()
            self.stream.write(text)
            self.stream.flush()
        return rec


# ----------------------------------------------------------------- resume
def load_done(path: str, retry_ids: Set[Id]) -> Set[Id]:
    """Ids with a successful line in the result file ``path`` (none if it does not exist).

    The file is rewritten (atomically) without a last line cut off mid-write
    and without error lines for ``retry_ids`` (they are about to be retried),
    so that each id ends up with one line.
    """
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}", hint="check the -o path") from None
    lines = data.split("\n")
    complete = lines[:-1]  # the text after the last newline is "" or a line cut off mid-write
    tail = lines[-1]
    changed = bool(tail)
    records: List[Tuple[str, Optional[Dict[str, Any]]]] = []
    texts = complete + ([tail] if tail else [])
    for n, text in enumerate(texts, 1):
        try:
            rec = json.loads(text)
        except ValueError:
            rec = None
        if tail and n == len(texts) and not isinstance(rec, dict):
            continue  # cut off by a crash: the request runs again
        records.append((text, rec if isinstance(rec, dict) else None))
    done: Set[Id] = set()
    kept: List[str] = []
    for text, rec in records:
        rid = rec.get("id") if rec is not None else None
        if rec is not None and isinstance(rid, (str, int)) and not isinstance(rid, bool):
            if "error" not in rec:
                done.add(rid)
            elif rid in retry_ids:
                changed = True
                continue
        kept.append(text)
    if changed:
        _replace(path, "".join(t + "\n" for t in kept))
    return done


def _replace(path: str, content: str) -> None:
    import shutil
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".modelprov-batch-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
