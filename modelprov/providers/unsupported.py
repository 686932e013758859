"""Chat options a target does not take: refuse them, or leave them out (``drop_unsupported``).

One mechanism for every provider. Before sending, a codec names the options
it knows its API version or model refuses (``ModelProvider.unsupported_options``);
at run time, a codec's error mapping turns a rejection that names the option
into :class:`~modelprov.exceptions.UnsupportedFeatureError` with
``extra["option"]``. Without ``drop_unsupported`` both raise. With it, known
options are left out before sending (here, no I/O), and a rejected one is left
out of one resend and remembered per model for the life of the provider's
engine (:mod:`modelprov.engine`, so the next call sends no doomed request):
the option itself, or only the value sent when the rejection says so
(``extra["value_specific"]``: the model takes the option, not that value).
Without ``drop_unsupported`` a run-time rejection is re-raised naming the
option, provider and model like the before-I/O error
(:func:`explain_rejection`). Every option left out is named in
``ModelResponse.dropped_options`` and logged once per (provider, model,
option) at WARNING.
"""

import threading
from typing import Dict, Protocol, Set, Tuple

from .._log import get_logger
from ..exceptions import UnsupportedFeatureError
from ..types import ChatRequest, ProviderConfig
from .request import drop_option, option_present

__all__ = ["OptionCodec", "apply_unsupported", "explain_rejection", "log_dropped", "unsupported_error"]


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


def _message(name: str, option: str, model: str, reason: str) -> str:
    return f"{name} does not take the option {option!r} for model {model}: {reason}"


def _hint(name: str, option: str, value_specific: bool = False) -> str:
    fix = f"pass another value for {option} or leave it out" if value_specific else f"leave {option} out"
    return f"{fix}, or pass drop_unsupported=True to the Client (or set drop_unsupported = true for {name} in the config) to drop it automatically"


def unsupported_error(provider: OptionCodec, option: str, model: str, reason: str, *, value_specific: bool = False) -> UnsupportedFeatureError:
    """The error for option ``option`` that ``provider`` does not take for ``model`` (or not with the value given)."""
    name = provider.instance_name
    exc = UnsupportedFeatureError(_message(name, option, model, reason), provider=name, option=option, model=model, hint=_hint(name, option, value_specific))
    if value_specific:
        exc.extra["value_specific"] = True
    return exc


def explain_rejection(name: str, exc: UnsupportedFeatureError, model: str) -> UnsupportedFeatureError:
    """``exc`` (a run-time rejection of ``exc.extra["option"]``) reworded like :func:`unsupported_error`, in place.

    The message names provider ``name``, the option and ``model`` before the
    provider's own text; ``model`` goes into ``exc.extra``; a hint without the
    ``drop_unsupported`` fix is replaced. Status, request id and attempts stay.
    """
    option = exc.extra.get("option")
    if not option:
        return exc
    exc.extra.setdefault("model", model)
    if exc.provider is None:
        exc.provider = name
    message = _message(name, option, model, exc.message)
    if not exc.message.startswith(_message(name, option, model, "")):
        exc.message = message
        exc.args = (message,)
    if "drop_unsupported" not in (exc.hint or ""):
        exc.hint = _hint(name, option, bool(exc.extra.get("value_specific")))
    return exc


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
