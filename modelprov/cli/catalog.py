"""``modelprov models`` and ``modelprov providers``, and the provider table ``doctor`` shares.

:func:`provider_rows` describes every registered or configured provider
without any network I/O: its type, where its key comes from (environment
variable, keyring, file, or not needed), base URL and capabilities. A
provider is *configured* when it can be called (a key where one is needed);
the commands that act on "all configured providers" (``models``,
``doctor``) take the providers in the config file, those with a key, and
key-less ones whose base URL was set in the environment or the file (so a
local server nobody set up is not probed on every run). Nothing here is
reported as working unless it was checked: ``providers`` says "configured",
never "ok".
"""

import argparse
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .common import EXIT_OK, EXIT_PROVIDER, note, out, out_json

__all__ = ["ProviderRow", "capability_names", "provider_rows", "register", "run_models", "run_providers", "selected_rows"]

#: ProviderCapabilities field -> the word shown (``reasoning`` appears when a provider class declares it).
_CAPABILITY_WORDS = (("chat", "chat"), ("streaming", "stream"), ("embeddings", "embeddings"), ("list_models", "models"),
                     ("tools", "tools"), ("vision", "vision"), ("reasoning", "reasoning"), ("json_mode", "json"),
                     ("json_schema", "schema"))


@dataclass
class ProviderRow:
    """What is known about one provider name without touching the network."""

    name: str
    type: str
    cls: Any = None
    #: The resolved ProviderConfig, or None when ``error`` says why it could not be resolved.
    config: Any = None
    error: str = ""
    hint: str = ""
    #: ``env:VAR``, ``keyring``, ``file:PATH [provider:NAME]``, ``not needed`` or ``missing``.
    key_source: str = "missing"
    base_url_source: str = "default"
    in_file: bool = False
    fields: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    @property
    def needs_key(self) -> bool:
        """Whether the provider class requires an API key."""
        return bool(getattr(self.cls, "requires_api_key", False))

    @property
    def configured(self) -> bool:
        """Resolvable, with a key when one is needed."""
        return not self.error and self.key_source != "missing"

    @property
    def selected(self) -> bool:
        """Part of "all configured providers" (see the module docs)."""
        if self.in_file:
            return True
        if not self.configured:
            return False
        if self.needs_key:
            return True
        return self.base_url_source.startswith(("env:", "file:", "explicit"))

    def key_env(self) -> List[str]:
        """The environment variables this provider reads its key from."""
        own = list(getattr(self.cls, "api_key_env", ()) or ()) if self.name == self.type else []
        return own + ["MODELPROV_" + "".join(c if c.isalnum() else "_" for c in self.name.upper()) + "_API_KEY"]


def capability_names(cls: Any) -> List[str]:
    """The capabilities a provider class declares, as short words (``chat``, ``stream``, ...)."""
    caps = getattr(cls, "capabilities", None)
    return [word for attr, word in _CAPABILITY_WORDS if getattr(caps, attr, False) is True]


def _row(name: str, registry: Any, cfg: Any) -> ProviderRow:
    from ..exceptions import ConfigurationError

    in_file = name in cfg.provider_names()
    try:
        type_name = cfg.provider_type(name) or name
    except ConfigurationError as exc:
        return ProviderRow(name, "?", error=exc.message, hint=exc.hint or "", in_file=in_file)
    row = ProviderRow(name, type_name, in_file=in_file)
    try:
        row.cls = registry.get_class(type_name)
    except ConfigurationError as exc:
        where = f" (type = {type_name} in [provider:{name}])" if in_file else ""
        row.error = f"unknown provider type {type_name!r}{where}" if type_name != name or in_file else exc.message
        row.hint = exc.hint or ""
        return row
    defaults = row.cls.config_defaults()
    defaults["type"] = type_name
    row.fields = cfg.explain_all(name, defaults=defaults)
    bad = [f"{key}: {item['invalid']}" for key, item in row.fields.items() if "invalid" in item]
    key = row.fields["api_key"]
    if key.get("value") not in (None, "<not set>") and "invalid" not in key:
        row.key_source = key["source"]
    elif not row.needs_key:
        row.key_source = "not needed"
    row.base_url_source = row.fields["base_url"]["source"]
    if bad:
        row.error = "; ".join(bad)
        return row
    try:
        row.config = registry.resolve(name)[1]
    except ConfigurationError as exc:
        row.error, row.hint = exc.message, exc.hint or ""
    return row


def provider_rows(names: Optional[List[str]] = None) -> List[ProviderRow]:
    """Rows for ``names`` (default: every registered and configured provider), sorted by name."""
    from ..config.manager import get_config
    from ..registry import get_registry

    registry, cfg = get_registry(), get_config()
    if names is None:
        names = sorted(set(registry.list()) | set(cfg.provider_names()))
    return [_row(n, registry, cfg) for n in names]


def selected_rows(name: Optional[str]) -> List[ProviderRow]:
    """The row of provider ``name`` (refused with "did you mean" when unknown), or every selected row."""
    from ..exceptions import ConfigurationError

    rows = provider_rows()
    if name is None:
        return [r for r in rows if r.selected]
    found = [r for r in rows if r.name == name]
    if not found:
        from .common import did_you_mean

        hint = did_you_mean(name, [r.name for r in rows]) or "known providers: " + ", ".join(r.name for r in rows)
        raise ConfigurationError(f"unknown provider {name!r}", hint=hint)
    return found


def register(sub: Any) -> None:
    """Add the ``models`` and ``providers`` commands."""
    models = sub.add_parser("models", help="list the models of one provider, or of every configured provider",
                            description="List models. With no PROVIDER, every configured provider is asked; "
                            "one that fails gets a one-line note on stderr and the exit code is 1.")
    models.add_argument("provider", nargs="?", metavar="PROVIDER", help="the provider to ask (e.g. openai, ollama, mock)")
    models.add_argument("--json", action="store_true", help="print a JSON array of models (id, provider, lifecycle...)")
    models.set_defaults(run=run_models)
    providers = sub.add_parser("providers", help="list providers: configured or not, key source, base URL, capabilities",
                               description="Describe every provider without contacting it (use `modelprov doctor` to check it).")
    providers.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    providers.set_defaults(run=run_providers)


# ------------------------------------------------------------------- models
def _lifecycle(m: Any) -> str:
    bits = []
    if m.deprecated or m.deprecation_date:
        bits.append("deprecated" + (f" since {m.deprecation_date}" if m.deprecation_date else ""))
    if m.retirement_date:
        bits.append(f"retires {m.retirement_date}")
    return ", ".join(bits)


def run_models(args: argparse.Namespace) -> int:
    """Run ``models``."""
    from .._redact import redact
    from ..client import Client
    from ..exceptions import ConfigurationError, ModelProvError

    rows = selected_rows(args.provider)
    if not rows:
        raise ConfigurationError("no provider is configured", hint="set a key (e.g. modelprov keys set openai), "
                                 "or name a provider: modelprov models mock")
    client = Client()
    failed, listed = 0, []
    for row in rows:
        try:
            if row.error:
                raise ConfigurationError(row.error, hint=row.hint or None)
            found = client.models(row.name)
        except ModelProvError as exc:
            if args.provider:
                raise
            failed += 1
            note(f"{row.name}: {exc}")
            continue
        except Exception as exc:  # one provider's bug must not hide the others
            if args.provider:
                raise
            failed += 1
            note(redact(f"{row.name}: {type(exc).__name__}: {exc}"))
            continue
        listed += [(row.name, m) for m in found]
        if not args.json:
            for m in found:
                life = _lifecycle(m)
                out(f"{row.name}/{m.id}" + (f"  ({life})" if life else ""))
    if args.json:
        out_json([{"provider": name, "id": m.id, "model": f"{name}/{m.id}", "name": m.name,
                   "context_length": m.context_length, "owned_by": m.owned_by, "deprecated": m.deprecated,
                   "deprecation_date": m.deprecation_date, "retirement_date": m.retirement_date} for name, m in listed])
    return EXIT_PROVIDER if failed else EXIT_OK


# ---------------------------------------------------------------- providers
def _status(row: ProviderRow) -> str:
    if row.error:
        return "invalid"
    return "configured" if row.configured else "no key"


def _provider_json(row: ProviderRow) -> Dict[str, Any]:
    from .._redact import redact

    base = row.config.base_url if row.config is not None else row.fields.get("base_url", {}).get("value")
    return {"name": row.name, "type": row.type, "status": _status(row), "configured": row.configured,
            "key_source": row.key_source, "key_env": row.key_env() if row.cls is not None else [],
            "base_url": redact(base) if base else None, "base_url_source": row.base_url_source,
            "capabilities": capability_names(row.cls), "breaker": None,
            "error": redact(row.error) or None, "hint": row.hint or None}


def run_providers(args: argparse.Namespace) -> int:
    """Run ``providers``."""
    data = [_provider_json(r) for r in provider_rows()]
    if args.json:
        out_json(data)
        return EXIT_OK
    head = ("NAME", "TYPE", "STATUS", "KEY", "BASE URL", "CAPABILITIES", "BREAKER")
    table = [head] + [(d["name"], d["type"], d["status"], _key_text_of(d), d["base_url"] or "-",
                       ",".join(d["capabilities"]) or "-", "-") for d in data]
    widths = [max(len(r[i]) for r in table) for i in range(len(head) - 1)]
    for r in table:
        out("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    for d in data:
        if d["error"]:
            out(f"{d['name']}: {d['error']}" + (f" ({d['hint']})" if d["hint"] else ""))
    out("STATUS says how it is set up, not whether it answers (run `modelprov doctor`); "
        "BREAKER: a new process has no circuit breaker state yet (-).")
    return EXIT_OK


def _key_text_of(d: Dict[str, Any]) -> str:
    if d["key_source"] == "missing":
        if not d["key_env"]:  # an unknown provider type: nothing is known about its key
            return "-"
        return "missing (" + " or ".join(d["key_env"]) + ")"
    return str(d["key_source"])
