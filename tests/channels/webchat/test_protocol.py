"""The webchat protocol's newer frames over a plain WebSocket (no browser): answers addressed to
their question, history for a reloaded page, the stop button, ping, and the security headers."""

from __future__ import annotations

import asyncio

import aiohttp

from channels.webchat import channel as webchat
from tests.channels.webchat.helpers import EchoProvider, GatedProvider, running_app, ws_frames_until
from tests.fakes.scripted_provider import ScriptedProvider


async def test_typing_and_start_name_the_question_they_answer_even_when_questions_queue_up():
    provider = EchoProvider(ttft=0.05, interval=0.01)
    async with (
        running_app(provider) as app,
        aiohttp.ClientSession() as s,
        s.ws_connect(f"{app.base_url}/ws?session=p1") as ws,
    ):
        for cid, q in (("a", "one"), ("b", "two"), ("c", "three")):  # all three before the first answer
            await ws.send_json({"type": "message", "id": cid, "text": q})
        frames = []
        for _ in range(3):
            frames += await ws_frames_until(ws, ["end"])
    starts = [f for f in frames if f["type"] == "start"]
    typings = [f for f in frames if f["type"] == "typing"]
    assert [f["to"] for f in starts] == ["a", "b", "c"]
    assert [f["to"] for f in typings] == ["a", "b", "c"]
    ends = {f["reply"]: f["text"] for f in frames if f["type"] == "end"}
    by_question = {f["to"]: ends[f["reply"]] for f in starts}
    assert by_question == {c: EchoProvider.answer(q) for c, q in (("a", "one"), ("b", "two"), ("c", "three"))}


async def test_history_frame_returns_the_conversation_of_this_session_only():
    provider = ScriptedProvider(["It is **4**."])
    async with running_app(provider) as app, aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{app.base_url}/ws?session=h1") as ws:
            for i, q in enumerate(["What is 2+2?", "And 2+2 again?"]):
                await ws.send_json({"type": "message", "id": str(i), "text": q})
                await ws_frames_until(ws, ["end"])
        await app.responder.flush()  # the exchange is written after its delivery
        async with s.ws_connect(f"{app.base_url}/ws?session=h1") as ws:  # the reloaded page
            await ws.send_json({"type": "history"})
            (history,) = await ws_frames_until(ws, ["history"])
        async with s.ws_connect(f"{app.base_url}/ws?session=other") as ws:
            await ws.send_json({"type": "history"})
            (empty,) = await ws_frames_until(ws, ["history"])
    assert history == {
        "type": "history",
        "turns": [
            {"role": "user", "text": "What is 2+2?"},
            {"role": "assistant", "text": "It is **4**."},
            {"role": "user", "text": "And 2+2 again?"},
            {"role": "assistant", "text": "It is **4**."},
        ],
        "truncated": False,
    }
    assert empty == {"type": "history", "turns": [], "truncated": False}


async def test_history_keeps_the_newest_turns_within_its_size(monkeypatch):
    monkeypatch.setattr(webchat, "HISTORY_CHARS", 25)
    provider = ScriptedProvider(["0123456789"])
    async with (
        running_app(provider) as app,
        aiohttp.ClientSession() as s,
        s.ws_connect(f"{app.base_url}/ws?session=h2") as ws,
    ):
        for i, q in enumerate(["first q", "second q"]):
            await ws.send_json({"type": "message", "id": str(i), "text": q})
            await ws_frames_until(ws, ["end"])
        await app.responder.flush()
        await ws.send_json({"type": "history"})
        (history,) = await ws_frames_until(ws, ["history"])
    assert history["turns"] == [{"role": "user", "text": "second q"}, {"role": "assistant", "text": "0123456789"}]
    assert history["truncated"] is True


async def test_stop_frame_stops_the_reply_which_keeps_its_text_and_ends_with_the_mark():
    provider = GatedProvider()
    async with (
        running_app(provider) as app,
        aiohttp.ClientSession() as s,
        s.ws_connect(f"{app.base_url}/ws?session=st") as ws,
    ):
        await ws.send_json({"type": "message", "id": "q1", "text": "talk for a while"})
        provider.push("The first part", " and more")
        frames = await ws_frames_until(ws, ["delta"])
        assert frames[-1]["type"] == "delta"
        await ws.send_json({"type": "stop"})
        frames = await ws_frames_until(ws, ["end"])
        stopped = [f for f in frames if f["type"] == "stopped"]
        assert stopped == [{"type": "stopped", "stopped": True}]
        end = frames[-1]["text"]
        assert end.startswith("The first part") and end.endswith("[…]"), end
        # nothing running now: stop says so; the conversation goes on
        await ws.send_json({"type": "stop"})
        assert (await ws_frames_until(ws, ["stopped"]))[-1] == {"type": "stopped", "stopped": False}
        await ws.send_json({"type": "message", "id": "q2", "text": "and now?"})
        provider.push("Fine.")
        provider.end()
        frames = await ws_frames_until(ws, ["end"])
        assert frames[-1]["text"] == "Fine."
        assert [f["to"] for f in frames if f["type"] == "start"] == ["q2"]
    assert provider.cancelled == 1


async def test_ping_unknown_frames_and_shutdown_refusal_name_the_question():
    async with (
        running_app(ScriptedProvider(["ok"])) as app,
        aiohttp.ClientSession() as s,
        s.ws_connect(f"{app.base_url}/ws?session=pg") as ws,
    ):
        await ws.send_json({"type": "ping"})
        assert await ws_frames_until(ws, ["pong"]) == [{"type": "pong"}]
        for bad in ('{"type": "dance"}', "[1, 2]", '{"type": "message", "text": 5}'):
            await ws.send_str(bad)
            err = await ws_frames_until(ws, ["error"])
            assert err[-1]["type"] == "error" and "malformed" in err[-1]["text"], bad
        await ws.send_json({"text": "no type is a message"})
        assert (await ws_frames_until(ws, ["end"]))[-1]["text"] == "ok"
        await app.channels["webchat"].stop()
        await ws.send_json({"type": "message", "id": "late", "text": "still there?"})
        err = await ws_frames_until(ws, ["error"])
        assert err[-1] == {"type": "error", "text": webchat.SHUTTING_DOWN, "to": "late", "retry": True}


async def test_page_is_served_with_a_policy_that_runs_only_its_own_script():
    async with running_app(ScriptedProvider(["ok"])) as app, aiohttp.ClientSession() as s:
        async with s.get(f"{app.base_url}/") as r:
            page = await r.text()
            csp = r.headers["Content-Security-Policy"]
        async with s.get(f"{app.base_url}/", headers={"Host": "x; script-src *"}) as odd:
            odd_csp = odd.headers["Content-Security-Policy"]  # a Host that is not host:port adds nothing
    assert "connect-src 'self';" in odd_csp and "*" not in odd_csp
    host = app.base_url.removeprefix("http://")
    assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp
    assert f"connect-src 'self' ws://{host} wss://{host};" in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert page.count("<script>") == 1 and "<script src" not in page  # nothing fetched from elsewhere
    assert "http://" not in page and "https://" not in page


async def test_stop_while_waiting_for_the_first_token_answers_stopped():
    provider = GatedProvider()
    async with (
        running_app(provider) as app,
        aiohttp.ClientSession() as s,
        s.ws_connect(f"{app.base_url}/ws?session=st2") as ws,
    ):
        await ws.send_json({"type": "message", "id": "q1", "text": "hello"})
        await ws_frames_until(ws, ["typing"])
        await asyncio.wait_for(provider.asked.wait(), 5)  # the model was asked
        await ws.send_json({"type": "stop"})
        frames = await ws_frames_until(ws, ["stopped"])
        assert frames[-1] == {"type": "stopped", "stopped": True}
        await ws.send_json({"type": "message", "id": "q2", "text": "again"})
        provider.push("Yes.")
        provider.end()
        frames = await ws_frames_until(ws, ["end"])
    assert frames[-1]["text"] == "Yes."
    assert [f.get("to") for f in frames if f["type"] == "start"] == ["q2"]
