"""The adapter on the real discord.py against the fake gateway: what is answered, as what."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import ConfigError, StartupError
from bot.types import ChatKind, Command
from channels.discord import DiscordChannel
from tests.fakes.discord_server import FakeDiscord

from .conftest import CHANNEL, DM, GUILD, RecordingInbox, dc_config


async def quiet(inbox: RecordingInbox, fake: FakeDiscord) -> None:
    """Give an ignored message time to have shown up (the fake's frames are ordered: a message
    dispatched after it that *is* delivered proves it was processed)."""
    await fake.message_create(DM, "marker")
    await inbox.wait(len(inbox.messages) + 1)
    assert inbox.messages.pop().text == "marker"


async def test_dm_is_answered_as_a_dm_conversation(fake: FakeDiscord, started) -> None:
    ch, inbox = await started()
    data = await fake.message_create(DM, "hello there")
    [msg] = await inbox.wait(1)
    assert msg.text == "hello there"
    assert msg.chat_kind is ChatKind.DM
    assert msg.conversation == f"discord:{DM}"
    assert msg.chat_id == str(DM) and msg.thread_id is None and msg.workspace_id is None
    assert msg.message_id == data["id"] and msg.reply_to == data["id"]
    assert msg.sender_id == "4242" and msg.sender_handle == "alice"
    assert msg.command is None and msg.edit_of is None


async def test_guild_mention_is_answered_without_the_mention(fake: FakeDiscord, started) -> None:
    ch, inbox = await started()
    await fake.message_create(CHANNEL, f"<@{fake.bot_id}> what is 2+2?", guild_id=GUILD)
    [msg] = await inbox.wait(1)
    assert msg.text == "what is 2+2?"
    assert msg.chat_kind is ChatKind.GROUP
    assert msg.conversation == f"discord:{CHANNEL}:user-4242"  # one per (channel, person)
    assert msg.workspace_id == str(GUILD) and msg.chat_id == str(CHANNEL)


async def test_guild_message_without_mention_is_ignored(fake: FakeDiscord, started) -> None:
    ch, inbox = await started()
    await fake.message_create(CHANNEL, "just chatting", guild_id=GUILD)
    await quiet(inbox, fake)
    assert inbox.messages == [] and ch.ignored == 1


async def test_reply_to_the_bot_is_answered(fake: FakeDiscord, started) -> None:
    ch, inbox = await started()
    bot_msg = fake._new_message(CHANNEL, {"content": "an earlier answer"})[1]
    await fake.message_create(CHANNEL, "and then?", guild_id=GUILD, reply_to=int(bot_msg["id"]))
    [msg] = await inbox.wait(1)
    assert msg.text == "and then?"


async def test_bots_are_ignored_itself_included(fake: FakeDiscord, started) -> None:
    ch, inbox = await started()
    await fake.message_create(DM, "beep", user_id=31337, username="otherbot", bot=True)
    await fake.message_create(CHANNEL, f"<@{fake.bot_id}> hi", guild_id=GUILD, user_id=fake.bot_id, bot=True)
    await quiet(inbox, fake)
    assert inbox.messages == [] and ch.ignored == 2


async def test_people_in_the_same_channel_are_separate_conversations(fake: FakeDiscord, started) -> None:
    ch, inbox = await started()
    await fake.message_create(CHANNEL, f"<@{fake.bot_id}> one", guild_id=GUILD, user_id=1)
    await fake.message_create(CHANNEL, f"<@{fake.bot_id}> two", guild_id=GUILD, user_id=2)
    a, b = await inbox.wait(2)
    assert a.conversation != b.conversation and a.chat_id == b.chat_id == str(CHANNEL)


async def test_thread_follow_up_needs_no_mention(fake: FakeDiscord, started) -> None:
    thread = 700
    fake.add_thread(GUILD, CHANNEL, thread)
    ch, inbox = await started()
    await fake.message_create(thread, "not yet for the bot", guild_id=GUILD)
    await quiet(inbox, fake)
    assert inbox.messages == []
    await fake.message_create(thread, f"<@{fake.bot_id}> start here", guild_id=GUILD)
    await fake.message_create(thread, "and a follow-up", guild_id=GUILD, user_id=99)
    first, second = await inbox.wait(2)
    assert second.text == "and a follow-up"
    assert first.chat_kind is second.chat_kind is ChatKind.THREAD
    assert first.conversation == second.conversation == f"discord:{CHANNEL}:{thread}"  # one per thread
    assert second.thread_id == str(thread) and second.chat_id == str(CHANNEL)
    assert ch.surface(second).target.channel_id == str(thread)  # the answer goes into the thread


async def test_thread_the_bot_started_is_answered(fake: FakeDiscord, started) -> None:
    thread = 701
    fake.add_thread(GUILD, CHANNEL, thread, owner_id=fake.bot_id)
    ch, inbox = await started()
    await fake.message_create(thread, "question in the bot's thread", guild_id=GUILD)
    [msg] = await inbox.wait(1)
    assert msg.conversation == f"discord:{CHANNEL}:{thread}"


async def test_answer_channels_answer_everything(fake: FakeDiscord, started) -> None:
    fake.add_channel(GUILD, 102)
    ch, inbox = await started(answer_channels=[102])
    await fake.message_create(102, "no mention needed", guild_id=GUILD)
    [msg] = await inbox.wait(1)
    assert msg.text == "no mention needed"


async def test_edited_message_is_an_edit_delivery(fake: FakeDiscord, started) -> None:
    ch, inbox = await started()
    data = await fake.message_create(DM, "what is the capital of Frnace?")
    await fake.message_update(data, "what is the capital of France?")
    first, edit = await inbox.wait(2)
    assert edit.edit_of == first.message_id == data["id"]
    assert edit.message_id != first.message_id and edit.message_id.startswith(data["id"] + ":edit:")
    assert edit.text == "what is the capital of France?"


async def test_update_without_an_edit_is_ignored(fake: FakeDiscord, started) -> None:
    """MESSAGE_UPDATE also comes for an unfurled link (no edited_timestamp): not an edit."""
    ch, inbox = await started()
    data = await fake.message_create(DM, "see https://example.com")
    await inbox.wait(1)
    await fake.dispatch("MESSAGE_UPDATE", {**data, "embeds": []})
    await quiet(inbox, fake)
    assert len(inbox.messages) == 1


async def test_slash_commands_arrive_structured_and_are_deferred_at_once(fake: FakeDiscord, started) -> None:
    ch, inbox = await started(guild_id=GUILD)
    assert sorted(ch.synced) == ["ask", "model", "reset"]
    assert {c["name"] for c in fake.commands[GUILD]} == {"ask", "model", "reset"}  # guild-scoped sync
    await fake.interaction("model", {"alias": "fast"}, channel_id=CHANNEL, guild_id=GUILD)
    await fake.interaction("reset", channel_id=CHANNEL, guild_id=GUILD)
    await fake.interaction("ask", {"prompt": "/why is the sky blue"}, channel_id=CHANNEL, guild_id=GUILD)
    model, reset, ask = await inbox.wait(3)
    assert model.command == Command("model", "fast") and reset.command == Command("reset", "")
    assert ask.command == Command("ask", "/why is the sky blue") and ask.text == "/why is the sky blue"  # a question
    assert ask.chat_kind is ChatKind.COMMAND
    assert ch.capabilities(ask).latency_class == "sync"
    assert ask.conversation == f"discord:{CHANNEL}:user-4242"
    callbacks = fake.of("callback")
    assert [r.body["type"] for r in callbacks] == [5, 5, 5]  # deferred: "… is thinking"
    assert [bool((r.body.get("data") or {}).get("flags", 0) & 64) for r in callbacks] == [True, True, False]


async def test_model_autocomplete_offers_the_aliases(fake: FakeDiscord, started) -> None:
    ch, inbox = await started(aliases=["fast", "smart", "local"])
    await fake.interaction("model", {"alias": "sm"}, channel_id=DM, kind=4, focused="alias")
    await fake.wait_for(lambda f: f.of("callback"))
    body = fake.of("callback")[0].body
    assert body["type"] == 8
    assert [c["value"] for c in body["data"]["choices"]] == ["smart"]
    assert inbox.messages == []


async def test_global_commands_without_guild_id(fake: FakeDiscord, started) -> None:
    ch, inbox = await started()
    assert {c["name"] for c in fake.commands[None]} == {"ask", "model", "reset"}


async def test_intents_include_message_content(fake: FakeDiscord, started) -> None:
    await started()
    identify = next(f.payload for f in fake.frames if f.payload.get("op") == 2)
    intents = identify["d"]["intents"]
    assert intents & (1 << 15) and intents & (1 << 9) and intents & (1 << 12)  # content, guild msgs, DMs


async def test_sharded_client_identifies_its_shard(fake: FakeDiscord, started) -> None:
    ch, inbox = await started(shard_count=2, shard_ids=[1])
    identify = next(f.payload for f in fake.frames if f.payload.get("op") == 2)
    assert identify["d"]["shard"] == [1, 2]
    await fake.message_create(DM, "hi")  # DMs go to shard 0, which this process does not run
    await asyncio.sleep(0)
    assert ch.client is not None and ch.client.shard_count == 2


async def test_close_4014_is_a_clear_startup_error(fake: FakeDiscord) -> None:
    fake.close_on_identify = 4014
    ch = DiscordChannel(dc_config(fake))
    with pytest.raises(StartupError) as e:
        await ch.start(RecordingInbox())
    text = str(e.value)
    assert "Message Content Intent" in text and "Developer Portal" in text and "4014" in text
    assert "\n" not in text


async def test_bad_token_is_a_clear_config_error(fake: FakeDiscord) -> None:
    ch = DiscordChannel(dc_config(fake, token="wrong.token"))
    with pytest.raises(ConfigError) as e:
        await ch.start(RecordingInbox())
    assert str(e.value).startswith("channels.discord.token: Discord refused the bot token")
    assert "Reset Token" in str(e.value)


async def test_gateway_drop_is_resumed_and_messages_keep_coming(fake: FakeDiscord, started) -> None:
    ch, inbox = await started()
    await fake.message_create(DM, "before")
    await inbox.wait(1)
    await fake.close_sessions(4000)  # "unknown error": the client reconnects and RESUMEs
    await fake.wait_for(lambda f: any(fr.payload.get("op") == 6 for fr in f.frames), 10)
    resume = next(fr.payload for fr in fake.frames if fr.payload.get("op") == 6)
    assert resume["d"]["token"] == fake.token and resume["d"]["seq"] >= 2
    await fake.wait_for(lambda f: any(s.identified and not s.ws.closed for s in f.sessions[1:]), 5)
    await fake.message_create(DM, "after")
    second = (await inbox.wait(2))[1]
    assert second.text == "after"


async def test_intent_switched_off_while_running_is_logged_clearly(fake: FakeDiscord, started) -> None:
    import structlog

    ch, inbox = await started()
    with structlog.testing.capture_logs() as logs:
        await fake.close_sessions(4014)
        assert ch._task is not None
        await asyncio.wait_for(asyncio.gather(ch._task, return_exceptions=True), 5)
        await asyncio.sleep(0)
    [ended] = [e for e in logs if e["event"] == "discord.gateway_ended"]
    assert "Message Content Intent" in ended["error"] and "4014" in ended["error"]
