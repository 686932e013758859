"""Deadline: one wall-clock end per call, with an injected clock."""

import pytest

from modelprov.deadline import Deadline, check_timeout
from modelprov.exceptions import ProviderTimeoutError, ValidationError


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_remaining_expired_and_check():
    clock = Clock()
    d = Deadline(2, clock=clock)
    assert d.remaining() == 2 and not d.expired()
    clock.now += 1.5
    assert d.remaining() == pytest.approx(0.5)
    d.check("p")
    clock.now += 0.5
    assert d.expired()
    with pytest.raises(ProviderTimeoutError, match="deadline of 2s passed") as info:
        d.check("p")
    assert info.value.provider == "p"


def test_cap_shortens_socket_timeouts_and_raises_once_passed():
    clock = Clock()
    d = Deadline(10, clock=clock)
    assert d.cap(30) == 10 and d.cap(3) == 3 and d.cap(None) == 10
    clock.now += 9.9999999
    assert d.cap(30) == pytest.approx(0.001)  # never a zero (non-blocking) socket timeout
    clock.now += 1
    with pytest.raises(ProviderTimeoutError):
        d.cap(30)


def test_no_deadline():
    d = Deadline()
    assert d.remaining() is None and not d.expired() and d.cap(5) == 5 and d.cap(None) is None
    d.check()
    assert "none" in repr(d)


def test_within_takes_the_earlier_end():
    clock = Clock()
    d = Deadline(10, clock=clock)
    assert d.within(None) is d and d.within(20) is d
    assert d.within(3).remaining() == 3
    assert Deadline(clock=clock).within(4).remaining() == 4


@pytest.mark.parametrize("bad", [0, -1, "5", True, float("nan")])
def test_timeouts_are_validated_once(bad):
    with pytest.raises(ValidationError, match="positive number of seconds"):
        Deadline(bad)
    with pytest.raises(ValidationError):
        check_timeout(bad)
