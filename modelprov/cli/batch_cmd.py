"""``modelprov batch``: run a JSON-lines file of requests concurrently, never losing finished work.

Input: one request per physical line (1-based line numbers; blank lines are
skipped but counted): a prompt string, or an object with ``prompt`` or
``messages``, optional ``model``, ``id`` (or ``custom_id``), any chat option
:meth:`Client.complete <modelprov.Client.complete>` takes, and ``options``
(provider-specific settings passed through). Any other key, a line that is
not JSON, or an invalid value is that line's error; the batch goes on.

Output: one JSON line per request, written and flushed the moment it
finishes (so in completion order, not input order): ``id`` (given, else the
line number), ``line``, then ``text``, ``model``, ``usage``,
``finish_reason`` -- or ``error`` ``{type, message}``. With ``-o OUTPUT``
the run resumes: ids with a successful line in OUTPUT are skipped, ids whose
line there is an error are retried (their old error line is removed), and a
line cut off by a crash is dropped; new lines are appended.

Requests run on daemon worker threads, so Ctrl-C returns at once: finished
lines are already on disk, in-flight requests are abandoned, and the
command exits 130 after a summary.
"""

import argparse
import json
import os
import queue
import sys
import threading
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, TextIO, Tuple, Union

from ..exceptions import ConfigurationError, ValidationError
from .batch_output import Id, Job, ResultWriter, load_done, result_record
from .common import EXIT_OK, EXIT_PROVIDER, did_you_mean, stdin_is_piped, warn
from .progress import Progress

if TYPE_CHECKING:  # pragma: no cover
    from ..client import Client

__all__ = ["Job", "ResultWriter", "make_client", "register", "result_record", "run"]

_MAX_CONCURRENCY = 1000
_MAX_REPORTED = 20  # failures named on stderr; the rest are only in the output
_LINE_KEYS = ("prompt", "messages", "model", "id", "custom_id", "options")
_EXAMPLE = '{"id": "q1", "prompt": "Name a colour", "model": "openai/gpt-5.4-mini", "temperature": 0}'


def register(sub: Any) -> None:
    """Add the ``batch`` command."""
    p = sub.add_parser(
        "batch",
        help="run a JSON-lines file of requests concurrently; results written as they finish, resumable",
        description="Run one request per input line, several at once. Each result line is written (and flushed) "
        "as soon as its request finishes, so the output is in completion order; match results to inputs by "
        "'id'. With -o, running the same command again skips ids that already succeeded and retries failed ones.",
        epilog=f"Input line examples: \"Say hi\"  or  {_EXAMPLE}. Exit 0 when every line succeeded, 1 when any "
        "failed, 2 for a usage error, 130 when interrupted (finished lines are kept).",
    )
    p.add_argument("input", nargs="?", default="-", metavar="INPUT.jsonl",
                   help="JSON-lines input; '-' or omitted reads piped stdin")  # fmt: skip
    p.add_argument("-o", "--output", metavar="OUTPUT.jsonl",
                   help="append results to this file and resume from it (default: stdout, no resume)")  # fmt: skip
    p.add_argument("-m", "--model", metavar="MODEL", help="model for lines that name none, e.g. openai/gpt-5.4-mini")
    p.add_argument("-c", "--concurrency", default="8", metavar="N", help="requests in flight at once (default 8)")
    p.add_argument("--fallback", action="append", default=[], metavar="MODEL",
                   help="model to try when a request's model fails (repeatable, tried in order)")  # fmt: skip
    p.add_argument("--provider-batch", action="store_true",
                   help="submit the lines to the provider's batch API (OpenAI, Anthropic: about half the price, "
                        "done within 24 hours), wait, then write the same result lines")  # fmt: skip
    p.add_argument("--attach", metavar="PROVIDER:BATCH_ID",
                   help="with --provider-batch: wait for a batch submitted earlier from this input instead of submitting")  # fmt: skip
    p.add_argument("--poll-interval", default="30", metavar="SECONDS",
                   help="with --provider-batch: seconds between status checks (default 30)")  # fmt: skip
    p.set_defaults(run=run)


# ------------------------------------------------------------------ input
class _LineError(Exception):
    """A line that cannot be sent; ``id`` is its id when the line got far enough to have one."""

    def __init__(self, message: str, id: Optional[Id] = None) -> None:
        super().__init__(message)
        self.id = id


def _chat_options() -> Tuple[str, ...]:
    """The keyword options ``Client.complete`` takes (system, temperature, ..., timeout)."""
    import inspect

    from ..client import Client

    params = inspect.signature(Client.complete).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _line_id(lineno: int, item: Dict[str, Any]) -> Tuple[Id, bool]:
    if "id" in item and "custom_id" in item and item["id"] != item["custom_id"]:
        raise _LineError(f"line {lineno}: give 'id' or 'custom_id', not both")
    key = "id" if "id" in item else "custom_id" if "custom_id" in item else None
    if key is None:
        return lineno, False
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise _LineError(f"line {lineno}: '{key}' must be a non-empty string or an integer, not {json.dumps(value)}")
    return value, key == "custom_id"


def parse_line(lineno: int, text: str, chat_options: Iterable[str]) -> Job:
    """The :class:`Job` for input line ``lineno``; raises ``_LineError`` (message starting ``line N:``) when it cannot be sent."""
    try:
        item = json.loads(text)
    except ValueError as exc:
        raise _LineError(f"line {lineno} is not JSON ({exc.args[0].split(':')[0]}); write a prompt as \"a JSON string\" or an object") from None
    if isinstance(item, str):
        item = {"prompt": item}
    if not isinstance(item, dict):
        raise _LineError(f"line {lineno}: expected a prompt string or an object with 'prompt' or 'messages', not {type(item).__name__}")
    options = tuple(chat_options)
    job_id, custom = _line_id(lineno, item)
    allowed = _LINE_KEYS + options
    for key in item:
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            extra = f"; {hint}" if hint else "; provider-specific settings go in \"options\": {...}"
            raise _LineError(f"line {lineno}: unknown key {key!r}{extra}", job_id)
    if ("prompt" in item) == ("messages" in item):
        raise _LineError(f"line {lineno}: give either 'prompt' or 'messages'" + ("" if "prompt" in item else " (neither is there)"), job_id)
    messages = item.get("prompt", item.get("messages"))
    if "prompt" in item and (not isinstance(messages, str) or not messages.strip()):
        raise _LineError(f"line {lineno}: 'prompt' must be a non-empty string", job_id)
    model = item.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise _LineError(f"line {lineno}: 'model' must be a 'provider/model' string", job_id)
    kwargs = {k: item[k] for k in options if item.get(k) is not None}
    extra_opts = item.get("options")
    if extra_opts is not None:
        if not isinstance(extra_opts, dict):
            raise _LineError(f"line {lineno}: 'options' must be an object of provider-specific settings", job_id)
        for key, value in extra_opts.items():
            if key in allowed or key == "stream":
                where = "is not allowed (batch answers are not streamed)" if key == "stream" else "belongs at the top level of the line"
                raise _LineError(f"line {lineno}: options.{key} {where}", job_id)
            kwargs[key] = value
    return Job(job_id, lineno, model, messages, kwargs, custom)


def _read_lines(source: str) -> List[Tuple[int, Optional[str]]]:
    """``(line number, text)`` for each non-blank line (``None`` text: not valid UTF-8)."""
    if source == "-":
        if not stdin_is_piped():
            raise ValidationError("no input: stdin is a terminal", hint="give a file (modelprov batch INPUT.jsonl) or pipe JSON lines in")
        buffer = getattr(sys.stdin, "buffer", None)
        data: Union[bytes, str] = buffer.read() if buffer is not None else sys.stdin.read()
    else:
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ValidationError(f"cannot read {source}: {exc.strerror or exc}", hint="check the INPUT.jsonl path") from None
    out: List[Tuple[int, Optional[str]]] = []
    chunks: List[Any] = data.split(b"\n") if isinstance(data, bytes) else data.split("\n")
    for n, chunk in enumerate(chunks, 1):
        text = _decode(chunk)
        if n == 1 and text is not None:
            text = text.lstrip("\ufeff")
        if text is None or text.strip():
            out.append((n, text))
    return out


def _decode(chunk: Union[bytes, str]) -> Optional[str]:
    try:
        return chunk.decode("utf-8") if isinstance(chunk, bytes) else chunk
    except UnicodeDecodeError:
        return None


# ----------------------------------------------------------------- running
def make_client(args: argparse.Namespace) -> "Client":
    """The :class:`~modelprov.Client` the batch runs on (``--fallback`` models as its fallbacks)."""
    from ..client import Client

    return Client(fallbacks=list(args.fallback or ()))


def _concurrency(value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValidationError(f"--concurrency must be a whole number of 1 or more, not {text or 'empty'}", hint="e.g. -c 8")
    if int(text) > _MAX_CONCURRENCY:
        raise ValidationError(f"--concurrency must be at most {_MAX_CONCURRENCY}, not {text}", hint="each request in flight takes a thread")
    return int(text)


_Outcome = Tuple[Job, Any, bool]  # (job, ModelResponse or exception, fatal: re-raise in the main thread)


def run_jobs(client: "Client", jobs: List[Job], concurrency: int, on_result: Callable[[Job, Any], None], tick: Callable[[], None]) -> None:
    """Run ``jobs`` on up to ``concurrency`` daemon threads, calling ``on_result(job, response_or_exception)``
    in this thread as each finishes (``tick()`` about twice a second while waiting).

    On Ctrl-C (or a ``KeyboardInterrupt`` inside a request) no further job
    starts, results already finished are still handed to ``on_result``, the
    in-flight ones are abandoned (daemon threads never hold up the exit) and
    the exception propagates.
    """
    tasks: "queue.Queue[Job]" = queue.Queue()
    results: "queue.Queue[_Outcome]" = queue.Queue()
    stop = threading.Event()
    for job in jobs:
        tasks.put(job)

    def worker() -> None:
        while not stop.is_set():
            try:
                job = tasks.get_nowait()
            except queue.Empty:
                return
            try:
                outcome: _Outcome = (job, client.complete(job.model, job.messages, **job.kwargs), False)
            except Exception as exc:  # the line's error; the batch goes on
                outcome = (job, exc, False)
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop the batch from the main thread
                stop.set()
                results.put((job, exc, True))
                return
            results.put(outcome)

    for n in range(min(concurrency, len(jobs))):
        threading.Thread(target=worker, name=f"modelprov-batch-{n}", daemon=True).start()
    remaining = len(jobs)
    got: Optional[_Outcome] = None  # taken from the queue, not yet fully handed over
    try:
        while remaining:
            try:
                got = results.get(timeout=0.5)
            except queue.Empty:
                tick()
                continue
            job, result, fatal = got
            if fatal:
                got = None
                raise result
            remaining -= 1
            on_result(job, result)
            got = None
    except BaseException:
        stop.set()
        if got is not None:  # Ctrl-C landed while handing it over: rather a duplicate line than a lost one
            on_result(got[0], got[1])
        while True:  # keep what finished before the interruption
            try:
                job, result, fatal = results.get_nowait()
            except queue.Empty:
                break
            if not fatal:
                on_result(job, result)
        raise
    finally:
        stop.set()


def _open_output(path: Optional[str]) -> Tuple[TextIO, Optional[IO[str]]]:
    """The stream results go to (``load_done`` left an existing file ending in a newline)."""
    if path is None:
        return sys.stdout, None
    try:
        f = open(path, "a", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise ValidationError(f"cannot write {path}: {exc.strerror or exc}", hint="check the -o path") from None
    return f, f


def run(args: argparse.Namespace) -> int:
    """Run ``batch``: exit 0 when every line succeeded, 1 when any failed (Ctrl-C: ``KeyboardInterrupt`` after the summary)."""
    concurrency = _concurrency(args.concurrency)
    output_path = None if args.output in (None, "-") else args.output
    if output_path and args.input != "-" and os.path.abspath(args.input) == os.path.abspath(output_path):
        raise ValidationError("the output file is the input file", hint="give -o another path")
    lines = _read_lines(args.input)
    client = make_client(args)
    for model in [args.model] + list(args.fallback or ()):
        if model is not None:
            client.resolve(model)  # an unknown provider or alias is a usage error, before anything is sent
    options = _chat_options()
    jobs: List[Job] = []
    bad: List[Tuple[Id, int, str]] = []
    seen: Dict[Id, int] = {}  # id -> the line that has it (a line giving no id has its line number)
    for lineno, text in lines:
        try:
            if text is None:
                raise _LineError(f"line {lineno} is not valid UTF-8 text")
            job = parse_line(lineno, text, options)
            if job.id in seen:
                raise _LineError(_duplicate(lineno, job.id, seen[job.id]), job.id)
            seen[job.id] = lineno
            jobs.append(job if job.model or not args.model else job._replace(model=args.model))
        except _LineError as exc:
            bad_id = exc.id if exc.id is not None else lineno
            seen.setdefault(bad_id, lineno)  # a bad line keeps its id: a later line may not take it (resume keys on ids)
            bad.append((bad_id, lineno, str(exc)))
    lacking = [j.line for j in jobs if j.model is None]
    if lacking:
        _check_default_model(client, lacking)
    done = load_done(output_path, {j.id for j in jobs} | {b[0] for b in bad}) if output_path else set()
    todo = [j for j in jobs if j.id not in done]
    bad = [b for b in bad if b[0] not in done]
    skipped = len(lines) - len(todo) - len(bad)
    stream, owned = _open_output(output_path)
    try:
        if args.provider_batch or args.attach:
            from .batch_provider import run_provider_batches

            return run_provider_batches(client, todo, bad, ResultWriter(stream), args, skipped)
        return _execute(client, todo, bad, concurrency, stream, output_path, skipped)
    finally:
        if owned is not None:
            owned.close()
        client.close()


def _duplicate(lineno: int, id: Id, other: int) -> str:
    """The error of line ``lineno`` whose ``id`` line ``other`` already has."""
    if id == other:  # most likely the other line gives no id, so its id is its line number
        return (f"line {lineno}: id {json.dumps(id)} is also the id of line {other} (a line without an id is known by its "
                "line number); ids must be unique: give this line another id, or give every line an id")
    return f"line {lineno}: id {json.dumps(id)} is also on line {other}; ids must be unique"


def _check_default_model(client: "Client", lines: List[int]) -> None:
    """Lines without a model need a default: refuse up front (a usage error) when there is none."""
    try:
        client.resolve(None)
    except ConfigurationError:
        where = f"line {lines[0]}" + (f" and {len(lines) - 1} more" if len(lines) > 1 else "")
        raise ConfigurationError(
            f"{where} {'name' if len(lines) > 1 else 'names'} no model, and neither -m nor a default model is set",
            hint='pass -m provider/model, give each line a "model", or run: modelprov config set default_model provider/model',
        ) from None


def _execute(client: "Client", todo: List[Job], bad: List[Tuple[Id, int, str]], concurrency: int, stream: TextIO,
             output_path: Optional[str], skipped: int) -> int:  # fmt: skip
    progress = Progress(len(todo) + len(bad), stream=sys.stderr, label="batch")
    writer = ResultWriter(stream, before_write=progress.clear if progress.enabled and stream is sys.stdout else None)
    count = {"ok": 0, "failed": 0}

    def report(line: int, id: Id, message: str) -> None:
        count["failed"] += 1
        if count["failed"] <= _MAX_REPORTED + 1:
            progress.clear()
            where = "" if message.startswith(f"line {line}") else f"line {line} (id {json.dumps(id)}): "
            warn(where + message if count["failed"] <= _MAX_REPORTED else "more lines failed; their errors are in the output")

    def on_result(job: Job, result: Any) -> None:
        writer.write(job.id, job.line, result, custom_id=job.custom_id)
        ok = not isinstance(result, BaseException)
        if ok:
            count["ok"] += 1
        else:
            report(job.line, job.id, str(result))
        progress.advance(ok)

    def summary(tail: str = "") -> None:
        progress.clear()
        skip = f", {skipped} skipped (already in {output_path})" if skipped else ""
        sys.stderr.write(f"modelprov: batch: {count['ok']} done, {count['failed']} failed{skip}{tail}\n")
        sys.stderr.flush()

    for id, line, message in bad:
        writer.write(id, line, ValidationError(message))
        report(line, id, message)
    progress.start(already_done=len(bad), already_failed=len(bad))
    try:
        run_jobs(client, todo, concurrency, on_result, progress.update)
    except KeyboardInterrupt:
        not_run = len(todo) + len(bad) - count["ok"] - count["failed"]
        summary(f", {not_run} not finished")
        if output_path and not_run:
            sys.stderr.write(f"modelprov: batch: run the same command again to resume (finished lines are in {output_path})\n")
        raise
    summary()
    return EXIT_PROVIDER if count["failed"] else EXIT_OK
