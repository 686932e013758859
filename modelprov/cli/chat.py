"""``modelprov chat`` (transitional wrapper over the old implementation)."""

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``chat`` command."""
    chat = sub.add_parser("chat", help="send a prompt and print the answer")
    chat.add_argument("prompt", nargs="?", help="the prompt (read from stdin when omitted or '-')")
    chat.add_argument("-m", "--model", help="provider/model or alias (default: MODELPROV_MODEL or config)")
    chat.add_argument("-s", "--system", help="system prompt")
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    chat.add_argument("-t", "--temperature", type=float)
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--fallback", action="append", default=[], metavar="MODEL", help="fallback model (repeatable)")
    chat.add_argument("--json", action="store_true", help="print the response as JSON")
    chat.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``chat``."""
    from .commands import cmd_chat

    return cmd_chat(args)
