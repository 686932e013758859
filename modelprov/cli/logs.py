"""``modelprov logs``: list the conversation log (newest first), and ``logs path|status|on|off``.

The log itself is :class:`modelprov.conversation_log.ConversationLog` (SQLite
at ``$MODELPROV_LOGS_PATH`` or the user data directory). ``logs off`` leaves
a ``logs-off`` marker next to the file; ``MODELPROV_LOGS=off`` (or ``on``)
overrides it for one environment; ``chat --no-log`` skips one chat.
"""

import argparse
import os
from typing import TYPE_CHECKING, Any, List

from .common import EXIT_OK, note, out, out_json, warn

if TYPE_CHECKING:  # pragma: no cover
    from ..conversation_log import ConversationLog, LogEntry

__all__ = ["register", "run"]

_EXAMPLES = """examples:
  modelprov logs                   the 3 newest chats
  modelprov logs -n 0 -q invoice   every chat mentioning "invoice"
  modelprov logs -c                the conversation `chat -c` would continue
  modelprov logs --json --cid ID   one conversation as JSON
  modelprov logs off               stop logging (`modelprov logs on` to resume)
"""


def register(sub: Any) -> None:
    """Add the ``logs`` command and its actions."""
    p = sub.add_parser(
        "logs", help="list logged chats, newest first (also: logs path|status|on|off)", epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="List the chats the command line logged, newest first.\n"
        "Every `modelprov chat` is logged to a local SQLite file unless --no-log or `modelprov logs off`.",
    )  # fmt: skip
    p.add_argument("-n", "--count", type=int, default=3, metavar="N", help="how many entries to show (default 3; 0 shows all)")
    p.add_argument("-q", "--query", metavar="TEXT", help="only entries whose prompt, system prompt or answer contains TEXT")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--cid", metavar="ID", help="only the conversation with this id (or a unique prefix of it)")
    which.add_argument("-c", "--current", action="store_true", help="only the most recent conversation")
    p.add_argument("--json", action="store_true", help="print the entries as a JSON list")
    actions = p.add_subparsers(dest="logs_command", metavar="[ACTION]")
    actions.add_parser("path", help="print the path of the log file")
    actions.add_parser("status", help="say whether logging is on, where the file is and how much it holds")
    actions.add_parser("on", help="log chats again")
    actions.add_parser("off", help="stop logging chats (the file is kept)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``logs`` or one of its actions."""
    from ..conversation_log import ConversationLog

    log = ConversationLog()
    action = getattr(args, "logs_command", None)
    if action == "path":
        out(log.path)
        return EXIT_OK
    if action == "status":
        return _status(log)
    if action in ("on", "off"):
        log.set_enabled(action == "on")
        if log.enabled() != (action == "on"):
            warn(f"MODELPROV_LOGS={os.environ.get('MODELPROV_LOGS')} in the environment overrides this")
        out(f"logging is {action}" + (f": chats are written to {log.path}" if action == "on" else " (the log file is kept)"))
        return EXIT_OK
    if args.count < 0:
        from ..exceptions import ValidationError

        raise ValidationError(f"-n must be 0 (all) or more, not {args.count}")
    cid = args.cid
    if args.current:
        cid = log.latest_cid()
        if cid is None:
            note(f"no chats are logged yet (the log is {log.path})")
            return EXIT_OK if not args.json else _empty_json()
    entries = log.entries(n=args.count, query=args.query, cid=cid)
    if args.json:
        out_json([e.to_dict() for e in entries])
        return EXIT_OK
    if not entries:
        what = "no logged chats match" if args.query else "no chats are logged yet"
        note(f"{what} (the log is {log.path}{'; logging is off' if not log.enabled() else ''})")
        return EXIT_OK
    for i, entry in enumerate(entries):
        if i:
            out("")
        out(_format(entry))
    return EXIT_OK


def _empty_json() -> int:
    out_json([])
    return EXIT_OK


def _status(log: "ConversationLog") -> int:
    env = os.environ.get("MODELPROV_LOGS")
    on = log.enabled()
    why = f" (MODELPROV_LOGS={env})" if env else ("" if on else f" ({log.off_marker} exists)")
    out(f"logging: {'on' if on else 'off'}{why}")
    out(f"file: {log.path}")
    if not log.exists():
        out("entries: 0 (the file is created by the first logged chat)")
        return EXIT_OK
    stats = log.stats()
    size = os.path.getsize(log.path)
    out(f"entries: {stats['responses']} in {stats['conversations']} conversations, {size / 1024:.1f} KiB, schema {log.schema_version()}")
    return EXIT_OK


def _usage_line(entry: "LogEntry") -> str:
    bits: List[str] = []
    if entry.finish_reason:
        bits.append(entry.finish_reason)
    u = entry.usage
    if u.get("input_tokens") is not None or u.get("output_tokens") is not None:
        bits.append(f"{u.get('input_tokens', 0)} in / {u.get('output_tokens', 0)} out tokens")
    if entry.cost is not None:
        bits.append(f"${entry.cost:.6f}")
    if entry.latency_s is not None:
        bits.append(f"{entry.latency_s:.2f} s")
    return " · ".join(bits)


def _format(entry: "LogEntry") -> str:
    """One entry as readable Markdown-like text."""
    model = entry.model or "?"
    answered = f"{entry.provider}/{entry.response_model}" if entry.provider and entry.response_model else None
    if answered and answered != model:
        model += f" (answered by {answered})"
    lines = [f"# {entry.created_at} · {model} · conversation {entry.conversation_id}", ""]
    if entry.system:
        lines += ["## System", "", entry.system, ""]
    lines += ["## Prompt", "", entry.prompt or "", ""]
    attachments = [p for m in entry.messages if isinstance(m.get("content"), list) for p in m["content"] if p.get("type") == "image"]
    for part in attachments:
        lines += [f"(image: {part.get('url') or part.get('path') or 'inline data'})", ""]
    if entry.reasoning:
        lines += ["## Reasoning", "", entry.reasoning, ""]
    usage = _usage_line(entry)
    if entry.response is not None or entry.error is None:
        lines += ["## Answer" + (f" ({usage})" if usage else ""), "", entry.response or "", ""]
    if entry.error:
        lines += ["## Error", "", entry.error, ""]
    return "\n".join(lines).rstrip("\n")
