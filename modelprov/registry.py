"""``ProviderRegistry``: which provider classes exist and their configured instances.

Providers are discovered lazily, on first lookup. The built-in providers
always register from this package itself (a table imported relatively), so a
copy vendored as ``app._vendor.modelprov`` uses its own built-ins even when
another copy of modelprov is installed; third-party plugins come from the
``modelprov.providers`` entry-point group and never replace a built-in. An
entry point that belongs to another copy of modelprov (its module is
``modelprov.*`` while this package is not, or its class subclasses another
copy's ``ModelProvider``) is skipped with a debug log. A broken plugin is
logged and skipped; it never breaks the registry. Everything here is
thread-safe.
"""

import dataclasses
import difflib
import functools
import importlib
import re
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Hashable, List, Optional, Tuple, Type

from ._log import get_logger
from ._singleton import Singleton
from .exceptions import ConfigurationError
from .types import ProviderCapabilities, ProviderConfig

if TYPE_CHECKING:  # pragma: no cover
    from .config.manager import ConfigManager
    from .providers.base import ModelProvider

#: A loader returning a provider class (an entry point's ``load``).
Loader = Callable[[], Any]

__all__ = ["ENTRY_POINT_GROUP", "ProviderRegistry", "ProviderStatus", "get_registry", "reset_registry"]

log = get_logger("registry")

ENTRY_POINT_GROUP = "modelprov.providers"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

#: This package's import name: ``modelprov``, or e.g. ``app._vendor.modelprov`` when vendored.
_PACKAGE = __name__.rpartition(".")[0]
_DIST_PACKAGE = "modelprov"  # the name every installed copy's entry points use

# The built-ins, always imported from this package (relative imports); they win over entry points.
_BUILTINS = {
    "openai": ".providers.openai_compat.openai:OpenAIProvider",
    "anthropic": ".providers.anthropic.provider:AnthropicProvider",
    "ollama": ".providers.ollama.provider:OllamaProvider",
    "openrouter": ".providers.openai_compat.openrouter:OpenRouterProvider",
    "openai_compatible": ".providers.openai_compat.compatible:OpenAICompatibleProvider",
    "mock": ".providers.mock:MockProvider",
}


@dataclass(frozen=True)
class ProviderStatus:
    """A registered or configured provider name and whether it is ready to use."""

    name: str
    type: str
    configured: bool
    detail: str = ""


def _import_target(target: str) -> Any:
    module, _, attr = target.partition(":")
    mod = importlib.import_module(module, package=__package__) if module.startswith(".") else importlib.import_module(module)
    return getattr(mod, attr)


class _ForeignProvider(Exception):
    """An entry point that belongs to another copy of modelprov (skipped, not broken)."""


def _foreign_module(value: str) -> bool:
    """True if an entry point's ``module:attr`` lives in another copy of modelprov than this one."""
    module = value.partition(":")[0].strip()
    return _PACKAGE != _DIST_PACKAGE and (module == _DIST_PACKAGE or module.startswith(_DIST_PACKAGE + "."))


def _entry_points() -> List[Tuple[str, Loader]]:
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return []
    try:
        if sys.version_info >= (3, 10):
            group = metadata.entry_points(group=ENTRY_POINT_GROUP)
        else:  # pragma: no cover - Python 3.9: a dict of groups
            group = metadata.entry_points().get(ENTRY_POINT_GROUP, [])
        found = []
        for ep in group:
            value = str(getattr(ep, "value", "") or "")
            if ep.name in _BUILTINS:
                if not _is_own_builtin(ep.name, value):
                    log.debug("entry point %s = %s skipped: the built-in provider %r wins", ep.name, value, ep.name)
                continue
            if _foreign_module(value):
                log.debug("entry point %s = %s skipped: it belongs to another copy of modelprov (this one is %s)",
                          ep.name, value, _PACKAGE)
                continue
            found.append((ep.name, ep.load))
        return found
    except Exception as exc:  # broken metadata must not break us
        log.warning("could not read %s entry points: %s", ENTRY_POINT_GROUP, exc)
        return []


def _is_own_builtin(name: str, value: str) -> bool:
    """True if the entry point ``name = value`` is this package's own declaration of a built-in."""
    return value.replace(" ", "") == _DIST_PACKAGE + _BUILTINS[name] and _PACKAGE == _DIST_PACKAGE


def _foreign_class(cls: Any, own_base: type) -> bool:
    """True if ``cls`` subclasses a ``ModelProvider`` of another copy of modelprov (same qualified name, other class)."""
    if not isinstance(cls, type) or issubclass(cls, own_base):
        return False
    return any(
        base.__name__ == own_base.__name__ and base.__qualname__ == own_base.__qualname__
        and base.__module__.endswith(".providers.base") and base is not own_base
        for base in cls.__mro__
    )


class ProviderRegistry:
    """Thread-safe map of provider names to classes, plus a cache of configured instances.

    :param config: the :class:`~modelprov.config.ConfigManager` to resolve
        settings with (the process-wide one by default).
    :param discover: look up entry points on first lookup.
    """

    def __init__(self, config: "Optional[ConfigManager]" = None, *, discover: bool = True) -> None:
        self._lock = threading.RLock()
        self._classes: Dict[str, Type["ModelProvider"]] = {}
        self._lazy: Dict[str, Loader] = {}
        self._broken: Dict[str, str] = {}
        self._foreign: Dict[str, str] = {}
        self._instances: Dict[Tuple[str, Type["ModelProvider"], Hashable], "ModelProvider"] = {}
        self._config = config
        self._discovered = not discover

    # ----------------------------------------------------------- discovery
    def _discover(self) -> None:
        if self._discovered:
            return
        found: List[Tuple[str, Loader]] = [
            (name, functools.partial(_import_target, target)) for name, target in _BUILTINS.items()
        ]
        found.extend(_entry_points())  # built-ins come first, so they win
        with self._lock:
            if self._discovered:
                return
            for name, loader in found:
                if name not in self._classes and name not in self._lazy:
                    self._lazy[name] = loader
            self._discovered = True

    def _load(self, name: str) -> "Optional[Type[ModelProvider]]":
        with self._lock:
            cls = self._classes.get(name)
            loader = self._lazy.get(name)
        if cls is not None or loader is None:
            return cls
        try:
            loaded = loader()
            self._check_foreign(name, loaded)
            self._validate(name, loaded)
        except _ForeignProvider as exc:
            log.debug("provider plugin %r skipped: %s", name, exc)
            with self._lock:
                self._lazy.pop(name, None)
                self._foreign[name] = str(exc)
            return None
        except Exception as exc:
            log.warning("provider plugin %r failed to load and was skipped: %s", name, exc)
            with self._lock:
                self._lazy.pop(name, None)
                self._broken[name] = f"{type(exc).__name__}: {exc}"
            return None
        with self._lock:
            if self._lazy.pop(name, None) is not None:
                self._classes.setdefault(name, loaded)
            return self._classes.get(name)

    # ---------------------------------------------------------- validation
    @staticmethod
    def _check_foreign(name: str, cls: Any) -> None:
        from .providers.base import ModelProvider

        if _foreign_class(cls, ModelProvider):
            raise _ForeignProvider(
                f"{cls.__module__}.{cls.__qualname__} belongs to another copy of modelprov than {_PACKAGE}")

    @staticmethod
    def _validate(name: str, cls: Any) -> None:
        from .providers.base import ModelProvider

        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError(f"invalid provider name {name!r}: use lower-case letters, digits, '_', '-' or '.'")
        if not (isinstance(cls, type) and issubclass(cls, ModelProvider)):
            raise ConfigurationError(f"provider {name!r} must be a ModelProvider subclass, not {cls!r}")
        if not getattr(cls, "name", None):
            raise ConfigurationError(f"provider class {cls.__name__} has no name attribute")
        if not isinstance(getattr(cls, "capabilities", None), ProviderCapabilities):
            raise ConfigurationError(f"provider class {cls.__name__} must declare capabilities = ProviderCapabilities(...)")

    # -------------------------------------------------------------- public
    def register(self, name: str, cls: "Type[ModelProvider]", replace: bool = False) -> None:
        """Register ``cls`` under ``name``; refuse a duplicate unless ``replace=True``."""
        self._validate(name, cls)
        self._discover()
        with self._lock:
            if not replace and (name in self._classes or name in self._lazy):
                raise ConfigurationError(f"provider {name!r} is already registered (pass replace=True to override)")
            self._lazy.pop(name, None)
            self._broken.pop(name, None)
            self._foreign.pop(name, None)
            self._classes[name] = cls
            self._drop_instances(name)

    def unregister(self, name: str) -> None:
        """Remove ``name``; unknown names raise :class:`ConfigurationError`."""
        self._discover()
        with self._lock:
            if self._classes.pop(name, None) is None and self._lazy.pop(name, None) is None:
                raise self.unknown_error(name)
            self._drop_instances(name)

    def _drop_instances(self, name: str) -> None:
        for key in [k for k in self._instances if k[0] == name]:
            _close_quietly(self._instances.pop(key, None))

    def list(self) -> List[str]:
        """Registered provider names (classes not yet imported included), sorted."""
        self._discover()
        with self._lock:
            return sorted(set(self._classes) | set(self._lazy))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.list()

    def unknown_error(self, name: str) -> ConfigurationError:
        """The error for an unknown provider name, suggesting the closest known one."""
        with self._lock:
            known = sorted(set(self._classes) | set(self._lazy))
            broken = self._broken.get(name)
            foreign = self._foreign.get(name)
        if foreign:
            return ConfigurationError(f"provider {name!r} is not available to this copy of modelprov ({foreign})",
                                      hint="install the plugin for this copy, or register its class with register()")
        if broken:
            return ConfigurationError(f"provider {name!r} failed to load ({broken})", hint="reinstall or fix the plugin")
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known providers: {', '.join(known)}"
        return ConfigurationError(f"unknown provider {name!r}", hint=hint)

    def get_class(self, name: str) -> "Type[ModelProvider]":
        """The provider class registered as ``name``."""
        self._discover()
        cls = self._load(name)
        if cls is None:
            raise self.unknown_error(name)
        return cls

    def _get_config(self) -> "ConfigManager":
        if self._config is None:
            from .config.manager import get_config

            return get_config()
        return self._config

    def resolve(self, name: str, *, config: "Optional[ConfigManager]" = None, **overrides: Any) -> "Tuple[Type[ModelProvider], ProviderConfig]":
        """The class and effective :class:`ProviderConfig` for ``name`` (a type or a named instance).

        ``config`` is the :class:`~modelprov.config.ConfigManager` to read
        (the registry's own by default); ``overrides`` are explicit settings.
        """
        config = config if config is not None else self._get_config()
        type_name = overrides.pop("type", None) or config.provider_type(name) or name
        cls = self.get_class(type_name)
        defaults = cls.config_defaults()
        defaults["type"] = type_name
        normalize = getattr(cls, "normalize_base_url", None)
        cfg = config.provider_config(name, defaults=defaults, **overrides)
        if normalize is not None and cfg.base_url:
            cfg = cfg.with_overrides(base_url=normalize(cfg.base_url))
        return cls, cfg

    def create(self, name: str, *, engine_kwargs: Optional[Dict[str, Any]] = None, **overrides: Any) -> "ModelProvider":
        """A new, uncached provider instance bound to an engine made with ``engine_kwargs`` (see :func:`modelprov.engine.bind`)."""
        from .engine import bind

        cls, cfg = self.resolve(name, **overrides)
        return bind(cls(cfg), **(engine_kwargs or {}))

    def get(self, name: str, **overrides: Any) -> "ModelProvider":
        """A cached, configured instance bound to an engine (default retry policy, no breaker); the cache key is the effective config."""
        cls, cfg = self.resolve(name, **overrides)
        key = (name, cls, _cache_key(cfg))
        with self._lock:
            inst = self._instances.get(key)
        if inst is not None:
            return inst
        from .engine import bind

        inst = bind(cls(cfg))
        with self._lock:
            kept = self._instances.setdefault(key, inst)
        if kept is not inst:  # another thread built the same one first
            _close_quietly(inst)
        return kept

    def available(self) -> List[ProviderStatus]:
        """Every registered and configured provider name, with whether it is usable now."""
        config = self._get_config()
        names = set(self.list()) | set(config.provider_names())
        out = []
        for name in sorted(names):
            try:
                cls, cfg = self.resolve(name)
            except ConfigurationError as exc:
                out.append(ProviderStatus(name, "?", False, exc.message))
                continue
            if cls.requires_api_key and not cfg.api_key:
                detail = str(cls(cfg).missing_key_error().hint or "no API key")
                out.append(ProviderStatus(name, cfg.provider_type, False, detail))
            else:
                out.append(ProviderStatus(name, cfg.provider_type, True, cfg.base_url or ""))
        return out

    def clear_cache(self) -> None:
        """Forget cached instances (their connections are closed)."""
        with self._lock:
            instances = list(self._instances.values())
            self._instances.clear()
        for inst in instances:
            try:
                inst.close()
            except Exception:  # pragma: no cover - defensive
                pass


def _cache_key(cfg: ProviderConfig) -> Hashable:
    """A hashable key for a config, even when its options hold lists or dicts."""
    try:
        hash(cfg)
        return cfg
    except TypeError:
        options = tuple((k, repr(v)) for k, v in cfg.options)
        return (dataclasses.replace(cfg, options=()), options)


def _close_quietly(inst: "Optional[ModelProvider]") -> None:
    if inst is not None:
        try:
            inst.close()
        except Exception:  # pragma: no cover - defensive
            log.debug("closing a dropped provider instance failed", exc_info=True)


_registry: Singleton[ProviderRegistry] = Singleton(ProviderRegistry, dispose=ProviderRegistry.clear_cache)


def get_registry() -> ProviderRegistry:
    """The process-wide registry (created on first use)."""
    return _registry.get()


def reset_registry() -> None:
    """Drop the process-wide registry (tests use this); its cached instances are closed."""
    _registry.reset()
