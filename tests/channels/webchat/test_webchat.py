"""Webchat over its WebSocket protocol, through the whole runtime (dispatcher, responder, ReplyStream)."""

from __future__ import annotations

import asyncio
import contextlib
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


# --- review fixes: shutdown order, big frames, two tabs, cross-origin pages ----------------------


async def test_shutdown_mark_reaches_the_browser_before_the_socket_closes():
    provider = ScriptedProvider(["one"] + [" more"] * 200, interval=0.05)
    app = App(make_config(dispatcher={"shutdown_grace": 0.2}), providers={"local": provider})
    await app.start()
    stopped = False
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{app.base_url}/ws?session=t5") as ws:
            await ws.send_json({"type": "message", "id": "1", "text": "talk for a while"})
            async with asyncio.timeout(10):
                async for frame in ws:  # wait until the reply is streaming
                    if json.loads(frame.data)["type"] == "delta":
                        break
            stopping = asyncio.create_task(app.stop())
            frames = await frames_until_end(ws)
            await stopping
            stopped = True
            assert frames[-1]["type"] == "end" and frames[-1]["text"].endswith("[…]"), frames[-3:]
            async with asyncio.timeout(10):
                assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    finally:
        if not stopped:
            await app.stop()


async def test_channel_stop_refuses_new_messages_but_keeps_sockets_open_until_aclose():
    app = App(make_config(), providers={"local": ScriptedProvider(["ok"])})
    await app.start()
    channel = app.channels["webchat"]
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{app.base_url}/ws?session=t6") as ws:
            await channel.stop()
            assert not ws.closed
            await ws.send_json({"type": "message", "id": "1", "text": "anyone there?"})
            frames = await frames_until_end(ws)
            assert frames[-1]["type"] == "error" and "shutting down" in frames[-1]["text"]
            await channel.aclose()
            async with asyncio.timeout(10):
                msg = await ws.receive()
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
    finally:
        await app.stop()


async def test_text_far_over_max_input_chars_gets_the_polite_refusal():
    provider = ScriptedProvider(["fine"])
    app = App(make_config(bot={"max_input_chars": 50}), providers={"local": provider})
    await app.start()
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{app.base_url}/ws?session=t7") as ws:
            await ws.send_json({"type": "message", "id": "1", "text": "é" * 300_000})  # ~600 KB frame
            refusal = await frames_until_end(ws)
            assert refusal[-1]["type"] == "end" and "too long" in refusal[-1]["text"]
            await ws.send_json({"type": "message", "id": "2", "text": "still there?"})
            assert (await frames_until_end(ws))[-1]["text"] == "fine"
    finally:
        await app.stop()
    assert len(provider.requests) == 1


async def test_frame_over_the_hard_cap_is_refused_with_message_too_big():
    from channels.webchat.channel import HARD_CAP

    app = App(make_config(), providers={"local": ScriptedProvider(["fine"])})
    await app.start()
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{app.base_url}/ws?session=t8") as ws:
            big = json.dumps({"type": "message", "id": "1", "text": "x" * (HARD_CAP + 10)})
            sending = asyncio.create_task(ws.send_str(big))
            async with asyncio.timeout(10):
                msg = await ws.receive()
            with contextlib.suppress(ConnectionError):  # the server may drop the rest of the upload
                await sending
            # aiohttp rejects it from the frame header, before reading it: the socket can't carry on
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{app.base_url}/ws?session=t8") as ws:
            await ws.send_json({"type": "message", "id": "2", "text": "still there?"})  # a new socket works
            assert (await frames_until_end(ws))[-1]["text"] == "fine"
        # the page learns the cap and refuses such input itself, with a notice
        async with aiohttp.ClientSession() as s, s.get(f"{app.base_url}/") as r:
            page = await r.text()
        assert f"const MAX_FRAME = {HARD_CAP};" in page and "{{" not in page
    finally:
        await app.stop()


async def test_two_tabs_of_one_session_both_stay_registered():
    app = App(make_config(), providers={"local": ScriptedProvider(["ok"])})
    await app.start()
    channel = app.channels["webchat"]
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.ws_connect(f"{app.base_url}/ws?session=same") as a,
            s.ws_connect(f"{app.base_url}/ws?session=same") as b,
        ):
            await a.send_json({"type": "message", "id": "1", "text": "from a"})
            assert (await frames_until_end(a))[-1]["text"] == "ok"
            await app.responder.flush()
            await b.send_json({"type": "message", "id": "2", "text": "from b"})
            assert (await frames_until_end(b))[-1]["text"] == "ok"
            assert len(channel._sockets) == 2
            await channel.aclose()  # closes both tabs, not only the last one opened
            async with asyncio.timeout(10):
                for ws in (a, b):
                    assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    finally:
        await app.stop()


async def test_cross_origin_websocket_is_refused():
    app = App(make_config(), providers={"local": ScriptedProvider(["ok"])})
    await app.start()
    host = app.base_url.removeprefix("http://")
    try:
        async with aiohttp.ClientSession() as s:
            for origin in (
                "http://evil.example",
                f"http://{host}.evil.example",
                "null",
                f"https://{host.split(':')[0]}:1",
            ):
                try:
                    async with s.ws_connect(f"{app.base_url}/ws?session=x", headers={"Origin": origin}):
                        raise AssertionError(f"{origin} was let in")
                except aiohttp.WSServerHandshakeError as e:
                    assert e.status == 403, origin
            # the page itself (same origin) and clients that send no Origin are fine
            async with s.ws_connect(f"{app.base_url}/ws?session=y", headers={"Origin": app.base_url}) as ws:
                await ws.send_json({"type": "message", "id": "1", "text": "hi"})
                assert (await frames_until_end(ws))[-1]["text"] == "ok"
            async with s.ws_connect(f"{app.base_url}/ws?session=z") as ws:
                await ws.send_json({"type": "message", "id": "1", "text": "hi"})
                assert (await frames_until_end(ws))[-1]["text"] == "ok"
    finally:
        await app.stop()


async def test_a_closed_tab_stops_its_reply_and_the_model():
    """Nobody is there to read it: the model stream is closed at the next piece, the reply is
    recorded as client_gone, and the session's next question does not wait for the abandoned one."""
    import time

    provider = ScriptedProvider(["start"] + [" more"] * 200, interval=0.02)  # ~4 s if let run
    app = App(make_config(), providers={"local": provider})
    await app.start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{app.base_url}/ws?session=gone") as ws:
                await ws.send_json({"type": "message", "id": "1", "text": "talk for a while"})
                async with asyncio.timeout(10):
                    async for frame in ws:
                        if json.loads(frame.data)["type"] == "delta":
                            break
            t0 = time.perf_counter()
            provider.pieces = ["Back."]
            async with s.ws_connect(f"{app.base_url}/ws?session=gone") as ws:
                await ws.send_json({"type": "message", "id": "2", "text": "are you there?"})
                frames = await frames_until_end(ws)
            assert frames[-1]["text"] == "Back." and time.perf_counter() - t0 < 1.5
        await app.dispatcher.drain()
        await app.responder.flush()
        rows = await app.store._run(lambda c: c.execute("SELECT outcome, completion_tokens FROM replies").fetchall())
        assert sorted(r[0] for r in rows) == ["client_gone", "ok"]
    finally:
        await app.stop()
