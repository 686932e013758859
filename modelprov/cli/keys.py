"""``modelprov keys set|get|delete|list|path``: API keys in the system keyring or the config file.

A key is never taken from the command line (it would land in the shell
history): ``set`` prompts with ``getpass`` on a terminal and reads piped
stdin otherwise. Only known providers are accepted (the built-ins, plugins
and the ``[provider:NAME]`` sections of the config file). Output names the
store used, by the keyring backend's name or the file's path, and never the
key itself, except ``get --show``.
"""

import argparse
import sys
from typing import Any, Dict, List

from .common import EXIT_OK, EXIT_USAGE, did_you_mean, is_terminal, note, out, warn

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Add the ``keys`` command group."""
    keys = sub.add_parser("keys", help="manage API keys (system keyring, else the config file)",
                          description="Store, show and remove API keys. Keys are read from a prompt or piped stdin, "
                          "never from the command line.")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    kset = ksub.add_parser("set", help="store a provider's key (prompted, or read from piped stdin)",
                           description="Store a key: typed at a hidden prompt, or piped: printf %%s KEY | modelprov keys set openai")
    kset.add_argument("name", metavar="PROVIDER", help="the provider (e.g. openai, anthropic, or a [provider:NAME] of the config)")
    kset.add_argument("extra", nargs="*", help=argparse.SUPPRESS)  # a key typed here is refused, never echoed
    kset.add_argument("--store", choices=("auto", "keyring", "file"), default="auto",
                      help="where to store it: the keyring when usable else the file (auto, the default), or force one")
    kget = ksub.add_parser("get", help="show whether a key is set and where it comes from (masked)")
    kget.add_argument("name", metavar="PROVIDER", help="the provider")
    kget.add_argument("--show", action="store_true", help="print the key itself (only the key, for scripts)")
    kdel = ksub.add_parser("delete", help="remove a provider's stored key (keyring and file)")
    kdel.add_argument("name", metavar="PROVIDER", help="the provider")
    ksub.add_parser("list", help="every provider and where its key comes from")
    ksub.add_parser("path", help="where keys are stored: the keyring backend and the config file")
    keys.set_defaults(run=run, keys_parser=keys)


def run(args: argparse.Namespace) -> int:
    """Run ``keys``."""
    action = getattr(args, "keys_command", None)
    if action is None:
        args.keys_parser.print_help(sys.stderr)
        return EXIT_USAGE
    return {"set": _set, "get": _get, "delete": _delete, "list": _list, "path": _path}[action](args)


# ------------------------------------------------------------------ helpers
def _known() -> List[str]:
    from ..config.manager import get_config
    from ..registry import get_registry

    return sorted(set(get_registry().list()) | set(get_config().provider_names()))


def _check_provider(name: str) -> str:
    from ..exceptions import ConfigurationError

    known = _known()
    if name in known:
        return name
    hint = did_you_mean(name, known)
    add = f"to add a server of your own first: modelprov config set provider.{name}.type openai_compatible"
    raise ConfigurationError(f"unknown provider {name!r}", hint=f"{hint} ({add})" if hint else f"known providers: {', '.join(known)}; {add}")


def _defaults(name: str) -> Dict[str, Any]:
    from ..config.manager import get_config
    from ..exceptions import ConfigurationError
    from ..registry import get_registry

    try:
        type_name = get_config().provider_type(name) or name
        defaults: Dict[str, Any] = get_registry().get_class(type_name).config_defaults()
    except ConfigurationError:
        return {}
    defaults["type"] = type_name
    return defaults


def _env_vars(name: str) -> List[str]:
    """The environment variables that would give ``name`` a key, in the order they win."""
    from ..config.manager import env_var_name

    own = list(_defaults(name).get("api_key_env") or ())
    return [env_var_name(name, "API_KEY")] + own


def _env_override(name: str) -> str:
    """The variable that sets a key for ``name`` right now (it wins over any stored key), or ``""``."""
    from ..config.manager import get_config

    env = get_config().environ
    return next((v for v in _env_vars(name) if (env.get(v) or "").strip()), "")


def _store_label(where: str) -> str:
    """``keyring (SecretService Keyring)`` or the file path, for a source returned by the config manager."""
    from ..config.manager import get_config

    if where == "keyring":
        return f"keyring ({get_config().keyring_status()['backend']})"
    if where.startswith("file:"):
        return where[5:].split(" [", 1)[0]
    return where


def _read_secret(name: str) -> str:
    from ..exceptions import ValidationError

    how = f"type it at the prompt, or pipe it: printf %s KEY | modelprov keys set {name}"
    if sys.stdin is None:
        raise ValidationError("no key given: stdin is closed", hint=how)
    if is_terminal(sys.stdin):
        import getpass

        value = getpass.getpass(f"API key for {name} (input hidden): ")
    else:
        try:
            value = sys.stdin.read()
        except (OSError, ValueError):
            value = ""
        lines = [line.strip() for line in value.splitlines() if line.strip()]
        if len(lines) > 1:
            raise ValidationError("stdin holds more than one line; expected only the key", hint=how)
        value = lines[0] if lines else ""
    if not value.strip():
        raise ValidationError("no key given", hint=how)
    return value.strip()


# ------------------------------------------------------------------ actions
def _set(args: argparse.Namespace) -> int:
    from ..config.manager import get_config
    from ..exceptions import ConfigurationError

    if args.extra:
        from ..exceptions import ValidationError

        raise ValidationError("keys set takes no key on the command line (it would stay in the shell history)",
                              hint=f"run `modelprov keys set {args.name}` and type it at the prompt, or pipe it on stdin")
    name = _check_provider(args.name)
    cfg = get_config()
    status = cfg.keyring_status()
    if args.store == "keyring" and not status["usable"]:
        raise ConfigurationError(f"cannot use the keyring: {status['backend']}", hint=f"{status['fix']}")
    key = _read_secret(name)
    where = cfg.set_key(name, key, store=args.store)
    if where != "keyring" and args.store == "auto" and status["installed"]:
        note(f"the keyring has {status['backend']}, so the key went to the config file; to use the keyring: {status['fix']}")
    out(f"stored the key for {name} in {_store_label(where)}")
    var = _env_override(name)
    if var:
        warn(f"{var} is set in the environment and wins over the stored key; unset it to use the stored one")
    return EXIT_OK


def _get(args: argparse.Namespace) -> int:
    from .._redact import mask_key
    from ..config.manager import get_config
    from ..exceptions import ConfigurationError

    name = _check_provider(args.name)
    cfg = get_config()
    defaults = _defaults(name)
    key = cfg.get_key(name, defaults=defaults)
    if key is None:
        raise ConfigurationError(f"no key is set for {name}",
                                 hint=f"set {' or '.join(_env_vars(name))}, or run: modelprov keys set {name}")
    if args.show:
        out(key)
        return EXIT_OK
    source = cfg.key_sources([name], defaults={name: defaults}).get(name, "?")
    out(f"{name}: {mask_key(key)} (from {_store_label(source)})")
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    from ..config.manager import get_config

    name = _check_provider(args.name)
    removed = get_config().delete_key(name)
    if removed:
        out(f"deleted the key for {name} from {' and '.join(_store_label(w) for w in removed)}")
    else:
        out(f"no stored key for {name}: nothing to delete")
    var = _env_override(name)
    if var:
        note(f"{var} in the environment still gives {name} a key")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from ..config.manager import get_config

    names = _known()
    defaults = {n: _defaults(n) for n in names}
    sources = get_config().key_sources(names, defaults=defaults)
    width = max(len(n) for n in names)
    for name in names:
        if name in sources:
            text = _store_label(sources[name])
        else:
            needs = _needs_key(defaults[name].get("type") or name)
            text = "not set" if needs else "not needed"
        out(f"{name.ljust(width)}  {text}")
    return EXIT_OK


def _needs_key(type_name: str) -> bool:
    from ..exceptions import ConfigurationError
    from ..registry import get_registry

    try:
        return bool(get_registry().get_class(type_name).requires_api_key)
    except ConfigurationError:
        return False


def _path(args: argparse.Namespace) -> int:
    from ..config.manager import get_config

    cfg = get_config()
    status = cfg.keyring_status()
    if status["usable"]:
        out(f"keyring: {status['backend']} (service 'modelprov', user = provider name)")
    else:
        out(f"keyring: not usable: {status['backend']}")
        if status["fix"]:
            out(f"  fix: {status['fix']}")
    out(f"file: {cfg.path}")
    return EXIT_OK
