"""The one process-wide-instance helper."""

import threading

from modelprov._singleton import Singleton


def test_created_once_even_under_contention():
    made = []
    single = Singleton(lambda: made.append(1) or object())
    got = []
    threads = [threading.Thread(target=lambda: got.append(single.get())) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len({id(x) for x in got}) == 1


def test_set_reset_dispose_and_stale():
    disposed = []
    single = Singleton(lambda: {"closed": False}, dispose=disposed.append, is_stale=lambda v: v["closed"])
    first = single.get()
    assert single.peek() is first
    first["closed"] = True
    second = single.get()
    assert second is not first
    mine = {"closed": False}
    assert single.set(mine) is second and single.get() is mine
    single.reset()
    assert disposed == [mine] and single.peek() is None
