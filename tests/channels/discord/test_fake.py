"""The fake Discord is faithful enough for the real discord.py: a bare Client logs in, connects,
receives a message, and sends and edits a reply against it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.fakes.discord_server import FakeDiscord


@pytest.fixture
async def pointed(fake: FakeDiscord) -> AsyncIterator[FakeDiscord]:
    """discord.py's class-level endpoints pointed at the fake for one test (restored after)."""
    old_base, old_gw = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield fake
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gw


async def test_bare_discord_py_client_round_trip(pointed: FakeDiscord) -> None:
    fake = pointed
    fake.heartbeat_interval = 0.1
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents, guild_ready_timeout=0.05)
    got: asyncio.Queue[discord.Message] = asyncio.Queue()

    @client.event
    async def on_message(message: discord.Message) -> None:
        await got.put(message)

    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(client.wait_until_ready(), 5)
        assert client.user is not None and client.user.id == fake.bot_id
        assert [g.id for g in client.guilds] == [100]
        await fake.message_create(101, "hello bot", guild_id=100)
        msg = await asyncio.wait_for(got.get(), 5)
        assert msg.content == "hello bot" and msg.guild is not None and msg.guild.id == 100
        reply = await msg.channel.send("first", reference=msg, allowed_mentions=discord.AllowedMentions.none())
        await reply.edit(content="first, then more")
        assert fake.texts(101) == ["first, then more"]
        sent = fake.of("send")[0]
        assert int(sent.body["message_reference"]["message_id"]) == msg.id
        assert sent.body["allowed_mentions"]["parse"] == []
        # heartbeats are answered
        await fake.wait_for(lambda f: any(fr.payload.get("op") == 11 for fr in f.frames), 2)
        identify = next(fr.payload for fr in fake.frames if fr.payload.get("op") == 2)
        assert identify["d"]["intents"] & (1 << 15)  # message content
    finally:
        await client.close()
        await asyncio.gather(task, return_exceptions=True)


async def test_429_is_answered_like_discord_and_discord_py_retries_it(pointed: FakeDiscord) -> None:
    """A 429 with Via and an exact application/json type: discord.py reads retry_after and retries."""
    fake = pointed
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(client.wait_until_ready(), 5)
        fake.rate_limit("send", 0.3)
        ch = client.get_channel(101)
        assert isinstance(ch, discord.TextChannel)
        await ch.send("after the wait")
        sends = fake.of("send")
        assert [r.status for r in sends] == [429, 200]
        assert sends[1].t - sends[0].t >= 0.3
        assert fake.texts(101) == ["after the wait"]
    finally:
        await client.close()
        await asyncio.gather(task, return_exceptions=True)


async def test_close_4014_raises_privileged_intents_required(pointed: FakeDiscord) -> None:
    fake = pointed
    fake.close_on_identify = 4014
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents, guild_ready_timeout=0.05)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(client.start(fake.token), 10)
    await client.close()
