"""The client over real sockets: concurrency, cancellation, timeouts, fallbacks, breakers, workers."""

import asyncio
import pickle
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from modelprov import Client, ProviderTimeoutError, RetryPolicy, collect
from modelprov.async_bridge import get_bridge, run_sync
from modelprov.testing import FakeServer
from modelprov.testing.factories import chat_reply, error_reply

KEY = "test-key-0123456789"


def no_sleep(seconds):
    pass


def openai_client(server, **kw):
    kw.setdefault("sleep", no_sleep)
    return Client(providers={"openai": {"api_key": KEY, "base_url": server.base_url("openai")}}, **kw)


def test_200_concurrent_acomplete_calls():
    with FakeServer() as server:
        server.set_default(chat_reply("openai", "pong"))
        client = openai_client(server)

        async def main():
            return await asyncio.gather(*(client.acomplete("openai/gpt-test", f"ping {i}") for i in range(200)))

        results = asyncio.run(main())
        assert [r.text for r in results] == ["pong"] * 200
        prompts = sorted(r.json["messages"][-1]["content"] for r in server.requests)
        assert prompts == sorted(f"ping {i}" for i in range(200))
        client.close()


def test_cancelling_astream_closes_the_server_connection():
    with FakeServer() as server:
        server.add_chat("openai", "first second third", stall_after=2)
        client = openai_client(server)
        got = []

        async def consume():
            async for chunk in client.astream("openai/gpt-test", "go"):
                got.append(chunk.text)

        async def main():
            task = asyncio.ensure_future(consume())
            while not got:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(asyncio.wait_for(main(), 10))
        assert got and got[0].startswith("first")
        assert server.wait_for_disconnect(timeout=1.0), "server did not see the connection close"


def test_breaking_out_of_async_for_closes_the_connection():
    with FakeServer() as server:
        server.add_chat("openai", "a b c d e f", stall_after=2)
        client = openai_client(server)

        async def main():
            async for _ in client.astream("openai/gpt-test", "go"):
                break

        asyncio.run(asyncio.wait_for(main(), 10))
        assert server.wait_for_disconnect(timeout=1.0)


def test_overall_timeout_raises_provider_timeout():
    with FakeServer() as server:
        server.add_raw(stall=True)
        client = openai_client(server, timeout=0.3, retry=RetryPolicy(max_retries=0))
        start = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            asyncio.run(client.acomplete("openai/gpt-test", "hi"))
        assert time.monotonic() - start < 5


def test_stream_idle_deadline_ignores_keepalives():
    with FakeServer() as server:
        keepalive = b": OPENROUTER PROCESSING\n\n"
        server.add_raw(headers={"Content-Type": "text/event-stream"}, chunks=[keepalive] * 50, chunk_delay=0.05)
        client = Client(
            providers={"openrouter": {"api_key": KEY, "base_url": server.base_url("openrouter"), "idle_timeout": 0.3}},
            retry=RetryPolicy(max_retries=0),
        )
        start = time.monotonic()
        with pytest.raises(ProviderTimeoutError, match="idle"):
            list(client.stream("openrouter/x/y", "hi"))
        assert time.monotonic() - start < 2


def test_run_sync_from_inside_a_running_loop():
    with FakeServer() as server:
        server.set_default(chat_reply("openai", "from the bridge loop"))
        client = openai_client(server)

        async def notebook_cell():
            # what a Jupyter cell does: synchronous code while a loop is running
            sync_result = client.complete("openai/gpt-test", "sync")
            bridged = run_sync(client.acomplete("openai/gpt-test", "bridged"))
            awaited = await client.acomplete("openai/gpt-test", "awaited")
            return sync_result.text, bridged.text, awaited.text

        for _ in range(3):  # repeated use: no "event loop is closed"
            assert asyncio.run(notebook_cell()) == ("from the bridge loop",) * 3


def test_fallback_across_three_providers_with_faults():
    with FakeServer() as a, FakeServer() as b, FakeServer() as c:
        a.set_default(error_reply(503, protocol="openai", message="overloaded"))
        b.add_error(401, protocol="anthropic", message="bad key")
        c.add_chat("ollama", "served by ollama")
        client = Client(
            providers={
                "openai": {"api_key": KEY, "base_url": a.base_url("openai")},
                "anthropic": {"api_key": KEY, "base_url": b.base_url("anthropic")},
                "ollama": {"base_url": c.base_url("ollama")},
            },
            fallbacks=["anthropic/claude-test", "ollama/llama-test"],
            retry=RetryPolicy(max_retries=1),
            sleep=no_sleep,
        )
        resp = client.complete("openai/gpt-test", "hi")
        assert resp.text == "served by ollama"
        assert [(r["provider"], r.get("status_code")) for r in resp.attempts] == [
            ("openai", 503), ("openai", 503), ("anthropic", 401), ("ollama", None)]
        assert len(a.requests) == 2 and len(b.requests) == 1 and len(c.requests) == 1


def test_breaker_opens_on_one_provider_while_fallback_serves():
    with FakeServer() as bad, FakeServer() as good:
        bad.set_default(error_reply(500, protocol="openai"))
        good.set_default(chat_reply("openai_compatible", "backup"))
        client = Client(
            providers={
                "openai": {"api_key": KEY, "base_url": bad.base_url("openai")},
                "local": {"type": "openai_compatible", "base_url": good.base_url("openai_compatible")},
            },
            fallbacks=["local/llama"],
            retry=RetryPolicy(max_retries=0),
            breaker={"failure_threshold": 3, "recovery_timeout": 60},
            sleep=no_sleep,
        )
        for _ in range(10):
            assert client.complete("openai/gpt-test", "hi").text == "backup"
        assert len(bad.requests) == 3, "the open breaker must keep calls away"
        assert client.breaker("openai").state.value == "open"
        assert len(good.requests) == 10


def test_batch_order_and_progress_over_http():
    with FakeServer() as server:
        server.set_default(chat_reply("openai", "ok"))
        client = openai_client(server)
        seen = []
        out = client.batch([("openai/gpt-test", f"q{i}") for i in range(30)], max_concurrency=6, on_progress=lambda d, t: seen.append(d))
        assert [r.text for r in out] == ["ok"] * 30
        assert sorted(seen) == list(range(1, 31))


def _worker(blob):
    client = pickle.loads(blob)
    return collect(client.stream("openai/gpt-test", "from worker")).text


def test_pickled_client_used_in_a_process_pool():
    with FakeServer() as server:
        server.set_default(chat_reply("openai", "hello from the parent's server"))
        client = Client(providers={"openai": {"api_key": KEY, "base_url": server.base_url("openai")}})
        client.complete("openai/gpt-test", "warm up")
        with ProcessPoolExecutor(max_workers=1) as pool:
            assert pool.submit(_worker, pickle.dumps(client)).result(timeout=60) == "hello from the parent's server"


def test_bridge_stats_count_calls():
    with FakeServer() as server:
        server.set_default(chat_reply("openai", "x"))
        client = openai_client(server)
        before = get_bridge().stats().completed
        asyncio.run(client.acomplete("openai/gpt-test", "hi"))
        assert get_bridge().stats().completed == before + 1


TRICKLED = " ".join(["word"] * 40)  # hundreds of bytes, one every 50 ms: far more than 5 s


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("headers", [False, True], ids=["body", "headers"])
def test_client_timeout_stops_a_trickling_server(stream, headers):
    with FakeServer() as server:
        server.add_chat("openai", TRICKLED, trickle=0.05, trickle_headers=headers)
        client = openai_client(server, timeout=1.0, retry=RetryPolicy(max_retries=0))
        start = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            if stream:
                list(client.stream("openai/gpt-test", "hi"))
            else:
                client.complete("openai/gpt-test", "hi")
        assert time.monotonic() - start < 1.5


@pytest.mark.slow
def test_a_provider_timeout_over_straddled_stream_headers_falls_back():
    with FakeServer() as server:
        server.add_chat("openai", TRICKLED, trickle=0.05, trickle_headers=True)
        client = Client(providers={"openai": {"api_key": KEY, "base_url": server.base_url("openai"), "timeout": 0.5}},
                        fallbacks=["mock/echo"], retry=RetryPolicy(max_retries=0))  # fmt: skip
        stream = client.stream("openai/gpt-test", "served by the fallback")
        assert "".join(c.text for c in stream) == "served by the fallback"
        assert [(r["provider"], r.get("error")) for r in stream.attempts] == [("openai", "ProviderTimeoutError"), ("mock", None)]
