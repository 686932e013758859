"""The checks behind ``modelprov doctor`` (imported when the command runs, so start-up stays light)."""

import argparse
import platform
from typing import Any, List

from .common import EXIT_OK, EXIT_PROVIDER, out, out_json
from .doctor_checks import FAIL, INFO, PASS, SKIP, Check, check_dns, check_tcp, check_tls, target_of

__all__ = ["run"]


def _versions() -> str:
    from importlib.metadata import version

    from .._version import __version__

    bits = [f"modelprov {__version__}", f"Python {platform.python_version()}"]
    for dist in ("requests", "urllib3", "certifi", "truststore"):
        try:
            bits.append(f"{dist} {version(dist)}")
        except Exception:  # not installed
            continue
    return ", ".join(bits)


def _setup_checks() -> List[Check]:
    import os

    from ..config.manager import get_config
    from ..exceptions import ConfigurationError

    cfg = get_config()
    checks = [Check("setup", "versions", INFO, _versions())]
    if not os.path.exists(cfg.path):
        checks.append(Check("setup", "config file", INFO, f"{cfg.path} does not exist yet (environment and defaults only)"))
    else:
        try:
            cfg.invalidate()
            cfg.provider_names()
            cfg.prices()
            checks.append(Check("setup", "config file", PASS, f"{cfg.path} parses"))
        except ConfigurationError as exc:
            checks.append(Check("setup", "config file", FAIL, exc.message, exc.hint or "fix the line, or move the file away"))
    status = cfg.keyring_status()
    version = f"keyring {status['version']}, " if status.get("version") else ""
    if status["usable"]:
        checks.append(Check("setup", "keyring", PASS, f"{version}backend {status['backend']}"))
    else:
        checks.append(Check("setup", "keyring", INFO, f"{version}{status['backend']}; keys come from the environment or the "
                            f"config file (to use a keyring: {status['fix']})"))
    return checks


def _key_check(row: Any) -> Check:
    if row.key_source == "missing":
        return Check(row.name, "key", FAIL, "no API key",
                     f"set {' or '.join(row.key_env())}, or run: modelprov keys set {row.name}")
    if row.key_source == "not needed":
        return Check(row.name, "key", PASS, "none needed")
    source = row.key_source
    if source.startswith("file:"):
        source = "the config file " + source[5:].split(" [", 1)[0]
    return Check(row.name, "key", PASS, f"set, from {source}")


def _api_check(row: Any, timeout: float) -> Check:
    from ..client import Client
    from ..exceptions import ModelProvError
    from ..retry import RetryPolicy

    if not getattr(row.cls.capabilities, "list_models", False):
        return Check(row.name, "api", SKIP, "this provider cannot list models, so no authenticated call was made")
    settings = {"timeout": timeout, "connect_timeout": timeout, "read_timeout": timeout}
    client = Client(providers={row.name: settings}, retry=RetryPolicy(max_retries=0), breaker=False)
    try:
        found = client.models(row.name)
    except ModelProvError as exc:
        status = getattr(exc, "status_code", None)
        return Check(row.name, "api", FAIL, f"listing models failed: {exc.message}" + (f" (HTTP {status})" if status else ""),
                     exc.hint or "check the key and the base URL")
    except Exception as exc:  # the doctor reports, it does not crash
        return Check(row.name, "api", FAIL, f"listing models failed: {type(exc).__name__}: {exc}", "run with --debug and report it")
    finally:
        client.close()
    what = "authenticated model list" if row.key_source not in ("not needed", "missing") else "model list"
    return Check(row.name, "api", PASS, f"{what}: {len(found)} models")


def _provider_checks(row: Any, timeout: float) -> List[Check]:
    from .._redact import redact

    if row.error:
        return [Check(row.name, "config", FAIL, row.error, row.hint or f"fix [provider:{row.name}] with: modelprov config show {row.name}")]
    cfg = row.config
    checks = [Check(row.name, "config", PASS, f"type {row.type}" + (f", base URL {redact(cfg.base_url)}" if cfg.base_url else ""))]
    checks.append(_key_check(row))
    if not getattr(row.cls, "uses_http", True):
        checks.append(Check(row.name, "network", PASS, "offline provider: no network needed"))
    else:
        target = target_of(cfg.base_url, cfg.proxy, cfg.trust_env)
        hint = getattr(row.cls, "connection_hint", None)
        checks.append(check_dns(row.name, target))
        if checks[-1].status != FAIL:
            checks.append(check_tcp(row.name, target, timeout, hint))
        if checks[-1].status != FAIL and target.scheme == "https":
            checks.append(check_tls(row.name, target, timeout, cfg.verify, cfg.use_truststore, cfg.trust_env, cfg.cert))
        elif checks[-1].status != FAIL:
            checks.append(Check(row.name, "tls", SKIP, "plain http: no TLS" + target.via()))
    if any(c.status == FAIL for c in checks):
        checks.append(Check(row.name, "api", SKIP, "not tried: an earlier check failed"))
    else:
        checks.append(_api_check(row, timeout))
    return checks


def _print(checks: List[Check]) -> None:
    scope_w = max(len(c.scope) for c in checks)
    check_w = max(len(c.check) for c in checks)
    for c in checks:
        out(f"{c.status:<4}  {c.scope.ljust(scope_w)}  {c.check.ljust(check_w)}  {c.detail}")
        if c.fix and c.status == FAIL:
            out(f"{'':<4}  {''.ljust(scope_w)}  {''.ljust(check_w)}  fix: {c.fix}")


def run(args: argparse.Namespace) -> int:
    """Run ``doctor``."""
    from .._redact import redact
    from ..exceptions import ConfigurationError, ValidationError
    from .catalog import selected_rows

    if not args.timeout > 0:
        raise ValidationError("--timeout must be a number of seconds greater than 0")
    checks = _setup_checks()
    try:
        rows = selected_rows(args.provider)
    except ConfigurationError as exc:
        if args.provider and not any(c.check == "config file" and c.status == FAIL for c in checks):
            raise  # an unknown provider name: a usage error
        rows = []
        checks.append(Check("setup", "providers", FAIL, exc.message, exc.hint or ""))
    if not rows and not args.provider and not any(c.check == "providers" for c in checks):
        checks.append(Check("setup", "providers", FAIL, "no provider is configured",
                            "set a key (e.g. modelprov keys set openai or OPENAI_API_KEY), or add a [provider:NAME] section"))
    for row in rows:
        checks += _provider_checks(row, args.timeout)
    for c in checks:
        c.detail, c.fix = redact(c.detail), redact(c.fix)
    failed = any(c.status == FAIL for c in checks)
    if args.json:
        out_json({"ok": not failed, "checks": [c.as_dict() for c in checks]})
    else:
        _print(checks)
        out("all checks passed" if not failed else f"{sum(c.status == FAIL for c in checks)} check(s) failed")
    return EXIT_PROVIDER if failed else EXIT_OK
