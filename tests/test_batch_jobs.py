"""Provider batch APIs end to end against FakeServer: submit, progress, results, cancel, expiry, re-attach."""

import json
import pathlib
import pickle
import subprocess
import sys
import textwrap

import pytest

import modelprov
from modelprov.batch_jobs import BatchJob, BatchStatus, submit_batch
from modelprov.exceptions import (
    InvalidRequestError,
    ModelNotFoundError,
    ModelProvError,
    ProviderError,
    ProviderTimeoutError,
    UnsupportedFeatureError,
    ValidationError,
)
from modelprov.testing import FakeServer
from modelprov.types import ModelResponse

MODELS = {"openai": "openai/gpt-5.4-mini", "anthropic": "anthropic/claude-haiku-4-5"}
BOTH = ["openai", "anthropic"]


@pytest.fixture
def fake():
    with FakeServer() as server:
        yield server


def client_for(fake, protocol, **kw):
    return modelprov.Client(providers={protocol: {"api_key": "sk-batch-secret-123", "base_url": fake.base_url(protocol)}}, **kw)


REQUESTS = ["first", {"messages": "please FAIL", "custom_id": "bad-one"}, {"prompt": "third", "max_tokens": 7}]


def no_sleep(seconds):
    pass


@pytest.mark.parametrize("protocol", BOTH)
def test_submit_wait_and_results_mix_successes_and_typed_errors(fake, protocol):
    client = client_for(fake, protocol)
    job = submit_batch(client, MODELS[protocol], REQUESTS)
    assert job.provider == protocol and job.id
    assert job.custom_ids == ["request-1", "bad-one", "request-3"]
    assert job.last_status.state in ("validating", "in_progress") and job.last_status.total == 3
    seen = []
    final = job.wait(poll_interval=5, sleep=no_sleep, on_progress=lambda s: seen.append(s.state))
    assert final.done and final.state == "completed"
    assert (final.succeeded, final.failed, final.pending, final.total) == (2, 1, 0, 3)
    expected = ["validating", "in_progress", "finalizing", "completed"] if protocol == "openai" else ["in_progress", "in_progress", "completed"]
    assert seen == expected
    results = dict(job.results())
    assert set(results) == {"request-1", "bad-one", "request-3"}
    assert isinstance(results["request-1"], ModelResponse) and results["request-1"].text == "echo: first"
    assert results["request-3"].text == "echo: third" and results["request-3"].provider == protocol
    err = results["bad-one"]
    assert isinstance(err, InvalidRequestError) and "asked to fail" in err.message and err.provider == protocol
    assert err.request_id == "req_fake2"
    for request in fake.requests:  # every call authenticated, the key never in a URL
        assert "sk-batch-secret-123" in str(request.headers.to_dict()) and "sk-batch" not in request.path


def test_openai_upload_is_a_jsonl_file_of_the_bodies_complete_sends(fake):
    client = client_for(fake, "openai")
    options = {"temperature": 0.5, "max_tokens": 9, "system": "be brief", "stop": ["x"], "seed": 3}
    fake.add_chat("openai", "live")
    client.complete("openai/gpt-5.4-mini", "hello", **options)
    live_body = fake.last_request.json
    submit_batch(client, "openai/gpt-5.4-mini", [dict(options, messages="hello", custom_id="a")], metadata={"run": "nightly"})
    upload, create = fake.requests[-2:]
    assert (upload.method, upload.path, create.path) == ("POST", "/v1/files", "/v1/batches")
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="purpose"\r\n\r\nbatch\r\n' in upload.body
    file_id = create.json["input_file_id"]
    content = fake.batches.files[file_id][1].decode()
    lines = [json.loads(line) for line in content.splitlines()]
    assert lines == [{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": live_body}]
    assert create.json == {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": {"run": "nightly"}}


def test_anthropic_params_are_the_bodies_complete_sends(fake):
    client = client_for(fake, "anthropic")
    fake.add_chat("anthropic", "live")
    client.complete("anthropic/claude-haiku-4-5", "hello", max_tokens=11, system="be brief", betas=["b-1"])
    live = fake.last_request
    submit_batch(client, "anthropic/claude-haiku-4-5", [{"messages": "hello", "max_tokens": 11, "system": "be brief", "betas": ["b-1"], "id": "x"}])
    create = fake.last_request
    assert create.path == "/v1/messages/batches"
    assert create.json == {"requests": [{"custom_id": "x", "params": live.json}]}
    assert create.headers["anthropic-beta"] == "b-1" == live.headers["anthropic-beta"]


def test_anthropic_requests_may_mix_models_and_results_match_by_custom_id(fake):
    client = client_for(fake, "anthropic")
    job = submit_batch(client, "anthropic/claude-haiku-4-5", [("anthropic/claude-sonnet-4-5", "one"), "two"])
    assert [r["params"]["model"] for r in fake.last_request.json["requests"]] == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    fake.advance_batches(steps=5)
    got = list(job.results())
    assert [cid for cid, _ in got] == ["request-2", "request-1"]  # the fake answers in reverse order
    assert {cid: r.text for cid, r in got} == {"request-1": "echo: one", "request-2": "echo: two"}


@pytest.mark.parametrize("protocol", BOTH)
def test_cancel_keeps_finished_answers_and_cancels_the_rest(fake, protocol):
    client = client_for(fake, protocol)
    fake.batches.polls_per_step = 0  # only advance_batches() moves it
    job = submit_batch(client, MODELS[protocol], ["a", "b", "c", "d"])
    fake.advance_batches(job.id)  # half of them answered
    status = job.cancel()
    assert status.state == "cancelling" and not status.done
    assert status.raw_state == ("cancelling" if protocol == "openai" else "canceling")
    fake.advance_batches(job.id)
    final = job.status()
    assert final.state == "cancelled" and final.done and (final.succeeded, final.failed) == (2, 2)
    results = dict(job.results())
    assert [results[f"request-{i}"].text for i in (1, 2)] == ["echo: a", "echo: b"]
    for cid in ("request-3", "request-4"):
        exc = results[cid]
        assert type(exc) is ProviderError and exc.extra["batch_result"] == "cancelled" and not exc.retryable


@pytest.mark.parametrize("protocol", BOTH)
def test_expired_requests_are_retryable_timeouts(fake, protocol):
    client = client_for(fake, protocol)
    job = submit_batch(client, MODELS[protocol], ["a", "b"])
    fake.batches.expire(job.id)
    assert job.status().state == "expired"
    results = dict(job.results())
    assert all(isinstance(r, ProviderTimeoutError) and r.retryable and r.extra["batch_result"] == "expired" for r in results.values())


@pytest.mark.parametrize("protocol", BOTH)
def test_reattach_by_id_in_a_new_process(fake, protocol):
    job = submit_batch(client_for(fake, protocol), MODELS[protocol], ["x", "FAIL y"])
    fake.advance_batches(steps=5)
    script = textwrap.dedent(f"""
        import json, modelprov
        from modelprov.batch_jobs import BatchJob
        client = modelprov.Client(providers={{{protocol!r}: {{"api_key": "k", "base_url": {fake.base_url(protocol)!r}}}}})
        job = BatchJob.attach(client, {protocol!r}, {job.id!r})
        out = {{cid: (type(r).__name__, getattr(r, "text", None)) for cid, r in job.results()}}
        print(json.dumps([job.status().state, out]))
    """)
    root = str(pathlib.Path(modelprov.__file__).parents[1])  # the child imports this same copy of modelprov
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=root)
    assert run.returncode == 0, run.stderr
    state, out = json.loads(run.stdout)
    assert state == "completed"
    assert out == {"request-1": ["ModelResponse", "echo: x"], "request-2": ["InvalidRequestError", None]}


@pytest.mark.parametrize("protocol", BOTH)
def test_a_job_pickles_with_its_client_and_keeps_working(fake, protocol):
    job = submit_batch(client_for(fake, protocol), MODELS[protocol], ["x"])
    copy = pickle.loads(pickle.dumps(job))
    assert (copy.id, copy.provider, copy.custom_ids) == (job.id, protocol, ["request-1"])
    assert copy.wait(poll_interval=1, sleep=no_sleep).state == "completed"
    assert [r.text for _, r in copy.results()] == ["echo: x"]
    assert "sk-batch" not in repr(copy)


def test_a_job_of_a_bare_provider_pickles_and_attaches(fake, make_provider):
    from modelprov.providers.anthropic.provider import AnthropicProvider
    from modelprov.types import ProviderConfig

    provider = make_provider(AnthropicProvider, ProviderConfig(name="anthropic", api_key="k", base_url=fake.base_url("anthropic")))
    job = submit_batch(provider, None, ["x"])
    assert fake.last_request.json["requests"][0]["params"]["model"] == "claude-haiku-4-5"
    copy = pickle.loads(pickle.dumps(job))
    assert copy.status().state == "in_progress"
    again = BatchJob.attach(provider, None, job.id)
    fake.advance_batches(steps=3)
    assert again.status().done


@pytest.mark.parametrize("protocol", BOTH)
def test_unknown_batch_id_is_a_clear_404(fake, protocol):
    job = BatchJob.attach(client_for(fake, protocol), protocol, "batch_nope")
    with pytest.raises(ModelNotFoundError) as info:
        job.status()
    assert info.value.status_code == 404 and "batch_nope" in str(info.value) and "batch id" in info.value.hint


def test_wait_times_out_with_the_clients_clock_and_sleep(fake, clock):
    client = client_for(fake, "anthropic", sleep=clock.sleep, clock=clock)
    fake.batches.polls_per_step = 0
    job = submit_batch(client, MODELS["anthropic"], ["x"])
    with pytest.raises(ProviderTimeoutError) as info:
        job.wait(poll_interval=10, timeout=25)
    assert clock.slept == [10, 10, 5] and "still in_progress" in str(info.value)
    fake.advance_batches(steps=2)
    assert job.wait(poll_interval=10).state == "completed" and clock.slept == [10, 10, 5]


def test_results_before_the_end_and_bad_wait_arguments_raise(fake):
    job = submit_batch(client_for(fake, "anthropic"), MODELS["anthropic"], ["x"])
    with pytest.raises(ValidationError, match="no results yet"):
        job.results()
    for bad in (dict(poll_interval=0), dict(poll_interval=True), dict(timeout=-1)):
        with pytest.raises(ValidationError):
            job.wait(**bad)


def test_a_batch_openai_refused_reports_why(fake):
    import requests

    lines = b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}\n' * 2
    up = requests.post(fake.url + "/v1/files", files={"file": ("in.jsonl", lines)}, data={"purpose": "batch"}, timeout=5).json()
    create = {"input_file_id": up["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    made = requests.post(fake.url + "/v1/batches", json=create, timeout=5).json()
    job = BatchJob.attach(client_for(fake, "openai"), "openai", made["id"])
    status = job.status()
    assert status.state == "failed" and status.done and "line 2" in status.message
    with pytest.raises(InvalidRequestError, match="duplicate"):
        list(job.results())


@pytest.mark.parametrize(
    "protocol, requests, match",
    [
        ("anthropic", [], "at least one"),
        ("anthropic", "one prompt", "must be a list"),
        ("anthropic", [{"messages": "a", "custom_id": "x"}, {"messages": "b", "custom_id": "x"}], "repeats custom_id 'x' of requests\\[0\\]"),
        ("anthropic", [{"messages": "a", "custom_id": "has space"}], "not valid for Anthropic"),
        ("anthropic", [{"messages": "a", "custom_id": 5}], "non-empty string"),
        ("anthropic", [{"messages": "a", "timeout": 5}], "'timeout'"),
        ("anthropic", [{"messages": "a", "stream": True}], "'stream'"),
        ("anthropic", [{"messages": "a", "max_tokens": 0}], "requests\\[0\\]: max_tokens"),
        ("anthropic", [("openai/gpt-5.4-mini", "a")], "is for openai"),
        ("openai", [("openai/gpt-other", "a")], "run one model"),
        ("openai", [{"messages": []}], "requests\\[0\\]"),
    ],
)
def test_bad_input_is_refused_before_any_io(fake, protocol, requests, match):
    client = modelprov.Client(providers={p: {"api_key": "k", "base_url": fake.base_url(p)} for p in MODELS})
    with pytest.raises(ModelProvError, match=match):
        submit_batch(client, MODELS[protocol], requests)
    assert fake.requests == []


def test_other_providers_say_which_have_a_batch_api(fake):
    with pytest.raises(UnsupportedFeatureError) as info:
        submit_batch(modelprov.Client(), "mock/echo", ["x"])
    assert "anthropic and openai" in info.value.hint
    with pytest.raises(UnsupportedFeatureError):
        BatchJob.attach(modelprov.Client(providers={"openrouter": {"api_key": "k"}}), "openrouter", "b1")
    with pytest.raises(ValidationError):
        submit_batch(object(), "openai/x", ["a"])
    with pytest.raises(ValidationError):
        BatchJob.attach(modelprov.Client(), "anthropic", "../etc")


def test_named_instances_of_a_batch_type_work(fake):
    client = modelprov.Client(providers={"work": {"type": "anthropic", "api_key": "k", "base_url": fake.base_url("anthropic")}})
    job = submit_batch(client, "work/claude-haiku-4-5", ["x"])
    assert job.provider == "work"
    fake.advance_batches(steps=3)
    assert [(cid, r.provider) for cid, r in job.results()] == [("request-1", "work")]


def test_the_fake_speaks_the_official_sdk_shapes(fake):
    """The fake's objects validate against the SDKs' own types (so the codecs are tested on real shapes)."""
    sdk_openai = pytest.importorskip("openai.types")
    sdk_anthropic = pytest.importorskip("anthropic.types.messages")
    job = submit_batch(client_for(fake, "anthropic"), MODELS["anthropic"], ["x", "FAIL"])
    sdk_anthropic.MessageBatch.model_validate(job.last_status.raw)
    fake.advance_batches(steps=3)
    sdk_anthropic.MessageBatch.model_validate(job.status().raw)
    for line in fake.batches.batches[job.id].results.splitlines():
        sdk_anthropic.MessageBatchIndividualResponse.model_validate(json.loads(line))
    batch = fake.batches._create_openai({"input_file_id": _upload(fake), "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    sdk_openai.Batch.model_validate(fake.batches._object(batch))
    sdk_openai.FileObject.model_validate(fake.batches._file_object(batch.input_file_id))


def _upload(fake):
    fake.batches.files["file-given"] = ("in.jsonl", b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}\n')
    return "file-given"


def test_batch_status_is_frozen_and_done_follows_state():
    status = BatchStatus(id="b", state="finalizing", raw_state="finalizing", total=2)
    assert not status.done and BatchStatus(id="b", state="expired", raw_state="ended").done
    with pytest.raises(Exception):
        status.state = "completed"  # type: ignore[misc]


class _DeadlineSpy:
    """A transport recording how long each request was given, answering a batch that never ends."""

    def __init__(self):
        from modelprov.testing import MockTransport

        self.left = []
        body = {"id": "msgbatch_1", "type": "message_batch", "processing_status": "in_progress", "request_counts": {"processing": 1}}
        self.inner = MockTransport(lambda request: body)

    def send(self, request, deadline, *, attempt=1):
        self.left.append(deadline.remaining())
        return self.inner.send(request, deadline, attempt=attempt)


def _spied_job(clock):
    from modelprov.engine import bind
    from modelprov.providers.anthropic.provider import AnthropicProvider
    from modelprov.types import ProviderConfig

    spy = _DeadlineSpy()
    provider = bind(AnthropicProvider(ProviderConfig(name="anthropic", api_key="k", timeout=600)), transport=spy, clock=clock, sleep=clock.sleep)
    return spy, BatchJob.attach(provider, None, "msgbatch_1")


def test_wait_bounds_each_poll_by_the_time_left(clock):
    spy, job = _spied_job(clock)
    with pytest.raises(ProviderTimeoutError, match="still in_progress"):
        job.wait(poll_interval=10, timeout=25)
    assert spy.left == pytest.approx([25, 15, 5])  # not the provider's 600 s: no poll runs past the wait's end
    assert clock.slept == [10, 10, 5]


def test_wait_with_timeout_zero_polls_once(clock):
    spy, job = _spied_job(clock)
    with pytest.raises(ProviderTimeoutError, match="still in_progress"):
        job.wait(timeout=0)
    assert spy.left == [600] and clock.slept == []


@pytest.mark.parametrize("bad", ["", "  ", "a/b", "a?b", "a#b", "a%2Fb", "a b", "..", ".", 7, None])
def test_a_batch_id_that_cannot_go_in_a_url_path_is_refused(fake, bad):
    with pytest.raises(ValidationError, match="batch id"):
        BatchJob.attach(client_for(fake, "anthropic"), "anthropic", bad)
    assert BatchJob.attach(client_for(fake, "openai"), "openai", " batch_abc-1.2:x ").id == "batch_abc-1.2:x"


def test_the_fake_names_an_unknown_batch_id(fake):
    job = submit_batch(client_for(fake, "anthropic"), MODELS["anthropic"], ["x"])
    for control in (fake.batches.advance, fake.batches.expire):
        with pytest.raises(ValueError, match=f"no batch 'nope' \\(it has {job.id}\\)"):
            control("nope")


@pytest.mark.parametrize("protocol", BOTH)
def test_creating_a_batch_is_never_resent(fake, protocol):
    """A lost or failed answer to the create call must not start (and bill) a second batch: no retry there."""
    client = client_for(fake, protocol, retry=modelprov.RetryPolicy(max_retries=3), sleep=no_sleep)
    create = "/v1/batches" if protocol == "openai" else "/v1/messages/batches"
    fake.add_error(503, protocol=protocol, path=create)
    with pytest.raises(ProviderError):
        submit_batch(client, MODELS[protocol], ["only once"])
    posts = [r for r in fake.requests if r.method == "POST" and r.path == create]
    assert len(posts) == 1
    job = submit_batch(client, MODELS[protocol], ["now it works"])  # the next submit goes through
    assert job.id and len([r for r in fake.requests if r.method == "POST" and r.path == create]) == 2
