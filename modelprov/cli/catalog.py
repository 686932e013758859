"""``modelprov models`` and ``modelprov providers`` (transitional wrapper over the old implementation)."""

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``models`` and ``providers`` commands."""
    models = sub.add_parser("models", help="list a provider's models")
    models.add_argument("provider")
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=run_models)
    providers = sub.add_parser("providers", help="list providers and whether they are configured")
    providers.add_argument("--json", action="store_true")
    providers.set_defaults(run=run_providers)


def run_models(args: argparse.Namespace) -> int:
    """Run ``models``."""
    from .commands import cmd_models

    return cmd_models(args)


def run_providers(args: argparse.Namespace) -> int:
    """Run ``providers``."""
    from .commands import cmd_providers

    return cmd_providers(args)
