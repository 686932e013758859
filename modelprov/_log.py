"""The package logger. Importing this attaches a ``NullHandler`` to ``modelprov``.

Kept out of ``modelprov/__init__.py`` so that ``import modelprov`` does not pay
for the ``logging`` import; every module that logs imports this first.
"""

import logging

__all__ = ["get_logger"]

_root = logging.getLogger("modelprov")
if not any(isinstance(h, logging.NullHandler) for h in _root.handlers):
    _root.addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """A child of the ``modelprov`` logger (``name`` without the prefix)."""
    return logging.getLogger("modelprov." + name if name else "modelprov")
