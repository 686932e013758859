"""``modelprov keys`` (transitional wrapper over the old implementation)."""

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``keys`` command group."""
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
    keys.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``keys``."""
    from .commands import cmd_keys

    return cmd_keys(args)
