"""``UsageTotals``: running token and cost totals per provider and model, and the price table they use.

The engine records every chat call and stream it runs (:meth:`UsageTotals.record`
on success, :meth:`UsageTotals.record_error` on failure); a client owns one
totals object across all its providers (``client.usage``). Rows are keyed
``"provider/model"`` (the provider instance name and the model asked for).

Cost of one call, in USD: the provider's own figure when it reports one
(OpenRouter's ``usage.cost``), else the price table (``Client(prices=...)``,
the config file's ``[prices]`` section) in USD per million tokens::

    {"openai/gpt-5.4-mini": {"input": 0.25, "output": 2.0, "cached": 0.025}}

Uncached input tokens are priced at ``input``, cached ones (``cache_read_tokens``)
at ``cached`` when given, else ``input``; output tokens (reasoning included) at
``output``. Otherwise the cost is unknown: ``None``, never a silent ``0``; a
row's ``cost`` sums the known costs and ``uncosted`` counts the calls without
one. Costs are summed exactly (rounded once, when a snapshot is taken), so a
total does not depend on the order threads recorded the calls in. A cost from the price table is written into the response's
``usage.cost`` too. No price list is downloaded or bundled. Standard library only.
"""

import math
import threading
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, Iterator, List, Mapping, Optional, Tuple, TypeVar

from .exceptions import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from .types import Usage

__all__ = ["PRICE_FIELDS", "Prices", "UsageRow", "UsageSnapshot", "UsageTotals", "call_cost", "check_prices", "tally"]

C = TypeVar("C")

#: The fields of one price entry, in USD per million tokens (``input`` and ``output`` are required).
PRICE_FIELDS = ("input", "output", "cached")
#: A validated price table: ``"provider/model"`` -> ``{"input": ..., "output": ..., "cached": ...}``.
Prices = Dict[str, Dict[str, float]]


def check_prices(prices: Any) -> Prices:
    """``prices`` validated and copied; a bad table raises :class:`~modelprov.exceptions.ValidationError` naming the entry."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise ValidationError(f"prices must be a dict of 'provider/model' -> {{'input': ..., 'output': ...}}, not {type(prices).__name__}")
    table: Prices = {}
    for key, entry in prices.items():
        if not isinstance(key, str) or "/" not in key.strip("/"):
            raise ValidationError(f"prices key {key!r} must be a 'provider/model' string, e.g. 'openai/gpt-5.4-mini'")
        if not isinstance(entry, Mapping):
            raise ValidationError(f"prices[{key!r}] must be a dict like {{'input': 0.25, 'output': 2.0}} (USD per million tokens)")
        unknown = sorted(str(k) for k in entry if k not in PRICE_FIELDS)
        if unknown:
            raise ValidationError(f"prices[{key!r}] has unknown field(s) {', '.join(unknown)}; use input, output and optionally cached")
        missing = [k for k in ("input", "output") if k not in entry]
        if missing:
            raise ValidationError(f"prices[{key!r}] needs {' and '.join(missing)} (USD per million tokens)")
        clean: Dict[str, float] = {}
        for name, value in entry.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValidationError(f"prices[{key!r}][{name!r}] must be a number >= 0 (USD per million tokens), not {value!r}")
            clean[name] = float(value)
        table[key] = clean
    return table


def call_cost(usage: "Optional[Usage]", price: Optional[Mapping[str, float]]) -> Optional[float]:
    """USD for one call: ``usage.cost`` when the provider reported it, else from ``price``, else ``None``."""
    if usage is None:
        return None
    if usage.cost is not None:
        return usage.cost
    if price is None:
        return None
    inp = usage.input_tokens or 0
    cached = min(usage.cache_read_tokens or 0, inp)
    cached_price = price.get("cached", price["input"])
    return ((inp - cached) * price["input"] + cached * cached_price + (usage.output_tokens or 0) * price["output"]) / 1e6


@dataclass
class UsageRow:
    """Totals of one ``provider/model`` (or of everything, in :attr:`UsageSnapshot.total`).

    ``calls`` counts every call recorded, ``errors`` those that failed.
    ``cost`` (USD) sums the calls whose cost is known; ``None`` when none
    is; ``uncosted`` counts the successful calls whose cost is unknown.
    """

    provider: str = ""
    model: str = ""
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Optional[float] = None
    uncosted: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def add(self, other: "UsageRow") -> None:
        """Add ``other``'s counts to this row."""
        self.calls += other.calls
        self.errors += other.errors
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.uncosted += other.uncosted
        if other.cost is not None:
            self.cost = other.cost if self.cost is None else self.cost + other.cost

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-friendly dict of the row, ``total_tokens`` included."""
        d = asdict(self)
        d["total_tokens"] = self.total_tokens
        return d


@dataclass
class UsageSnapshot:
    """The totals at one moment: :attr:`rows` keyed ``"provider/model"``, and their :attr:`total`. Plain and picklable."""

    rows: Dict[str, UsageRow] = field(default_factory=dict)
    total: UsageRow = field(default_factory=UsageRow)

    def __getitem__(self, key: str) -> UsageRow:
        """The row of ``"provider/model"``."""
        return self.rows[key]

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-friendly dict: ``{"rows": {key: row}, "total": row}``."""
        return {"rows": {k: r.to_dict() for k, r in self.rows.items()}, "total": self.total.to_dict()}


class UsageTotals:
    """Thread-safe running totals per ``provider/model`` (see the module docs).

    :param prices: the price table (validated with :func:`check_prices`).

    A pickled ``UsageTotals`` arrives with the same prices and fresh totals;
    take a :meth:`snapshot` to carry the numbers.
    """

    def __init__(self, prices: Optional[Mapping[str, Mapping[str, float]]] = None) -> None:
        self.prices: Prices = check_prices(prices)
        self._lock = threading.Lock()
        self._rows: Dict[Tuple[str, str], UsageRow] = {}
        #: Each row's known costs as exact partial sums (see :func:`_add_exact`); the row's ``cost`` is unused until a snapshot.
        self._costs: Dict[Tuple[str, str], List[float]] = {}

    def __repr__(self) -> str:
        total = self.snapshot().total
        cost = "unknown" if total.cost is None else f"${total.cost:.6g}"
        return f"<UsageTotals rows={len(self._rows)} calls={total.calls} errors={total.errors} tokens={total.total_tokens} cost={cost}>"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (UsageTotals, (self.prices,))

    @classmethod
    def with_config(cls, config: Any, prices: Optional[Mapping[str, Mapping[str, float]]] = None) -> "UsageTotals":
        """Totals priced by ``config``'s ``[prices]`` section (its ``prices()``, when it has one) overlaid, entry by entry, with ``prices``."""
        table: Dict[str, Mapping[str, float]] = {}
        reader = getattr(config, "prices", None)
        if callable(reader):
            table.update(check_prices(reader()))
        table.update(check_prices(prices))
        return cls(table)

    def price_of(self, provider: str, model: str, served: Optional[str] = None) -> Optional[Dict[str, float]]:
        """The price entry of ``provider/model``, else of ``provider/served`` (the model the response names)."""
        prices = self.prices
        if not prices:
            return None
        price = prices.get(f"{provider}/{model}")
        if price is None and served and served != model:
            price = prices.get(f"{provider}/{served}")
        return price

    def cost_of(self, provider: str, model: str, usage: "Optional[Usage]", served: Optional[str] = None) -> Optional[float]:
        """What a call with ``usage`` cost in USD (see :func:`call_cost`), or ``None`` when unknown."""
        if usage is not None and usage.cost is not None:
            return usage.cost
        return call_cost(usage, self.price_of(provider, model, served))

    def record(self, provider: str, model: str, usage: "Optional[Usage]", served: Optional[str] = None) -> Optional[float]:
        """Count one finished call with ``usage`` (``None``: not reported); returns its cost, ``None`` if unknown.

        A cost from the price table is also written into ``usage.cost`` (left
        ``None`` by a provider that reports none), so the response shows it.
        """
        cost = self.cost_of(provider, model, usage, served)
        if cost is not None and not math.isfinite(cost):
            cost = None  # a nonsense figure (NaN, infinite) is no cost
        inp = out = cached = reasoning = 0
        if usage is not None:
            if usage.cost is None and cost is not None:
                usage.cost = cost  # the response shows what the call cost
            inp, out = usage.input_tokens or 0, usage.output_tokens or 0
            cached, reasoning = usage.cache_read_tokens or 0, usage.reasoning_tokens or 0
        with self._lock:
            row = self._row(provider, model)
            row.calls += 1
            row.input_tokens += inp
            row.output_tokens += out
            row.cached_tokens += cached
            row.reasoning_tokens += reasoning
            if cost is None:
                row.uncosted += 1
            else:
                _add_exact(self._costs.setdefault((provider, model), []), cost)
        return cost

    def record_error(self, provider: str, model: str) -> None:
        """Count one call that failed."""
        with self._lock:
            row = self._row(provider, model)
            row.calls += 1
            row.errors += 1

    def _row(self, provider: str, model: str) -> UsageRow:
        row = self._rows.get((provider, model))
        if row is None:
            row = self._rows[(provider, model)] = UsageRow(provider, model)
        return row

    def snapshot(self) -> UsageSnapshot:
        """A copy of the totals now: one row per ``provider/model`` and the grand total."""
        with self._lock:
            rows = [(replace(row), list(self._costs.get(key, ()))) for key, row in self._rows.items()]
        return _snapshot(rows)

    def reset(self) -> UsageSnapshot:
        """Start again from zero; returns the totals up to now."""
        with self._lock:
            rows, self._rows = self._rows, {}
            costs, self._costs = self._costs, {}
        return _snapshot([(row, costs.get(key, [])) for key, row in rows.items()])


def _add_exact(partials: List[float], x: float) -> None:
    """Add ``x`` to the exact sum held as non-overlapping ``partials`` (Shewchuk's algorithm, as in :func:`math.fsum`)."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


def _snapshot(rows: List[Tuple[UsageRow, List[float]]]) -> UsageSnapshot:
    """The snapshot of ``rows`` (copies owned by the caller, each with its exact cost partials), sorted by key, with their total.

    Each cost is the exact sum rounded once (:func:`math.fsum`), the total's too: no result depends on the recording order.
    """
    total = UsageRow("*", "*")
    everything: List[float] = []
    for row, partials in rows:
        row.cost = math.fsum(partials) if partials else None
        everything.extend(partials)
        total.add(row)
    total.cost = math.fsum(everything) if everything else None
    return UsageSnapshot(dict(sorted((f"{row.provider}/{row.model}", row) for row, _ in rows)), total)


def tally(chunks: Iterator[C], done: "Callable[[Optional[Usage], bool], None]") -> Generator[C, None, None]:
    """``chunks`` passed through; at their end ``done(usage, failed)`` is called once, with the last ``usage`` a chunk carried.

    ``failed`` is true when the stream raised an error (not when the caller
    stopped reading, aborted it or was interrupted).
    """
    usage: "Optional[Usage]" = None
    try:
        for chunk in chunks:
            found = getattr(chunk, "usage", None)
            if found is not None:
                usage = found
            yield chunk
    except Exception as exc:
        extra = getattr(exc, "extra", None)
        done(usage, not (isinstance(extra, dict) and extra.get("aborted")))
        raise
    except BaseException:  # the caller stopped reading (GeneratorExit) or an interrupt
        done(usage, False)
        raise
    done(usage, False)
