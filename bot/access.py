"""Who may reach a model: allow-lists of people, chats and workspaces, one policy for every platform.

An adapter declares its policy (usually from the `allow_*` keys of its config table, see
`AccessConfig`); the intake applies it to every message before the dispatcher sees it. A refused
person in a private chat gets one polite refusal per `refusal_every` seconds; in groups the bot
stays silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from bot.types import ChatKind, InboundMessage

DEFAULT_REFUSAL = "Sorry, this bot only answers people it has been set up for."
PRIVATE_KINDS = frozenset({ChatKind.PRIVATE, ChatKind.DM})


class AccessConfig(BaseModel):
    """The allow-list keys every channel table accepts (mixed into each channel's config model)."""

    allow_users: list[int | str] = Field(
        default_factory=list, description="user ids or @usernames; all allow_* empty: everyone"
    )
    allow_chats: list[int | str] = Field(default_factory=list, description="chat ids whose members are all answered")
    refusal_text: str = DEFAULT_REFUSAL
    refusal_every: float = Field(600.0, ge=0, description="seconds between refusals to one private chat")

    def access_policy(self) -> AccessPolicy:
        return AccessPolicy.build(
            users=self.allow_users,
            chats=self.allow_chats,
            workspaces=self.workspaces(),
            refusal_text=self.refusal_text,
            refusal_every=self.refusal_every,
        )

    def workspaces(self) -> list[str]:
        return []


class WorkspaceAccessConfig(AccessConfig):
    """AccessConfig for platforms with workspaces or guilds (Slack, Discord)."""

    allow_workspaces: list[str] = Field(
        default_factory=list, description="workspace / guild ids whose members are all answered"
    )

    def workspaces(self) -> list[str]:
        return list(self.allow_workspaces)


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Ids are compared as strings; usernames without '@', lower-case. All empty: open to everyone."""

    user_ids: frozenset[str] = frozenset()
    usernames: frozenset[str] = frozenset()
    chat_ids: frozenset[str] = frozenset()
    workspace_ids: frozenset[str] = frozenset()
    refusal_text: str = DEFAULT_REFUSAL
    refusal_every: float = 600.0

    @classmethod
    def build(
        cls,
        *,
        users: list[int | str] = [],  # noqa: B006 - read only
        chats: list[int | str] = [],  # noqa: B006 - read only
        workspaces: list[str] = [],  # noqa: B006 - read only
        refusal_text: str = DEFAULT_REFUSAL,
        refusal_every: float = 600.0,
    ) -> AccessPolicy:
        # "@name" is a username; a number is an id; any other word may be either (Slack ids such
        # as U0ABC123 are not numbers, Telegram usernames have no "@" in some configs): both
        ids = {str(u) for u in users if not (isinstance(u, str) and u.startswith("@"))}
        names = {u.lstrip("@").lower() for u in users if isinstance(u, str) and not u.lstrip("-").isdigit()}
        return cls(
            frozenset(ids),
            frozenset(names),
            frozenset(str(c) for c in chats),
            frozenset(workspaces),
            refusal_text,
            refusal_every,
        )

    @property
    def restricted(self) -> bool:
        return bool(self.user_ids or self.usernames or self.chat_ids or self.workspace_ids)

    def allows(self, msg: InboundMessage) -> bool:
        if not self.restricted:
            return True
        if msg.sender_id in self.user_ids or msg.chat_id in self.chat_ids:
            return True
        if msg.workspace_id is not None and msg.workspace_id in self.workspace_ids:
            return True
        handle = msg.sender_handle
        return handle is not None and handle.lstrip("@").lower() in self.usernames

    @staticmethod
    def answers_refusal(msg: InboundMessage) -> bool:
        """Refusals go to private chats only; in a group the bot stays silent."""
        return msg.chat_kind in PRIVATE_KINDS
