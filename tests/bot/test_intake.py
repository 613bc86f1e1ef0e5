"""The intake's access policy (bot/access.py), for ids of every platform's shape."""

from __future__ import annotations

from bot.access import AccessPolicy
from bot.types import ChatKind, InboundMessage


def msg(sender: str, handle: str | None = None, chat: str = "c1", workspace: str | None = None) -> InboundMessage:
    return InboundMessage(
        "x", "x:1", sender, "hi", "1", ChatKind.PRIVATE, sender_handle=handle, chat_id=chat, workspace_id=workspace
    )


def test_ids_of_every_shape_and_usernames_match() -> None:
    pol = AccessPolicy.build(users=[42, "U0ABC123", "@Carol", "dave"], chats=["C9"], workspaces=["T1"])
    assert pol.allows(msg("42")) and pol.allows(msg("U0ABC123"))  # a number, a Slack id
    assert pol.allows(msg("7", handle="carol")) and pol.allows(msg("8", handle="Dave"))  # usernames
    assert pol.allows(msg("9", chat="C9")) and pol.allows(msg("10", workspace="T1"))
    assert not pol.allows(msg("U0OTHER", handle="eve"))
    assert AccessPolicy.build().allows(msg("anyone"))
