"""The adapter's reading of events (to_inbound): who is answered, where, in which conversation."""

from __future__ import annotations

from typing import Any

from bot.types import ChatKind
from channels.slack import SlackChannel
from tests.fakes.slack_server import FakeSlack

from .conftest import sl_config


def channel(fake: FakeSlack) -> SlackChannel:
    ch = SlackChannel(sl_config(fake))
    ch.me, ch.team_id = fake.bot_user_id, fake.team_id
    return ch


def ev(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1", "ts": "5.1"}
    base.update(kw)
    return base


def test_dm_top_level_is_one_conversation_answered_in_a_thread(fake: FakeSlack) -> None:
    ch = channel(fake)
    msg = ch.to_inbound(ev(channel="D1", channel_type="im", text="hi"))
    assert msg is not None and msg.chat_kind is ChatKind.DM
    assert msg.conversation == "slack:D1" and msg.thread_id is None and msg.reply_to == "5.1"
    threaded = ch.to_inbound(ev(channel="D1", channel_type="im", text="hi", ts="6.1", thread_ts="5.1"))
    assert threaded is not None and threaded.conversation == "slack:D1:5.1" and threaded.thread_id == "5.1"


def test_mention_starts_a_thread_and_follow_ups_need_none(fake: FakeSlack) -> None:
    ch = channel(fake)
    assert ch.to_inbound(ev(text="just chatting")) is None
    m = ch.to_inbound(ev(text=f"<@{fake.bot_user_id}>: what is 2+2?"))
    assert m is not None and m.text == "what is 2+2?" and m.chat_kind is ChatKind.THREAD
    assert m.conversation == "slack:C1:5.1" and m.thread_id == "5.1" and m.workspace_id == fake.team_id
    follow = ch.to_inbound(ev(text="and 3+3?", ts="7.1", thread_ts="5.1"))
    assert follow is not None and follow.conversation == m.conversation
    assert ch.to_inbound(ev(text="other thread", ts="8.1", thread_ts="6.0")) is None
    assert m.message_id == "C1:5.1"  # the same id for the message event and the app_mention event


def test_bots_system_messages_and_empty_text_are_ignored(fake: FakeSlack) -> None:
    ch = channel(fake)
    me = f"<@{fake.bot_user_id}> hi"
    assert ch.to_inbound(ev(text=me, bot_id="B2", subtype="bot_message")) is None
    assert ch.to_inbound(ev(text=me, user=fake.bot_user_id)) is None
    assert ch.to_inbound(ev(text=me, subtype="channel_join")) is None
    assert ch.to_inbound(ev(text="   ", channel_type="im", channel="D1")) is None
    assert ch.to_inbound(ev(text=me, subtype="thread_broadcast")) is not None
    assert ch.ignored == 4


def test_edits_name_the_message_they_change(fake: FakeSlack) -> None:
    ch = channel(fake)
    inner = {"type": "message", "user": "U1", "text": "fixed", "ts": "5.1", "edited": {"user": "U1", "ts": "9.9"}}
    edit = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "D1",
        "channel_type": "im",
        "message": inner,
        "previous_message": {"text": "fxied", "ts": "5.1"},
    }
    m = ch.to_inbound(edit)
    assert m is not None and m.edit_of == "D1:5.1" and m.message_id == "D1:5.1:edit:9.9" and m.text == "fixed"
    unfurl = {**edit, "previous_message": {"text": "fixed", "ts": "5.1"}}
    assert ch.to_inbound(unfurl) is None  # the words did not change (a link unfurled)


def test_allow_lists_take_slack_ids(fake: FakeSlack) -> None:
    ch = SlackChannel(sl_config(fake, allow_users=["U0ABC"], allow_workspaces=["T9"]))
    policy = ch.access_policy()
    ok = channel(fake).to_inbound(ev(channel="D1", channel_type="im", text="hi", user="U0ABC"))
    other = channel(fake).to_inbound(ev(channel="D1", channel_type="im", text="hi", user="U0XYZ"))
    assert ok is not None and other is not None
    assert policy.allows(ok) and not policy.allows(other)
