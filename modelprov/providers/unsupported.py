"""Chat options a target does not take: refuse them, or leave them out (``drop_unsupported``).

One mechanism for every provider. Before sending, a codec names the options
it knows its API version or model refuses (``ModelProvider.unsupported_options``);
at run time, a codec's error mapping turns a rejection that names the option
into :class:`~modelprov.exceptions.UnsupportedFeatureError` with
``extra["option"]``. Without ``drop_unsupported`` both raise. With it, known
options are left out before sending, and a rejected one is left out of one
resend and remembered per model for the life of the provider instance (so
the next call sends no doomed request). Every option left out is named in
``ModelResponse.dropped_options`` and logged once per (provider, model,
option) at WARNING.
"""

import threading
from typing import TYPE_CHECKING, Dict, Set, Tuple

from .._log import get_logger
from ..exceptions import UnsupportedFeatureError
from ..types import ChatRequest
from .request import drop_option, option_present

if TYPE_CHECKING:  # pragma: no cover
    from .base import ModelProvider

__all__ = ["apply_unsupported", "learn_unsupported", "unsupported_error"]

log = get_logger("providers")

#: (provider, model, option) triples already logged: each is logged once per process.
_LOGGED: Set[Tuple[str, str, str]] = set()
_LOGGED_LOCK = threading.Lock()


def _log_dropped(provider: str, model: str, option: str, reason: str) -> None:
    key = (provider, model, option)
    with _LOGGED_LOCK:
        if key in _LOGGED:
            return
        _LOGGED.add(key)
    log.warning("%s: leaving out option %r for model %s (%s)", provider, option, model, reason)


def unsupported_error(provider: "ModelProvider", option: str, model: str, reason: str) -> UnsupportedFeatureError:
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


def apply_unsupported(provider: "ModelProvider", req: ChatRequest) -> ChatRequest:
    """``req`` checked against the known and learned unsupported options (no I/O)."""
    known: Dict[str, str] = provider.unsupported_options(req)
    learned = provider._learned.get(req.model)
    if learned:
        known = dict(known)
        for option, reason in learned.items():
            known.setdefault(option, reason)
    for option, reason in known.items():
        if not option_present(req, option):
            continue
        if not provider.config.drop_unsupported:
            raise unsupported_error(provider, option, req.model, reason)
        _log_dropped(provider.instance_name, req.model, option, reason)
        req = drop_option(req, option)
    return req


def learn_unsupported(provider: "ModelProvider", req: ChatRequest, exc: UnsupportedFeatureError) -> ChatRequest:
    """After the provider rejected option ``exc.extra['option']``: ``req`` without it, or re-raise ``exc``.

    Only with ``drop_unsupported`` and only for an option actually sent (so
    the resend loop ends); the option is remembered for this model.
    """
    option = exc.extra.get("option")
    if not option or not provider.config.drop_unsupported or not option_present(req, option):
        raise exc
    reason = "the provider rejected it"
    with provider._lock:
        provider._learned.setdefault(req.model, {})[option] = reason
    _log_dropped(provider.instance_name, req.model, option, reason)
    return drop_option(req, option)
