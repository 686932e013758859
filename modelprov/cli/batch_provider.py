"""``modelprov batch --provider-batch``: send the lines to the provider's batch API instead of one call each.

The lines are grouped by ``provider/model`` and each group is submitted as
one batch (OpenAI's Batch API, Anthropic's Message Batches), under custom ids
made from the line numbers (``line-7``), so the input file alone maps results
back to their lines: ``--attach PROVIDER:BATCH_ID`` re-attaches to a batch
submitted earlier (after Ctrl-C, or from another machine) instead of
submitting again. The command waits with progress on stderr, then writes the
same result lines as a live batch through
:class:`~modelprov.cli.batch_output.ResultWriter`.
"""

import sys
from typing import TYPE_CHECKING, Any, Dict, List, TextIO, Tuple

from ..exceptions import ModelProvError, ResponseError, ValidationError
from .batch_output import Id, Job, ResultWriter
from .common import EXIT_OK, EXIT_PROVIDER, err_is_terminal, note, warn

if TYPE_CHECKING:  # pragma: no cover
    from ..batch_jobs import BatchJob, BatchStatus
    from ..client import Client

__all__ = ["custom_id", "parse_attach", "run_provider_batches"]


def custom_id(line: int) -> str:
    """The custom id a line is submitted under (valid for every provider's id rules)."""
    return f"line-{line}"


def parse_attach(value: str) -> Tuple[str, str]:
    """``PROVIDER:BATCH_ID`` -> ``(provider, batch_id)``; a clear usage error otherwise."""
    provider, sep, batch_id = (value or "").partition(":")
    if not sep or not provider.strip() or not batch_id.strip():
        raise ValidationError(f"--attach {value!r} is not PROVIDER:BATCH_ID", hint="e.g. --attach openai:batch_abc123 (printed when the batch was submitted)")
    return provider.strip(), batch_id.strip()


def _groups(client: "Client", jobs: List[Job]) -> Dict[Tuple[str, str], List[Job]]:
    groups: Dict[Tuple[str, str], List[Job]] = {}
    for job in jobs:
        groups.setdefault(client.resolve(job.model), []).append(job)
    return groups


class _Progress:
    """One status line per look at a batch: rewritten in place on a terminal, printed on change otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = err_is_terminal()
        self.last = ""

    def __call__(self, status: "BatchStatus") -> None:
        text = (f"modelprov: batch {status.id}: {status.state}, {status.succeeded} succeeded, {status.failed} failed, "
                f"{status.pending} pending of {status.total}")  # fmt: skip
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
        elif text != self.last:
            self.stream.write(text + "\n")
            self.stream.flush()
        self.last = text

    def clear(self) -> None:
        if self.tty and self.last:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def _submit(client: "Client", groups: Dict[Tuple[str, str], List[Job]], resume_hint: str) -> List[Tuple["BatchJob", List[Job]]]:
    submitted = []
    for (provider, model), jobs in groups.items():
        items = [dict(job.kwargs, messages=job.messages, custom_id=custom_id(job.line)) for job in jobs]
        job = client.submit_batch(f"{provider}/{model}", items)
        note(f"submitted {len(items)} request{'s' if len(items) != 1 else ''} to {provider} as batch {job.id}; "
             f"if interrupted, re-attach with: {resume_hint} --attach {provider}:{job.id}")  # fmt: skip
        submitted.append((job, jobs))
    return submitted


def run_provider_batches(client: "Client", todo: List[Job], bad: List[Tuple[Id, int, str]], writer: ResultWriter,
                         args: Any, skipped: int) -> int:  # fmt: skip
    """Submit (or re-attach to) provider batches for ``todo``, wait, write every line; the exit code."""
    poll = _poll_interval(getattr(args, "poll_interval", 30.0))
    count = {"ok": 0, "failed": 0}
    for id, line, message in bad:
        writer.write(id, line, ValidationError(message))
        warn(message)
        count["failed"] += 1
    resume_hint = f"modelprov batch {args.input}" + (f" -o {args.output}" if args.output else "")
    if args.attach:
        provider, batch_id = parse_attach(args.attach)
        batches = [(client.batch_job(provider, batch_id), list(todo))]
    else:
        batches = _submit(client, _groups(client, todo), resume_hint) if todo else []
    progress = _Progress(sys.stderr)
    try:
        for job, jobs in batches:
            status = job.wait(poll_interval=poll, on_progress=progress)
            progress.clear()
            if status.state != "completed":
                note(f"batch {job.id} ended {status.state}" + (f": {status.message}" if status.message else ""))
            _write_results(job, jobs, writer, count)
    except KeyboardInterrupt:
        progress.clear()
        waiting = ", ".join(f"{job.provider}:{job.id}" for job, _ in batches)
        if waiting:
            sys.stderr.write(f"modelprov: batch: the provider keeps running {waiting}; re-attach with: {resume_hint} --attach PROVIDER:ID\n")
        raise
    skip = f", {skipped} skipped (already in {args.output})" if skipped else ""
    sys.stderr.write(f"modelprov: batch: {count['ok']} done, {count['failed']} failed{skip}\n")
    return EXIT_PROVIDER if count["failed"] else EXIT_OK


def _write_results(job: "BatchJob", jobs: List[Job], writer: ResultWriter, count: Dict[str, int]) -> None:
    by_cid = {custom_id(j.line): j for j in jobs}
    for cid, result in job.results():
        line_job = by_cid.pop(cid, None)
        if line_job is None:
            continue  # a line not asked for this time (already done, or not in this input)
        writer.write(line_job.id, line_job.line, result, custom_id=line_job.custom_id)
        count["failed" if isinstance(result, BaseException) else "ok"] += 1
    for missing in sorted(by_cid.values(), key=lambda j: j.line):
        error: ModelProvError = ResponseError(f"batch {job.id} returned no result for line {missing.line} ({custom_id(missing.line)})")
        writer.write(missing.id, missing.line, error, custom_id=missing.custom_id)
        count["failed"] += 1


def _poll_interval(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise ValidationError(f"--poll-interval must be a number of seconds greater than 0, not {value!r}")
    return seconds

