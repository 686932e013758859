"""The checks on :class:`~modelprov.client.Client`'s settings, and on whether its transport pickles.

:func:`check_settings` validates every ``Client(...)`` argument before
anything is built (a clear :class:`~modelprov.exceptions.ValidationError`
naming the bad one) and returns them normalised, as the client keeps them
(and pickles them).
"""

from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

from .deadline import check_timeout
from .exceptions import ValidationError
from .hooks import Hook, HookSet

__all__ = ["check_settings", "check_transport_pickles"]


def _flag(name: str, value: Any, optional: bool = False) -> None:
    if not (isinstance(value, bool) or (optional and value is None)):
        raise ValidationError(f"{name} must be True or False, not {value!r}")


def _breaker(breaker: Union[Mapping[str, Any], bool, None]) -> Union[Dict[str, Any], bool, None]:
    """``True``/``None``: default breakers; ``False``: none; a dict: checked by building one breaker with it."""
    if breaker is True or breaker is None:
        return None
    if breaker is False:
        return False
    if not isinstance(breaker, Mapping):
        raise ValidationError("breaker must be True, False or a dict of CircuitBreaker settings")
    from .circuit_breaker import CircuitBreaker

    try:
        CircuitBreaker("check", **dict(breaker))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"invalid breaker settings: {exc}") from None
    return dict(breaker)


def check_settings(
    *,
    providers: Optional[Mapping[str, Mapping[str, Any]]],
    retry: Any,
    fallbacks: Union[Sequence[str], str, None],
    default_model: Optional[str],
    timeout: Optional[float],
    breaker: Union[Mapping[str, Any], bool, None],
    drop_unsupported: Optional[bool],
    hooks: Tuple[Optional[Hook], ...],
    config: Any,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    transport: Any,
    prices: Optional[Mapping[str, Mapping[str, float]]],
    adaptive_limits: bool,
) -> Dict[str, Any]:
    """Every ``Client(...)`` argument checked and normalised (copies of the dicts, lists for sequences)."""
    if providers is not None and not isinstance(providers, Mapping):
        raise ValidationError("providers must be a dict of provider name -> settings dict")
    for name, settings in (providers or {}).items():
        if not isinstance(settings, Mapping):
            raise ValidationError(f"providers[{name!r}] must be a dict of settings")
    if fallbacks is None:
        fallbacks = []
    if isinstance(fallbacks, str):
        fallbacks = [fallbacks]
    if not isinstance(fallbacks, (list, tuple)) or not all(isinstance(f, str) and f for f in fallbacks):
        raise ValidationError("fallbacks must be a list of 'provider/model' strings")
    check_timeout(timeout)
    if prices is not None:
        from .usage import check_prices

        prices = check_prices(prices)  # ValidationError naming the bad entry
    _flag("adaptive_limits", adaptive_limits)
    _flag("drop_unsupported", drop_unsupported, optional=True)
    if retry is not None:
        from .retry import RetryPolicy

        if not isinstance(retry, RetryPolicy):
            raise ValidationError(f"retry must be a modelprov.RetryPolicy, not {type(retry).__name__}")
    HookSet(*hooks)  # checks them
    if transport is not None and not callable(getattr(transport, "send", None)) and not callable(transport):
        raise ValidationError("transport must have a send() method or be a factory taking a ProviderConfig")
    return dict(
        providers={k: dict(v) for k, v in (providers or {}).items()},
        retry=retry,
        fallbacks=list(fallbacks),
        default_model=default_model,
        timeout=timeout,
        breaker=_breaker(breaker),
        drop_unsupported=drop_unsupported,
        hooks=hooks,
        config=config,
        sleep=sleep,
        clock=clock,
        transport=transport,
        prices=prices,
        adaptive_limits=adaptive_limits,
    )


def check_transport_pickles(transport: Any) -> None:
    """Raise a clear ``TypeError`` when the client's ``transport=`` does not pickle (it often holds a lock)."""
    import pickle

    try:
        pickle.dumps(transport)
    except Exception as exc:
        factory = callable(transport) and not callable(getattr(transport, "send", None))
        what = "transport factory" if factory else "transport"
        raise TypeError(
            f"cannot pickle this Client: its {what} ({type(transport).__name__}) does not pickle ({exc}); "
            "give Client(transport=...) a module-level transport factory (a function taking a ProviderConfig), "
            "or build the client in the worker process"
        ) from exc
