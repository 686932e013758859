"""The settings that belong to no one provider: default model, aliases, global keys and prices.

Private helper of :mod:`modelprov.config`: :class:`GlobalSettings` is a base
class of :class:`~modelprov.config.manager.ConfigManager` (which supplies the
environment, the path and the parsed file), and :func:`parse_prices` reads the
``[prices]`` section::

    [prices]
    openai/gpt-5.4-mini = input=0.25 output=2.00 cached=0.025

Prices are USD per million tokens; ``cached`` (the price of cached input
tokens) is optional. Standard library only.
"""

import math
from dataclasses import fields as _dc_fields
from typing import Any, Dict, Mapping, Optional, Tuple

from ..exceptions import ConfigurationError
from ..types import ProviderConfig
from . import file as _cf
from .values import GLOBAL_KEYS, alias_target, coerce_field, validate_text

__all__ = ["PRICES_SECTION", "PRICE_FIELDS", "GlobalSettings", "parse_price", "parse_prices"]

PRICES_SECTION = "prices"
#: The fields of one price line; ``input`` and ``output`` are required.
PRICE_FIELDS = ("input", "output", "cached")
_REQUIRED_PRICES = ("input", "output")
_PRICE_HINT = "write it as: provider/model = input=0.25 output=2.00 cached=0.025 (USD per million tokens; cached optional)"
_FIELD_DEFAULTS = {f.name: f.default for f in _dc_fields(ProviderConfig)}
_GLOBAL = _cf.GLOBAL_SECTION
_DEFAULT = "default"
_EXPLICIT = "explicit"


def parse_price(model: str, text: str, where: str) -> Dict[str, float]:
    """One ``[prices]`` line: ``model`` (``provider/model``) and its value ``input=.. output=.. [cached=..]``.

    :raises ConfigurationError: naming ``where`` (file and line) and what is wrong; the fix in ``hint``.
    """
    provider, sep, name = model.strip().partition("/")
    if not sep or not provider.strip() or not name.strip():
        raise ConfigurationError(f"invalid price key {model!r} in {where}: expected 'provider/model'", hint=_PRICE_HINT)
    out: Dict[str, float] = {}
    for item in text.split():
        key, eq, raw = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in PRICE_FIELDS:
            raise ConfigurationError(
                f"invalid price for {model} in {where}: {item!r} is not one of {', '.join(f + '=NUMBER' for f in PRICE_FIELDS)}",
                hint=_PRICE_HINT)
        if key in out:
            raise ConfigurationError(f"invalid price for {model} in {where}: {key} given twice", hint=_PRICE_HINT)
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise ConfigurationError(f"invalid price for {model} in {where}: {key} must be a number >= 0, not {raw!r}",
                                     hint=_PRICE_HINT)
        out[key] = number
    missing = [k for k in _REQUIRED_PRICES if k not in out]
    if missing:
        raise ConfigurationError(f"invalid price for {model} in {where}: {' and '.join(missing)} missing", hint=_PRICE_HINT)
    return out


def parse_prices(section: Mapping[str, str], where: Any) -> Dict[str, Dict[str, float]]:
    """Every line of a ``[prices]`` section; ``where(key)`` names its source and line for errors."""
    return {key.strip(): parse_price(key, text, where(key)) for key, text in section.items()}


class GlobalSettings:
    """Default model, aliases, global keys and prices, read from the environment and the file."""

    @property
    def environ(self) -> Mapping[str, str]:  # pragma: no cover - supplied by ConfigManager
        """The environment to read."""
        raise NotImplementedError

    @property
    def path(self) -> str:  # pragma: no cover - supplied by ConfigManager
        """The config file path."""
        raise NotImplementedError

    def _file(self) -> Optional[_cf.ConfigSnapshot]:  # pragma: no cover - supplied by ConfigManager
        raise NotImplementedError

    def _default_model(self, explicit: Optional[str]) -> Tuple[Optional[str], str]:
        if explicit:
            return validate_text("default_model", explicit, _EXPLICIT), _EXPLICIT
        raw = self.environ.get("MODELPROV_MODEL")
        if raw and raw.strip():
            return validate_text("default_model", raw, "env:MODELPROV_MODEL"), "env:MODELPROV_MODEL"
        snap = self._file()
        raw = snap.section(_GLOBAL).get("default_model", "") if snap is not None else ""
        if snap is not None and raw.strip():
            return validate_text("default_model", raw, snap.where(_GLOBAL, "default_model")), snap.source(_GLOBAL)
        return None, _DEFAULT

    def default_model(self, explicit: Optional[str] = None) -> Optional[str]:
        """``explicit`` > ``MODELPROV_MODEL`` > ``[modelprov] default_model`` > None."""
        return self._default_model(explicit)[0]

    def default_model_source(self, explicit: Optional[str] = None) -> str:
        """Where :meth:`default_model` found its value (``"default"`` when unset)."""
        return self._default_model(explicit)[1]

    def aliases(self) -> Dict[str, str]:
        """The ``[aliases]`` section: alias (lower-cased) -> ``provider/model``."""
        snap = self._file()
        section = snap.section(_cf.ALIASES_SECTION) if snap is not None else {}
        return {k: v.strip() for k, v in section.items() if v.strip()}

    def resolve_alias(self, model: str) -> str:
        """The target of alias ``model`` (case-insensitive), or ``model`` unchanged.

        Aliases resolve one level; an alias whose target is itself an alias (a chain
        or a loop) raises :class:`ConfigurationError`.
        """
        return alias_target(self.aliases(), model, f"[aliases] of {self.path}")

    def prices(self) -> Dict[str, Dict[str, float]]:
        """The ``[prices]`` section: ``"provider/model"`` -> ``{"input": .., "output": .., "cached": ..}``.

        USD per million tokens; ``cached`` only when the line gives it. Empty when
        the file or the section is missing.

        :raises ConfigurationError: a malformed line (names the file and the line).
        """
        snap = self._file()
        if snap is None:
            return {}
        return parse_prices(snap.section(PRICES_SECTION), lambda key: snap.where(PRICES_SECTION, key))

    def global_values(self) -> Dict[str, Dict[str, Any]]:
        """Every ``[modelprov]`` key -> ``{"value": .., "source": ..}`` (and ``"invalid": why`` for a bad one).

        An invalid value does not hide the others.
        """
        out: Dict[str, Dict[str, Any]] = {}
        try:
            value, source = self._default_model(None)
            out["default_model"] = {"value": value, "source": source}
        except ConfigurationError as exc:
            out["default_model"] = {"value": None, "source": "env:MODELPROV_MODEL" if self.environ.get("MODELPROV_MODEL")
                                    else f"file:{self.path} [{_GLOBAL}]", "invalid": exc.message}
        snap = self._file()
        section = snap.section(_GLOBAL) if snap is not None else {}
        for key in GLOBAL_KEYS:
            if key == "default_model":
                continue
            raw = section.get(key, "")
            if snap is None or not raw.strip():
                out[key] = {"value": _FIELD_DEFAULTS.get(key), "source": _DEFAULT}
                continue
            try:
                out[key] = {"value": coerce_field(key, raw, snap.where(_GLOBAL, key)), "source": snap.source(_GLOBAL)}
            except ConfigurationError as exc:
                out[key] = {"value": None, "source": snap.source(_GLOBAL), "invalid": exc.message}
        return out
