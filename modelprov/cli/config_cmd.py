"""``modelprov config`` (transitional wrapper over the old implementation)."""

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``config`` command group."""
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
    config.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``config``."""
    from .commands import cmd_config

    return cmd_config(args)
