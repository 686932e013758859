"""The circuit breaker as the engine drives it (:class:`BreakerLike`, :class:`PermitLike`) and :class:`NullBreaker`.

:class:`~modelprov.circuit_breaker.CircuitBreaker` offers this interface; the
null breaker, used when breakers are off, grants permits that record nothing,
so the engine has one code path either way.
"""

from types import TracebackType
from typing import ContextManager, Optional, Protocol, Type

__all__ = ["NULL_BREAKER", "BreakerLike", "NullBreaker", "PermitLike"]


class PermitLike(Protocol):
    """A breaker permit (:class:`modelprov.circuit_breaker.Permit`): report one call's outcome once."""

    def success(self) -> None: ...  # pragma: no cover - protocol

    def ignore(self) -> None: ...  # pragma: no cover - protocol

    def record(self, exc: Optional[BaseException]) -> None: ...  # pragma: no cover - protocol


class BreakerLike(Protocol):
    """A circuit breaker (:class:`modelprov.circuit_breaker.CircuitBreaker`) as the engine uses it."""

    def acquire(self) -> PermitLike: ...  # pragma: no cover - protocol

    def guard(self) -> ContextManager[PermitLike]: ...  # pragma: no cover - protocol


class _NullPermit:
    """The permit of the null breaker: every report is a no-op."""

    __slots__ = ()

    def success(self) -> None:
        """Nothing to report."""

    def ignore(self) -> None:
        """Nothing to report."""

    def record(self, exc: Optional[BaseException]) -> None:
        """Nothing to report."""


_NULL_PERMIT = _NullPermit()


class _NullGuard:
    """The guard of the null breaker: enters with the null permit, records nothing on exit (stateless, shared)."""

    __slots__ = ()

    def __enter__(self) -> _NullPermit:
        return _NULL_PERMIT

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        return None


_NULL_GUARD = _NullGuard()


class NullBreaker:
    """The breaker used when breakers are off: always grants a permit that records nothing."""

    __slots__ = ()
    name = ""

    def acquire(self) -> _NullPermit:
        """A permit that records nothing."""
        return _NULL_PERMIT

    def guard(self) -> _NullGuard:
        """A guard that records nothing (see :meth:`modelprov.circuit_breaker.CircuitBreaker.guard`)."""
        return _NULL_GUARD

    def __repr__(self) -> str:
        return "NullBreaker()"


NULL_BREAKER = NullBreaker()
