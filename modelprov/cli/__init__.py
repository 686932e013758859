"""The ``modelprov`` command: argparse only; ``main(argv=None) -> int``."""

from .main import main

__all__ = ["main"]
