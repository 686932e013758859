"""``run_batch(..., executor=)``: chunks on thread pools, process pools and a Dask cluster; order, errors, pickling."""

import multiprocessing
import pickle
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

import pytest

import modelprov
from modelprov import batch as batch_mod
from modelprov import exceptions as exc_mod
from modelprov.batch import run_batch
from modelprov.exceptions import InvalidRequestError, ModelProvError, ValidationError
from modelprov.testing import FakeServer, Payload, Reply, openai_completion, openai_error_body
from modelprov.testing.protocols import encode_json


def _echo(req):
    """FakeServer reply: echo the last user message; a prompt holding FAIL gets a 400."""
    text = req.json["messages"][-1]["content"]
    if "FAIL" in text:
        return Payload(400, [("Content-Type", "application/json")], body=encode_json(openai_error_body(400, "refused: " + text)))
    return Payload(200, [("Content-Type", "application/json")], body=encode_json(openai_completion("echo: " + text)))


def echo_reply():
    """The default reply of the executor tests' FakeServer: :func:`_echo`."""
    return Reply(_echo, label="echo")


@pytest.fixture
def fake():
    with FakeServer() as server:
        server.set_default(echo_reply())
        yield server


def http_client(fake):
    return modelprov.Client(providers={"openai": {"api_key": "sk-exec-key", "base_url": fake.base_url("openai")}})


def prompts(n, fail_every=5):
    return [("openai/gpt-test", f"q{i} FAIL" if i % fail_every == 3 else f"q{i}") for i in range(n)]


def check(results, n, fail_every=5):
    assert len(results) == n
    for i, r in enumerate(results):
        if i % fail_every == 3:
            assert isinstance(r, InvalidRequestError) and f"q{i} FAIL" in r.message and r.status_code == 400
        else:
            assert r.text == f"echo: q{i}", (i, r)


class Recorder:
    """A picklable Completer that records which object answered (module level: it must pickle)."""

    def __init__(self):
        self.calls = []
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"calls": list(self.calls)}

    def __setstate__(self, state):
        self.calls = state["calls"]
        self._lock = threading.Lock()

    def complete(self, model, messages, **options):
        if options.get("boom"):
            raise ValidationError(f"bad option in {messages}")
        with self._lock:
            self.calls.append(messages)
        return modelprov.ModelResponse(text=f"{model}:{messages}")


def test_thread_pool_chunks_keep_order_use_the_callers_client_and_report_progress():
    client = Recorder()
    requests = [("m", f"p{i}") if i != 4 else {"model": "m", "messages": "p4", "boom": True} for i in range(11)]
    progress = []
    with ThreadPoolExecutor(3) as pool:
        out = run_batch(client, requests, 2, lambda d, t: progress.append((d, t)), True, executor=pool, chunk_size=3)
    assert [r.text if i != 4 else type(r) for i, r in enumerate(out)] == [f"m:p{i}" if i != 4 else ValidationError for i in range(11)]
    assert sorted(client.calls) == sorted(f"p{i}" for i in range(11) if i != 4)  # the caller's own object answered
    assert [d for d, _ in progress] == sorted(d for d, _ in progress) and progress[-1] == (11, 11)
    assert {t for _, t in progress} == {11} and len(progress) == 4  # one report per chunk
    assert batch_mod._clients == {}  # the caller's client is not kept


def test_return_exceptions_false_raises_the_first_failure_after_all_ran():
    client = Recorder()
    with ThreadPoolExecutor(2) as pool, pytest.raises(ValidationError, match="p1"):
        run_batch(client, ["p0", {"messages": "p1", "boom": True}, "p2"], 1, None, False, executor=pool, chunk_size=1)
    assert sorted(client.calls) == ["p0", "p2"]


def test_thread_pool_over_http(fake):
    with ThreadPoolExecutor(2) as pool:
        check(run_batch(http_client(fake), prompts(20), 2, None, True, executor=pool), 20)


def test_process_pool_spawned_workers_unpickle_the_client_once_each(fake):
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        results = run_batch(http_client(fake), prompts(40), 2, None, True, executor=pool, chunk_size=4)
    check(results, 40)
    # 10 chunks, 2 processes x 2 threads: a client unpickled per chunk would open a new connection each time
    assert fake.accepted <= 4


def test_a_task_that_fails_as_a_whole_fails_each_of_its_requests():
    class HalfBroken(ThreadPoolExecutor):
        def submit(self, fn, *args):
            if args[3][0][1] == "p2":  # the chunk starting at p2
                future = Future()
                future.set_exception(RuntimeError("worker lost"))
                return future
            return super().submit(fn, *args)

    with HalfBroken(2) as pool:
        out = run_batch(Recorder(), [f"p{i}" for i in range(5)], 1, None, True, executor=pool, chunk_size=2)
    assert [type(r).__name__ for r in out] == ["ModelResponse", "ModelResponse", "RuntimeError", "RuntimeError", "ModelResponse"]


def test_bad_executor_arguments_and_unpicklable_clients_fail_before_any_task():
    from modelprov.testing import MockTransport

    submitted = []

    class Counting(ThreadPoolExecutor):
        def submit(self, *a, **k):
            submitted.append(a)
            return super().submit(*a, **k)

    with Counting(1) as pool:
        for kwargs in (dict(chunk_size=0), dict(chunk_size=True), dict(chunk_size="3")):
            with pytest.raises(ValidationError, match="chunk_size"):
                run_batch(Recorder(), ["a"], 1, None, True, executor=pool, **kwargs)
        with pytest.raises(ValidationError, match="executor"):
            run_batch(Recorder(), ["a"], 1, None, True, executor=object())
        lock_holder = modelprov.Client(transport=MockTransport(lambda request: {"ok": 1}))
        lock_holder._init_args["transport"] = threading.Lock()  # a transport that does not pickle
        with pytest.raises(TypeError, match="cannot pickle this Client"):
            run_batch(lock_holder, ["a"], 1, None, True, executor=pool)
    assert submitted == []


def test_every_modelprov_exception_survives_a_pickle_round_trip():
    classes = [getattr(exc_mod, name) for name in exc_mod.__all__ if isinstance(getattr(exc_mod, name), type)]
    classes = [c for c in classes if issubclass(c, ModelProvError)]
    assert len(classes) >= 18
    for cls in classes:
        exc = cls("went wrong", provider="openai", status_code=418, request_id="r1", retryable=True, hint="do x", batch_result="expired")
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is cls and str(back) == str(exc)
        assert (back.provider, back.status_code, back.request_id, back.retryable, back.hint) == ("openai", 418, "r1", True, "do x")
        assert back.extra["batch_result"] == "expired"
    limit = pickle.loads(pickle.dumps(exc_mod.TokenLimitError("long", limit=10, requested=20)))
    assert (limit.limit, limit.requested) == (10, 20)


def test_an_exception_that_does_not_pickle_crosses_as_a_modelprov_error():
    class Local(Exception):  # a local class cannot be pickled
        pass

    portable = batch_mod._portable(Local("kaputt"))
    assert type(portable) is ModelProvError and "Local: kaputt" in portable.message
    ok = InvalidRequestError("fine", provider="p")
    assert batch_mod._portable(ok) is ok


class Gated(Recorder):
    """A Recorder whose answers to prompts starting with "wait" hold until ``gate`` is set (module level: it must pickle)."""

    gate = threading.Event()

    def complete(self, model, messages, **options):
        if messages.startswith("wait"):
            assert Gated.gate.wait(10)
        return super().complete(model, messages, **options)


def test_each_caller_client_answers_its_own_requests_even_when_two_pickle_alike():
    """Two clients with the same settings, batches at once on one thread pool: no request goes to the other one."""
    a, b = Gated(), Gated()
    assert pickle.dumps(a) == pickle.dumps(b)
    Gated.gate.clear()
    with ThreadPoolExecutor(4) as pool:
        first = threading.Thread(target=run_batch, args=(a, ["wait a0", "wait a1"], 1, None, True), kwargs=dict(executor=pool, chunk_size=1))
        first.start()
        try:
            out = run_batch(b, ["b0", "b1"], 1, None, True, executor=pool, chunk_size=1)  # while a's batch runs
        finally:
            Gated.gate.set()
            first.join(10)
    assert [r.text for r in out] == ["None:b0", "None:b1"]
    assert sorted(b.calls) == ["b0", "b1"] and sorted(a.calls) == ["wait a0", "wait a1"]
    assert batch_mod._own == {} and batch_mod._clients == {}


def test_the_callers_client_is_never_evicted_while_its_batch_runs():
    client = Recorder()

    class Crowding(ThreadPoolExecutor):
        """Fills the cache of unpickled clients before each task runs, as other batches in the process would."""

        def submit(self, fn, *args):
            for n in range(batch_mod.CACHED_CLIENTS + 1):
                batch_mod._client_for(f"other-{n}", pickle.dumps(Recorder()))
            return super().submit(fn, *args)

    try:
        with Crowding(1) as pool:
            run_batch(client, ["p0", "p1", "p2"], 1, None, True, executor=pool, chunk_size=1)
    finally:
        batch_mod._clients.clear()
    assert sorted(client.calls) == ["p0", "p1", "p2"]  # not an unpickled copy


def test_a_message_list_is_a_request():
    client = Recorder()
    out = run_batch(client, [[{"role": "user", "content": "hi"}], "x"], 1, None, True)
    assert out[0].text.startswith("None:[") and out[1].text == "None:x"
    with pytest.raises(ValidationError, match="message list"):
        run_batch(client, [42], 1, None, True)
