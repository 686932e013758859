"""``modelprov doctor [PROVIDER]``: check the installation, the configuration and each provider.

One line per check, each ``ok``, ``FAIL`` (with the fix), ``skip`` (not
checked, and why) or ``info``. Per provider (the one named, or every
configured one, see :mod:`.catalog`): its configuration resolves; its key
and where it comes from; DNS, TCP connect and, for https, a TLS handshake
(naming the CA bundle and the proxy; through a proxy, DNS and TCP target the
proxy); then an authenticated cheap call, the model list, with short
timeouts and no retries. Also the config file (path, whether it parses) and
the keyring backend. Exit 0 only when no check failed, 1 otherwise.
"""

import argparse
from typing import Any

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Add the ``doctor`` command."""
    doctor = sub.add_parser("doctor", help="check the setup: config, keyring, and each provider over the network",
                            description="Check the config file, the keyring and each configured provider (key, DNS, "
                            "TCP, TLS, an authenticated model list). Exit 0 only when every check passes.")
    doctor.add_argument("provider", nargs="?", metavar="PROVIDER", help="check only this provider")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS",
                        help="time limit of each network check (default: 3)")
    doctor.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``doctor`` (the checks live in :mod:`.doctor_run`, imported only now)."""
    from .doctor_run import run as run_checks

    return run_checks(args)
