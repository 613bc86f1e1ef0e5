"""The OpenAI-compatible provider, driven through the real openai SDK against a local SSE server."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import ProviderConfig
from bot.errors import ProviderAuthError, ProviderBadRequest, ProviderRateLimited, ProviderUnavailable
from bot.providers.openai_compat import OpenAICompatProvider
from bot.types import ChatTurn, GenerationRequest
from tests.fakes.openai_server import FakeOpenAI, Scripted

CLIENT = "fast"


@pytest.fixture(autouse=True, params=["fast", "sdk"])
def client_kind(request):
    """Every test runs on both HTTP paths: the aiohttp fast path and the openai SDK."""
    global CLIENT
    CLIENT = request.param
    yield request.param
    CLIENT = "fast"


def provider(url: str, **kw) -> OpenAICompatProvider:
    cfg = ProviderConfig(kind="openai", base_url=url, api_key="sk-test-secret", client=CLIENT, **kw)
    return OpenAICompatProvider("fake", cfg)


def request(**kw) -> GenerationRequest:
    turns = (ChatTurn("system", "be brief"), ChatTurn("user", "capital of France?"))
    return GenerationRequest(model="fake-model", messages=turns, **kw)


async def collect(p: OpenAICompatProvider, req: GenerationRequest):
    return [d async for d in p.stream(req)]


async def test_streams_deltas_then_usage_and_ttft():
    async with FakeOpenAI("Paris is the capital.", ttft=0.05, prompt_tokens=30, cached_tokens=16) as srv:
        p = provider(srv.base_url, warm=False)
        deltas = await collect(p, request(max_tokens=64, temperature=0.1))
        await p.aclose()
    texts = [d.text for d in deltas[:-1]]
    assert texts == ["Paris", " is", " the", " capital."]
    final = deltas[-1]
    assert final.text == "" and final.finish_reason == "stop"
    assert final.usage.prompt_tokens == 30 and final.usage.completion_tokens == 4 and final.usage.cached_tokens == 16
    assert 0.05 <= final.ttft < 1.0
    body = srv.chat_requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["max_tokens"] == 64 and body["temperature"] == 0.1
    assert srv.chat_requests[0].headers["Authorization"] == "Bearer sk-test-secret"


async def test_stream_without_finish_is_an_error_not_a_silent_cut():
    async with FakeOpenAI("one two three") as srv:
        srv.script.append(Scripted(break_after=3))  # all text, then the connection drops before finish
        p = provider(srv.base_url, warm=False)
        with pytest.raises(ProviderUnavailable):
            await collect(p, request())
        await p.aclose()


async def test_extra_parameters_pass_through():
    async with FakeOpenAI("ok") as srv:
        p = provider(srv.base_url, warm=False)
        req = request(
            extra={
                "reasoning_effort": "low",
                "service_tier": "priority",
                "disable_reasoning": True,
                "prediction": {"type": "content", "content": "x"},
            }
        )
        await collect(p, req)
        await p.aclose()
    body = srv.chat_requests[0].body
    assert body["reasoning_effort"] == "low" and body["service_tier"] == "priority"
    assert body["disable_reasoning"] is True and body["prediction"]["content"] == "x"


@pytest.mark.parametrize(
    ("status", "headers", "exc"),
    [
        (401, {}, ProviderAuthError),
        (403, {}, ProviderAuthError),
        (429, {"Retry-After": "7"}, ProviderRateLimited),
        (400, {}, ProviderBadRequest),
        (404, {}, ProviderBadRequest),
        (500, {}, ProviderUnavailable),
        (503, {}, ProviderUnavailable),
    ],
)
async def test_http_errors_become_typed_exceptions(status, headers, exc):
    async with FakeOpenAI("ok") as srv:
        srv.script.append(Scripted(status=status, headers=headers))
        p = provider(srv.base_url, warm=False)
        with pytest.raises(exc) as info:
            await collect(p, request())
        # the SDK's own retries are off: exactly one request reached the server
        assert len(srv.chat_requests) == 1
        await p.aclose()
    assert info.value.status == status and info.value.provider == "fake"
    if status == 429:
        assert info.value.retry_after == 7.0


async def test_connection_refused_is_unavailable():
    async with FakeOpenAI() as srv:
        url = srv.base_url
    p = provider(url, warm=False, connect_timeout=1.0)
    with pytest.raises(ProviderUnavailable):
        await collect(p, request())
    await p.aclose()


async def test_stream_cut_midway_is_unavailable_after_partial_text():
    async with FakeOpenAI("one two three four five") as srv:
        srv.script.append(Scripted(break_after=2))
        p = provider(srv.base_url, warm=False)
        seen = []
        with pytest.raises(ProviderUnavailable):
            async for d in p.stream(request()):
                seen.append(d.text)
        await p.aclose()
    assert seen == ["one", " two"]


async def test_idle_connection_kept_by_configured_expiry():
    """httpx's default drops idle connections after 5 s; ours keeps them as configured."""
    async with FakeOpenAI("ok") as srv:
        short = provider(srv.base_url, warm=False, keepalive_expiry=0.1)
        await collect(short, request())
        await asyncio.sleep(0.3)
        await collect(short, request())
        await short.aclose()
        a, b = srv.chat_requests
        assert a.peer_port != b.peer_port  # expired: a new connection

        srv.requests.clear()
        long = provider(srv.base_url, warm=False, keepalive_expiry=300)
        await collect(long, request())
        await asyncio.sleep(0.3)
        await collect(long, request())
        await long.aclose()
        a, b = srv.chat_requests
        assert a.peer_port == b.peer_port  # kept: same connection, no new handshake


async def test_connects_at_start_and_rewarms_before_expiry():
    async with FakeOpenAI("ok") as srv:
        p = provider(srv.base_url, keepalive_expiry=0.25)
        await p.start()
        warm_port = srv.requests[0].peer_port
        assert srv.requests[0].path == "/v1/models"
        await asyncio.sleep(0.6)  # longer than the expiry: only the re-warm keeps it open
        await collect(p, request())
        await p.aclose()
    assert len([r for r in srv.requests if r.path == "/v1/models"]) >= 2
    assert srv.chat_requests[0].peer_port in {r.peer_port for r in srv.requests if r.path == "/v1/models"}
    assert warm_port is not None


async def test_start_opens_the_configured_number_of_warm_connections():
    async with FakeOpenAI("ok", models_delay=0.2) as srv:  # the five warm-ups overlap, as on a real network
        p = provider(srv.base_url, warm_connections=5)
        await p.start()
        warm_ports = {r.peer_port for r in srv.requests if r.path == "/v1/models"}
        # five replies at once all find a warm connection: no new one is opened
        await asyncio.gather(*(collect(p, request()) for _ in range(5)))
        await p.aclose()
    assert len(warm_ports) == 5
    assert {r.peer_port for r in srv.chat_requests} <= warm_ports


async def test_clean_end_without_finish_reason_is_an_error():
    async with FakeOpenAI("one two three") as srv:
        srv.script.append(Scripted(no_finish=True))
        p = provider(srv.base_url, warm=False)
        with pytest.raises(ProviderUnavailable, match="before the answer was complete"):
            await collect(p, request())
        await p.aclose()


@pytest.mark.parametrize("raw", [b"1", b'{"choices": [null]}', b"not json", b'{"choices": [{"delta": 5}]}'])
async def test_malformed_chunks_are_unavailable_not_a_crash(raw):
    async with FakeOpenAI("x") as srv:
        srv.script.append(Scripted(raw_chunks=[raw]))
        p = provider(srv.base_url, warm=False)
        with pytest.raises(ProviderUnavailable):
            await collect(p, request())
        await p.aclose()


async def test_timeout_bounds_each_wait_not_the_whole_answer():
    # 12 pieces 0.1 s apart: 1.2 s in all, longer than the 0.5 s timeout, yet never idle that long
    async with FakeOpenAI(" ".join(["w"] * 12), token_interval=0.1) as srv:
        p = provider(srv.base_url, warm=False, timeout=0.5)
        deltas = await collect(p, request())
        await p.aclose()
    assert "".join(d.text for d in deltas).count("w") == 12
