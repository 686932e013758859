"""Circuit breaker: CLOSED / OPEN / HALF_OPEN with a permit API, stats and callbacks.

Holds :class:`CircuitState`, :class:`CircuitBreaker`, its :class:`Permit` and the
:class:`CircuitStats` snapshot; one breaker guards one provider endpoint. A call
ends as *failure* (transient provider trouble), *success* or *ignored* (the
caller's 4xx, validation, cancellation, ``KeyboardInterrupt``...), and ignored
neither resets the failure count nor closes a half-open breaker. The single lock
is never held while the protected call or a callback runs. Each state change
starts a new generation: an older permit (or a trial whose slot was reclaimed
after ``probe_timeout``) still counts in the totals but cannot move the state.
Standard library only; the monotonic clock is injectable.
"""

import enum
import itertools
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Type, TypeVar

from ._log import get_logger
from ._redact import redact
from .exceptions import (
    CircuitBreakerError,
    ModelProvError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ResponseError,
    ServerError,
)

__all__ = ["CircuitBreaker", "CircuitState", "CircuitStats", "Guard", "Permit"]

logger = get_logger("circuit_breaker")

T = TypeVar("T")

FAILURE = "failure"
IGNORED = "ignored"
SUCCESS = "success"

#: ModelProvErrors that count against the provider.
_FAILURE_TYPES = (ServerError, ProviderTimeoutError, ProviderConnectionError, ResponseError)


class CircuitState(str, enum.Enum):
    """The breaker's state."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: ``callback(breaker, old_state, new_state)``.
StateListener = Callable[["CircuitBreaker", CircuitState, CircuitState], object]
_Events = List[Tuple[CircuitState, CircuitState]]


@dataclass(frozen=True)
class CircuitStats:
    """A consistent snapshot of a breaker's counters.

    ``calls`` counts permits granted; ``opened_at`` is the clock time the breaker
    last opened (``None`` once closed again); ``last_failure`` is
    ``"ClassName: message"`` (redacted); ``half_open_in_flight`` counts admitted
    trial calls; ``failure_rate`` is over the window (``None`` if off or empty).
    """

    name: str
    state: CircuitState
    calls: int
    successes: int
    failures: int
    ignored: int
    rejections: int
    consecutive_failures: int
    opened_at: Optional[float]
    last_failure: Optional[str]
    state_changes: int
    half_open_in_flight: int
    failure_rate: Optional[float]


class Permit:
    """Leave to make one call; report its outcome exactly once (later reports are no-ops)."""

    __slots__ = ("_breaker", "_generation", "_token", "_trial", "_done")

    def __init__(self, breaker: "CircuitBreaker", generation: int, token: int, trial: bool) -> None:
        self._breaker = breaker
        self._generation = generation
        self._token = token
        self._trial = trial
        self._done = False

    @property
    def is_trial(self) -> bool:
        """Whether this permit is one of the HALF_OPEN trial calls."""
        return self._trial

    @property
    def reported(self) -> bool:
        """Whether an outcome has been reported already."""
        return self._done

    def success(self) -> None:
        """The call succeeded."""
        self._breaker._report(self, SUCCESS, None)

    def failure(self, exc: Optional[BaseException] = None) -> None:
        """The call failed in a way that counts against the provider."""
        self._breaker._report(self, FAILURE, exc)

    def ignore(self) -> None:
        """The call ended in a way that says nothing about the provider's health."""
        self._breaker._report(self, IGNORED, None)

    def record(self, exc: Optional[BaseException]) -> None:
        """Report ``None`` as success, else classify ``exc`` with :meth:`CircuitBreaker.classify`."""
        if exc is None:
            self.success()
        else:
            self._breaker._report(self, self._breaker.classify(exc), exc)

    def __repr__(self) -> str:
        kind = "trial " if self._trial else ""
        return f"<{kind}Permit of {self._breaker.name!r}{' (reported)' if self._done else ''}>"


class Guard:
    """:meth:`CircuitBreaker.guard`: a permit acquired on entry; success on a normal exit, else ``record(exc)``.

    A class, not ``contextlib.contextmanager`` (about 1 us more a call): every engine attempt runs in one.
    """

    __slots__ = ("_breaker", "_permit")

    def __init__(self, breaker: "CircuitBreaker") -> None:
        self._breaker = breaker
        self._permit: Optional[Permit] = None

    def __enter__(self) -> Permit:
        permit = self._permit = self._breaker.acquire()
        return permit

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        if self._permit is not None:
            self._permit.record(exc)  # None: success


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"CircuitBreaker {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"CircuitBreaker {name} must be >= {minimum}, got {value}")
    return value


def _seconds(name: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"CircuitBreaker {name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"CircuitBreaker {name} must be a finite number {'>' if positive else '>='} 0, got {value!r}")
    return float(value)


def _is_named(exc: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _describe(exc: Optional[BaseException]) -> str:
    if exc is None:
        return "failure reported without an exception"
    text = redact(getattr(exc, "message", None) or str(exc))
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class CircuitBreaker:
    """A thread-safe circuit breaker for one provider endpoint.

    :param name: shown in errors and logs; also the ``provider`` of the
        :class:`CircuitBreakerError` it raises.
    :param failure_threshold: consecutive failures that open the breaker.
    :param recovery_timeout: seconds OPEN lasts before trial calls are let through.
    :param half_open_max_calls: trial calls admitted at the same time in HALF_OPEN.
    :param success_threshold: trial successes that close the breaker.
    :param window_size: with ``failure_rate_threshold``, the number of recent
        recorded (non-ignored) calls over which the failure rate is computed.
    :param failure_rate_threshold: a rate in ``(0, 1]`` that opens the breaker
        once at least ``minimum_calls`` calls are in the window.
    :param minimum_calls: calls the window must hold before the rate counts.
    :param probe_timeout: seconds after which a trial call that never
        reported back (its thread died) loses its slot.
    :param clock: monotonic clock in seconds.
    :param on_state_change: ``callback(breaker, old, new)``; see :meth:`add_listener`.
    """

    def __init__(
        self,
        name: str = "",
        *,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        window_size: int = 0,
        failure_rate_threshold: Optional[float] = None,
        minimum_calls: int = 10,
        probe_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: Optional[StateListener] = None,
    ) -> None:
        if not isinstance(name, str):
            raise ValueError(f"CircuitBreaker name must be a str, got {type(name).__name__}")
        self.name = name
        self.failure_threshold = _count("failure_threshold", failure_threshold, 1)
        self.recovery_timeout = _seconds("recovery_timeout", recovery_timeout, positive=False)
        self.half_open_max_calls = _count("half_open_max_calls", half_open_max_calls, 1)
        self.success_threshold = _count("success_threshold", success_threshold, 1)
        self.window_size = _count("window_size", window_size, 0)
        self.minimum_calls = _count("minimum_calls", minimum_calls, 1)
        rate = failure_rate_threshold
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
                raise ValueError(f"CircuitBreaker failure_rate_threshold must be a number in (0, 1], got {rate!r}")
            if window_size == 0:
                raise ValueError("CircuitBreaker failure_rate_threshold needs window_size > 0")
            if minimum_calls > window_size:
                raise ValueError(f"CircuitBreaker minimum_calls ({minimum_calls}) cannot exceed window_size ({window_size})")
        elif window_size > 0:
            raise ValueError("CircuitBreaker window_size > 0 needs a failure_rate_threshold")
        self.failure_rate_threshold = None if failure_rate_threshold is None else float(failure_rate_threshold)
        self.probe_timeout = _seconds("probe_timeout", probe_timeout, positive=True)
        if not callable(clock):
            raise ValueError("CircuitBreaker clock must be callable")
        if on_state_change is not None and not callable(on_state_change):
            raise ValueError("CircuitBreaker on_state_change must be callable")
        self._clock = clock
        self._lock = threading.Lock()
        # Copy-on-write tuple: readable without the lock.
        self._listeners: Tuple[StateListener, ...] = (on_state_change,) if on_state_change else ()
        self._tokens = itertools.count(1)
        self._state = CircuitState.CLOSED
        self._generation = 0
        self._opened_at: Optional[float] = None
        self._open_until = 0.0
        self._consecutive = 0
        self._window: Deque[bool] = deque(maxlen=self.window_size or None)
        self._window_failures = 0
        self._trials: Dict[int, float] = {}  # token -> clock time admitted
        self._trial_successes = 0
        self._zero_stats()

    def _zero_stats(self) -> None:
        self._calls = self._successes = self._failures = self._ignored = self._rejections = 0
        self._state_changes = 0
        self._last_failure: Optional[str] = None

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self._state.value})"

    def add_listener(self, callback: StateListener) -> None:
        """Call ``callback(breaker, old, new)`` after every state change (outside the lock).

        A callback's exception is logged on ``modelprov.circuit_breaker`` and
        otherwise ignored. Callbacks of concurrent changes may interleave.
        """
        if not callable(callback):
            raise ValueError("listener must be callable")
        with self._lock:
            self._listeners = self._listeners + (callback,)

    def remove_listener(self, callback: StateListener) -> bool:
        """Stop calling ``callback``; returns whether it was registered."""
        with self._lock:
            listeners = list(self._listeners)
            if callback not in listeners:
                return False
            listeners.remove(callback)
            self._listeners = tuple(listeners)
            return True

    def _notify(self, events: _Events) -> None:
        for old, new in events:
            log = logger.warning if new is CircuitState.OPEN else logger.info
            log("circuit breaker %r: %s -> %s", self.name, old.value, new.value)
            for callback in self._listeners:
                try:
                    callback(self, old, new)
                except Exception:
                    cb_name = getattr(callback, "__qualname__", type(callback).__name__)
                    logger.exception("circuit breaker %r: state-change callback %s raised", self.name, cb_name)

    def _transition(self, new: CircuitState, now: float, events: _Events, duration: Optional[float] = None) -> None:
        # Lock held. Every call starts a new generation, even OPEN -> OPEN or CLOSED -> CLOSED.
        old = self._state
        self._generation += 1
        self._state = new
        self._trials.clear()
        self._trial_successes = 0
        if new is CircuitState.OPEN:
            self._opened_at = now
            self._open_until = now + (self.recovery_timeout if duration is None else duration)
        elif new is CircuitState.CLOSED:
            self._opened_at = None
            self._consecutive = 0
            self._window.clear()
            self._window_failures = 0
        if old is not new:
            self._state_changes += 1
            events.append((old, new))

    def _advance(self, now: float, events: _Events) -> None:
        if self._state is CircuitState.OPEN and now >= self._open_until:
            self._transition(CircuitState.HALF_OPEN, now, events)

    def _rate_tripped(self) -> bool:
        if self.failure_rate_threshold is None or len(self._window) < self.minimum_calls:
            return False
        return self._window_failures / len(self._window) >= self.failure_rate_threshold

    @property
    def state(self) -> CircuitState:
        """The current state (an elapsed recovery timeout turns OPEN into HALF_OPEN)."""
        events: _Events = []
        with self._lock:
            self._advance(self._clock(), events)
            state = self._state
        self._notify(events)
        return state

    def acquire(self) -> Permit:
        """Get a :class:`Permit` for one call, or raise :class:`CircuitBreakerError`.

        OPEN rejects with ``retry_after`` = seconds until HALF_OPEN. HALF_OPEN
        admits ``half_open_max_calls`` trial calls at a time and rejects the
        rest with ``retry_after`` = when the oldest trial's slot is reclaimed
        at the latest.
        """
        events: _Events = []
        permit: Optional[Permit] = None
        reject: Optional[Tuple[str, float]] = None
        abandoned = 0
        with self._lock:
            now = self._clock()
            self._advance(now, events)
            if self._state is CircuitState.CLOSED:
                permit = Permit(self, self._generation, 0, False)
            elif self._state is CircuitState.HALF_OPEN:
                for token, started in list(self._trials.items()):
                    if now - started >= self.probe_timeout:
                        del self._trials[token]
                        abandoned += 1
                if len(self._trials) < self.half_open_max_calls:
                    token = next(self._tokens)
                    self._trials[token] = now
                    permit = Permit(self, self._generation, token, True)
                else:
                    wait = min(self._trials.values()) + self.probe_timeout - now
                    reject = ("is half-open and its trial calls are still running", max(0.0, wait))
            else:
                reject = ("is open", max(0.0, self._open_until - now))
            if permit is not None:
                self._calls += 1
            else:
                self._rejections += 1
        if abandoned:
            logger.warning("circuit breaker %r: %d trial call(s) never reported back; slots freed", self.name, abandoned)
        self._notify(events)
        if permit is None:
            assert reject is not None
            label = f"circuit breaker {self.name!r}" if self.name else "circuit breaker"
            raise CircuitBreakerError(f"{label} {reject[0]}", provider=self.name or None, retry_after=reject[1])
        return permit

    def _report(self, permit: Permit, outcome: str, exc: Optional[BaseException]) -> None:
        description = _describe(exc) if outcome == FAILURE else None
        events: _Events = []
        with self._lock:
            if permit._done:
                return
            permit._done = True
            if outcome == SUCCESS:
                self._successes += 1
            elif outcome == FAILURE:
                self._failures += 1
                self._last_failure = description
            else:
                self._ignored += 1
            if permit._generation != self._generation:
                return  # from before a reset or state change: totals only
            if permit._trial:
                if self._trials.pop(permit._token, None) is None:
                    return  # slot already reclaimed after probe_timeout
                if outcome == FAILURE:
                    self._transition(CircuitState.OPEN, self._clock(), events)
                elif outcome == SUCCESS:
                    self._trial_successes += 1
                    if self._trial_successes >= self.success_threshold:
                        self._transition(CircuitState.CLOSED, self._clock(), events)
            elif self._state is CircuitState.CLOSED and outcome != IGNORED:
                failed = outcome == FAILURE
                if self.window_size:
                    if len(self._window) == self.window_size:
                        self._window_failures -= self._window[0]  # about to drop off the left
                    self._window.append(failed)
                    self._window_failures += failed
                if not failed:
                    self._consecutive = 0
                else:
                    self._consecutive += 1
                    if self._consecutive >= self.failure_threshold or self._rate_tripped():
                        self._transition(CircuitState.OPEN, self._clock(), events)
        self._notify(events)

    def classify(self, exc: BaseException) -> str:
        """``"failure"`` if ``exc`` says the provider is unhealthy, else ``"ignored"``.

        Failures: ``ServerError`` (incl. overloaded), ``ProviderTimeoutError``,
        ``ProviderConnectionError``, ``ResponseError``, foreign ``OSError`` and
        ``TimeoutError``. Ignored: everything else (4xx incl. rate limit and
        quota, validation, ``CancelledError``, ``KeyboardInterrupt``, errors
        marked ``aborted`` because the caller stopped the call, ...).
        """
        if not isinstance(exc, Exception) or _is_named(exc, "CancelledError"):
            return IGNORED
        if isinstance(exc, ModelProvError):
            if exc.extra.get("aborted"):
                return IGNORED  # the caller aborted or cancelled: not the provider's fault
            return FAILURE if isinstance(exc, _FAILURE_TYPES) else IGNORED
        if isinstance(exc, OSError) or _is_named(exc, "TimeoutError"):
            return FAILURE
        return IGNORED

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` under the breaker; exceptions are recorded and re-raised.

        For a generator or stream, hold a permit from :meth:`acquire` (or use
        :meth:`guard`) around the whole consumption instead.
        """
        with self.guard():
            return fn(*args, **kwargs)

    def guard(self) -> "Guard":
        """``with breaker.guard():`` records the block's outcome like :meth:`call`.

        The permit is bound by ``as`` so the block may report an outcome itself
        (for example ``permit.ignore()``); the automatic report is then a no-op.
        """
        return Guard(self)

    def stats(self) -> CircuitStats:
        """A consistent snapshot of the counters and state."""
        events: _Events = []
        with self._lock:
            self._advance(self._clock(), events)
            window = len(self._window)
            snapshot = CircuitStats(
                name=self.name,
                state=self._state,
                calls=self._calls,
                successes=self._successes,
                failures=self._failures,
                ignored=self._ignored,
                rejections=self._rejections,
                consecutive_failures=self._consecutive,
                opened_at=self._opened_at,
                last_failure=self._last_failure,
                state_changes=self._state_changes,
                half_open_in_flight=len(self._trials),
                failure_rate=(self._window_failures / window) if window else None,
            )
        self._notify(events)
        return snapshot

    def reset(self, *, clear_stats: bool = False) -> None:
        """Close the breaker and forget failures; outstanding permits stop counting.

        With ``clear_stats`` the totals in :meth:`stats` restart from zero too.
        """
        events: _Events = []
        with self._lock:
            self._transition(CircuitState.CLOSED, self._clock(), events)
            if clear_stats:
                self._zero_stats()
        self._notify(events)

    def force_open(self, duration: Optional[float] = None) -> None:
        """Open the breaker now, for ``duration`` seconds (default ``recovery_timeout``)."""
        if duration is not None:
            duration = _seconds("force_open duration", duration, positive=False)
        events: _Events = []
        with self._lock:
            self._transition(CircuitState.OPEN, self._clock(), events, duration)
        self._notify(events)
