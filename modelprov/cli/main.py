"""The ``modelprov`` command line: argument parsing and the error boundary.

Commands live in :mod:`modelprov._cli_commands`; this module builds the
argparse tree and turns every failure into one friendly line on stderr with
the exit codes 0 ok, 1 provider error, 2 usage or config error,
130 interrupted. ``--debug`` shows the traceback.
"""

import argparse
import sys
from typing import Optional, Sequence

from .._version import __version__

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_PROVIDER, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for every command."""
    p = argparse.ArgumentParser(prog="modelprov", description="One interface over LLM providers.")
    p.add_argument("--version", action="version", version=f"modelprov {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs (secrets redacted)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser("chat", help="send a prompt and print the answer")
    chat.add_argument("prompt", nargs="?", help="the prompt (read from stdin when omitted or '-')")
    chat.add_argument("-m", "--model", help="provider/model or alias (default: MODELPROV_MODEL or config)")
    chat.add_argument("-s", "--system", help="system prompt")
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    chat.add_argument("-t", "--temperature", type=float)
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--fallback", action="append", default=[], metavar="MODEL", help="fallback model (repeatable)")
    chat.add_argument("--json", action="store_true", help="print the response as JSON")

    models = sub.add_parser("models", help="list a provider's models")
    models.add_argument("provider")
    models.add_argument("--json", action="store_true")

    providers = sub.add_parser("providers", help="list providers and whether they are configured")
    providers.add_argument("--json", action="store_true")

    keys = sub.add_parser("keys", help="manage API keys (keyring, else the config file)")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    kset = ksub.add_parser("set", help="store a key (read from stdin or prompted, never an argument)")
    kset.add_argument("name")
    kset.add_argument("--store", choices=("auto", "keyring", "file"), default="auto")
    kget = ksub.add_parser("get", help="show whether a key is set and where (masked)")
    kget.add_argument("name")
    kdel = ksub.add_parser("delete", help="remove a stored key")
    kdel.add_argument("name")
    ksub.add_parser("list", help="where each provider's key comes from")

    config = sub.add_parser("config", help="show or change configuration")
    csub = config.add_subparsers(dest="config_command", metavar="ACTION")
    csub.add_parser("path", help="print the config file path")
    cshow = csub.add_parser("show", help="effective settings and where they come from")
    cshow.add_argument("provider", nargs="?")
    cshow.add_argument("--json", action="store_true")
    cget = csub.add_parser("get", help="read KEY (default_model, aliases.NAME, provider.NAME.FIELD)")
    cget.add_argument("key")
    cset = csub.add_parser("set", help="write KEY VALUE to the config file")
    cset.add_argument("key")
    cset.add_argument("value")
    cunset = csub.add_parser("unset", help="remove KEY from the config file")
    cunset.add_argument("key")

    doctor = sub.add_parser("doctor", help="check the installation and configuration")
    doctor.add_argument("--json", action="store_true")

    batch = sub.add_parser("batch", help="run JSON-lines requests concurrently, print JSON-lines results")
    batch.add_argument("file", nargs="?", default="-", help="input file (default stdin); each line a prompt or a request object")
    batch.add_argument("-m", "--model", help="model for lines that name none")
    batch.add_argument("-c", "--concurrency", type=int, default=8)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse already printed usage
        return int(exc.code or 0) and EXIT_USAGE
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    from ..exceptions import ConfigurationError, ModelProvError, UnsupportedFeatureError, ValidationError
    from . import commands

    try:
        return int(commands.dispatch(args) or 0)
    except KeyboardInterrupt:
        print("modelprov: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
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


def _fail(exc: BaseException, debug: bool) -> None:
    from .._redact import redact

    if debug:
        import traceback

        print(redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))), file=sys.stderr)
    text = str(exc) if exc.__class__.__module__.startswith("modelprov") else f"{type(exc).__name__}: {exc}"
    print(f"modelprov: error: {redact(text)}", file=sys.stderr)

