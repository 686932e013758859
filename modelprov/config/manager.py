"""Configuration: where every setting comes from, and which one wins.

Order of precedence, highest first::

    explicit argument > environment > keyring > config file > defaults

:class:`ConfigManager` resolves a provider's :class:`~modelprov.types.ProviderConfig`
and can say, for every field, where its value came from (``"explicit"``,
``"env:OPENAI_API_KEY"``, ``"keyring"``, ``"file:/path/config.ini [provider:openai]"``,
``"default"``). The provider class passes its own ``defaults`` (base URL,
default model, the environment variables it reads); this module knows no
provider by name.

Environment: the provider's variables (``api_key_env``, ``base_url_env``) and,
for every provider including named instances, ``MODELPROV_<NAME>_API_KEY`` and
``MODELPROV_<NAME>_BASE_URL`` (which win over the vendor's variables);
``MODELPROV_MODEL``; ``MODELPROV_CONFIG`` (the file). Keyring: service
``modelprov``, user = provider name; optional, imported on first use only.
File: INI with ``[modelprov]``, ``[provider:NAME]`` and ``[aliases]`` sections
(see :mod:`modelprov.config.file`), cached and re-read when it changes.

Standard library only; ``keyring`` is imported lazily. Secrets never appear in
messages, logs or reprs.
"""

import os
import threading
from dataclasses import fields as _dc_fields
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .._log import get_logger
from .._redact import mask_key, redact, redact_headers, register_secret
from .._singleton import Singleton
from ..exceptions import ConfigurationError
from ..types import ProviderConfig
from . import file as _cf
from .keyring_store import KEYRING_SERVICE, KeyringStore
from .settings import GlobalSettings
from .values import (
    FIELDS as _FIELDS,
)
from .values import (
    INHERITED_KEYS,
    RATE_FIELDS,
    Found,
    Resolved,
    check_name,
    check_target,
    coerce_field,
    env_var_name,
    names_of,
    pairs,
    to_text,
    validate_for_file,
)

__all__ = [
    "ConfigManager",
    "KEYRING_SERVICE",
    "default_config_path",
    "env_var_name",
    "get_config",
    "platform_config_path",
    "reset_config",
]

logger = get_logger("config")

default_config_path = _cf.default_config_path
platform_config_path = _cf.platform_config_path

_GLOBAL = _cf.GLOBAL_SECTION
_HEADER = _cf.HEADER_PREFIX
_DEFAULT = "default"
_EXPLICIT = "explicit"
_KEYRING = "keyring"
#: Keys of ``defaults`` that describe where to look, not values.
_META_DEFAULTS = frozenset({"api_key_env", "base_url_env", "normalize_base_url", "option_env"})
_FIELD_DEFAULTS = {f.name: f.default for f in _dc_fields(ProviderConfig)}
_KNOWN = frozenset(_FIELD_DEFAULTS)


class ConfigManager(GlobalSettings):
    """Resolves settings from explicit arguments, environment, keyring, config file and defaults.

    :param path: the config file; default ``$MODELPROV_CONFIG`` or the platform config
        directory (re-evaluated on every access, like the environment).
    :param environ: mapping to read variables from; default ``os.environ``, read live.
    :param use_keyring: consult the keyring at all.
    :param keyring_module: an object with the ``keyring`` module's API, for tests.

    Thread safe; the parsed file is cached and re-read when its mtime, size, inode
    or mode changes, or after :meth:`invalidate`.
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]", None] = None,
        *,
        environ: Optional[Mapping[str, str]] = None,
        use_keyring: bool = True,
        keyring_module: Any = None,
    ) -> None:
        self._path = os.fspath(path) if path is not None else None
        self._environ = environ
        self._keyring = KeyringStore(use_keyring, keyring_module)
        self._lock = threading.RLock()
        self._cached: Optional[Tuple[str, Any, Optional[_cf.ConfigSnapshot]]] = None

    def __repr__(self) -> str:
        return f"ConfigManager(path={self.path!r}, use_keyring={self._keyring.enabled})"

    def __getstate__(self) -> Dict[str, Any]:
        # Pickles as its settings (for clients shipped to worker processes); an injected
        # keyring module stays behind, and a custom environ mapping travels as a plain dict.
        environ = None if self._environ is None else dict(self._environ)
        return {"path": self._path, "environ": environ, "use_keyring": self._keyring.enabled}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        ConfigManager.__init__(self, state["path"], environ=state["environ"], use_keyring=state["use_keyring"])

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment this manager reads."""
        return os.environ if self._environ is None else self._environ

    @property
    def path(self) -> str:
        """The config file path (it need not exist)."""
        return self._path if self._path is not None else _cf.default_config_path(self.environ)

    # ----------------------------------------------------------------- file cache

    @property
    def parsed_token(self) -> object:
        """An object whose identity changes whenever the file is re-read or the cache is invalidated (no I/O)."""
        return self._cached

    def invalidate(self) -> None:
        """Forget the parsed file; the next access reads it again."""
        with self._lock:
            self._cached = None

    def _file(self) -> Optional[_cf.ConfigSnapshot]:
        path = self.path
        with self._lock:
            signature = _cf.stat_signature(path)
            if self._cached is not None and self._cached[:2] == (path, signature):
                return self._cached[2]
            # cache under the signature seen *before* reading: a change racing the read
            # only costs one extra re-read, never a stale cache
            snapshot = _cf.load_snapshot(path) if signature is not None else None
            self._cached = (path, signature if snapshot is not None else None, snapshot)
            return snapshot

    def keyring_status(self) -> Dict[str, Any]:
        """``{"usable": bool, "backend": description}`` for ``doctor``."""
        return self._keyring.status()

    # ------------------------------------------------------------ provider values

    def _lookup(self, key: str, name: str, explicit: Mapping[str, Any], defaults: Mapping[str, Any],
                snap: Optional[_cf.ConfigSnapshot], section: Optional[str]) -> Found:
        found = self._raw(key, name, explicit, defaults, snap, section)
        if found is None:
            return None
        value, source, where = found
        normalize = defaults.get("normalize_base_url") if key == "base_url" else None
        if normalize is not None and isinstance(value, str):
            try:
                value = normalize(value)
            except Exception as exc:
                detail = exc.message if isinstance(exc, ConfigurationError) else type(exc).__name__
                raise ConfigurationError(f"invalid base_url in {where}: {detail}") from None
        return coerce_field(key, value, where), source

    def _raw(self, key: str, name: str, explicit: Mapping[str, Any], defaults: Mapping[str, Any],
             snap: Optional[_cf.ConfigSnapshot], section: Optional[str]) -> Optional[Tuple[Any, str, str]]:
        """(raw value, source, source with line for errors) from the first source that has ``key``."""
        value = explicit.get(key)
        if value is not None and value != "":
            return value, _EXPLICIT, _EXPLICIT
        if key in ("api_key", "base_url"):
            suffix = "API_KEY" if key == "api_key" else "BASE_URL"
            for var in (env_var_name(name, suffix),) + names_of(defaults.get(key + "_env")):
                raw = self.environ.get(var)
                if raw and raw.strip():
                    return raw, f"env:{var}", f"env:{var}"
        elif key in RATE_FIELDS:
            var = env_var_name(name, key.upper())
            raw = self.environ.get(var)
            if raw and raw.strip():
                return raw, f"env:{var}", f"env:{var}"
        if key == "api_key":
            stored = self._keyring.get(name)
            if stored is not None:
                return stored, _KEYRING, _KEYRING
        if snap is not None:
            for sec, keys in ((section, None), (_GLOBAL, INHERITED_KEYS)):
                if not sec:
                    continue
                raw = snap.sections.get(sec, {}).get(key, "")
                if raw.strip() and (keys is None or key in keys):
                    return raw, snap.source(sec), snap.where(sec, key)
        value = defaults.get(key)
        if value is not None:
            return value, _DEFAULT, _DEFAULT
        return None

    def _resolve(self, name: str, defaults: Optional[Mapping[str, Any]], explicit: Mapping[str, Any],
                 errors: Optional[Dict[str, str]] = None) -> Resolved:
        """Resolve every field; with ``errors`` given, an invalid field is recorded there (key -> why) instead of raising."""
        name = check_name(name)
        defaults = defaults or {}
        snap = self._file()
        section = snap.provider_section(name) if snap is not None else None
        res = Resolved()
        for key in _FIELDS:
            try:
                found = self._lookup(key, name, explicit, defaults, snap, section)
            except ConfigurationError as exc:
                if errors is None:
                    raise
                errors[key] = exc.message
                bad = self._raw(key, name, explicit, defaults, snap, section)
                res.sources[key] = bad[1] if bad else _DEFAULT
                continue
            res.sources[key] = found[1] if found else _DEFAULT
            if found is not None:
                res.values[key] = found[0]
        if res.values.get("api_key"):
            register_secret(res.values["api_key"])
        file_headers: List[Tuple[str, str, str, str]] = []  # (name, value, source, where) from the file's section
        file_options: List[Tuple[str, Any, str]] = []
        if snap is not None and section:
            for key, raw in snap.sections[section].items():
                if key.startswith(_HEADER):
                    if raw.strip():
                        file_headers.append((key[len(_HEADER):], raw, snap.source(section), snap.where(section, key)))
                elif key not in _KNOWN:
                    file_options.append((key, raw, snap.source(section)))
        for hname, value in pairs(defaults.get("headers"), "headers", _DEFAULT):
            res.add_header(hname, value, _DEFAULT, _DEFAULT)
        for hname, raw, source, where in file_headers:
            try:
                res.add_header(hname, raw, source, where)
            except ConfigurationError as exc:
                if errors is None:
                    raise
                errors[_HEADER + hname] = exc.message
        for hname, value in pairs(explicit.get("headers"), "headers", _EXPLICIT):
            res.add_header(hname, value, _EXPLICIT, _EXPLICIT)
        extra: List[Tuple[str, Any, str]] = [(k, v, _DEFAULT) for k, v in defaults.items() if k not in _KNOWN and k not in _META_DEFAULTS]
        extra += [(k, v, _DEFAULT) for k, v in pairs(defaults.get("options"), "options", _DEFAULT)]
        extra += file_options
        for key, names in (defaults.get("option_env") or {}).items():  # provider options read from env
            for var in names_of(names):
                env_value = self.environ.get(var)
                if env_value and env_value.strip():
                    extra.append((key, env_value.strip(), f"env:{var}"))
                    break
        extra += [(k, v, _EXPLICIT) for k, v in pairs(explicit.get("options"), "options", _EXPLICIT)]
        extra += [(k, v, _EXPLICIT) for k, v in explicit.items() if k not in _KNOWN]
        for key, value, source in extra:
            if value is not None:
                res.options[key] = (value, source)
        return res

    def provider_config(self, name: str, *, defaults: Optional[Mapping[str, Any]] = None, **explicit: Any) -> ProviderConfig:
        """The effective :class:`ProviderConfig` of provider (or named instance) ``name``.

        :param defaults: from the provider class: ``type``, ``base_url``, ``default_model``,
            ``api_key_env`` / ``base_url_env`` (tuples of variable names), optionally
            ``normalize_base_url`` (a callable applied to every base URL before it is
            validated, e.g. Ollama's ``host:port`` rules), any other ProviderConfig
            field, and provider options.
        :param explicit: ProviderConfig fields given by the caller (``None`` = not given);
            ``headers``/``options`` mappings merge over the other sources; unknown keys
            become options.
        :raises ConfigurationError: a malformed file or an invalid value (says which key
            in which source).
        """
        res = self._resolve(name, defaults, explicit)
        headers = tuple(sorted((n, v) for n, v, _ in res.headers.values()))
        options = tuple(sorted(((k, v) for k, (v, _) in res.options.items()), key=lambda kv: kv[0]))
        return ProviderConfig(name=name.strip(), headers=headers, options=options, **res.values)

    def provenance(self, name: str, *, defaults: Optional[Mapping[str, Any]] = None, **explicit: Any) -> Dict[str, str]:
        """Field -> source for provider ``name`` (plus ``header.<Name>`` and ``option.<key>`` entries)."""
        res = self._resolve(name, defaults, explicit)
        out = dict(res.sources)
        out.update({f"{_HEADER}{n}": s for n, _, s in sorted(res.headers.values())})
        out.update({f"option.{k}": s for k, (_, s) in sorted(res.options.items())})
        return out

    def explain(self, name: str, *, defaults: Optional[Mapping[str, Any]] = None, **explicit: Any) -> Dict[str, Dict[str, Any]]:
        """Field -> ``{"value": ..., "source": ...}`` for ``config show``/``doctor``; secrets masked."""
        return self._explain(name, defaults, explicit, None)

    def explain_all(self, name: str, *, defaults: Optional[Mapping[str, Any]] = None, **explicit: Any) -> Dict[str, Dict[str, Any]]:
        """Like :meth:`explain`, but an invalid value does not hide the others.

        Each invalid field is shown as ``{"value": None, "source": ..., "invalid": why}``
        (the raw value is never shown: it may be a key).
        """
        errors: Dict[str, str] = {}
        return self._explain(name, defaults, explicit, errors)

    def _explain(self, name: str, defaults: Optional[Mapping[str, Any]], explicit: Mapping[str, Any],
                 errors: Optional[Dict[str, str]]) -> Dict[str, Dict[str, Any]]:
        res = self._resolve(name, defaults, explicit, errors)
        out: Dict[str, Dict[str, Any]] = {}
        for key in _FIELDS:
            if errors and key in errors:
                out[key] = {"value": None, "source": res.sources[key], "invalid": errors[key]}
                continue
            value = res.values.get(key, _FIELD_DEFAULTS[key])
            shown = mask_key(value) if key == "api_key" else redact(value) if isinstance(value, str) else value
            out[key] = {"value": shown, "source": res.sources[key]}
        masked = redact_headers({n: v for n, v, _ in res.headers.values()})
        for hname, _, source in sorted(res.headers.values()):
            out[f"{_HEADER}{hname}"] = {"value": masked[hname], "source": source}
        for key, (value, source) in sorted(res.options.items()):
            out[f"option.{key}"] = {"value": redact(value) if isinstance(value, str) else value, "source": source}
        for key, why in sorted((errors or {}).items()):
            if key.startswith(_HEADER):
                out[key] = {"value": None, "source": "file", "invalid": why}
        return out

    def provider_names(self) -> List[str]:
        """Names of the ``[provider:NAME]`` sections in the file, in file order."""
        snap = self._file()
        return snap.provider_names() if snap is not None else []

    def provider_type(self, name: str) -> Optional[str]:
        """The ``type`` set in the file's ``[provider:NAME]`` section, or None."""
        snap = self._file()
        section = snap.provider_section(check_name(name)) if snap is not None else None
        value = snap.sections[section].get("type", "").strip() if snap is not None and section else ""
        return value or None

    def get_value(self, section: str, key: str) -> Optional[str]:
        """The raw text of ``key`` in ``[section]`` of the file, or None (for ``config get``)."""
        snap = self._file()
        return snap.section(section).get(_cf.normalize_key(key)) if snap is not None else None

    # ------------------------------------------------------------------- writing

    def set_value(self, section: str, key: str, value: Any) -> None:
        """Set ``key`` in ``[section]`` of the file (created 0600 if missing), atomically.

        Known keys are validated first; ``None`` removes the key. Other sections,
        comments and ordering are preserved.
        """
        if value is None:
            self.unset_value(section, key)
            return
        sec, k = check_target(section, key)
        text = to_text(value).strip()
        if text:
            validate_for_file(sec, k, text, f"file:{self.path} [{sec}]")
        elif "\n" in to_text(value):
            raise ConfigurationError(f"invalid {k} for [{sec}]: expected a single line")
        try:
            _cf.update_value(self.path, sec, k, text)
        finally:
            self.invalidate()

    def unset_value(self, section: str, key: str) -> bool:
        """Remove ``key`` from ``[section]``; True if it was there."""
        sec, k = check_target(section, key)
        try:
            return _cf.update_value(self.path, sec, k, None)
        finally:
            self.invalidate()

    # ---------------------------------------------------------------------- keys

    def _provider_section(self, name: str) -> str:
        snap = self._file()
        found = snap.provider_section(name) if snap is not None else None
        return found or _cf.PROVIDER_PREFIX + name

    def set_key(self, provider: str, key: str, *, store: str = "auto") -> str:
        """Store the API key of ``provider``; returns where it went (``"keyring"`` or a file source).

        ``store="auto"`` uses the keyring when a usable backend exists, else the file
        (mode 0600); ``"keyring"`` fails without a usable backend; ``"file"`` also removes
        a keyring entry that would otherwise shadow the file's key.
        """
        name = check_name(provider)
        if store not in ("auto", "keyring", "file"):
            raise ConfigurationError(f"invalid key store {store!r}: expected 'auto', 'keyring' or 'file'")
        key = coerce_field("api_key", key, "the key given for " + name)
        register_secret(key)
        if store != "file":
            backend, why = self._keyring.backend()
            if backend is not None and self._keyring.set(name, key):
                return _KEYRING
            if store == "keyring":
                fix = self._keyring.status()["fix"] or "store it in the config file (--store file)"
                why = why if backend is None else f"the backend {why} failed to store it"
                raise ConfigurationError(f"cannot store the key for {name} in the keyring: {why}", hint=fix)
        section = self._provider_section(name)
        self.set_value(section, "api_key", key)
        if store == "file" and self._keyring.delete(name):
            logger.info("removed the keyring entry for %s so that the key in %s takes effect", name, self.path)
        return f"file:{self.path} [{section}]"

    def _stored_key(self, name: str, defaults: Optional[Mapping[str, Any]]) -> Found:
        snap = self._file()
        section = snap.provider_section(name) if snap is not None else None
        return self._lookup("api_key", name, {}, defaults or {}, snap, section)

    def get_key(self, provider: str, *, defaults: Optional[Mapping[str, Any]] = None) -> Optional[str]:
        """The key ``provider`` would use: environment > keyring > file > defaults (None if none)."""
        found = self._stored_key(check_name(provider), defaults)
        return found[0] if found else None

    def delete_key(self, provider: str) -> List[str]:
        """Remove the stored key of ``provider`` from the keyring and the file; returns where from."""
        name = check_name(provider)
        removed = [_KEYRING] if self._keyring.delete(name) else []
        snap = self._file()
        section = snap.provider_section(name) if snap is not None else None
        if snap is not None and section and "api_key" in snap.sections[section]:
            source = snap.source(section)
            if self.unset_value(section, "api_key"):
                removed.append(source)
        return removed

    def key_sources(self, names: Optional[Iterable[str]] = None, *,
                    defaults: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Dict[str, str]:
        """Provider -> where its key comes from, for providers that have one (never the values).

        Looks at ``names``, the file's providers, the keys of ``defaults`` (provider
        name -> the provider's defaults, for its environment variables) and any
        ``MODELPROV_<NAME>_API_KEY`` variable (as ``name``, lower-cased).
        """
        defaults = defaults or {}
        wanted = list(names or []) + self.provider_names() + list(defaults)
        known_vars = {env_var_name(n, "API_KEY") for n in wanted}
        wanted += [v[10:-8].lower() for v in self.environ
                   if v.startswith("MODELPROV_") and v.endswith("_API_KEY") and len(v) > 18 and v not in known_vars]
        out: Dict[str, str] = {}
        for name in dict.fromkeys(check_name(n) for n in wanted):
            found = self._stored_key(name, defaults.get(name))
            if found is not None:
                out[name] = found[1]
        return out


_singleton: Singleton[ConfigManager] = Singleton(ConfigManager)


def get_config() -> ConfigManager:
    """The process-wide :class:`ConfigManager` (created on first use)."""
    return _singleton.get()


def reset_config() -> None:
    """Drop the process-wide manager and the permission-warning memory (for tests)."""
    _singleton.reset()
    _cf.clear_warnings()
