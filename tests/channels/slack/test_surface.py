"""The surface's moves one by one against the fake Web API (slack_sdk's real AsyncWebClient)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import MarkupRejected, MessageGone, PlatformError, RateLimited
from bot.types import MessageRef
from channels.slack.surface import ChannelPace, ReplyTarget, SlackApi, SlackSurface, SurfaceSettings
from tests.fakes.slack_server import FakeSlack


@pytest.fixture
async def api(fake: FakeSlack) -> AsyncIterator[SlackApi]:
    async with aiohttp.ClientSession() as session:
        yield SlackApi(AsyncWebClient(token=fake.bot_token, base_url=fake.api_base, session=session, retry_handlers=[]))


def surface(api: SlackApi, fake: FakeSlack, channel: str = "C0100", **kw: Any) -> tuple[SlackSurface, Any]:
    q = fake.person_message(channel, "question")
    tasks: list[asyncio.Task[None]] = []

    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        tasks.append(asyncio.ensure_future(coro))

    target = ReplyTarget(channel, q.ts, question_ts=q.ts, team_id=fake.team_id, user_id="U0042", **kw)
    s = SlackSurface(api, target, settings=SurfaceSettings(edit_interval=0.2), pace=ChannelPace(100, 1.0), spawn=spawn)
    return s, (q, tasks)


async def test_a_final_text_that_is_not_an_extension_is_set_exactly(api: SlackApi, fake: FakeSlack) -> None:
    s, (q, _) = surface(api, fake)
    await s.draft("Part one is long and")
    await s.draft("Part one is long and still going")
    ref = await s.finish("Part one is long\n```")  # the cut moved back and a fence was closed
    assert ref is not None and fake.texts("C0100", q.ts) == ["Part one is long\n```"]
    assert [c.method for c in fake.calls] == [
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
        "chat.update",
    ]
    assert fake.of("chat.appendStream")[0].params["markdown_text"] == " still going"


async def test_finish_without_a_draft_posts_the_part(api: SlackApi, fake: FakeSlack) -> None:
    s, (q, _) = surface(api, fake)
    ref = await s.finish("Short **answer** & more")
    assert ref is not None
    [post] = fake.of("chat.postMessage")
    assert post.params["text"] == "Short *answer* &amp; more" and post.params["thread_ts"] == q.ts
    assert fake.texts("C0100", q.ts) == ["Short answer & more"]


async def test_errors_are_translated(api: SlackApi, fake: FakeSlack) -> None:
    s, (q, _) = surface(api, fake)
    ref = await s.send("hello")
    fake.rate_limit("chat.update", 2.5)
    with pytest.raises(RateLimited) as e:
        await s.edit(ref, "hello again")
    assert e.value.retry_after == 2.5
    fake.fail("chat.update", "invalid_blocks")
    with pytest.raises(MarkupRejected):
        await s.edit(ref, "hello again")
    await s.edit(ref, "a < b", plain=True)
    assert fake.of("chat.update")[-1].params["text"] == "a &lt; b"
    fake.delete("C0100", ref.id)
    with pytest.raises(MessageGone):
        await s.edit(ref, "hello once more")
    fake.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(PlatformError, match="channel_not_found"):
        await s.send("x")


async def test_429_on_stop_then_the_same_finish_again(api: SlackApi, fake: FakeSlack) -> None:
    s, (q, _) = surface(api, fake)
    await s.draft("Streaming some words")
    fake.rate_limit("chat.stopStream", 0.1)
    with pytest.raises(RateLimited):
        await s.finish("Streaming some words, done.")
    await s.finish("Streaming some words, done.")
    assert fake.texts("C0100", q.ts) == ["Streaming some words, done."]


async def test_a_lost_stop_answer_is_settled_by_an_update(api: SlackApi, fake: FakeSlack) -> None:
    """The stop went through but its answer was lost: the try again finds the stream stopped and
    sets the exact text with an update instead."""
    s, (q, _) = surface(api, fake)
    await s.draft("Words so far")
    fake.expire_stream("C0100", fake.of("chat.startStream")[0].answer["ts"])
    ref = await s.finish("Words so far, and the end.")
    assert ref is not None and fake.texts("C0100", q.ts) == ["Words so far, and the end."]
    assert s.fallback == "message_not_in_streaming_state"


async def test_fallback_is_paced_without_a_call(api: SlackApi, fake: FakeSlack) -> None:
    s, (q, _) = surface(api, fake)
    fake.fail("chat.startStream", "missing_recipient_team_id")
    await s.draft("First words here")
    assert s.fallback == "missing_recipient_team_id" and len(fake.of("chat.postMessage")) == 1
    calls = len(fake.calls)
    with pytest.raises(RateLimited) as e:
        await s.draft("First words here and more")
    assert 0 < e.value.retry_after <= 0.2 and len(fake.calls) == calls  # no request was made
    await asyncio.sleep(e.value.retry_after)
    await s.draft("First words here and more")
    assert fake.texts("C0100", q.ts) == ["First words here and more"]


async def test_status_in_assistant_threads(api: SlackApi, fake: FakeSlack) -> None:
    s, (q, tasks) = surface(api, fake, channel="D0042", assistant=True)
    await s.typing()
    await s.typing()  # refreshed
    assert fake.statuses[("D0042", q.ts)] == "is thinking…"
    await s.draft("Answer begins")
    await asyncio.gather(*tasks)
    assert len(fake.of("assistant.threads.setStatus")) == 3 and ("D0042", q.ts) not in fake.statuses
    assert not fake.of("reactions.add")


async def test_slash_command_answers_through_the_response_url(fake: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        api = SlackApi(AsyncWebClient(token=fake.bot_token, base_url=fake.api_base, session=session))
        target = ReplyTarget("D0042", "", response_url=f"http://127.0.0.1:{fake.port}/response")
        s = SlackSurface(
            api,
            target,
            settings=SurfaceSettings(),
            pace=ChannelPace(1, 1.0),
            spawn=lambda c: None,
            http=lambda: session,
        )
        await s.typing()
        ref = await s.send("This chat uses **fast**.")
        assert isinstance(ref, MessageRef)
    [(_, body)] = fake.responses
    assert body == {"text": "This chat uses *fast*.", "response_type": "ephemeral", "replace_original": False}
    assert fake.calls == []
