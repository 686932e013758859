"""``modelprov doctor`` (transitional wrapper over the old implementation)."""

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``doctor`` command."""
    doctor = sub.add_parser("doctor", help="check the installation and configuration")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``doctor``."""
    from .commands import cmd_doctor

    return cmd_doctor(args)
