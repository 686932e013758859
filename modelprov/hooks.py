"""``HookSet``: the client's event hooks (request, response, retry, fallback, error).

Each hook receives one dict of redacted information (never keys or message
content); a hook that raises is logged and ignored, so a user's bug never
breaks a call.
"""

from typing import Any, Callable, Dict, Optional

from ._log import get_logger
from .exceptions import ValidationError

__all__ = ["Hook", "HookSet"]

log = get_logger("client")

#: A user's event hook: called with one dict.
Hook = Callable[[Dict[str, Any]], None]
_NAMES = ("on_request", "on_response", "on_retry", "on_fallback", "on_error")


class HookSet:
    """The client's event hooks; each is called with one dict, and its errors are logged (a non-callable hook is refused)."""

    def __init__(
        self,
        on_request: Optional[Hook] = None,
        on_response: Optional[Hook] = None,
        on_retry: Optional[Hook] = None,
        on_fallback: Optional[Hook] = None,
        on_error: Optional[Hook] = None,
    ) -> None:
        for hook_name, hook in zip(_NAMES, (on_request, on_response, on_retry, on_fallback, on_error)):
            if hook is not None and not callable(hook):
                raise ValidationError(f"{hook_name} must be callable")
        self.on_request = on_request
        self.on_response = on_response
        self.on_retry = on_retry
        self.on_fallback = on_fallback
        self.on_error = on_error

    def emit(self, hook: str, info: Dict[str, Any]) -> None:
        """Call hook ``on_<hook>`` with ``info``; a failing hook never breaks the call."""
        fn: Optional[Hook] = getattr(self, "on_" + hook)
        if fn is None:
            return
        try:
            fn(info)
        except Exception:  # a user's hook must not break the call
            log.exception("the on_%s hook raised; ignored", hook)

    def retry_adapter(self, provider: str) -> Callable[[Dict[str, Any], BaseException], None]:
        """An engine-level ``on_retry(record, exc)`` that calls ``on_retry`` with the record and the provider's name.

        The records of a call are kept by the caller (the fallback chain passes
        the engine a list); this adapter only emits the event.
        """

        def on_retry(record: Dict[str, Any], exc: BaseException) -> None:
            if self.on_retry is not None:
                self.emit("retry", dict(record, provider=provider))

        return on_retry
