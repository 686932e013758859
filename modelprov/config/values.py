"""Validation and coercion of configuration values (private helper of :mod:`modelprov.config`).

Every value that reaches a :class:`~modelprov.types.ProviderConfig` passes
through :func:`coerce_field`, whatever its source (an explicit argument, an
environment variable, the keyring, the config file or a provider default).
Strings from the environment and the INI file are turned into the field's
type; a bad value raises :class:`~modelprov.exceptions.ConfigurationError`
naming the key, the source it came from and what was expected. An API key is
never shown in a message. Also the small helpers the manager shares (names, pairs, the
:class:`Resolved` record). Standard library only.
"""

import math
import os
import re
from dataclasses import fields
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from .._redact import SECRET_HEADERS, redact, register_secret
from ..exceptions import ConfigurationError
from ..types import ProviderConfig
from . import file as _cf

__all__ = [
    "BAD_NAME",
    "BOOL_FIELDS",
    "FIELDS",
    "Found",
    "GLOBAL_KEYS",
    "INHERITED_KEYS",
    "RATE_FIELDS",
    "Resolved",
    "TIMEOUT_FIELDS",
    "alias_target",
    "check_name",
    "check_target",
    "coerce_field",
    "env_var_name",
    "names_of",
    "pairs",
    "parse_bool",
    "to_text",
    "validate_for_file",
    "validate_header",
    "validate_text",
]

#: The scalar ProviderConfig fields a source can set (not name, headers, options).
FIELDS = tuple(f.name for f in fields(ProviderConfig) if f.name not in ("name", "headers", "options"))
TIMEOUT_FIELDS = ("timeout", "connect_timeout", "read_timeout", "idle_timeout")
#: Timeouts that may be switched off with ``none``.
_OPTIONAL_TIMEOUTS = ("timeout", "idle_timeout")
BOOL_FIELDS = ("trust_env", "use_truststore", "drop_unsupported")
#: Keys the ``[modelprov]`` section understands.
RATE_FIELDS = ("rpm", "tpm")
GLOBAL_KEYS = ("default_model",) + TIMEOUT_FIELDS + ("proxy", "verify", "cert", "pool_size") + BOOL_FIELDS
#: Global keys that every provider inherits unless its own section sets them.
INHERITED_KEYS = tuple(k for k in GLOBAL_KEYS if k != "default_model")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Characters a provider or section name may not contain.
BAD_NAME = re.compile(r"[\[\]\x00-\x1f\x7f]")
#: A resolved ``(value, source)``, or None when no source had one.
Found = Optional[Tuple[Any, str]]


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return repr(redact(text)) if isinstance(value, str) else redact(text)


def _bad(key: str, value: Any, where: str, expected: str, *, secret: bool = False) -> ConfigurationError:
    shown = "" if secret else " " + _shown(value)
    return ConfigurationError(f"invalid {key}{shown} in {where}: expected {expected}")


def validate_text(key: str, value: Any, where: str, *, secret: bool = False, multiline: bool = False) -> str:
    """Return ``value`` stripped; it must be a string without control characters."""
    if not isinstance(value, str):
        raise _bad(key, value, where, "a string", secret=secret)
    text = value.strip()
    check = text.replace("\n", "").replace("\t", "") if multiline else text
    if _CONTROL.search(check):
        raise _bad(key, value, where, "a single line of text without control characters", secret=secret)
    return text


def parse_bool(key: str, value: Any, where: str) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any case) or a real bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _bad(key, value, where, "true or false")


def _timeout(key: str, value: Any, where: str) -> Optional[float]:
    optional = key in _OPTIONAL_TIMEOUTS
    expected = "a number of seconds greater than 0" + (" (or 'none')" if optional else "")
    if isinstance(value, str) and optional and value.strip().lower() == "none":
        return None
    if isinstance(value, bool):
        raise _bad(key, value, where, expected)
    try:
        seconds = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _bad(key, value, where, expected) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise _bad(key, value, where, expected)
    return seconds


def _pool_size(key: str, value: Any, where: str) -> int:
    expected = "a whole number of connections, 1 or more"
    if isinstance(value, bool) or isinstance(value, float):
        raise _bad(key, value, where, expected)
    try:
        size = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _bad(key, value, where, expected) from None
    if size < 1:
        raise _bad(key, value, where, expected)
    return size


def _rate(key: str, value: Any, where: str) -> Optional[float]:
    expected = "a number per minute greater than 0 (or 'none')"
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    if isinstance(value, bool):
        raise _bad(key, value, where, expected)
    try:
        rate = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _bad(key, value, where, expected) from None
    if not math.isfinite(rate) or rate <= 0:
        raise _bad(key, value, where, expected)
    return rate


def _url(key: str, value: Any, where: str, schemes: Tuple[str, ...], bare_ok: bool = False) -> str:
    from urllib.parse import urlsplit

    expected = f"a URL starting with {' or '.join(s + '://' for s in schemes)} and naming a host"
    text = validate_text(key, value, where)
    if bare_ok and "://" not in text and not re.search(r"\s", text):
        # host[:port] style (OLLAMA_HOST): left for the provider's own normaliser
        return text
    if re.search(r"\s", text):
        raise _bad(key, value, where, expected)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise _bad(key, value, where, expected) from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise _bad(key, value, where, expected)
    return text


def _verify(key: str, value: Any, where: str) -> Union[bool, str]:
    expected = "true, false, or the path of an existing CA bundle file or directory"
    if isinstance(value, bool):
        return value
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise _bad(key, value, where, expected)
    if value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    path = os.path.expanduser(value.strip())
    if not os.path.exists(path):
        raise _bad(key, value, where, expected)
    return path


def _cert(key: str, value: Any, where: str) -> Union[str, Tuple[str, str]]:
    expected = "the path of a client certificate file, or 'cert_file, key_file'"
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        items = [p.strip() for p in value.split(",")]
    elif isinstance(value, (tuple, list)):
        items = [os.fspath(p).strip() if isinstance(p, (str, os.PathLike)) else p for p in value]
    else:
        raise _bad(key, value, where, expected)
    if len(items) not in (1, 2) or not all(isinstance(p, str) and p for p in items):
        raise _bad(key, value, where, expected)
    paths = [os.path.expanduser(p) for p in items]
    for path in paths:
        if not os.path.isfile(path):
            raise _bad(key, value, where, expected + f" (no file at {path!r})")
    return paths[0] if len(paths) == 1 else (paths[0], paths[1])


def _api_key(key: str, value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(key, value, where, "a string", secret=True)
    text = value.strip()
    if not text.isascii() or re.search(r"[\s\x00-\x1f\x7f]", text):
        raise _bad(key, value, where, "printable ASCII without spaces (check for a stray quote or line break)", secret=True)
    return text


def coerce_field(key: str, value: Any, where: str) -> Any:
    """Validate one :class:`~modelprov.types.ProviderConfig` field and convert it to the field's type.

    :param key: the field name (``timeout``, ``verify``...).
    :param value: a string (env, file) or an already typed value (explicit, defaults).
    :param where: the source, shown in errors (``"explicit"``, ``"env:OPENAI_BASE_URL"``...).

    A ``base_url`` with a scheme must be http(s) with a host; one without
    ``://`` (``host:port``, as in ``OLLAMA_HOST``) is returned unchanged for the
    provider to normalise.
    :raises ConfigurationError: naming the key, the source and what was expected.
    """
    if key == "api_key":
        return _api_key(key, value, where)
    if key in TIMEOUT_FIELDS:
        return _timeout(key, value, where)
    if key == "pool_size":
        return _pool_size(key, value, where)
    if key in RATE_FIELDS:
        return _rate(key, value, where)
    if key in BOOL_FIELDS:
        return parse_bool(key, value, where)
    if key == "base_url":
        return _url(key, value, where, ("http", "https"), bare_ok=True)
    if key == "proxy":
        return _url(key, value, where, _PROXY_SCHEMES)
    if key == "verify":
        return _verify(key, value, where)
    if key == "cert":
        return _cert(key, value, where)
    return validate_text(key, value, where)


def validate_header(name: str, value: Any, where: str) -> Tuple[str, str]:
    """Check a header name (an HTTP token) and value (one line); return them stripped."""
    name = name.strip()
    if not _HEADER_NAME.match(name):
        raise _bad("header name", name, where, "an HTTP header name (letters, digits and -)")
    if not isinstance(value, str) or _CONTROL.search(value.strip()):
        raise ConfigurationError(f"invalid value for header {name} in {where}: expected one line of text")
    return name, value.strip()


def env_var_name(provider: str, suffix: str) -> str:
    """``MODELPROV_<NAME>_<SUFFIX>``: the name upper-cased, anything not a letter or digit made ``_``."""
    return f"MODELPROV_{re.sub(r'[^A-Za-z0-9]', '_', provider).upper()}_{suffix}"


def check_name(name: Any) -> str:
    """A provider name, stripped; no brackets or control characters."""
    if not isinstance(name, str) or not name.strip() or BAD_NAME.search(name):
        raise ConfigurationError(f"invalid provider name {name!r}: expected a non-empty name without brackets")
    return name.strip()


def names_of(value: Any) -> Tuple[str, ...]:
    """A variable name or a sequence of them, as a tuple."""
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def pairs(value: Any, what: str, where: str) -> List[Tuple[str, Any]]:
    """A mapping or a sequence of (name, value) pairs, as a list of pairs."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.items())
    try:
        return [(k, v) for k, v in value]
    except (TypeError, ValueError):
        raise ConfigurationError(f"invalid {what} in {where}: expected a mapping or (name, value) pairs") from None


def to_text(value: Any) -> str:
    """A value as it is written to the INI file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ", ".join(os.fspath(v) for v in value)
    if isinstance(value, os.PathLike):
        return os.fsdecode(value)
    return str(value)


class Resolved:
    """The values, sources, headers and options resolved for one provider."""

    __slots__ = ("values", "sources", "headers", "options")

    def __init__(self) -> None:
        self.values: Dict[str, Any] = {}
        self.sources: Dict[str, str] = {}
        self.headers: Dict[str, Tuple[str, str, str]] = {}  # lower-case name -> (name, value, source)
        self.options: Dict[str, Tuple[Any, str]] = {}

    def add_header(self, name: str, value: Any, source: str, where: str) -> None:
        """Validate and record a header (a later call for the same name wins)."""
        name, text = validate_header(name, value, where)
        self.headers[name.lower()] = (name, text, source)
        if name.lower() in SECRET_HEADERS:
            register_secret(text)


def check_target(section: Any, key: Any) -> Tuple[str, str]:
    """Canonical ``(section, key)`` for writing; rejects names that would break the INI file."""
    sec = _cf.canonical_section(section) if isinstance(section, str) else ""
    if not sec or BAD_NAME.search(sec) or sec == _cf.PROVIDER_PREFIX:
        raise ConfigurationError(f"invalid section name {section!r}")
    k = _cf.normalize_key(key) if isinstance(key, str) else ""
    if not k or re.search(r"[=:\x00-\x1f\x7f]", k) or k[0] in "#;[" or k == _cf.HEADER_PREFIX:
        raise ConfigurationError(f"invalid key {key!r} for [{sec}]: expected a name without '=', ':' or line breaks")
    return sec, k


def validate_for_file(section: str, key: str, text: str, where: str) -> None:
    """Check a value about to be written to ``[section]`` (known keys by type, others as one line)."""
    provider = section.startswith(_cf.PROVIDER_PREFIX)
    if provider and key.startswith(_cf.HEADER_PREFIX):
        validate_header(key[len(_cf.HEADER_PREFIX) :], text, where)
    elif (provider and key in FIELDS) or (section == _cf.GLOBAL_SECTION and key in GLOBAL_KEYS):
        value = coerce_field(key, text, where)
        if key == "api_key":
            register_secret(value)
    else:
        validate_text(key, text, where, secret=key == "api_key")


def alias_target(table: Mapping[str, str], model: str, where: str) -> str:
    """One level of alias resolution; a target that is itself an alias (chain or loop) is an error."""
    key = model.strip().lower()
    if key not in table:
        return model
    target = table[key]
    if target.lower() not in table:
        return target
    chain = [key]
    current = target
    while current.lower() in table and current.lower() not in chain:
        chain.append(current.lower())
        current = table[current.lower()]
    hint = "Point each alias at a provider/model string"
    if current.lower() in chain:
        raise ConfigurationError(f"alias loop in {where}: {' -> '.join(chain + [current])}", hint=hint)
    raise ConfigurationError(
        f"alias {key!r} in {where} points to another alias {target!r}; aliases resolve one level only", hint=hint
    )
