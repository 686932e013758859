"""What every command shares: exit codes, output to stdout and stderr, stdin, "did you mean".

Commands write answers with :func:`out` (stdout, flushed, remembering whether
the cursor is mid-line so an interruption starts on a fresh line) and talk to
the user with :func:`note` / :func:`warn` (stderr, prefixed ``modelprov:``).
Nothing here imports requests or keyring: ``modelprov --help`` stays fast.
"""

import difflib
import json
import sys
from typing import Any, Iterable, Optional, TextIO

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PROVIDER",
    "EXIT_USAGE",
    "did_you_mean",
    "ensure_newline",
    "err_is_terminal",
    "is_terminal",
    "note",
    "out",
    "out_json",
    "read_piped_stdin",
    "stdin_is_piped",
    "warn",
]

#: Exit codes: success, a provider or network error, a usage or configuration error, interrupted (Ctrl-C).
EXIT_OK, EXIT_PROVIDER, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Cursor:
    """Whether the last text written to stdout left the cursor mid-line."""

    mid_line = False


_cursor = _Cursor()


def out(text: str = "", end: str = "\n") -> None:
    """Write ``text + end`` to stdout and flush it (answers, tables, JSON)."""
    data = text + end
    if not data:
        return
    sys.stdout.write(data)
    sys.stdout.flush()
    _cursor.mid_line = not data.endswith("\n")


def out_json(data: Any, *, indent: Optional[int] = 2) -> None:
    """Print ``data`` as JSON (UTF-8 kept, unknown objects as strings)."""
    out(json.dumps(data, indent=indent, ensure_ascii=False, default=str))


def ensure_newline() -> None:
    """End a partial line on stdout (a stream cut by Ctrl-C or an error) so the next message starts clean."""
    if _cursor.mid_line:
        try:
            sys.stdout.write("\n")
            sys.stdout.flush()
        except (OSError, ValueError):  # a closed pipe: nothing to tidy
            pass
        _cursor.mid_line = False


def _stderr_line(text: str) -> None:
    ensure_newline()
    from .._redact import redact

    sys.stderr.write(redact(text) + "\n")
    sys.stderr.flush()


def note(message: str) -> None:
    """A remark on stderr (``modelprov: note: ...``): a cut-off answer, a fallback taken, a dropped option."""
    _stderr_line(f"modelprov: note: {message}")


def warn(message: str) -> None:
    """A warning on stderr (``modelprov: warning: ...``)."""
    _stderr_line(f"modelprov: warning: {message}")


def is_terminal(stream: Optional[TextIO]) -> bool:
    """Whether ``stream`` is an interactive terminal (``False`` for ``None``, pipes, files and closed streams)."""
    if stream is None:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def err_is_terminal() -> bool:
    """Whether stderr is a terminal (progress bars and dimmed text only then)."""
    return is_terminal(sys.stderr)


def stdin_is_piped() -> bool:
    """Whether stdin carries data from a pipe or file (not a terminal, not closed)."""
    return sys.stdin is not None and not is_terminal(sys.stdin)


def read_piped_stdin() -> Optional[str]:
    """The text piped on stdin, or ``None`` when stdin is a terminal or absent. Never waits on a terminal."""
    if not stdin_is_piped():
        return None
    try:
        return sys.stdin.read()
    except (OSError, ValueError):
        return None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the closest of ``choices`` to ``word`` (``""`` when none is close)."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""
