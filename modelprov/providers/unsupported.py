"""Chat options a target does not take: refuse them, or leave them out (``drop_unsupported``).

One mechanism for every provider. Before sending, a codec names the options
it knows its API version or model refuses (``ModelProvider.unsupported_options``);
at run time, a codec's error mapping turns a rejection that names the option
into :class:`~modelprov.exceptions.UnsupportedFeatureError` with
``extra["option"]``. Without ``drop_unsupported`` both raise. With it, known
options are left out before sending (here, no I/O), and a rejected one is left
out of one resend and remembered per model for the life of the provider's
engine (:mod:`modelprov.engine`, so the next call sends no doomed request).
Every option left out is named in ``ModelResponse.dropped_options`` and
logged once per (provider, model, option) at WARNING.
"""

import threading
from typing import Dict, Protocol, Set, Tuple

from .._log import get_logger
from ..exceptions import UnsupportedFeatureError
from ..types import ChatRequest, ProviderConfig
from .request import drop_option, option_present

__all__ = ["OptionCodec", "apply_unsupported", "log_dropped", "unsupported_error"]


class OptionCodec(Protocol):
    """What this module reads of a provider (:class:`~modelprov.providers.base.ModelProvider`)."""

    config: ProviderConfig

    @property
    def instance_name(self) -> str: ...  # pragma: no cover - protocol

    def unsupported_options(self, req: ChatRequest) -> Dict[str, str]: ...  # pragma: no cover - protocol

log = get_logger("providers")

#: (provider, model, option) triples already logged: each is logged once per process.
_LOGGED: Set[Tuple[str, str, str]] = set()
_LOGGED_LOCK = threading.Lock()


def log_dropped(provider: str, model: str, option: str, reason: str) -> None:
    """Log at WARNING, once per process for each (provider, model, option), that ``option`` is left out."""
    key = (provider, model, option)
    with _LOGGED_LOCK:
        if key in _LOGGED:
            return
        _LOGGED.add(key)
    log.warning("%s: leaving out option %r for model %s (%s)", provider, option, model, reason)


def unsupported_error(provider: OptionCodec, option: str, model: str, reason: str) -> UnsupportedFeatureError:
    """The error for option ``option`` that ``provider`` does not take for ``model``."""
    name = provider.instance_name
    return UnsupportedFeatureError(
        f"{name} does not take the option {option!r} for model {model}: {reason}",
        provider=name,
        option=option,
        model=model,
        hint=f"leave {option} out, or pass drop_unsupported=True to the Client "
        f"(or set drop_unsupported = true for {name} in the config) to drop it automatically",
    )


def apply_unsupported(provider: OptionCodec, req: ChatRequest) -> ChatRequest:
    """``req`` checked against the options ``provider`` knows it does not take (no I/O)."""
    known: Dict[str, str] = provider.unsupported_options(req)
    for option, reason in known.items():
        if not option_present(req, option):
            continue
        if not provider.config.drop_unsupported:
            raise unsupported_error(provider, option, req.model, reason)
        log_dropped(provider.instance_name, req.model, option, reason)
        req = drop_option(req, option)
    return req
