"""The ``modelprov`` commands. Each takes the parsed arguments and returns an exit code.

Output never contains a secret: keys are shown masked, and every error line
goes through the redactor in :mod:`modelprov.cli`.
"""

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Tuple

from .._redact import mask_key, redact
from ..exceptions import ConfigurationError, ModelProvError, ValidationError

__all__ = ["dispatch"]


def _out(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def _json(data: Any) -> None:
    _out(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _read_prompt(prompt: Optional[str]) -> str:
    if prompt is not None and prompt != "-":
        return prompt
    if sys.stdin is None or sys.stdin.isatty():
        raise ValidationError("no prompt given", hint='pass one (modelprov chat "Hello") or pipe it on stdin')
    text = sys.stdin.read().strip()
    if not text:
        raise ValidationError("the prompt read from stdin is empty")
    return text


def cmd_chat(args: argparse.Namespace) -> int:
    from ..client import Client

    prompt = _read_prompt(args.prompt)
    opts: Dict[str, Any] = {}
    if args.system:
        opts["system"] = args.system
    if args.temperature is not None:
        opts["temperature"] = args.temperature
    if args.max_tokens is not None:
        opts["max_tokens"] = args.max_tokens
    client = Client(fallbacks=args.fallback)
    if args.no_stream or args.json:
        resp = client.complete(args.model, prompt, **opts)
        if args.json:
            _json(
                {
                    "text": resp.text,
                    "model": resp.model,
                    "provider": resp.provider,
                    "finish_reason": resp.finish_reason,
                    "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in resp.tool_calls],
                    "usage": {"input_tokens": resp.usage.input_tokens, "output_tokens": resp.usage.output_tokens},
                    "request_id": resp.request_id,
                    "latency_s": resp.latency_s,
                }
            )
        else:
            _out(resp.text)
        return 0
    with client.stream(args.model, prompt, **opts) as chunks:
        for chunk in chunks:
            if chunk.text:
                _out(chunk.text, end="")
    _out()
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from ..client import Client

    found = Client().models(args.provider)
    if args.json:
        _json([{"id": m.id, "name": m.name, "context_length": m.context_length, "owned_by": m.owned_by} for m in found])
    else:
        for m in found:
            _out(f"{args.provider}/{m.id}")
    return 0


def cmd_providers(args: argparse.Namespace) -> int:
    from ..registry import get_registry

    rows = get_registry().available()
    if args.json:
        _json([{"name": r.name, "type": r.type, "configured": r.configured, "detail": redact(r.detail)} for r in rows])
        return 0
    width = max((len(r.name) for r in rows), default=4)
    for r in rows:
        mark = "ok " if r.configured else "-- "
        kind = f" ({r.type})" if r.type != r.name else ""
        _out(f"{mark}{r.name.ljust(width)}{kind}  {redact(r.detail)}")
    return 0


def _read_secret(name: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"API key for {name}: ")
    else:
        value = (sys.stdin.readline() if sys.stdin is not None else "").strip()
    if not value:
        raise ValidationError("no key given", hint=f"type it at the prompt, or pipe it: printf %s KEY | modelprov keys set {name}")
    return value


def cmd_keys(args: argparse.Namespace) -> int:
    from ..config.manager import get_config

    cfg = get_config()
    action = args.keys_command
    if action == "set":
        where = cfg.set_key(args.name, _read_secret(args.name), store=args.store)
        _out(f"stored the key for {args.name} in {where or 'the configured store'}")
    elif action == "get":
        key = cfg.get_key(args.name, defaults=_defaults(args.name))
        source = cfg.key_sources([args.name], defaults={args.name: _defaults(args.name)}).get(args.name, "not set")
        _out(f"{args.name}: {mask_key(key)} ({source})")
    elif action == "delete":
        cfg.delete_key(args.name)
        _out(f"deleted the stored key for {args.name}")
    elif action == "list":
        names = _provider_names()
        sources = cfg.key_sources(names, defaults={n: _defaults(n) for n in names})
        if not sources:
            _out("no keys are stored or set in the environment")
        for name, source in sorted(sources.items()):
            _out(f"{name}: {source}")
    else:
        raise ValidationError("keys needs an action: set, get, delete or list")
    return 0


def _is_secret_key(key: str) -> bool:
    """Config keys whose values may be credentials (compared case-insensitively, as configparser does)."""
    k = key.lower()
    return "api_key" in k or "apikey" in k or k.startswith("header") or "token" in k or "secret" in k or "password" in k


def _split_key(key: str) -> Tuple[str, str]:
    """``default_model`` -> ([modelprov], default_model); ``aliases.x``; ``provider.NAME.FIELD``."""
    parts = key.split(".")
    if len(parts) == 1:
        return "modelprov", parts[0]
    if parts[0] == "aliases" and len(parts) == 2:
        return "aliases", parts[1]
    if parts[0] == "provider" and len(parts) >= 3:
        return f"provider:{parts[1]}", ".".join(parts[2:])
    raise ValidationError(f"unknown config key {key!r}", hint="use default_model, aliases.NAME or provider.NAME.FIELD")


def cmd_config(args: argparse.Namespace) -> int:
    from ..config.manager import get_config

    cfg = get_config()
    action = args.config_command
    if action == "path":
        _out(str(cfg.path))
    elif action == "show":
        names = [args.provider] if args.provider else _provider_names()
        data: Dict[str, Any] = {
            "modelprov": {"default_model": {"value": cfg.default_model(), "source": cfg.default_model_source()}},
            "aliases": {k: {"value": v, "source": "file"} for k, v in cfg.aliases().items()},
        }
        for name in names:
            data[f"provider:{name}"] = cfg.explain(name, defaults=_defaults(name))
        if args.json:
            _json(data)
            return 0
        _out(f"# {cfg.path}")
        for section, fields in data.items():
            _out(f"[{section}]")
            for field, item in fields.items():
                value = "" if item["value"] is None else item["value"]
                _out(redact(f"  {field} = {value}    ({item['source']})"))
    elif action == "get":
        section, key = _split_key(args.key)
        if _is_secret_key(key):
            raise ValidationError("keys and headers are not printed", hint="use: modelprov keys get NAME")
        if section == "modelprov" and key == "default_model":
            _out(str(cfg.default_model() or ""))
        elif section == "aliases":
            _out(cfg.aliases().get(key, ""))
        else:
            value = cfg.get_value(section, key)
            _out("" if value is None else redact(value))
    elif action == "set":
        section, key = _split_key(args.key)
        if _is_secret_key(key):
            raise ValidationError("keys are not set from the command line (they would land in shell history)", hint="use: modelprov keys set NAME")
        cfg.set_value(section, key, args.value)
        _out(f"set {args.key} in {cfg.path}")
    elif action == "unset":
        section, key = _split_key(args.key)
        cfg.unset_value(section, key)
        _out(f"removed {args.key} from {cfg.path}")
    else:
        raise ValidationError("config needs an action: path, show, get, set or unset")
    return 0


def _provider_names() -> List[str]:
    from ..config.manager import get_config
    from ..registry import get_registry

    return sorted(set(get_registry().list()) | set(get_config().provider_names()))


def _defaults(name: str) -> Dict[str, Any]:
    from ..config.manager import get_config
    from ..registry import get_registry

    try:
        type_name = get_config().provider_type(name) or name
        defaults = get_registry().get_class(type_name).config_defaults()
        defaults["type"] = type_name
        return defaults
    except ConfigurationError:
        return {}


def cmd_doctor(args: argparse.Namespace) -> int:
    import platform

    from .._version import __version__
    from ..config.manager import get_config
    from ..registry import get_registry

    report: Dict[str, Any] = {"modelprov": __version__, "python": platform.python_version()}
    for mod in ("requests", "urllib3", "keyring", "truststore"):
        try:
            report[mod] = __import__(mod).__version__
        except Exception:
            report[mod] = "not installed"
    cfg = get_config()
    report["config_file"] = str(cfg.path)
    report["default_model"] = cfg.default_model() or "(none)"
    import os

    report["proxies"] = {k: redact(v) for k, v in os.environ.items() if k.lower().endswith("_proxy")}
    report["providers"] = {r.name: ("ok" if r.configured else redact(r.detail)) for r in get_registry().available()}
    if args.json:
        _json(report)
    else:
        for key, value in report.items():
            if isinstance(value, dict):
                _out(f"{key}:")
                for k, v in value.items():
                    _out(f"  {k}: {v}")
            else:
                _out(f"{key}: {value}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from ..client import Client

    try:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        requests: List[Dict[str, Any]] = []
        for lineno, line in enumerate(stream, 1):
            line = line.strip()
            if not line:
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise ValidationError(f"line {lineno} of the batch input is not JSON") from None
            if isinstance(item, list) and len(item) == 2:
                item = {"model": item[0], "messages": item[1]}
            if isinstance(item, str):
                item = {"messages": item, "model": args.model}
            elif isinstance(item, dict):
                if args.model:
                    item.setdefault("model", args.model)
            else:
                raise ValidationError(f"line {lineno}: expected a prompt string, a [model, prompt] pair or an object")
            requests.append(item)
    finally:
        if stream is not sys.stdin:
            stream.close()
    failed = 0
    for i, result in enumerate(Client().batch(requests, max_concurrency=args.concurrency)):
        if isinstance(result, ModelProvError):
            failed += 1
            _out(json.dumps({"index": i, "error": result.to_dict()}, ensure_ascii=False, default=str))
        elif isinstance(result, Exception):
            failed += 1
            _out(json.dumps({"index": i, "error": {"type": type(result).__name__, "message": redact(result)}}))
        else:
            _out(json.dumps({"index": i, "text": result.text, "model": result.model, "finish_reason": result.finish_reason}, ensure_ascii=False))
    return 1 if failed else 0


_COMMANDS = {
    "chat": cmd_chat,
    "models": cmd_models,
    "providers": cmd_providers,
    "keys": cmd_keys,
    "config": cmd_config,
    "doctor": cmd_doctor,
    "batch": cmd_batch,
}


def dispatch(args: argparse.Namespace) -> int:
    """Run the command named by ``args.command``."""
    return _COMMANDS[args.command](args)
