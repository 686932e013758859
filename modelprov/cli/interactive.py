"""The interactive ``modelprov chat`` session: ``modelprov chat`` with no prompt on a terminal.

Each line is one turn of one conversation (the history is kept and sent,
each turn logged under one conversation id). ``/exit`` (or ``/quit``) and
Ctrl-D end the session; ``/reset`` starts a new conversation; ``/help``
lists these. Ctrl-C while an answer streams stops that answer (the turn is
not kept in the history; the log marks it interrupted) and the session goes
on; Ctrl-C at the prompt clears the line. The ``> `` marker is shown only
when stdout is a terminal, so a redirected transcript holds just the answers.
"""

import sys
from typing import Any, Callable, List, Optional, Protocol

from .common import EXIT_OK, ensure_newline, is_terminal, note

__all__ = ["COMMANDS", "Session", "run_session"]


class Session(Protocol):
    """What the loop drives (:class:`modelprov.cli.chat.ChatSession`)."""

    model: str
    cid: Optional[str]
    history: List[Any]

    def turn(self, text: str) -> Any:
        """Send one user message, print the answer, log the turn."""

    def reset(self) -> None:
        """Start a new conversation."""

#: The session's own commands (a line that is exactly one of these is not sent).
COMMANDS = {
    "/exit": "end the session (also /quit, or Ctrl-D)",
    "/reset": "forget the history and start a new conversation",
    "/help": "show these commands",
}


def _error(exc: BaseException) -> None:
    from .._redact import redact

    ensure_newline()
    sys.stderr.write(f"modelprov: error: {redact(str(exc))}\n")
    sys.stderr.flush()


def run_session(session: Session, read_line: Optional[Callable[[str], str]] = None) -> int:
    """Run the interactive loop over ``session`` until ``/exit`` or end of input; returns the exit code.

    ``read_line`` reads one line after showing a marker (default :func:`input`,
    with line editing where the ``readline`` module exists).
    """
    from ..exceptions import ModelProvError

    if read_line is None:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:  # pragma: no cover - Windows without pyreadline
            pass
        read_line = input
    marker = "> " if is_terminal(sys.stdout) else ""
    where = f" (conversation {session.cid}, {len(session.history) // 2} earlier turns)" if session.cid else ""
    note(f"chatting with {session.model}{where}; /exit or Ctrl-D ends, /reset starts over, Ctrl-C stops an answer")
    while True:
        try:
            line = read_line(marker)
        except EOFError:  # Ctrl-D
            if marker:
                sys.stdout.write("\n")
                sys.stdout.flush()
            return EXIT_OK
        except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh line
            sys.stdout.write("\n")
            sys.stdout.flush()
            continue
        command = line.strip().lower()
        if not command:
            continue
        if command in ("/exit", "/quit"):
            return EXIT_OK
        if command == "/reset":
            session.reset()
            note("new conversation: the history is cleared")
            continue
        if command == "/help":
            for name, what in COMMANDS.items():
                note(f"{name}: {what}")
            continue
        try:
            session.turn(line)
        except KeyboardInterrupt:
            ensure_newline()
            note("answer stopped (not kept in the history); the session goes on")
        except ModelProvError as exc:
            _error(exc)
