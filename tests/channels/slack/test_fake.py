"""The fake Slack itself, driven by the real slack-bolt and slack_sdk: Socket Mode connects,
envelopes are acknowledged, replies land in the thread, streams keep their state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_server import FakeSlack


@pytest.fixture
async def fake() -> Any:
    f = await FakeSlack().start()
    yield f
    await f.stop()


async def test_bolt_over_socket_mode_acks_and_replies(fake: FakeSlack) -> None:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_base)
    app = AsyncApp(client=client, signing_secret=fake.signing_secret)
    seen: list[dict[str, Any]] = []

    @app.event("message")
    async def on_message(event: dict[str, Any], say: Any) -> None:
        seen.append(event)
        await say(text=f"echo: {event['text']}", thread_ts=event["ts"])

    handler = AsyncSocketModeHandler(app, fake.app_token)
    await handler.connect_async()
    try:
        m, env = await fake.dm("hello")
        ack_at = await fake.wait_ack(env)
        assert ack_at >= fake.sent_envelopes[env]
        await fake.wait_for(lambda f: f.texts("D0042"))
        assert fake.texts("D0042", m.ts) == ["echo: hello"]
        assert seen[0]["text"] == "hello"
        assert [c.method for c in fake.calls][:2] == ["apps.connections.open", "auth.test"]
        assert fake.of("apps.connections.open")[0].headers["Authorization"] == f"Bearer {fake.app_token}"
    finally:
        await handler.close_async()


async def test_streams_keep_their_state(fake: FakeSlack) -> None:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_base)
    q = fake.person_message("C0100", "question")
    with pytest.raises(SlackApiError) as e:
        await client.chat_startStream(channel="C0100", thread_ts=q.ts, markdown_text="hi")
    assert e.value.response["error"] == "missing_recipient_team_id"
    r = await client.chat_startStream(
        channel="C0100", thread_ts=q.ts, markdown_text="Hel", recipient_team_id="T0001", recipient_user_id="U0042"
    )
    ts = r["ts"]
    await client.chat_appendStream(channel="C0100", ts=ts, markdown_text="lo **world**")
    await client.chat_stopStream(channel="C0100", ts=ts, markdown_text="!")
    assert fake.texts("C0100", q.ts) == ["Hello world!"]
    with pytest.raises(SlackApiError) as e:
        await client.chat_appendStream(channel="C0100", ts=ts, markdown_text="more")
    assert e.value.response["error"] == "message_not_in_streaming_state"
    # the SDK's helper sends chunks instead of markdown_text: read the same way
    streamer = await client.chat_stream(channel="D0042", thread_ts=fake.person_message("D0042", "q").ts, buffer_size=1)
    await streamer.append(markdown_text="chunked")
    await streamer.stop()
    assert fake.texts("D0042") == ["chunked"]


async def test_rate_limit_answers_429_with_retry_after(fake: FakeSlack) -> None:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_base, retry_handlers=[])
    fake.rate_limit("chat.postMessage", 1.5)
    with pytest.raises(SlackApiError) as e:
        await client.chat_postMessage(channel="C0100", text="x")
    assert e.value.response.status_code == 429 and e.value.response.headers["Retry-After"] == "1.5"
    await client.chat_postMessage(channel="C0100", text="x")
    assert fake.texts("C0100") == ["x"]


async def test_tokens_are_checked(fake: FakeSlack) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_base)
    with pytest.raises(SlackApiError) as e:
        await bad.auth_test()
    assert e.value.response["error"] == "invalid_auth"
    bot = AsyncWebClient(token=fake.bot_token, base_url=fake.api_base)
    with pytest.raises(SlackApiError) as e:
        await bot.apps_connections_open(app_token=fake.bot_token)
    assert e.value.response["error"] == "not_allowed_token_type"
    r = await bot.auth_test()
    assert r["user_id"] == fake.bot_user_id and "chat:write" in r.headers["X-OAuth-Scopes"]


async def test_assistant_status_prompts_and_reactions(fake: FakeSlack) -> None:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_base)
    q = fake.person_message("C0100", "q")
    await client.reactions_add(channel="C0100", timestamp=q.ts, name="eyes")
    assert q.reactions == {"eyes"}
    await client.reactions_remove(channel="C0100", timestamp=q.ts, name="eyes")
    assert q.reactions == set()
    await client.assistant_threads_setStatus(channel_id="D0042", thread_ts="1.000001", status="is thinking…")
    assert fake.statuses[("D0042", "1.000001")] == "is thinking…"
    await client.assistant_threads_setSuggestedPrompts(
        channel_id="D0042", thread_ts="1.000001", prompts=[{"title": "a", "message": "b"}]
    )
    await client.assistant_threads_setTitle(channel_id="D0042", thread_ts="1.000001", title="T")
    assert fake.prompts[("D0042", "1.000001")] == [{"title": "a", "message": "b"}]
    assert fake.titles[("D0042", "1.000001")] == "T"
    await asyncio.sleep(0)
