"""The surface on its own against the fake REST API: one request per move, Discord's answers
translated into the core's errors (and nothing waited or retried here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.errors import MessageGone, PlatformError, RateLimited
from bot.types import MessageRef
from channels.discord.surface import DiscordRest, DiscordSurface, MissingPermissions, ReplyTarget
from tests.fakes.discord_server import FakeDiscord

from .conftest import CHANNEL


@pytest.fixture
async def rest(fake: FakeDiscord) -> AsyncIterator[DiscordRest]:
    r = DiscordRest(fake.api_base, fake.token)
    yield r
    await r.close()


async def test_send_edit_typing(fake: FakeDiscord, rest: DiscordRest) -> None:
    s = DiscordSurface(rest, ReplyTarget(str(CHANNEL), reply_to="123"))
    await s.typing()
    ref = await s.send("first part")
    await s.edit(ref, "first part, grown")
    ref2 = await s.send("second part")
    assert fake.texts(CHANNEL) == ["first part, grown", "second part"]
    sends = fake.of("send")
    assert sends[0].body["message_reference"] == {"message_id": "123", "fail_if_not_exists": False}
    assert "message_reference" not in sends[1].body  # only the first message references the question
    assert ref2.id != ref.id and s.calls == 4
    assert [r.route for r in fake.requests] == ["typing", "send", "edit", "send"]
    assert all(r.headers["Authorization"] == f"Bot {fake.token}" for r in fake.requests)


async def test_429_is_rate_limited_with_the_exact_wait(fake: FakeDiscord, rest: DiscordRest) -> None:
    s = DiscordSurface(rest, ReplyTarget(str(CHANNEL)))
    fake.rate_limit("send", 0.731)
    with pytest.raises(RateLimited) as e:
        await s.send("hi")
    assert e.value.retry_after == pytest.approx(0.731)
    assert len(fake.of("send")) == 1  # not retried here: ReplyStream waits, then sends the newest text


async def test_unknown_message_is_message_gone(fake: FakeDiscord, rest: DiscordRest) -> None:
    s = DiscordSurface(rest, ReplyTarget(str(CHANNEL)))
    ref = await s.send("hi")
    fake.delete(int(ref.id))
    with pytest.raises(MessageGone):
        await s.edit(ref, "hi there")


async def test_missing_permissions(fake: FakeDiscord, rest: DiscordRest) -> None:
    s = DiscordSurface(rest, ReplyTarget(str(CHANNEL)))
    fake.missing_permissions("send", times=2)
    for _ in range(2):
        with pytest.raises(MissingPermissions, match="Missing Permissions"):
            await s.send("hi")
    assert rest.permission_reported == {str(CHANNEL)}


async def test_other_errors_are_platform_errors(fake: FakeDiscord, rest: DiscordRest) -> None:
    s = DiscordSurface(rest, ReplyTarget(str(CHANNEL)))
    fake.fail("send", status=500, code=0, message="Internal Server Error")
    with pytest.raises(PlatformError, match="500"):
        await s.send("hi")
    with pytest.raises(PlatformError, match="2000"):
        await s.send("x" * 2001)  # the fake refuses what Discord refuses
    bad = DiscordRest(fake.api_base, "wrong")
    try:
        with pytest.raises(PlatformError, match="401"):
            await DiscordSurface(bad, ReplyTarget(str(CHANNEL))).send("hi")
    finally:
        await bad.close()


async def test_unreachable_is_a_platform_error() -> None:
    rest = DiscordRest("http://127.0.0.1:9/api/v10", "t", timeout=2)
    try:
        with pytest.raises(PlatformError, match="failed"):
            await DiscordSurface(rest, ReplyTarget("1")).send("hi")
    finally:
        await rest.close()


async def test_interaction_first_part_fills_the_deferred_response_then_follow_ups(
    fake: FakeDiscord, rest: DiscordRest
) -> None:
    inter = fake.make_interaction("ask", {"prompt": "q"}, channel_id=CHANNEL)
    fake._r_callback(_req({"type": 5}), {"interaction": inter["id"], "token": inter["token"]})  # the defer
    t = ReplyTarget(str(CHANNEL), app_id=str(fake.app_id), token=inter["token"])
    s = DiscordSurface(rest, t)
    await s.typing()  # nothing: "… is thinking" shows
    first = await s.send("part one")
    await s.edit(first, "part one, whole")
    second = await s.send("part two")
    await s.edit(second, "part two, whole")
    assert first.extra == "@original"
    assert fake.interaction_texts(inter["token"]) == ["part one, whole", "part two, whole"]
    assert [r.route for r in fake.requests] == ["edit_original", "edit_original", "followup", "webhook_edit"]
    assert all("Authorization" not in r.headers for r in fake.requests)
    await s.delete(second)
    assert fake.interaction_texts(inter["token"]) == ["part one, whole"]


async def test_delete_a_channel_message(fake: FakeDiscord, rest: DiscordRest) -> None:
    s = DiscordSurface(rest, ReplyTarget(str(CHANNEL)))
    ref = await s.send("preview")
    await s.delete(ref)
    assert fake.texts(CHANNEL) == []
    with pytest.raises(MessageGone):
        await s.delete(MessageRef(ref.id))


def _req(body: dict) -> object:
    import time

    from tests.fakes.discord_server import Request

    return Request(time.monotonic(), "POST", "/interactions", "callback", body, {})


async def test_reply_without_history_permission_is_reported(fake: FakeDiscord, rest: DiscordRest) -> None:
    s = DiscordSurface(rest, ReplyTarget(str(CHANNEL), reply_to="1"))
    fake.fail("send", status=400, code=160002, message="Cannot reply without permission to read message history")
    with pytest.raises(MissingPermissions, match="read message history"):
        await s.send("hi")
    assert rest.permission_reported == {str(CHANNEL)}
