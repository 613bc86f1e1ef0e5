"""The Discord channel: gateway events in (discord.py), InboundMessages out, surfaces back.

discord.py holds the gateway (HELLO, heartbeats, IDENTIFY, RESUME, sharding), logs in, keeps the
guild / channel cache, parses events, defers interactions and syncs the slash commands. The reply
path (typing, send, edit) goes over the channel's own REST client (`surface.DiscordRest`), so that
exactly one layer — the core's ReplyStream — waits out a 429 and then sends the newest text.

What is answered: DMs; in guilds, messages that mention the bot or reply to it; in threads the
bot started or was mentioned in, every message; in `answer_channels`, every message. Messages
from bots (itself included) never. Slash commands `/ask`, `/model`, `/reset` are acknowledged at
once (a deferred response) and answered into that response.

Conversations: one per DM, one per thread, one per (channel, person) elsewhere.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, ClassVar

import discord
import structlog
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route
from pydantic import SecretStr

from bot.access import AccessPolicy
from bot.channel import Channel, Check, Inbox
from bot.commands import ASK
from bot.errors import ConfigError, PlatformError, StartupError
from bot.rendering import Renderer
from bot.types import (
    Capabilities,
    ChatKind,
    Command,
    InboundMessage,
    LatencyClass,
    Markup,
    RateBudget,
    Streaming,
    conversation_key,
)
from channels.discord.config import DEFAULT_API, DiscordConfig
from channels.discord.render import RENDERER
from channels.discord.surface import DiscordRest, DiscordSurface, ReplyTarget

log = structlog.get_logger("switchboard.discord")

MAX_CHARS = 2000
INTERACTION_TTL = 15 * 60.0  # an interaction token can be used this long
INTENT_FIX = (
    "turn it on in the Discord Developer Portal: your application → Bot → Privileged Gateway Intents → "
    '"Message Content Intent", save, then start again'
)
TOKEN_FIX = "copy it from the Discord Developer Portal: your application → Bot → Reset Token"
_ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)
_DEFAULT_GATEWAY = DiscordWebSocket.DEFAULT_GATEWAY


def intents() -> discord.Intents:
    """Guilds (the channel cache), guild and DM messages, and their content (privileged)."""
    i = discord.Intents.none()
    i.guilds = True
    i.guild_messages = True
    i.dm_messages = True
    i.message_content = True
    return i


class DiscordChannel(Channel):
    name: ClassVar[str] = "discord"
    renderer: ClassVar[Renderer] = RENDERER

    def __init__(self, cfg: DiscordConfig, *, aliases: list[str] | None = None) -> None:
        self.cfg = cfg
        self.aliases = sorted(set(aliases or []))  # /model's autocomplete
        self.rest = DiscordRest(cfg.base_url, cfg.token.get_secret_value(), timeout=cfg.request_timeout)
        self.client: discord.Client | None = None
        self.tree: app_commands.CommandTree[Any] | None = None
        self.me_id: int | None = None
        self._inbox: Inbox | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._threads: set[int] = set()  # threads the bot was mentioned in (it answers there)
        self._interactions: dict[str, tuple[float, ReplyTarget]] = {}  # message_id -> target
        self._pointed: tuple[str, yarl.URL] | None = None
        self._caps = _capabilities(cfg)
        self._policy = cfg.access_policy()
        # counters (also handy in tests)
        self.ignored = 0
        self.delivered = 0
        self.synced: list[str] = []

    # --- Channel -----------------------------------------------------------------------------

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._point()
        client = self.client = self._make_client()
        self.tree = self._make_tree(client)
        self._ready.clear()
        self._task = asyncio.create_task(client.start(self.cfg.token.get_secret_value()), name="discord-gateway")
        ready = asyncio.create_task(self._ready.wait())
        try:
            done, _ = await asyncio.wait(
                {self._task, ready}, timeout=self.cfg.connect_timeout, return_when="FIRST_COMPLETED"
            )
            if self._task in done:
                raise self._startup_error(self._task.exception())
            if ready not in done:
                raise PlatformError(
                    f"discord: no READY from the gateway within {self.cfg.connect_timeout:g}s "
                    f"({self.cfg.gateway_url or 'Discord'}); check the network / proxy, or channels.discord.gateway_url"
                )
        except BaseException:
            ready.cancel()
            self._inbox = None
            await self._close_connections()
            raise
        self._task.add_done_callback(self._gateway_ended)
        try:  # open the reply path's connection now, so the first answer does not pay for it
            await self.rest.call("GET", "/users/@me")
        except PlatformError as e:
            log.warning("discord.warm_failed", error=str(e))
        if self.cfg.sync_commands:
            await self._sync_commands()
        log.info("discord.started", bot=self.me_id, shards=self.cfg.shard_count, guilds=len(client.guilds))

    async def stop(self) -> None:
        # No new messages from here on. Replies still being written keep the REST session and the
        # gateway until the app calls aclose() once they have ended.
        self._inbox = None

    async def aclose(self) -> None:
        await self._close_connections()

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        return self._caps["command" if msg.chat_kind is ChatKind.COMMAND else "chat"]

    @classmethod
    def declared_capabilities(cls, chat_kind: ChatKind) -> Capabilities:
        caps = _capabilities(DiscordConfig.model_construct(token=SecretStr("")))
        return caps["command" if chat_kind is ChatKind.COMMAND else "chat"]

    def surface(self, msg: InboundMessage) -> DiscordSurface:
        found = self._interactions.get(msg.message_id)
        if found is not None:
            return DiscordSurface(self.rest, found[1])
        return DiscordSurface(self.rest, ReplyTarget(msg.thread_id or msg.chat_id, reply_to=msg.reply_to))

    def access_policy(self) -> AccessPolicy:
        return self.cfg.access_policy()

    async def doctor_checks(self, *, deep: bool = False) -> list[Check]:
        from channels.discord.doctor import checks, offline_checks  # imported when asked: doctor only

        return await checks(self.cfg) if deep else offline_checks(self.cfg)

    # --- start-up ----------------------------------------------------------------------------

    def _point(self) -> None:
        """Point discord.py at the configured REST base and gateway.

        discord.py keeps both as class attributes (`Route.BASE`, `DiscordWebSocket.DEFAULT_GATEWAY`),
        so this is process-wide: one Discord API per process. Restored at aclose().
        """
        base = self.cfg.base_url.rstrip("/")
        gateway = yarl.URL(self.cfg.gateway_url) if self.cfg.gateway_url else _DEFAULT_GATEWAY
        if base == DEFAULT_API and gateway == _DEFAULT_GATEWAY:
            return
        self._pointed = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = base
        DiscordWebSocket.DEFAULT_GATEWAY = gateway

    def _unpoint(self) -> None:
        if self._pointed is not None:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._pointed
            self._pointed = None

    def _make_client(self) -> discord.Client:
        opts: dict[str, Any] = {
            "intents": intents(),
            "max_messages": None,  # no message cache: edits arrive as raw events
            "chunk_guilds_at_startup": False,
            "guild_ready_timeout": self.cfg.guild_ready_timeout,
            "allowed_mentions": discord.AllowedMentions.none(),
        }
        client: discord.Client
        if self.cfg.shard_count is not None:
            if self.cfg.shard_ids is not None:
                opts["shard_ids"] = list(self.cfg.shard_ids)
            client = discord.AutoShardedClient(shard_count=self.cfg.shard_count, **opts)
        else:
            client = discord.Client(**opts)

        async def on_ready() -> None:
            self.me_id = client.user.id if client.user else None
            self._ready.set()

        async def on_message(message: discord.Message) -> None:
            await self.handle_message(message, time.perf_counter())

        async def on_raw_message_edit(payload: discord.RawMessageUpdateEvent) -> None:
            received = time.perf_counter()
            if not payload.data.get("edited_timestamp") or "content" not in payload.data:
                return  # an embed unfurled, a pin: not a person changing their words
            await self.handle_message(payload.message, received, edited=True)

        for handler in (on_ready, on_message, on_raw_message_edit):
            client.event(handler)
        return client

    def _make_tree(self, client: discord.Client) -> app_commands.CommandTree[Any]:
        tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)

        @tree.command(name="ask", description="Ask the model; the answer streams in")
        @app_commands.describe(prompt="your question")
        async def ask(interaction: discord.Interaction, prompt: str) -> None:
            await self.handle_command(interaction, "ask", prompt, time.perf_counter())

        @tree.command(name="model", description="Show or pick this conversation's model")
        @app_commands.describe(alias="a model alias, or 'default' for automatic choice")
        async def model(interaction: discord.Interaction, alias: str | None = None) -> None:
            await self.handle_command(interaction, "model", alias or "", time.perf_counter())

        @model.autocomplete("alias")
        async def model_alias(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            names = [*self.aliases, "default"]
            hits = [a for a in names if current.lower() in a.lower()][:25]
            return [app_commands.Choice(name=a, value=a) for a in hits]

        @tree.command(name="reset", description="Forget this conversation")
        async def reset(interaction: discord.Interaction) -> None:
            await self.handle_command(interaction, "reset", "", time.perf_counter())

        return tree

    async def _sync_commands(self) -> None:
        tree = self.tree
        assert tree is not None
        guild = discord.Object(self.cfg.guild_id) if self.cfg.guild_id is not None else None
        try:
            if guild is not None:
                tree.copy_global_to(guild=guild)
            synced = await tree.sync(guild=guild)
        except discord.Forbidden as e:
            log.error(
                "discord.commands_not_synced",
                error=str(e),
                fix="invite the bot with the applications.commands scope (see the README's invite URL)",
            )
            return
        except discord.HTTPException as e:
            log.error("discord.commands_not_synced", error=str(e))
            return
        self.synced = [c.name for c in synced]

    def _startup_error(self, exc: BaseException | None) -> BaseException:
        if isinstance(exc, discord.PrivilegedIntentsRequired):
            return StartupError(
                "discord: the bot's Message Content Intent is not enabled (gateway close 4014); " + INTENT_FIX
            )
        if isinstance(exc, discord.LoginFailure):
            return ConfigError(f"channels.discord.token: Discord refused the bot token (401); {TOKEN_FIX}")
        if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
            return ConfigError(f"channels.discord.token: the gateway refused the bot token (4004); {TOKEN_FIX}")
        if isinstance(exc, discord.ConnectionClosed) and exc.code in (4010, 4011):
            return ConfigError(
                f"channels.discord.shard_count: the gateway refused the sharding ({exc.code}: {exc.reason}); "
                "this bot needs more shards (or a valid shard_ids list)"
            )
        if isinstance(exc, discord.HTTPException):
            return PlatformError(f"discord: the API refused the login: {exc.status} {exc.text}")
        return PlatformError(
            f"discord: cannot reach Discord at {self.cfg.base_url} ({type(exc).__name__}: {exc}); "
            "check the network / proxy, or channels.discord.base_url"
        )

    def _gateway_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("discord.gateway_ended", error=str(self._startup_error(exc)))

    async def _close_connections(self) -> None:
        client, task = self.client, self._task
        self._task = None
        if client is not None:
            try:
                await client.close()
            except Exception as e:
                log.warning("discord.close_failed", error=str(e))
        if task is not None:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.rest.close()
        self._unpoint()

    # --- messages ----------------------------------------------------------------------------

    async def handle_message(self, message: discord.Message, received: float, *, edited: bool = False) -> None:
        inbound = self.to_inbound(message, received, edited=edited)
        inbox = self._inbox
        if inbound is None or inbox is None:
            return
        self.delivered += 1
        await inbox.submit(inbound)

    def to_inbound(
        self, message: discord.Message, received: float | None = None, *, edited: bool = False
    ) -> InboundMessage | None:
        """The InboundMessage for `message`, or None when it is not for us (counted as ignored).

        An edited message is a delivery of its own (its id carries the edit time) naming the
        message it changes (`edit_of`): the core answers it again only if it was the last one
        answered in the conversation, recently.
        """
        author = message.author
        if author.bot or message.type not in _ANSWERED_TYPES or not message.content.strip():
            self.ignored += 1
            return None
        me = self.me_id
        channel = message.channel
        guild_id = message.guild.id if message.guild is not None else getattr(channel, "guild_id", None)
        text = message.content
        mentioned = me is not None and (
            any(u.id == me for u in message.mentions) or f"<@{me}>" in text or f"<@!{me}>" in text
        )
        if mentioned and me is not None:
            text = re.sub(rf"\s*<@!?{me}>[,:]?", " ", text).strip() or message.content
        thread = channel if isinstance(channel, discord.Thread) else None
        parent_id = thread.parent_id if thread is not None else None
        if guild_id is None:
            kind = ChatKind.DM
            addressed = True
        else:
            kind = ChatKind.THREAD if thread is not None else ChatKind.GROUP
            addressed = (
                mentioned
                or self._replies_to_me(message)
                or channel.id in self.cfg.answer_channels
                or (parent_id is not None and parent_id in self.cfg.answer_channels)
                or (thread is not None and (thread.id in self._threads or thread.owner_id == me))
            )
        if not addressed:
            self.ignored += 1
            return None
        if thread is not None and mentioned:
            self._threads.add(thread.id)  # follow-ups in this thread need no mention
        if kind is ChatKind.DM:
            conversation = conversation_key(self.name, channel.id)
            chat_id, thread_id = str(channel.id), None
        elif thread is not None:
            conversation = conversation_key(self.name, parent_id, thread.id)
            chat_id, thread_id = str(parent_id), str(thread.id)
        else:
            conversation = conversation_key(self.name, channel.id, f"user-{author.id}")
            chat_id, thread_id = str(channel.id), None
        stamp = ""
        if edited:
            when = message.edited_at or message.created_at
            stamp = f":edit:{int(when.timestamp() * 1000)}"
        return InboundMessage(
            channel=self.name,
            conversation=conversation,
            sender_id=str(author.id),
            text=text,
            message_id=f"{message.id}{stamp}",
            edit_of=str(message.id) if edited else None,
            chat_kind=kind,
            sender_name=author.display_name,
            sender_handle=author.name,
            chat_id=chat_id,
            thread_id=thread_id,
            workspace_id=str(guild_id) if guild_id is not None else None,
            reply_to=str(message.id),
            received_mono=received if received is not None else time.perf_counter(),
        )

    def _replies_to_me(self, message: discord.Message) -> bool:
        ref = message.reference
        if ref is None or self.me_id is None:
            return False
        resolved = ref.resolved
        return isinstance(resolved, discord.Message) and resolved.author.id == self.me_id

    # --- slash commands ----------------------------------------------------------------------

    async def handle_command(self, interaction: discord.Interaction, name: str, args: str, received: float) -> None:
        """Acknowledge at once (a deferred response, "… is thinking"), then hand the command over.

        Every slash command reaches the core as a structured `Command`: `/ask prompt` as the
        core's question command (answered by a model, never read as a command even when the prompt
        starts with "/"), `/model` and `/reset` as what they are.
        """
        inbox = self._inbox
        if inbox is None:
            return
        ephemeral = name != ASK
        user = interaction.user
        channel_id = interaction.channel_id or 0
        channel = interaction.channel
        guild_id = interaction.guild_id
        if guild_id is None:
            conversation = conversation_key(self.name, channel_id)
            chat_id, thread_id = str(channel_id), None
        elif isinstance(channel, discord.Thread):
            conversation = conversation_key(self.name, channel.parent_id, channel.id)
            chat_id, thread_id = str(channel.parent_id), str(channel.id)
        else:
            conversation = conversation_key(self.name, channel_id, f"user-{user.id}")
            chat_id, thread_id = str(channel_id), None
        message_id = f"interaction:{interaction.id}"
        msg = InboundMessage(
            channel=self.name,
            conversation=conversation,
            sender_id=str(user.id),
            text=args if name == ASK else f"/{name} {args}".strip(),
            message_id=message_id,
            chat_kind=ChatKind.COMMAND,
            sender_name=user.display_name,
            sender_handle=user.name,
            chat_id=chat_id,
            thread_id=thread_id,
            workspace_id=str(guild_id) if guild_id is not None else None,
            command=Command(name, args),
            received_mono=received,
        )
        policy = self._policy
        try:
            if policy.restricted and not policy.allows(msg):
                # an interaction must be answered, and the core stays silent outside private
                # chats: the refusal is this acknowledgement, seen only by the person; the core
                # still gets the message to count and log the refusal
                await interaction.response.send_message(policy.refusal_text or "Not available here.", ephemeral=True)
            else:
                await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        except discord.HTTPException as e:
            log.warning("discord.defer_failed", command=name, error=str(e))  # older than 3 s: gone
            return
        self._remember(
            message_id,
            ReplyTarget(
                str(channel_id),
                app_id=str(interaction.application_id),
                token=interaction.token,
                ephemeral=ephemeral,
            ),
        )
        self.delivered += 1
        await inbox.submit(msg)

    def _remember(self, message_id: str, target: ReplyTarget) -> None:
        now = time.monotonic()
        expired = [k for k, (t, _) in self._interactions.items() if now - t > INTERACTION_TTL]
        for k in expired:
            del self._interactions[k]
        self._interactions[message_id] = (now, target)


def _capabilities(cfg: DiscordConfig) -> dict[str, Capabilities]:
    """Messages stream by edits, paced and within the channel's budget; `/ask` is `sync`."""
    budget = RateBudget(cfg.channel_messages, cfg.channel_seconds)
    chat = Capabilities(
        streaming=Streaming.EDIT,
        latency_class=LatencyClass.SEMI_SYNC,
        max_chars=MAX_CHARS,
        min_edit_interval=cfg.edit_interval,
        typing_refresh=cfg.typing_refresh,
        markup=Markup.MARKDOWN,
        chat_budget=budget,
        preview_marker=cfg.streaming_marker,
        renotify_after=cfg.notify_after,
        resend_deleted=False,  # deleting the answer is how a person stops it here
    )
    command = Capabilities(
        streaming=Streaming.EDIT,
        latency_class=LatencyClass.SYNC,
        max_chars=MAX_CHARS,
        min_edit_interval=cfg.edit_interval,
        typing_refresh=None,  # the deferred response shows "… is thinking" until the first text
        markup=Markup.MARKDOWN,
        chat_budget=budget,
        preview_marker=cfg.streaming_marker,
    )
    return {"chat": chat, "command": command}
