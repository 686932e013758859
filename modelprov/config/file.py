"""The modelprov INI file: where it lives, reading it, checking it, rewriting it safely.

Private helper of :mod:`modelprov.config`; standard library only.

* :func:`default_config_path` finds the file (``$MODELPROV_CONFIG`` or the
  platform config directory).
* :func:`load_snapshot` parses it into a :class:`ConfigSnapshot` (sections
  with canonical names, values, and the line number of every key), turning
  ``configparser`` errors into :class:`~modelprov.exceptions.ConfigurationError`
  that name the file and the line but never quote it (the line may hold a key).
  It warns once per file and modification time when the file holds a secret
  and group or others can read it.
* :func:`update_value` sets or removes one key by editing lines in place, so
  comments, order and other sections survive, and replaces the file
  atomically (temporary file in the same directory, ``fsync``, ``os.replace``)
  with mode 0600 (0700 for a directory it creates).
"""

import configparser
import io
import os
import stat
import sys
import threading
import warnings
from typing import Dict, List, Mapping, Optional, Set, Tuple

from .._log import get_logger
from .._redact import SECRET_HEADERS
from ..exceptions import ConfigurationError

__all__ = [
    "ALIASES_SECTION",
    "ConfigSnapshot",
    "GLOBAL_SECTION",
    "HEADER_PREFIX",
    "PROVIDER_PREFIX",
    "canonical_section",
    "default_config_path",
    "load_snapshot",
    "normalize_key",
    "platform_config_path",
    "stat_signature",
    "update_value",
]

logger = get_logger("config")

GLOBAL_SECTION = "modelprov"
ALIASES_SECTION = "aliases"
PROVIDER_PREFIX = "provider:"
HEADER_PREFIX = "header."
_FILE_NAME = "config.ini"

Signature = Tuple[int, int, int, int, int, int]

_WRITE_LOCK = threading.Lock()
_WARN_LOCK = threading.Lock()
_warned: Set[Tuple[str, int]] = set()


def platform_config_path(environ: Optional[Mapping[str, str]] = None, platform: Optional[str] = None) -> str:
    """The per-user config file for this platform (ignores ``MODELPROV_CONFIG``).

    Linux and other Unix: ``$XDG_CONFIG_HOME/modelprov/config.ini`` or
    ``~/.config/modelprov/config.ini``; macOS: ``~/Library/Application
    Support/modelprov/config.ini``; Windows: ``%APPDATA%\\modelprov\\config.ini``.
    """
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if plat.startswith("win"):
        import ntpath

        base = env.get("APPDATA") or ntpath.join(env.get("USERPROFILE") or os.path.expanduser("~"), "AppData", "Roaming")
        return ntpath.join(base, "modelprov", _FILE_NAME)
    import posixpath

    home = env.get("HOME") or os.path.expanduser("~")
    if plat == "darwin":
        return posixpath.join(home, "Library", "Application Support", "modelprov", _FILE_NAME)
    xdg = env.get("XDG_CONFIG_HOME") or ""
    base = xdg if posixpath.isabs(xdg) else posixpath.join(home, ".config")
    return posixpath.join(base, "modelprov", _FILE_NAME)


def default_config_path(environ: Optional[Mapping[str, str]] = None, platform: Optional[str] = None) -> str:
    """``$MODELPROV_CONFIG`` (``~`` expanded) when set and not empty, else :func:`platform_config_path`."""
    env = os.environ if environ is None else environ
    explicit = (env.get("MODELPROV_CONFIG") or "").strip()
    if explicit:
        return os.path.expanduser(explicit)
    return platform_config_path(env, platform)


def normalize_key(key: str) -> str:
    """Keys are case-insensitive (lower-cased), except the header name after ``header.``."""
    key = key.strip()
    if key[: len(HEADER_PREFIX)].lower() == HEADER_PREFIX:
        return HEADER_PREFIX + key[len(HEADER_PREFIX) :].strip()
    return key.lower()


def canonical_section(name: str) -> str:
    """``provider:NAME`` (name stripped, case kept), ``modelprov``/``aliases`` lower-cased, others stripped."""
    text = name.strip()
    if text[: len(PROVIDER_PREFIX)].lower() == PROVIDER_PREFIX:
        return PROVIDER_PREFIX + text[len(PROVIDER_PREFIX) :].strip()
    if text.lower() in (GLOBAL_SECTION, ALIASES_SECTION):
        return text.lower()
    return text


class _Parser(configparser.RawConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return normalize_key(optionstr)


def _new_parser() -> _Parser:
    # A private default section, so that a [DEFAULT] in the file is just an ignored section
    # instead of leaking its keys (maybe an api_key) into every provider.
    return _Parser(strict=True, default_section="\x00modelprov-defaults")


class _Span:
    __slots__ = ("header", "end", "options")

    def __init__(self, header: int) -> None:
        self.header = header  # 0-based index of the [section] line
        self.end = header + 1  # index after the section's last key or continuation line
        self.options: Dict[str, Tuple[int, int]] = {}  # key -> (first line, end) 0-based


def _scan(lines: List[str], headers: Optional[List[Tuple[str, int]]] = None) -> Dict[str, _Span]:
    """Locate sections and keys the way ``configparser`` reads them (valid files only).

    ``headers``, when given, receives every (canonical section, 0-based line) in order.
    """
    spans: Dict[str, _Span] = {}
    current: Optional[_Span] = None
    key: Optional[str] = None
    indent_level = 0
    for i, line in enumerate(lines):
        value = line.strip()
        if not value or value.startswith(("#", ";")):
            continue
        indent = len(line) - len(line.lstrip())
        if current is not None and key is not None and indent > indent_level:
            current.options[key] = (current.options[key][0], i + 1)
            current.end = i + 1
            continue
        indent_level = indent
        match = _Parser.SECTCRE.match(value)
        if match:
            name = canonical_section(match.group("header"))
            current = spans.setdefault(name, _Span(i))
            if headers is not None:
                headers.append((name, i))
            key = None
            continue
        match = _Parser.OPTCRE.match(value)
        if current is None or not match:
            continue
        key = normalize_key(match.group("option"))
        current.options[key] = (i, i + 1)
        current.end = i + 1
    return spans


class ConfigSnapshot:
    """One parsed state of the config file: canonical sections, values, key line numbers."""

    def __init__(self, path: str, text: str, signature: Optional[Signature], mode: int) -> None:
        self.path = path
        self.signature = signature
        self.mode = mode
        self.sections: Dict[str, Dict[str, str]] = {}
        self._lines: Dict[Tuple[str, str], int] = {}
        self._parse(text)

    def _error(self, line: Optional[int], what: str, hint: Optional[str] = None) -> ConfigurationError:
        where = f"config file {self.path}" + (f", line {line}" if line else "")
        return ConfigurationError(f"{where}: {what}", hint=hint)

    def _parse(self, text: str) -> None:
        parser = _new_parser()
        hint = "Fix the line or remove the file; see the Configuration section of the docs"
        try:
            parser.read_file(io.StringIO(text), source=self.path)
        except configparser.MissingSectionHeaderError as exc:
            raise self._error(exc.lineno, "a setting comes before any [section] header", hint) from None
        except configparser.DuplicateSectionError as exc:
            raise self._error(exc.lineno, f"section [{exc.section}] appears twice", hint) from None
        except configparser.DuplicateOptionError as exc:
            raise self._error(exc.lineno, f"key {exc.option!r} appears twice in [{exc.section}]", hint) from None
        except configparser.ParsingError as exc:
            numbers = sorted({int(n) for n, _ in getattr(exc, "errors", [])})
            label = "line" if len(numbers) == 1 else "lines"
            where = f"config file {self.path}, {label} {', '.join(map(str, numbers))}"
            raise ConfigurationError(f"{where}: expected 'key = value' or a [section] header", hint=hint) from None
        except configparser.Error as exc:
            raise self._error(getattr(exc, "lineno", None), f"malformed ({type(exc).__name__})", hint) from None
        headers: List[Tuple[str, int]] = []
        spans = _scan(text.split("\n"), headers)
        seen: Set[str] = set()
        for name, index in headers:
            if name == PROVIDER_PREFIX:
                raise self._error(index + 1, "a [provider:NAME] section needs a name")
            if name in seen:
                raise self._error(index + 1, f"section [{name}] appears twice (perhaps spelled with different spacing or case)")
            seen.add(name)
        for raw in parser.sections():
            name = canonical_section(raw)
            self.sections[name] = {k: v for k, v in parser.items(raw) if v is not None}
            for key, (start, _end) in (spans[name].options.items() if name in spans else ()):
                self._lines[(name, key)] = start + 1

    def section(self, name: str) -> Dict[str, str]:
        """The keys of a section (canonical name), or an empty dict."""
        return self.sections.get(canonical_section(name), {})

    def provider_section(self, name: str) -> Optional[str]:
        """The canonical section name for provider ``name`` (exact match, else case-insensitive)."""
        wanted = PROVIDER_PREFIX + name.strip()
        if wanted in self.sections:
            return wanted
        lowered = [s for s in self.sections if s.lower() == wanted.lower()]
        return lowered[0] if len(lowered) == 1 else None

    def provider_names(self) -> List[str]:
        """Names of the ``[provider:NAME]`` sections, in file order."""
        return [s[len(PROVIDER_PREFIX) :] for s in self.sections if s.startswith(PROVIDER_PREFIX)]

    def source(self, section: str) -> str:
        """The provenance label of a section: ``file:<path> [<section>]``."""
        return f"file:{self.path} [{section}]"

    def where(self, section: str, key: str) -> str:
        """The provenance label plus the key's line, for error messages."""
        line = self._lines.get((section, key))
        return self.source(section) + (f" line {line}" if line else "")

    def holds_secret(self) -> bool:
        """True when any section sets ``api_key`` or a credential header."""
        return any(_is_secret_key(k, v) for values in self.sections.values() for k, v in values.items())


def _is_secret_key(key: str, value: str) -> bool:
    if not value.strip():
        return False
    if key == "api_key":
        return True
    return key.startswith(HEADER_PREFIX) and key[len(HEADER_PREFIX) :].lower() in SECRET_HEADERS


def _signature(st: os.stat_result) -> Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


def stat_signature(path: str) -> Optional[Signature]:
    """What decides whether the cached parse is stale; ``None`` when the file does not exist."""
    try:
        return _signature(os.stat(path))
    except OSError:
        return None


def _read(path: str) -> Optional[Tuple[str, os.stat_result]]:
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(21, "is a directory")
            raw = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        return raw.decode("utf-8-sig"), st
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigurationError(f"config file {path}, line {line}: not valid UTF-8 text") from None


def load_snapshot(path: str) -> Optional[ConfigSnapshot]:
    """Parse the file at ``path``; ``None`` if it does not exist.

    :raises ConfigurationError: unreadable or malformed file (names file and line).
    """
    found = _read(path)
    if found is None:
        return None
    text, st = found
    snapshot = ConfigSnapshot(path, text, _signature(st), stat.S_IMODE(st.st_mode))
    logger.debug("read config file %s (%d sections)", path, len(snapshot.sections))
    if snapshot.holds_secret():
        _check_permissions(path, st)
    return snapshot


def _check_permissions(path: str, st: os.stat_result) -> None:
    if os.name == "nt" or not st.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        return
    marker = (os.path.abspath(path), st.st_mtime_ns)
    with _WARN_LOCK:
        if marker in _warned:
            return
        _warned.add(marker)
    message = (
        f"config file {path} holds an API key but other users can read it "
        f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}` to fix it"
    )
    logger.warning("%s", message)
    warnings.warn(message, UserWarning, stacklevel=4)


def clear_warnings() -> None:
    """Forget which files were already warned about (for tests)."""
    with _WARN_LOCK:
        _warned.clear()


def _edit(text: str, section: str, key: str, value: Optional[str]) -> str:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # text ended with a newline
    crlf = bool(lines) and lines[0].endswith("\r")
    new = f"{key} = {value}" if value else f"{key} ="
    if crlf:
        new += "\r"
    span = _scan(lines).get(section)
    if value is None:
        if span is None or key not in span.options:
            return text
        start, end = span.options[key]
        del lines[start:end]
        if len(span.options) == 1:  # the section is now empty: drop its header (comments stay)
            kept = [line for line in lines[span.header + 1 : start] if line.strip()]
            first = span.header - 1 if span.header > 0 and not lines[span.header - 1].strip() else span.header
            lines[first:start] = kept
    elif span is None:
        if lines and lines[-1].strip():
            lines.append("\r" if crlf else "")
        lines += [f"[{section}]" + ("\r" if crlf else ""), new]
    elif key in span.options:
        start, end = span.options[key]
        lines[start:end] = [new]
    else:
        lines.insert(span.end, new)
    return "\n".join(lines) + "\n" if lines else ""


def _ensure_dir(directory: str) -> None:
    if os.path.isdir(directory):
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if os.name != "nt":
        os.chmod(directory, 0o700)


def _atomic_write(path: str, text: str, mode: int) -> None:
    directory = os.path.dirname(path) or "."
    _ensure_dir(directory)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if hasattr(os, "O_DIRECTORY"):
        try:
            dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass


def update_value(path: str, section: str, key: str, value: Optional[str]) -> bool:
    """Set (or, with ``value=None``, remove) ``key`` in ``[section]`` and rewrite the file atomically.

    ``section`` and ``key`` must already be canonical (see :func:`canonical_section`,
    :func:`normalize_key`). A missing file (and directory) is created with mode
    0600 (0700); an existing file keeps its mode, minus group/other bits when
    it will hold a secret. A malformed file is refused, not overwritten.
    Removing the last key of a section removes the section header too (comments stay).
    Returns False when nothing had to change.
    """
    with _WRITE_LOCK:
        target = os.path.realpath(path)
        found = _read(target)
        text, mode = ("", 0o600) if found is None else (found[0], stat.S_IMODE(found[1].st_mode))
        if found is not None:
            ConfigSnapshot(path, text, None, mode)  # refuse to rewrite a malformed file
        new_text = _edit(text, section, key, value)
        if found is not None and new_text == text:
            return False
        if value is None and found is None:
            return False
        result = ConfigSnapshot(path, new_text, None, mode)
        if result.holds_secret():
            mode &= ~0o077
        try:
            _atomic_write(target, new_text, mode)
        except OSError as exc:
            raise ConfigurationError(f"cannot write config file {path}: {exc.strerror or type(exc).__name__}") from None
        logger.debug("%s %s in [%s] of %s", "removed" if value is None else "set", key, section, path)
        return True
