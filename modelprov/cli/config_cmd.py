"""``modelprov config path|show|get|set|unset``: the settings, their sources, and changing the file.

Keys on the command line:

* a ``[modelprov]`` key: ``default_model``, the timeouts, ``proxy``,
  ``verify``, ``cert``, ``pool_size``, ``trust_env``, ``use_truststore``,
  ``drop_unsupported``;
* ``aliases.NAME`` (a ``provider/model`` string);
* ``provider.NAME.FIELD``: a ProviderConfig field, ``header.Header-Name``,
  or an option the provider class declares;
* ``prices.PROVIDER/MODEL`` (``input=0.25 output=2.00 cached=0.025``, USD
  per million tokens).

Anything else is refused with "did you mean". ``set`` validates the value
with the library's own validators before writing; keys are refused (use
``modelprov keys``). ``show`` keeps going past an invalid value and marks it.
"""

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .common import EXIT_OK, EXIT_USAGE, did_you_mean, note, out, out_json

__all__ = ["Target", "parse_key", "register", "run"]


def register(sub: Any) -> None:
    """Add the ``config`` command group."""
    config = sub.add_parser("config", help="show or change configuration",
                            description="Show effective settings and their sources, or change the config file.")
    csub = config.add_subparsers(dest="config_command", metavar="ACTION")
    csub.add_parser("path", help="print the config file path")
    cshow = csub.add_parser("show", help="every effective setting and where it comes from (keys masked)")
    cshow.add_argument("provider", nargs="?", metavar="PROVIDER", help="show only this provider")
    cshow.add_argument("--all", action="store_true", help="show every registered provider, configured or not")
    cshow.add_argument("--json", action="store_true", help="print JSON instead of INI-like text")
    key_help = "default_model, timeout, aliases.NAME, provider.NAME.FIELD or prices.PROVIDER/MODEL"
    cget = csub.add_parser("get", help="print the effective value of KEY")
    cget.add_argument("key", metavar="KEY", help=key_help)
    cset = csub.add_parser("set", help="write KEY = VALUE to the config file (validated first)")
    cset.add_argument("key", metavar="KEY", help=key_help)
    cset.add_argument("value", metavar="VALUE", help="the value (e.g. 30, true, openai/gpt-5.4-mini)")
    cunset = csub.add_parser("unset", help="remove KEY from the config file")
    cunset.add_argument("key", metavar="KEY", help=key_help)
    config.set_defaults(run=run, config_parser=config)


def run(args: argparse.Namespace) -> int:
    """Run ``config``."""
    action = getattr(args, "config_command", None)
    if action is None:
        args.config_parser.print_help(sys.stderr)
        return EXIT_USAGE
    return {"path": _path, "show": _show, "get": _get, "set": _set, "unset": _unset}[action](args)


# --------------------------------------------------------------------- keys
@dataclass
class Target:
    """A parsed command-line key: the file section and key, and what kind of setting it is."""

    text: str
    kind: str  # "global", "alias", "price", "field", "header", "option"
    section: str
    key: str
    provider: Optional[str] = None


def _class_of(name: str) -> Any:
    from ..config.manager import get_config
    from ..registry import get_registry

    return get_registry().get_class(get_config().provider_type(name) or name)


def _option_keys(cls: Any) -> Tuple[List[str], bool]:
    """(option keys the class declares, whether it declares its full list)."""
    declared = getattr(cls, "option_keys", None)
    keys = set(getattr(cls, "option_env", None) or {}) | set(declared or ())
    return sorted(keys), declared is not None


def _bad(text: str, choices: List[str], hint: str) -> Exception:
    from ..exceptions import ConfigurationError

    close = did_you_mean(text, choices)
    return ConfigurationError(f"unknown config key {text!r}", hint=f"{close} ({hint})" if close else hint)


def parse_key(text: str, *, creating: bool = False) -> Target:
    """Parse and check a command-line key; unknown keys raise :class:`ConfigurationError` with "did you mean".

    ``creating`` (for ``set``) allows ``provider.NEW.type`` for a provider not configured yet.
    """
    from ..config.settings import PRICES_SECTION
    from ..config.values import FIELDS, GLOBAL_KEYS
    from ..exceptions import ConfigurationError
    from .keys import _known

    forms = "use a [modelprov] key (" + ", ".join(GLOBAL_KEYS) + "), aliases.NAME, provider.NAME.FIELD or prices.PROVIDER/MODEL"
    head, dot, rest = text.strip().partition(".")
    if not dot:
        if head.lower() in GLOBAL_KEYS:
            return Target(text, "global", "modelprov", head.lower())
        raise _bad(text, list(GLOBAL_KEYS) + ["aliases", "provider", "prices"], forms)
    head = head.lower()
    if head == "aliases" and rest.strip():
        return Target(text, "alias", "aliases", rest.strip().lower())
    if head == PRICES_SECTION and rest.strip():
        return Target(text, "price", PRICES_SECTION, rest.strip())
    if head != "provider":
        raise _bad(text, [f"{k}.{rest}" for k in ("aliases", "provider", "prices")] + list(GLOBAL_KEYS), forms)
    if ".header." in rest:
        name, _, header = rest.partition(".header.")
        field, kind = "header." + header.strip(), "header"
    else:
        name, _, field = rest.rpartition(".")
        field, kind = field.strip().lower(), "field"
    name = name.strip()
    if not name or not field or field == "header.":
        raise ConfigurationError(f"unknown config key {text!r}", hint="write provider.NAME.FIELD, e.g. provider.openai.timeout")
    known = _known()
    if name not in known:
        if creating and field == "type":
            return Target(text, "field", f"provider:{name}", "type", name)
        close = did_you_mean(name, known)
        add = f"to add a server of your own: modelprov config set provider.{name}.type openai_compatible"
        hint = f"{close} (or, {add})" if close else add
        raise ConfigurationError(f"unknown provider {name!r} in {text!r}", hint=hint)
    if kind == "header" or field in FIELDS:
        return Target(text, kind, f"provider:{name}", field, name)
    options, complete = _option_keys(_class_of(name))
    if field in options:
        return Target(text, "option", f"provider:{name}", field, name)
    choices = list(FIELDS) + options
    close = did_you_mean(field, choices)
    if complete or close:
        raise _bad(text, [f"provider.{name}.{c}" for c in choices], "fields: " + ", ".join(choices) + ", header.NAME")
    note(f"{field!r} is not a field modelprov knows; it is kept as a provider option of {name}")
    return Target(text, "option", f"provider:{name}", field, name)


def _secret(target: Target) -> bool:
    from .._redact import SECRET_HEADERS

    if target.kind == "field":
        return target.key == "api_key"
    return target.kind == "header" and target.key[len("header."):].strip().lower() in SECRET_HEADERS


def _defaults(name: str) -> Dict[str, Any]:
    from .keys import _defaults as defaults_of

    return defaults_of(name)


def _shown(value: Any) -> str:
    from .._redact import redact

    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value)
    return redact(str(value))


def _price_text(price: Dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in price.items())


# ------------------------------------------------------------------ actions
def _path(args: argparse.Namespace) -> int:
    from ..config.manager import get_config

    out(get_config().path)
    return EXIT_OK


def _get(args: argparse.Namespace) -> int:
    from ..config.manager import get_config
    from ..exceptions import ConfigurationError

    target = parse_key(args.key)
    if _secret(target):
        raise ConfigurationError(f"{args.key} is a secret and is not printed", hint=f"use: modelprov keys get {target.provider}")
    cfg = get_config()
    if target.kind == "global":
        item = cfg.global_values()[target.key]
    elif target.kind == "alias":
        item = {"value": cfg.aliases().get(target.key)}
    elif target.kind == "price":
        price = cfg.prices().get(target.key)
        item = {"value": _price_text(price) if price else None}
    else:
        shown = cfg.explain_all(str(target.provider), defaults=_defaults(str(target.provider)))
        item = shown.get(target.key if target.kind != "option" else f"option.{target.key}", {"value": None})
        if target.kind == "header":
            item = next((v for k, v in shown.items() if k.lower() == target.key.lower()), {"value": None})
    if "invalid" in item:
        raise ConfigurationError(f"{args.key} is invalid: {item['invalid']}")
    if item["value"] is not None:
        out(_shown(item["value"]))
    return EXIT_OK


def _check_value(target: Target, value: str) -> None:
    from ..config.settings import parse_price
    from ..exceptions import ConfigurationError

    if _secret(target):
        raise ConfigurationError(f"{target.text} is a secret: it is not set from the command line (it would land in "
                                 "the shell history)", hint=f"use: modelprov keys set {target.provider}"
                                 if target.kind == "field" else "edit the config file, or set it in code")
    if target.kind == "price":
        parse_price(target.key, value, f"prices.{target.key}")
    elif target.kind == "field" and target.key == "type":
        from ..registry import get_registry

        registry = get_registry()
        if value.strip() not in registry:
            raise registry.unknown_error(value.strip())
    elif target.kind == "alias" or (target.kind == "global" and target.key == "default_model"):
        provider, sep, model = value.strip().partition("/")
        if not sep or not model:
            raise ConfigurationError(f"invalid value for {target.text}: expected 'provider/model', e.g. openai/gpt-5.4-mini")
        from .keys import _check_provider

        _check_provider(provider)


def _set(args: argparse.Namespace) -> int:
    from ..config.manager import get_config

    target = parse_key(args.key, creating=True)
    _check_value(target, args.value)
    cfg = get_config()
    cfg.set_value(target.section, target.key, args.value)
    out(f"set {args.key} in {cfg.path}")
    if target.kind in ("global", "field"):
        from ..config.manager import env_var_name

        names = ["MODELPROV_MODEL"] if target.key == "default_model" else []
        if target.kind == "field" and target.key in ("base_url", "rpm", "tpm"):
            names = [env_var_name(str(target.provider), target.key.upper())]
            names += list(_defaults(str(target.provider)).get("base_url_env") or ()) if target.key == "base_url" else []
        var = next((n for n in names if (cfg.environ.get(n) or "").strip()), None)
        if var:
            from .common import warn

            warn(f"{var} is set in the environment and wins over the config file")
    return EXIT_OK


def _unset(args: argparse.Namespace) -> int:
    from ..config.manager import get_config

    target = parse_key(args.key)
    cfg = get_config()
    if cfg.unset_value(target.section, target.key):
        out(f"removed {args.key} from {cfg.path}")
    else:
        out(f"{args.key} is not set in {cfg.path}: nothing to remove")
    return EXIT_OK


# --------------------------------------------------------------------- show
def _prices_lenient(cfg: Any) -> Dict[str, Dict[str, Any]]:
    from ..config.settings import PRICES_SECTION, parse_price
    from ..exceptions import ConfigurationError

    snap = cfg._file()
    section = snap.section(PRICES_SECTION) if snap is not None else {}
    shown: Dict[str, Dict[str, Any]] = {}
    for key, text in section.items():
        try:
            shown[key] = {"value": _price_text(parse_price(key, text, snap.where(PRICES_SECTION, key))),
                          "source": snap.source(PRICES_SECTION)}
        except ConfigurationError as exc:
            shown[key] = {"value": None, "source": snap.source(PRICES_SECTION), "invalid": exc.message}
    return shown


def _show(args: argparse.Namespace) -> int:
    from ..config.manager import get_config
    from .catalog import provider_rows, selected_rows

    cfg = get_config()
    if args.provider:
        rows = selected_rows(args.provider)
    else:
        rows = [r for r in provider_rows() if args.all or r.selected or r.in_file]
    data: Dict[str, Any] = {
        "file": {"path": cfg.path, "exists": os.path.exists(cfg.path)},
        "modelprov": cfg.global_values(),
        "aliases": {k: {"value": v, "source": f"file:{cfg.path} [aliases]"} for k, v in cfg.aliases().items()},
        "prices": _prices_lenient(cfg),
        "providers": {},
    }
    for row in rows:
        fields = dict(row.fields)
        if row.error and not any("invalid" in v for v in fields.values()):
            fields["type"] = {"value": row.type, "source": "file", "invalid": row.error}
        data["providers"][row.name] = fields
    bad = [f"{title}.{key}: {item['invalid']}" for title, fields in [("modelprov", data["modelprov"]), ("prices", data["prices"])]
           + [(f"provider.{n}", f) for n, f in data["providers"].items()] for key, item in fields.items() if "invalid" in item]
    if args.json:
        out_json(data)
    else:
        _print_show(cfg, data, args)
    if bad:
        from ..exceptions import ConfigurationError

        more = f" (and {len(bad) - 1} more, marked above)" if len(bad) > 1 else ""
        raise ConfigurationError(f"invalid setting {bad[0]}{more}", hint="fix it with `modelprov config set KEY VALUE` or `config unset KEY`")
    return EXIT_OK


def _print_show(cfg: Any, data: Dict[str, Any], args: argparse.Namespace) -> None:
    out(f"# config file: {cfg.path}" + ("" if data["file"]["exists"] else " (not created yet)"))
    sections = [("modelprov", data["modelprov"]), ("aliases", data["aliases"]), ("prices", data["prices"])]
    sections += [(f"provider:{name}", fields) for name, fields in data["providers"].items()]
    for title, fields in sections:
        if not fields and title in ("aliases", "prices"):
            continue
        out(f"[{title}]")
        for key, item in fields.items():
            value = f"invalid: {item['invalid']}" if "invalid" in item else _shown(item["value"])
            out(f"  {key} = {value}    ({item.get('source', '?')})")
    if not data["providers"] and not args.provider:
        out("# no provider is configured; `modelprov config show PROVIDER` or --all shows any provider's settings")
