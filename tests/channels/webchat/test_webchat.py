"""Webchat over its WebSocket protocol, through the whole runtime (dispatcher, responder, ReplyStream)."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from bot.app import App
from tests.conftest import make_config
from tests.fakes.scripted_provider import ScriptedProvider


async def frames_until_end(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10.0) -> list[dict]:
    out = []
    async with asyncio.timeout(timeout):
        async for frame in ws:
            m = json.loads(frame.data)
            out.append(m)
            if m["type"] in ("end", "error"):
                return out
    return out


async def test_reply_streams_token_by_token_and_ends_with_exact_text():
    pieces = ["Paris", " is", " the", " capital", " of", " France."]
    provider = ScriptedProvider(pieces, interval=0.01)
    app = App(make_config(), providers={"local": provider})
    await app.start()
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{app.base_url}/ws?session=t1") as ws:
            await ws.send_json({"type": "message", "id": "1", "text": "What is the capital of France?"})
            frames = await frames_until_end(ws)
    finally:
        await app.stop()
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "typing" and kinds[1] == "start" and kinds[-1] == "end"
    deltas = [f["text"] for f in frames if f["type"] == "delta"]
    assert len(deltas) >= 4  # streamed, not one final blob
    assert "".join(deltas) == "Paris is the capital of France."
    assert frames[-1]["text"] == "Paris is the capital of France."
    # the prompt was assembled static-first
    req = provider.requests[0]
    assert [t.role for t in req.messages] == ["system", "user"]


async def test_history_is_kept_and_reset_clears_it():
    provider = ScriptedProvider(["ok"])
    app = App(make_config(), providers={"local": provider})
    await app.start()
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{app.base_url}/ws?session=t2") as ws:
            for i, text in enumerate(["first", "second", "/reset", "third"]):
                await ws.send_json({"type": "message", "id": str(i), "text": text})
                frames = await frames_until_end(ws)
                await app.responder.flush()
                if text == "/reset":
                    assert frames[-1]["text"] == "Conversation cleared."
    finally:
        await app.stop()
    second, third = provider.requests[1], provider.requests[2]
    assert [t.content for t in second.messages[1:]] == ["first", "ok", "second"]
    assert [t.content for t in third.messages[1:]] == ["third"]


async def test_malformed_and_oversized_input_get_a_reply_not_a_crash():
    provider = ScriptedProvider(["fine"])
    app = App(make_config(bot={"max_input_chars": 50}), providers={"local": provider})
    await app.start()
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{app.base_url}/ws?session=t3") as ws:
            await ws.send_str("{not json")
            err = await frames_until_end(ws)
            assert err[-1]["type"] == "error"
            await ws.send_json({"type": "message", "id": "1", "text": "x" * 500})
            refusal = await frames_until_end(ws)
            assert "too long" in refusal[-1]["text"]
            await ws.send_json({"type": "message", "id": "2", "text": "still there?"})
            ok = await frames_until_end(ws)
            assert ok[-1]["text"] == "fine"
    finally:
        await app.stop()
    assert len(provider.requests) == 1  # the oversized message never reached a model


async def test_healthz_and_metrics():
    app = App(make_config(), providers={"local": ScriptedProvider(["hi"])})
    await app.start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{app.base_url}/ws?session=t4") as ws:
                await ws.send_json({"type": "message", "id": "1", "text": "hello"})
                await frames_until_end(ws)
            await app.responder.flush()
            async with s.get(f"{app.base_url}/healthz") as r:
                assert (await r.json())["ok"] is True
            async with s.get(f"{app.base_url}/metrics") as r:
                body = await r.text()
    finally:
        await app.stop()
    assert 'switchboard_replies_total{channel="webchat",model="local/smollm2-135m",outcome="ok"} 1.0' in body
