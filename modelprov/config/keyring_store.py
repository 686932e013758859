"""Optional keyring access for :mod:`modelprov.config` (private helper).

The ``keyring`` package is an optional extra: it is imported on first use,
never at module import. A missing package, a backend that cannot store
anything (``fail``/``null`` backends, priority <= 0) or a backend that raises
is never an error here: it is logged at DEBUG on ``modelprov.config`` and the
caller moves on to the next source. Passwords are never logged.
"""

from typing import Any, Dict, Optional, Tuple

from .._log import get_logger
from .._redact import redact, register_secret

__all__ = ["KEYRING_SERVICE", "KeyringStore", "NOT_INSTALLED_FIX", "NO_BACKEND_FIX", "backend_name"]

logger = get_logger("config")

#: The keyring service name; the user name is the provider name.
KEYRING_SERVICE = "modelprov"

_NULL_BACKENDS = frozenset({("keyring.backends.fail", "Keyring"), ("keyring.backends.null", "Keyring")})
_CHAINER = "keyring.backends.chainer"
#: The fix when keyring is installed but has no backend that can store a key.
NO_BACKEND_FIX = ("install a keyring backend (e.g. pip install keyrings.alt, or start the desktop's secret service), "
                  "set PYTHON_KEYRING_BACKEND, or store the key in the config file with --store file")
#: The fix when the keyring package is missing.
NOT_INSTALLED_FIX = "install it (pip install 'modelprov[keyring]') to use the system keyring, or store the key in the config file"


def backend_name(backend: Any) -> str:
    """A backend's display name (``"SecretService Keyring"``), from keyring's own ``name`` when it has one."""
    name = getattr(type(backend), "name", None)
    if isinstance(name, str) and name.strip():
        return name.strip()
    return f"{type(backend).__module__}.{type(backend).__name__}"


def _installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("keyring") is not None
    except (ImportError, ValueError):
        return False


def _version() -> Optional[str]:
    """The installed keyring version (keyring has no ``__version__``; read the distribution's metadata)."""
    try:
        from importlib.metadata import version

        return version("keyring")
    except Exception:  # not installed as a distribution, or broken metadata
        return None


class KeyringStore:
    """Get, set and delete provider keys in the keyring, never raising.

    :param enabled: False turns the keyring off entirely.
    :param module: an object with the ``keyring`` module's API (tests inject one);
        default: ``import keyring`` on first use.
    """

    def __init__(self, enabled: bool = True, module: Any = None) -> None:
        self.enabled = enabled
        self.module = module

    def _module(self) -> Tuple[Any, str]:
        """``(keyring module or None, why not)``."""
        if not self.enabled:
            return None, "keyring disabled"
        if self.module is not None:
            return self.module, ""
        try:
            import keyring as module  # optional dependency, imported on first use only
        except Exception as exc:  # ImportError, or a broken installation
            logger.debug("keyring not available (%s); skipping it", type(exc).__name__)
            return None, "the keyring package is not installed"
        return module, ""

    def backend(self) -> Tuple[Any, str]:
        """``(backend or None, description)``; None when the keyring cannot be used.

        The description names the backend for display (``"SecretService Keyring"``),
        or says why there is none (``"no usable keyring backend (fail Keyring)"``).
        """
        module, why = self._module()
        if module is None:
            return None, why
        get_backend = getattr(module, "get_keyring", None)
        if get_backend is None:
            return module, getattr(module, "__name__", type(module).__name__)
        try:
            backend = get_backend()
            label = backend_name(backend)
            if any((c.__module__, c.__name__) in _NULL_BACKENDS for c in type(backend).__mro__):
                return None, f"no usable keyring backend ({label})"
            if type(backend).__module__ == _CHAINER and not list(getattr(backend, "backends", None) or ()):
                return None, f"no usable keyring backend ({label} with nothing to chain)"
            priority = float(getattr(backend, "priority", 1))
        except Exception as exc:
            logger.debug("keyring backend unusable (%s); skipping it", type(exc).__name__)
            return None, f"the keyring backend failed to load ({type(exc).__name__})"
        if priority <= 0:
            return None, f"no usable keyring backend ({label}, priority {priority:g})"
        return backend, label

    def status(self) -> Dict[str, Any]:
        """What ``doctor`` and ``keys path`` show, never a password.

        ``{"installed": bool, "version": str or None, "usable": bool, "backend": description,
        "fix": how to get a usable keyring, or None}``.
        """
        backend, label = self.backend()
        installed = self.enabled and (self.module is not None or _installed())
        fix: Optional[str] = None
        if backend is None and self.enabled:
            fix = NO_BACKEND_FIX if installed else NOT_INSTALLED_FIX
        return {"installed": installed, "version": _version() if installed and self.module is None else None,
                "usable": backend is not None, "backend": label, "fix": fix}

    def _call(self, op: str, name: str, *args: str) -> Tuple[bool, Any]:
        backend, why = self.backend()
        if backend is None:
            logger.debug("keyring skipped for %s: %s", name, why)
            return False, None
        try:
            return True, getattr(backend, op)(KEYRING_SERVICE, name, *args)
        except Exception as exc:
            logger.debug(
                "keyring %s for %s failed (%s: %s); using the next source",
                op, name, type(exc).__name__, redact(exc)[:200],
            )
            return False, None

    def get(self, name: str) -> Optional[str]:
        """The stored key of provider ``name``, or None."""
        ok, value = self._call("get_password", name)
        if not ok or not isinstance(value, str) or not value.strip():
            return None
        register_secret(value.strip())
        return value

    def set(self, name: str, key: str) -> bool:
        """Store ``key`` for ``name``; False when there is no usable backend or it failed."""
        ok = self._call("set_password", name, key)[0]
        if ok:
            logger.debug("stored the key for %s in the keyring", name)
        return ok

    def delete(self, name: str) -> bool:
        """Delete the key of ``name``; True only when there was one and it is gone."""
        if self.get(name) is None:
            return False
        return self._call("delete_password", name)[0]
