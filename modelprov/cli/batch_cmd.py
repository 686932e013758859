"""``modelprov batch`` (transitional wrapper over the old implementation)."""

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``batch`` command."""
    batch = sub.add_parser("batch", help="run JSON-lines requests concurrently, print JSON-lines results")
    batch.add_argument("file", nargs="?", default="-", help="input file (default stdin); each line a prompt or a request object")
    batch.add_argument("-m", "--model", help="model for lines that name none")
    batch.add_argument("-c", "--concurrency", type=int, default=8)
    batch.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``batch``."""
    from .commands import cmd_batch

    return cmd_batch(args)
