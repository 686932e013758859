"""``RateLimiter``: client-side request and token limits per provider endpoint, and adaptive pacing.

One limiter guards one endpoint (a provider instance and its base URL) and is
shared by every thread and async call of a client (async calls run on the
bridge's threads, so thread safety is all it needs). It combines:

* **Static limits** (``rpm``, ``tpm``): two token buckets. Each holds at most
  :data:`BURST_SECONDS` seconds of its budget (``rpm=60``: a burst of 10
  requests) and refills continuously at ``rpm / 60`` requests (``tpm / 60``
  tokens) per second, so over any minute at most ``rpm + rpm / 6`` requests
  start. A call larger than the whole bucket waits for a full bucket and
  leaves it in debt. Tokens are estimated before the call
  (:func:`estimate_tokens`: prompt characters / 4, plus ``max_tokens`` or
  :data:`DEFAULT_OUTPUT_TOKENS`) and reconciled with the reported usage after
  (:meth:`RateLimiter.settle`); a failed attempt gives its tokens back.
* **Adaptive pacing** from the provider's headers (:meth:`RateLimiter.observe`:
  OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``,
  Anthropic's ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``,
  OpenRouter's ``X-RateLimit-{Limit,Remaining,Reset}``). When the budget left is
  below :data:`LOW_FRACTION` of the limit, the next calls are spaced so that
  what is left lasts until the reset time (none at all before it when nothing
  is left); after the reset, or once a response shows budget again, calls go
  at full speed. A 429's ``Retry-After`` holds every call back as long
  (:meth:`RateLimiter.throttled`).

A wait happens before an attempt is sent, with the lock released, through the
injected ``sleep``; a wait that would pass the call's
:class:`~modelprov.deadline.Deadline` raises
:class:`~modelprov.exceptions.RateLimitError` at once instead. Limits are per
process: workers of a pool each hold their own. Clock, wall clock and sleep
are injected; no I/O here.
"""

import math
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple, TypeVar

from .exceptions import QuotaExceededError, RateLimitError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from .deadline import Deadline
    from .types import ChatRequest, ProviderConfig, Usage

__all__ = ["BURST_SECONDS", "DEFAULT_OUTPUT_TOKENS", "LOW_FRACTION", "Estimate", "Limiters", "RateLimiter", "estimate_tokens", "parse_reset"]

#: Seconds of budget a static bucket holds: the burst (``rpm=60`` lets 10 requests through at once).
BURST_SECONDS = 10.0
#: Output tokens counted for a call without ``max_tokens`` (reconciled after the call).
DEFAULT_OUTPUT_TOKENS = 1024
#: Pacing starts when the server reports less than this share of its limit left.
LOW_FRACTION = 0.1
#: The longest a 429's ``Retry-After`` holds back the other calls (a longer one is the retry policy's to refuse).
MAX_THROTTLE = 60.0
#: Tokens counted for an image part.
IMAGE_TOKENS = 1000
#: The header dimensions paced; each is charged the request count or a token estimate.
_DIMENSIONS = ("requests", "tokens", "input-tokens", "output-tokens")
#: (dimension, remaining, limit, reset) header names, lower-case, per header family.
_OPENAI = tuple((d, f"x-ratelimit-remaining-{d}", f"x-ratelimit-limit-{d}", f"x-ratelimit-reset-{d}") for d in ("requests", "tokens"))
_ANTHROPIC = tuple((d, f"anthropic-ratelimit-{d}-remaining", f"anthropic-ratelimit-{d}-limit", f"anthropic-ratelimit-{d}-reset") for d in _DIMENSIONS)
_OPENROUTER = (("requests", "x-ratelimit-remaining", "x-ratelimit-limit", "x-ratelimit-reset"),)
_GO_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ms|us|µs|ns|h|m|s))+")
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class Estimate(NamedTuple):
    """A call's token estimate: prompt (input) and answer (output) tokens."""

    input: int = 0
    output: int = 0

    @property
    def total(self) -> int:
        """Input plus output tokens."""
        return self.input + self.output


#: No tokens: a call whose tokens are neither limited nor paced.
NO_ESTIMATE = Estimate(0, 0)
R = TypeVar("R")
T = TypeVar("T")


def _chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, (list, tuple)):
        total = 0
        for part in content:
            text = getattr(part, "text", None)
            if isinstance(text, str):
                total += len(text)
            elif getattr(part, "type", None) == "image":
                total += IMAGE_TOKENS * 4
        return total
    return 0


def estimate_tokens(req: "ChatRequest", default_output: int = DEFAULT_OUTPUT_TOKENS) -> Estimate:
    """``req``'s tokens, roughly: characters of the prompt (system, messages, tool calls and tools) / 4, and
    ``max_tokens`` (else ``default_output``) for the answer; an image counts :data:`IMAGE_TOKENS`."""
    chars = len(req.system or "")
    for message in req.messages:
        chars += _chars(message.content)
        for call in message.tool_calls:
            chars += len(call.name) + len(call.raw_arguments or str(call.arguments))
    for tool in req.tools or ():
        chars += len(tool.name) + len(tool.description or "") + len(str(tool.parameters))
    output = req.max_tokens if isinstance(req.max_tokens, int) and req.max_tokens > 0 else default_output
    return Estimate(-(-chars // 4), output)


def parse_reset(value: Any, wall: Callable[[], float] = time.time) -> Optional[float]:
    """Seconds from now until a rate-limit reset header's time, or ``None`` when it is not one.

    Takes a Go-style duration (OpenAI: ``"1s"``, ``"6m0s"``, ``"120ms"``), plain
    seconds, an epoch time in seconds or milliseconds (OpenRouter) or an
    RFC 3339 time (Anthropic); a time in the past gives ``0.0``. Never raises.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number) or number < 0:
            return None
        if number > 1e11:  # epoch milliseconds
            return max(0.0, number / 1000.0 - wall())
        if number > 1e9:  # epoch seconds
            return max(0.0, number - wall())
        return number
    if _GO_DURATION.fullmatch(text):
        return sum(float(n) * _UNITS[unit] for n, unit in _GO_PART.findall(text))
    from .providers.timeparse import parse_rfc3339

    stamp = parse_rfc3339(text)
    return None if stamp is None else max(0.0, stamp - wall())


def _number(value: Any) -> Optional[float]:
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def check_limit(value: Any, name: str) -> Optional[float]:
    """``value`` as a positive finite float, or ``None``; anything else raises :class:`ValidationError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValidationError(f"{name} must be a positive number per minute or None, not {value!r}")
    return float(value)


class _Bucket:
    """A token bucket: ``level`` units of at most ``capacity``, refilled at ``rate`` per second (may go into debt)."""

    __slots__ = ("what", "rate", "capacity", "level", "stamp")

    def __init__(self, what: str, per_minute: float, burst_seconds: float, now: float) -> None:
        self.what = what
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self.stamp = now

    def wait(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` units (at most a full bucket) are there, after refilling to ``now``."""
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now
        need = min(cost, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def add(self, units: float) -> None:
        self.level = min(self.capacity, self.level + units)


class _Gate:
    """Pacing from the server's headers: ``remaining`` units spread evenly until ``until``."""

    __slots__ = ("rate", "until", "ready", "remaining", "limit")

    def __init__(self, rate: float, until: float, ready: float, remaining: float, limit: Optional[float]) -> None:
        self.rate = rate  # units per second; 0: nothing left before ``until``
        self.until = until
        self.ready = ready  # when the next call may start
        self.remaining = remaining
        self.limit = limit

    def wait(self, cost: float, now: float) -> float:
        if self.rate <= 0:
            return self.until - now
        return min(max(0.0, self.ready - now), self.until - now) if cost > 0 else 0.0


class RateLimiter:
    """Waits before each attempt so the endpoint's limits are kept (see the module docs).

    :param name: the endpoint's name, used in messages (never a URL or key).
    :param rpm: requests per minute (``None``: no static request limit).
    :param tpm: tokens per minute, input and output (``None``: no static token limit).
    :param burst_seconds: seconds of budget each static bucket holds.
    :param adaptive: pace from the provider's rate-limit headers.
    :param low_fraction: pacing starts when less than this share of the server's limit is left.
    :param clock: the monotonic clock; ``sleep`` the default wait; ``wall`` the epoch clock for absolute reset times.
    """

    def __init__(
        self,
        name: str = "",
        *,
        rpm: Optional[float] = None,
        tpm: Optional[float] = None,
        burst_seconds: float = BURST_SECONDS,
        adaptive: bool = True,
        low_fraction: float = LOW_FRACTION,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.rpm = check_limit(rpm, "rpm")
        self.tpm = check_limit(tpm, "tpm")
        if isinstance(burst_seconds, bool) or not isinstance(burst_seconds, (int, float)) or not 0 < burst_seconds < math.inf:
            raise ValidationError(f"burst_seconds must be a positive number of seconds, not {burst_seconds!r}")
        if isinstance(low_fraction, bool) or not isinstance(low_fraction, (int, float)) or not 0 <= low_fraction <= 1:
            raise ValidationError(f"low_fraction must be between 0 and 1, not {low_fraction!r}")
        self.name = name
        self.burst_seconds = float(burst_seconds)
        self.adaptive = bool(adaptive)
        self.low_fraction = float(low_fraction)
        self.clock = clock
        self.sleep = sleep
        self.wall = wall
        now = clock()
        self._requests = None if self.rpm is None else _Bucket(f"rpm={self.rpm:g}", self.rpm, burst_seconds, now)
        self._tokens = None if self.tpm is None else _Bucket(f"tpm={self.tpm:g}", self.tpm, burst_seconds, now)
        self._static = self._requests is not None or self._tokens is not None
        self._gates: Dict[str, _Gate] = {}
        self._blocked_until = -math.inf
        self._lock = threading.Lock()
        #: Calls that waited, and the seconds they waited in all.
        self.waits = 0
        self.waited = 0.0

    def __repr__(self) -> str:
        paced = sorted(self._gates)
        return f"<RateLimiter {self.name!r} rpm={self.rpm} tpm={self.tpm} adaptive={self.adaptive} paced={paced}>"

    def __reduce__(self) -> Tuple[Any, ...]:
        """A pickled limiter is a fresh one with the same settings."""
        return (_rebuild, (self.name, self.rpm, self.tpm, self.burst_seconds, self.adaptive, self.low_fraction))

    # ------------------------------------------------------------ estimates
    def estimate(self, req: "ChatRequest") -> Estimate:
        """``req``'s token estimate when tokens are limited or paced now, else nothing (cheap)."""
        if self._tokens is None and not self._gates:
            return NO_ESTIMATE
        return estimate_tokens(req)

    def estimate_texts(self, texts: List[str]) -> Estimate:
        """The input tokens of ``texts`` (embeddings: characters / 4) when tokens are limited or paced now."""
        if self._tokens is None and not self._gates:
            return NO_ESTIMATE
        return Estimate(-(-sum(len(t) for t in texts) // 4), 0)

    # -------------------------------------------------------------- waiting
    def acquire(
        self,
        estimate: Optional[Estimate] = None,
        deadline: "Optional[Deadline]" = None,
        *,
        sleep: Optional[Callable[[float], None]] = None,
        retry: bool = False,
    ) -> float:
        """Take one request and ``estimate``'s tokens, waiting (lock released) for them; the seconds waited.

        Raises :class:`~modelprov.exceptions.RateLimitError` at once, taking
        nothing, when the wait would pass ``deadline``. A ``retry`` (its wait
        for a 429's ``Retry-After`` made by the retry loop) does not wait for that again.
        """
        now = self.clock()
        if not self._static and not self._gates and (retry or self._blocked_until <= now):
            return 0.0
        if estimate is None:
            estimate = NO_ESTIMATE
        with self._lock:
            now = self.clock()  # read again: time spent waiting for the lock is no wait of its own
            wait, why = self._wait(estimate, now, retry)
            if wait > 0 and deadline is not None:
                left = deadline.remaining()
                if left is not None and wait >= left:
                    raise self._refusal(wait, left, why)
            self._take(estimate, now, wait)
            if wait > 0:
                self.waits += 1
                self.waited += wait
        if wait > 0:
            try:
                (sleep or self.sleep)(wait)
            except BaseException:
                self._untake(estimate)  # never sent: its request and tokens come back
                raise
        return wait

    def _wait(self, estimate: Estimate, now: float, retry: bool) -> Tuple[float, str]:
        wait, why = 0.0, ""
        if self._blocked_until > now and not retry:
            wait, why = self._blocked_until - now, "the server's Retry-After after a 429"
        for bucket, cost in ((self._requests, 1), (self._tokens, estimate.total)):
            if bucket is not None:
                w = bucket.wait(cost, now)
                if w > wait:
                    wait, why = w, f"the client limit {bucket.what}"
        if self._gates:
            for dim, gate in list(self._gates.items()):
                if gate.until <= now:
                    del self._gates[dim]  # the server's window was reset: recovered
                    continue
                w = gate.wait(_cost(dim, estimate), now)
                if w > wait:
                    of = "" if gate.limit is None else f" of {gate.limit:g}"
                    wait, why = w, f"the server's {dim} budget ({gate.remaining:g}{of} left until its reset)"
        return wait, why

    def _take(self, estimate: Estimate, now: float, wait: float) -> None:
        if self._requests is not None:
            self._requests.level -= 1
        if self._tokens is not None:
            self._tokens.level -= estimate.total
        start = now + wait
        for dim, gate in self._gates.items():
            if gate.rate > 0:
                gate.ready = max(gate.ready, start) + _cost(dim, estimate) / gate.rate

    def _refusal(self, wait: float, left: float, why: str) -> RateLimitError:
        return RateLimitError(
            f"the next slot under {why} is {wait:.3g}s away, past the call's deadline ({max(left, 0.0):.3g}s left)",
            provider=self.name or None,
            retry_after=wait,
            hint="raise timeout=, send fewer calls at once, or raise rpm/tpm if the provider allows more (limits are per process)",
            limit=why,
        )

    def _untake(self, estimate: Estimate) -> None:
        with self._lock:
            if self._requests is not None:
                self._requests.add(1)
            if self._tokens is not None:
                self._tokens.add(estimate.total)

    # ------------------------------------------------------------ accounting
    def refund(self, estimate: Estimate) -> None:
        """Give back ``estimate``'s tokens (the attempt failed or was never sent)."""
        if self._tokens is not None and estimate.total:
            with self._lock:
                self._tokens.add(estimate.total)

    def failed(self, estimate: Optional[Estimate], exc: BaseException) -> None:
        """An attempt failed with ``exc``: its tokens come back, and a 429's wait holds every call back."""
        if estimate is not None:
            self.refund(estimate)
        if isinstance(exc, RateLimitError) and not isinstance(exc, QuotaExceededError):
            self.throttled(exc.retry_after)

    def exchange(self, send: Callable[[], R], handle: Callable[[R], T], estimate: Optional[Estimate]) -> T:
        """``handle(send())`` for one attempt: a failure goes to :meth:`failed`; the response's headers
        to :meth:`observe`, and the usage of ``handle``'s result to :meth:`settle`."""
        try:
            response = send()
        except BaseException as exc:
            self.failed(estimate, exc)
            raise
        self.observe(getattr(response, "headers", None))
        result = handle(response)
        if estimate is not None:
            self.settle(estimate, getattr(result, "usage", None))
        return result

    def settle(self, estimate: Estimate, usage: "Optional[Usage]") -> None:
        """Charge or refund the difference between ``estimate`` and the ``usage`` reported (none reported: keep it)."""
        if self._tokens is None or usage is None:
            return
        actual = usage.total_tokens or (usage.input_tokens or 0) + (usage.output_tokens or 0)
        if actual > 0 and actual != estimate.total:
            with self._lock:
                self._tokens.add(estimate.total - actual)

    def throttled(self, seconds: Optional[float]) -> None:
        """A 429 asked to wait ``seconds``: every call through this limiter waits until then (at most :data:`MAX_THROTTLE`)."""
        if seconds is not None and 0 < seconds < math.inf:
            until = self.clock() + min(seconds, MAX_THROTTLE)
            with self._lock:
                self._blocked_until = max(self._blocked_until, until)

    # --------------------------------------------------------------- headers
    def observe(self, headers: Optional[Mapping[str, str]]) -> None:
        """Learn from one response's rate-limit headers (a case-insensitive mapping); cheap without them."""
        if not self.adaptive or not headers:
            return
        for name in headers:  # one pass over the names (no failed lookups when there are none): ratelimit, RateLimit
            if "imit" in name or "IMIT" in name:
                break
        else:
            return
        get = headers.get
        found: List[Tuple[str, Any, Any, Any]] = []
        for family in (_OPENAI, _ANTHROPIC, _OPENROUTER):
            for dim, remaining_name, limit_name, reset_name in family:
                remaining = get(remaining_name)
                if remaining is not None:
                    found.append((dim, get(limit_name), remaining, get(reset_name)))
            if found:
                break
        for dim, limit, remaining, reset in found:
            self._pace(dim, _number(limit), _number(remaining), reset)

    def _pace(self, dim: str, limit: Optional[float], remaining: Optional[float], reset: Any) -> None:
        """Pace ``dim`` when little of it is left (spread until the reset), else stop pacing it."""
        if remaining is None:
            return
        if remaining >= 1 and (limit is None or remaining >= limit * self.low_fraction):
            if dim in self._gates:
                with self._lock:
                    self._gates.pop(dim, None)  # budget left: full speed
            return
        seconds = parse_reset(reset, self.wall)
        now = self.clock()
        with self._lock:
            if seconds is None or seconds <= 0:
                self._gates.pop(dim, None)  # nothing to pace by
                return
            old = self._gates.get(dim)
            ready = now if old is None else max(old.ready, now)
            self._gates[dim] = _Gate(remaining / seconds, now + seconds, ready, remaining, limit)

    def paced(self) -> Dict[str, float]:
        """The header dimensions being paced now, each with the seconds until its reset."""
        now = self.clock()
        with self._lock:
            return {dim: gate.until - now for dim, gate in self._gates.items() if gate.until > now}


class Limiters:
    """A client's rate limiters: one per endpoint (provider instance name and base URL), made on first use.

    :param adaptive: pace from the providers' headers; without it, an endpoint without ``rpm``/``tpm`` gets no limiter.
    """

    def __init__(self, adaptive: bool = True, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.adaptive = adaptive
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._limiters: Dict[Tuple[str, str], RateLimiter] = {}

    def __repr__(self) -> str:
        return f"<Limiters adaptive={self.adaptive} endpoints={len(self._limiters)}>"

    def for_config(self, config: "ProviderConfig") -> Optional[RateLimiter]:
        """The limiter of ``config``'s endpoint with its ``rpm`` and ``tpm`` (``None``: nothing to limit)."""
        if config.rpm is None and config.tpm is None and not self.adaptive:
            return None
        key = (config.name, config.base_url or "")
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = RateLimiter(config.name, rpm=config.rpm, tpm=config.tpm, adaptive=self.adaptive, clock=self.clock, sleep=self.sleep)
                self._limiters[key] = limiter
            return limiter


def _cost(dim: str, estimate: Estimate) -> float:
    if dim == "requests":
        return 1.0
    if dim == "input-tokens":
        return float(estimate.input)
    if dim == "output-tokens":
        return float(estimate.output)
    return float(estimate.total)


def _rebuild(name: str, rpm: Optional[float], tpm: Optional[float], burst: float, adaptive: bool, low_fraction: float) -> RateLimiter:
    return RateLimiter(name, rpm=rpm, tpm=tpm, burst_seconds=burst, adaptive=adaptive, low_fraction=low_fraction)
