"""The ``modelprov`` command line: the parser, the ``modelprov PROMPT`` shortcut and the error boundary.

Each command group lives in its own module of this package (``chat``,
``logs``, ``catalog`` for models/providers/embed, ``keys``, ``config_cmd``,
``doctor``, ``batch_cmd``); each exposes ``register(subparsers)``, which adds
its parser and sets ``run`` (a function of the parsed arguments returning
the exit code). Modules import the library inside ``run`` only, so
``modelprov --help`` loads neither requests nor keyring.

This module turns every failure into one line on stderr (what failed and
the fix; a traceback only with ``--debug``, which is accepted anywhere on
the line), shows library warnings once as ``modelprov: warning: ...``, and
returns the exit codes 0 ok, 1 provider error, 2 usage or configuration
error, 130 interrupted.
"""

import argparse
import contextlib
import importlib
import io
import sys
import warnings
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Sequence, Set, TextIO, Tuple, Type, Union

from .._version import __version__
from .common import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROVIDER, EXIT_USAGE, did_you_mean, ensure_newline, read_piped_stdin, stdin_is_piped

if TYPE_CHECKING:  # pragma: no cover
    import logging

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: The modules of this package that register commands, in the order ``--help`` lists them.
COMMAND_MODULES = ("chat", "logs", "catalog", "embed", "keys", "config_cmd", "doctor", "batch_cmd")

_GLOBAL_FLAGS = ("-h", "--help", "--version")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for every command."""
    p = argparse.ArgumentParser(
        prog="modelprov",
        description="One interface over LLM providers. `modelprov PROMPT` is short for `modelprov chat PROMPT`.",
        epilog="Run `modelprov COMMAND --help` for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"modelprov {__version__}", help="print the version and exit")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs, secrets redacted (accepted anywhere)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f".{name}", __package__).register(sub)
    return p


def _commands(parser: argparse.ArgumentParser) -> List[str]:
    return list(_subparsers(parser))


def _split_debug(argv: List[str]) -> Tuple[List[str], bool]:
    """``argv`` without ``--debug`` (before any ``--``), and whether it was there."""
    end = argv.index("--") if "--" in argv else len(argv)
    head = [a for a in argv[:end] if a != "--debug"]
    return head + argv[end:], len(head) != end


class _NotACommand(Exception):
    """A lone word that looks like a mistyped command, not a prompt."""


def _shortcut(argv: List[str], commands: Sequence[str]) -> List[str]:
    """``modelprov PROMPT`` / ``modelprov -m MODEL PROMPT`` -> ``modelprov chat ...``."""
    if not argv or argv[0] in commands or argv[0] in _GLOBAL_FLAGS:
        return argv
    first = argv[0]
    if len(argv) == 1 and first.isidentifier() and did_you_mean(first, commands) and not stdin_is_piped():
        raise _NotACommand(first)
    return ["chat"] + argv


def _parse(parser: argparse.ArgumentParser, argv: List[str]) -> argparse.Namespace:
    """Parse ``argv``; words left over after a chat prompt (``modelprov Say hello``) become extra prompt words,
    which ``chat`` refuses with "quote it"; other leftovers are a usage error of the command they follow."""
    args, extras = parser.parse_known_args(argv)
    if not extras:
        return args
    if args.command == "chat" and not any(word.startswith("-") for word in extras):
        args.prompt_extra = list(getattr(args, "prompt_extra", None) or []) + extras
        return args
    command = _subparsers(parser).get(args.command or "", parser)
    command.error(f"unrecognized arguments: {' '.join(extras)}")
    return args  # pragma: no cover - error() exits


def _subparsers(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}  # pragma: no cover - the parser always has subcommands


# ----------------------------------------------------------------- diagnostics
def _warn_once(text: str, seen: Set[str]) -> None:
    from .common import warn

    if text not in seen:
        seen.add(text)
        warn(text)


def _handler(debug: bool, seen: Set[str]) -> "logging.Handler":
    """The log handler for the command: redacted debug records, or each distinct warning once."""
    import logging

    from .._redact import redact

    class OnceHandler(logging.Handler):
        """Shows the library's warnings as ``modelprov: warning: ...``, each distinct message once."""

        def emit(self, record: logging.LogRecord) -> None:
            try:
                text = record.getMessage()
            except Exception:  # a malformed log call must not break the command
                return
            _warn_once(text, seen)

    class RedactingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    if not debug:
        return OnceHandler(logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    return handler


@contextlib.contextmanager
def _diagnostics(debug: bool) -> Iterator[None]:
    """Route Python warnings and the library's log records to stderr for the command's lifetime."""
    import logging

    seen: Set[str] = set()
    handler = _handler(debug, seen)
    target = logging.getLogger() if debug else logging.getLogger("modelprov")
    old_level = target.level
    if debug:
        target.setLevel(logging.DEBUG)
    target.addHandler(handler)

    def show(message: Union[Warning, str], category: Type[Warning], filename: str, lineno: int,
             file: Optional[TextIO] = None, line: Optional[str] = None) -> None:
        _warn_once(str(message), seen)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        target.removeHandler(handler)
        target.setLevel(old_level)


# ------------------------------------------------------------------ the boundary
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args_list, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        args_list = _shortcut(args_list, _commands(parser))
    except _NotACommand as exc:
        hint = did_you_mean(str(exc), _commands(parser))
        print(f"modelprov: error: unknown command {str(exc)!r}; {hint} (to send it as a prompt: modelprov chat {exc})", file=sys.stderr)
        return EXIT_USAGE
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args = _parse(parser, args_list)
    except SystemExit as exc:  # argparse printed help (code 0) or usage and an error (code 2)
        from .._redact import redact

        sys.stderr.write(redact(errors.getvalue()))  # it echoes bad arguments, a mistyped key among them
        return EXIT_OK if not exc.code else EXIT_USAGE
    sys.stderr.write(errors.getvalue())
    args.debug = debug or bool(getattr(args, "debug", False))
    if not args.command:
        piped = read_piped_stdin()
        if piped and piped.strip():  # `echo question | modelprov`: a chat with the piped text
            return main(["chat"] + (["--debug"] if args.debug else []) + ["--", piped])
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    with _diagnostics(args.debug):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..exceptions import ConfigurationError, ModelProvError, UnsupportedFeatureError, ValidationError

    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        ensure_newline()
        print("modelprov: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except (ConfigurationError, ValidationError, UnsupportedFeatureError) as exc:
        _fail(exc, args.debug)
        return EXIT_USAGE
    except ModelProvError as exc:
        _fail(exc, args.debug)
        return EXIT_PROVIDER
    except Exception as exc:  # the error boundary: one line, no traceback
        _fail(exc, args.debug)
        return EXIT_PROVIDER


def _silence_stdout() -> None:
    """After the reader of a pipe went away, send the rest of stdout nowhere (no error at exit)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests capture it)
        pass


def _fail(exc: BaseException, debug: bool) -> None:
    from .._redact import redact

    ensure_newline()
    if debug:
        import traceback

        print(redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))), file=sys.stderr)
    text = str(exc) if exc.__class__.__module__.startswith("modelprov") else f"{type(exc).__name__}: {exc}"
    print(f"modelprov: error: {redact(text)}", file=sys.stderr)
