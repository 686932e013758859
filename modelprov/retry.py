"""Retry policy and retry loop: backoff with jitter, server wait hints, deadline.

Holds :class:`RetryPolicy` (a frozen, validated policy in the style of urllib3's
``Retry``), the header parsers :func:`parse_retry_after` and
:func:`parse_should_retry`, and :func:`call_with_retry`, the loop that the
client wraps around each provider call. The decisions follow the official
OpenAI/Anthropic SDKs (see WIRE.md §8): ``x-should-retry`` wins when present;
otherwise connection errors, timeouts, 408, 409, 429 (never quota), 5xx and
529 are retried; a server wait hint is honoured exactly up to
``max_retry_after`` seconds, and a longer one makes the error surface at once.

``sleep``, ``clock`` and ``random`` are injected so tests never sleep.
Standard library only.
"""

import dataclasses
import email.utils
import logging
import math
import random as _random
import time
from datetime import timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, TypeVar

from ._log import get_logger
from ._redact import redact
from .exceptions import (
    AuthenticationError,
    CircuitBreakerError,
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelProvError,
    PermissionDeniedError,
    QuotaExceededError,
    UnsupportedFeatureError,
    ValidationError,
)

__all__ = ["RetryPolicy", "call_with_retry", "parse_retry_after", "parse_should_retry", "server_wait_hint"]

logger = get_logger("retry")

T = TypeVar("T")

#: Errors raised locally (no server involved, or by our own breaker): never
#: retried, whatever headers they carry.
_NEVER_RETRY = (CircuitBreakerError, ConfigurationError, ValidationError, UnsupportedFeatureError)
#: Provider errors that repeating the same request cannot fix.
_NOT_RETRYABLE = (
    InvalidRequestError,
    AuthenticationError,
    PermissionDeniedError,
    ModelNotFoundError,
    QuotaExceededError,
)
_MAX_EXPONENT = 1000  # as in the SDKs: keeps multiplier ** k finite in practice


def _lower_keys(headers: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    if not headers:
        return {}
    try:
        return {str(k).lower(): v for k, v in headers.items()}
    except Exception:  # a broken mapping must not break error handling
        return {}


def _as_text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value).strip()


def _finite_nonneg(value: float) -> Optional[float]:
    return value if math.isfinite(value) and value >= 0 else None


def parse_retry_after(
    headers: Optional[Mapping[str, Any]], now: Callable[[], float] = time.time
) -> Optional[float]:
    """Seconds the server asked us to wait, or ``None`` if it did not say (validly).

    Looks at ``retry-after-ms`` (float milliseconds) first, then ``Retry-After``
    as float seconds, then ``Retry-After`` as an HTTP date (seconds from
    ``now()``, a wall-clock time, to that date; a date in the past gives
    ``0.0``). Header names are case-insensitive. Negative, infinite, NaN,
    overflowing or unparsable values count as absent; an invalid
    ``retry-after-ms`` falls through to ``Retry-After``. Never raises.
    """
    lowered = _lower_keys(headers)
    ms = _as_text(lowered.get("retry-after-ms"))
    if ms:
        try:
            value = _finite_nonneg(float(ms) / 1000.0)
        except (ValueError, OverflowError):
            value = None
        if value is not None:
            return value
    text = _as_text(lowered.get("retry-after"))
    if not text:
        return None
    try:
        return _finite_nonneg(float(text))
    except (ValueError, OverflowError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        delta = when.timestamp() - float(now())
    except Exception:  # garbage, year out of range, overflow: all "no hint"
        return None
    if math.isnan(delta) or math.isinf(delta):
        return None
    return max(0.0, delta)


def parse_should_retry(headers: Optional[Mapping[str, Any]]) -> Optional[bool]:
    """``True``/``False`` from an ``x-should-retry`` header, ``None`` if absent or invalid."""
    value = _as_text(_lower_keys(headers).get("x-should-retry"))
    if value is None:
        return None
    value = value.lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def _check_number(name: str, value: Any, *, minimum: float = 0.0, allow_equal: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"RetryPolicy.{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"RetryPolicy.{name} must be finite, got {value!r}")
    if value < minimum or (value == minimum and not allow_equal):
        op = ">=" if allow_equal else ">"
        raise ValueError(f"RetryPolicy.{name} must be {op} {minimum:g}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """An immutable retry policy; copy it with :meth:`with_` or ``dataclasses.replace``.

    :param max_retries: retries after the first attempt (``2`` means at most 3 calls).
    :param initial_backoff: delay in seconds before the first retry, before jitter.
    :param max_backoff: cap on the exponential delay, before jitter.
    :param multiplier: growth factor of the delay per retry.
    :param jitter: the delay is multiplied by ``1 - jitter * random()``, so it
        is shortened by up to this fraction (``0`` disables jitter).
    :param max_retry_after: the longest server-requested wait (``Retry-After``,
        ``retry-after-ms``) honoured; a longer one makes the error raise at once
        with ``retry_after`` set, so the caller can decide.
    :param deadline: overall seconds for all attempts of one call; a retry
        whose wait would reach it is not made. ``None`` means no deadline.
    """

    max_retries: int = 2
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    deadline: Optional[float] = None

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ValueError(f"RetryPolicy.max_retries must be an int, got {type(self.max_retries).__name__}")
        if self.max_retries < 0:
            raise ValueError(f"RetryPolicy.max_retries must be >= 0, got {self.max_retries}")
        _check_number("initial_backoff", self.initial_backoff)
        _check_number("max_backoff", self.max_backoff)
        if self.max_backoff < self.initial_backoff:
            raise ValueError(
                f"RetryPolicy.max_backoff ({self.max_backoff!r}) must be >= initial_backoff ({self.initial_backoff!r})"
            )
        _check_number("multiplier", self.multiplier, minimum=1.0)
        _check_number("jitter", self.jitter)
        if self.jitter > 1:
            raise ValueError(f"RetryPolicy.jitter must be between 0 and 1, got {self.jitter!r}")
        _check_number("max_retry_after", self.max_retry_after)
        if self.deadline is not None:
            _check_number("deadline", self.deadline, allow_equal=False)

    @classmethod
    def none(cls) -> "RetryPolicy":
        """A policy that never retries (one attempt)."""
        return cls(max_retries=0)

    def with_(self, **changes: Any) -> "RetryPolicy":
        """A copy with some fields changed (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether to retry after attempt number ``attempt`` (1-based) failed with ``exc``.

        Ignores timing (hints, deadline); :meth:`delay_for` decides those.
        """
        if attempt > self.max_retries:
            return False
        return _is_retryable(exc)

    def backoff(self, retry_index: int, rand: float) -> float:
        """The exponential delay before retry ``retry_index`` (0-based), with jitter.

        ``min(initial_backoff * multiplier ** k, max_backoff) * (1 - jitter * rand)``
        with ``rand`` in ``[0, 1)`` (clamped).
        """
        k = min(max(int(retry_index), 0), _MAX_EXPONENT)
        try:
            base = min(self.initial_backoff * (self.multiplier**k), self.max_backoff)
        except OverflowError:
            base = self.max_backoff
        rand = min(max(float(rand), 0.0), 1.0) if math.isfinite(rand) else 0.0
        return base * (1.0 - self.jitter * rand)

    def delay_for(
        self,
        exc: BaseException,
        retry_index: int,
        rand: float,
        *,
        elapsed: Optional[float] = None,
        now: Callable[[], float] = time.time,
    ) -> Optional[float]:
        """Seconds to wait before retry ``retry_index`` (0-based), or ``None`` to raise now.

        Uses the server's hint (``exc.retry_after``, else ``exc.headers``) when
        ``0 < hint <= max_retry_after``; returns ``None`` when the hint exceeds
        ``max_retry_after``; otherwise :meth:`backoff`. With ``elapsed`` (seconds
        already spent on this call) and a ``deadline``, returns ``None`` when
        the wait would reach the deadline. Does not check ``should_retry``.
        """
        hint = server_wait_hint(exc, now=now)
        if hint is not None and hint > self.max_retry_after:
            return None
        if hint is not None and hint > 0:
            delay = hint
        else:
            delay = self.backoff(retry_index, rand)
        if self.deadline is not None and elapsed is not None and elapsed + delay >= self.deadline:
            return None
        return delay


def server_wait_hint(exc: BaseException, *, now: Callable[[], float] = time.time) -> Optional[float]:
    """The server's requested wait for ``exc``: ``exc.retry_after`` or its headers; ``None`` if none valid."""
    value = getattr(exc, "retry_after", None)
    if value is not None:
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = None
        if value is not None and math.isfinite(value):
            return value
    headers = getattr(exc, "headers", None)
    return parse_retry_after(headers, now) if isinstance(headers, Mapping) else None


def _is_retryable(exc: BaseException) -> bool:
    if not isinstance(exc, ModelProvError) or isinstance(exc, _NEVER_RETRY):
        return False
    verdict = parse_should_retry(exc.headers)
    if verdict is not None:
        return verdict
    if isinstance(exc, _NOT_RETRYABLE):
        return False
    return bool(exc.retryable)


def _record(exc: ModelProvError, attempt: int, delay: Optional[float], elapsed: float) -> Dict[str, Any]:
    return {
        "attempt": attempt,
        "error": type(exc).__name__,
        "message": exc.message,
        "status_code": exc.status_code,
        "request_id": exc.request_id,
        "delay": delay,
        "elapsed": elapsed,
    }


def _give_up_reason(policy: RetryPolicy, exc: ModelProvError, attempt: int, elapsed: float) -> str:
    if not _is_retryable(exc):
        return "not retryable"
    if attempt > policy.max_retries:
        return f"max_retries={policy.max_retries} reached"
    hint = server_wait_hint(exc)
    if hint is not None and hint > policy.max_retry_after:
        return f"server asked to wait {hint:g}s, more than max_retry_after={policy.max_retry_after:g}s"
    if policy.deadline is not None:
        return f"deadline of {policy.deadline:g}s would pass (elapsed {elapsed:.3g}s)"
    return "retry refused"


def call_with_retry(
    policy: RetryPolicy,
    fn: Callable[[int], T],
    *,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    random: Callable[[], float] = _random.random,
    on_retry: Optional[Callable[[Dict[str, Any], ModelProvError], object]] = None,
    provider: Optional[str] = None,
) -> T:
    """Call ``fn(attempt)`` (attempt is 1-based) until it succeeds or retrying must stop.

    Only :class:`ModelProvError`\\ s are considered; anything else (including
    ``KeyboardInterrupt``) propagates untouched at once. Before each retry an
    attempt record (``attempt``, ``error``, ``message``, ``status_code``,
    ``request_id``, ``delay``, ``elapsed``) is passed to ``on_retry(record,
    exc)`` (its exceptions are logged and swallowed), the retry is logged on
    ``modelprov.retry`` and ``sleep(delay)`` is called. The error finally
    raised carries every record of this loop (the last with ``delay=None``)
    appended to its ``attempts``, and ``retry_after`` filled from its headers
    when the server gave a positive wait.
    """
    start = clock()
    records: List[Dict[str, Any]] = []
    attempt = 1
    who = f"[{provider}] " if provider else ""
    while True:
        try:
            return fn(attempt)
        except ModelProvError as exc:
            elapsed = max(0.0, clock() - start)
            delay: Optional[float] = None
            if policy.should_retry(exc, attempt):
                delay = policy.delay_for(exc, attempt - 1, random(), elapsed=elapsed)
            record = _record(exc, attempt, delay, elapsed)
            records.append(record)
            if delay is None:
                exc.attempts = list(exc.attempts or []) + records
                if exc.retry_after is None:
                    hint = server_wait_hint(exc)
                    if hint is not None and hint > 0:
                        exc.retry_after = hint
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%sgiving up after attempt %d: %s (%s)",
                        who,
                        attempt,
                        redact(exc.message),
                        _give_up_reason(policy, exc, attempt, elapsed),
                    )
                raise
            if on_retry is not None:
                try:
                    on_retry(dict(record), exc)
                except Exception:
                    logger.warning("%son_retry hook raised; ignoring it", who, exc_info=True)
            logger.info(
                "%sattempt %d failed with %s%s: %s; retrying in %.2fs",
                who,
                attempt,
                type(exc).__name__,
                f" (HTTP {exc.status_code})" if exc.status_code is not None else "",
                redact(exc.message),
                delay,
            )
            sleep(delay)
            attempt += 1
