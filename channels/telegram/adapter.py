"""The Telegram channel: updates in (long polling or webhook), InboundMessages out, surfaces back.

Built on python-telegram-bot's `Bot` (its HTTP client, types and errors) with our own small polling
loop instead of `Application`: an update goes from the HTTP response straight to the dispatcher's
`submit()` — no extra queue hop before the typing indicator — and start-up problems (bad token,
another poller, a refused webhook URL) surface as clear errors from `start()`.

What is answered: private chats always; groups and supergroups only when the bot is mentioned,
replied to, or sent a command (not one addressed to another bot). Forum topics are answered in their
topic. Who may reach a model (`allow_users` / `allow_chats`), repeated deliveries, the group message
budget and shutdown are the core's: this module declares them and translates, nothing more.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import random
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import structlog
from aiohttp import web
from pydantic import SecretStr
from telegram import Bot, Message, Update, User
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.access import AccessPolicy
from bot.channel import Channel, Check, Inbox
from bot.commands import parse_command
from bot.errors import ConfigError, PlatformError, RateLimited
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
from channels.telegram.api import FastCalls
from channels.telegram.config import TelegramConfig
from channels.telegram.render import RENDERER
from channels.telegram.surface import TelegramSurface, TgContext, translate
from channels.telegram.transport import AiohttpRequest, make_bot

log = structlog.get_logger("switchboard.telegram")

MAX_CHARS = 4096
ALLOWED_UPDATES = ["message", "edited_message"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_ANONYMOUS_ADMIN = 1087968824  # @GroupAnonymousBot: an admin writing as the group
_GROUP_TYPES = ("group", "supergroup")


class TelegramChannel(Channel):
    name: ClassVar[str] = "telegram"
    renderer: ClassVar[Renderer] = RENDERER

    def __init__(self, cfg: TelegramConfig, *, bot: Bot | None = None) -> None:
        self.cfg = cfg
        self.bot = bot or make_bot(cfg)
        request = self.bot.request
        self._fast = (
            FastCalls(request, self.bot.base_url) if cfg.fast_calls and isinstance(request, AiohttpRequest) else None
        )
        self.me: User | None = None  # the bot itself, after getMe
        self.webhook_secret = cfg.webhook_secret.get_secret_value() if cfg.webhook_secret else secrets.token_urlsafe(32)
        self._inbox: Inbox | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._offset = 0
        self._stopping = False
        self._background: set[asyncio.Task[Any]] = set()
        self._connected = False
        self._draft_ids = itertools.count(random.randint(1, 1 << 30))
        self._username = ""
        self._caps = _capabilities(cfg)
        # counters (also handy in tests)
        self.ignored = 0
        self.delivered = 0

    # --- Channel -----------------------------------------------------------------------------

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._stopping = False
        self._connected = True
        try:
            await self._connect()
            if self.cfg.mode == "webhook":
                await self._set_webhook()
            else:
                await self._start_polling()
        except BaseException:
            self._inbox = None
            await self._close_connections()  # the ones opened so far
            raise
        if self.cfg.warm_interval > 0:
            self._spawn(self._keep_warm(self.cfg.warm_interval))
        log.info("telegram.started", bot=self._username, mode=self.cfg.mode)

    async def stop(self) -> None:
        self._stopping = True
        task, self._poll_task = self._poll_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if self.me is not None:
                # confirm what we handled, so a restart does not get it again
                try:
                    await self.bot.get_updates(offset=self._offset, timeout=0, allowed_updates=ALLOWED_UPDATES)
                except TelegramError as e:
                    log.warning("telegram.confirm_offset_failed", error=str(e))
        for t in list(self._background):
            t.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._inbox = None
        # No new messages from here on. Replies still being written keep the connections until
        # the app calls aclose() once they have ended.

    async def aclose(self) -> None:
        """Close the Bot API connections (after the app has finished every reply)."""
        await self._close_connections()

    async def _close_connections(self) -> None:
        if not self._connected:
            return
        self._connected = False
        try:
            await self.bot.shutdown()
        except Exception as e:
            log.warning("telegram.shutdown_failed", error=str(e))

    @classmethod
    def declared_capabilities(cls, chat_kind: ChatKind) -> Capabilities:
        caps = _capabilities(TelegramConfig.model_construct(token=SecretStr("")))  # the defaults
        return caps["private" if chat_kind is ChatKind.PRIVATE else "group"]

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        return self._caps["private" if msg.chat_kind is ChatKind.PRIVATE else "group"]

    def surface(self, msg: InboundMessage) -> TelegramSurface:
        ctx = TgContext.of(msg)
        return TelegramSurface(
            self.bot,
            ctx,
            draft_id=next(self._draft_ids) % (1 << 31) or 1,
            quote=not ctx.private and self.cfg.quote_in_groups,
            link_previews=self.cfg.link_previews,
            fast=self._fast,
        )

    def access_policy(self) -> AccessPolicy:
        return self.cfg.access_policy()

    async def doctor_checks(self, *, deep: bool = False) -> list[Check]:
        from channels.telegram.doctor import checks  # imported when asked: doctor only

        return await checks(self.cfg)  # getMe and getWebhookInfo are quick reads: always

    def http_routes(self) -> list[web.AbstractRouteDef]:
        """The webhook endpoint for the shared aiohttp server (webhook mode only)."""
        if self.cfg.mode != "webhook":
            return []
        return [web.post(self.cfg.webhook_path, self._webhook)]

    # --- start-up ----------------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            await self.bot.initialize()  # getMe
        except InvalidToken:  # its message quotes the token: never shown
            raise ConfigError(
                "channels.telegram.token: Telegram refused the bot token (401/404); check the token from @BotFather"
            ) from None
        except (NetworkError, TelegramError) as e:
            raise PlatformError(
                f"telegram: cannot reach the Bot API at {self.cfg.base_url} ({e}); "
                "check the network / proxy, or channels.telegram.base_url"
            ) from None
        self.me = self.bot.bot
        self._username = (self.me.username or "").lower()

    async def _set_webhook(self) -> None:
        url = self.cfg.webhook_url or ""
        try:
            await self.bot.set_webhook(
                url,
                secret_token=self.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=self.cfg.drop_pending_updates,
            )
        except InvalidToken:
            raise ConfigError("channels.telegram.token: Telegram refused the bot token (401/404)") from None
        except TelegramError as e:
            raise ConfigError(f"channels.telegram.webhook_url: Telegram rejected {url!r}: {e.message}") from None

    async def _start_polling(self) -> None:
        try:
            await self.bot.delete_webhook(drop_pending_updates=self.cfg.drop_pending_updates)
            # A first, short poll. Telegram ends a held getUpdates with 409 when another one comes
            # in; another process polling this token re-polls at once, so holding ours for a second
            # makes that process show up here. An update arriving meanwhile ends the wait at once.
            first = await self.bot.get_updates(timeout=self.cfg.conflict_probe, allowed_updates=ALLOWED_UPDATES)
        except Conflict as e:
            raise PlatformError(
                "telegram: another process is already receiving updates for this bot token "
                f"(409 Conflict: {e.message}); stop it, or use one instance per token"
            ) from None
        except TelegramError as e:
            raise PlatformError(f"telegram: could not start polling: {e}") from None
        await self._process(first)
        self._poll_task = asyncio.create_task(self._poll_loop(), name="telegram-poll")

    async def _keep_warm(self, interval: float) -> None:
        """A cheap call now and then so the next reply does not pay TCP + TLS set-up again
        (servers close idle connections on their own schedule, whatever our keep-alive says)."""
        while not self._stopping:
            await asyncio.sleep(interval)
            try:
                await self.bot.get_me()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.debug("telegram.warm_failed", error=str(e))

    async def _poll_loop(self) -> None:
        backoff = 0.5
        while not self._stopping:
            try:
                updates = await self.bot.get_updates(
                    offset=self._offset or None,
                    timeout=self.cfg.poll_timeout,
                    allowed_updates=ALLOWED_UPDATES,
                )
            except asyncio.CancelledError:
                raise
            except TimedOut:
                continue  # a long poll that outlived the read timeout: just poll again
            except RetryAfter as e:
                wait = translate(e)
                await asyncio.sleep(wait.retry_after if isinstance(wait, RateLimited) else backoff)
                continue
            except Conflict as e:
                log.error(
                    "telegram.poll_conflict",
                    error=e.message,
                    hint="another process is polling this bot token (409); only one may",
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except InvalidToken:
                log.error("telegram.token_rejected", hint="the token was revoked? check it with @BotFather")
                await asyncio.sleep(30.0)
                continue
            except Exception as e:
                log.warning("telegram.poll_failed", error=str(e))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            await self._process(updates)
            if updates and self._inbox is not None:
                # Let the replies just handed over get going before building the next long poll:
                # otherwise that request's CPU sits in front of every one of them. An update that
                # arrives meanwhile waits at the Bot API and comes back with the next poll.
                await self._inbox.settle()

    async def _process(self, updates: Sequence[Update]) -> None:
        for u in updates:
            self._offset = max(self._offset, u.update_id + 1)
            try:
                await self.handle_update(u)
            except Exception:
                log.exception("telegram.update_failed", update_id=u.update_id)

    # --- webhook -----------------------------------------------------------------------------

    async def _webhook(self, request: web.Request) -> web.Response:
        got = request.headers.get(SECRET_HEADER)
        if got is None or not hmac.compare_digest(got.encode(), self.webhook_secret.encode()):
            log.warning("telegram.webhook_bad_secret", remote=request.remote, present=got is not None)
            return web.Response(status=401, text="unauthorized")
        if self._inbox is None or self.me is None:
            return web.Response(status=503, text="not ready")  # Telegram retries later
        try:
            data = await request.json()
            update = Update.de_json(data, self.bot)
        except Exception:
            return web.Response(status=400, text="bad update")
        if update is not None:
            try:
                await self.handle_update(update)
            except Exception:  # a well-formed JSON that is not a valid update (text: 5, [], {})
                log.warning("telegram.webhook_bad_update", update_id=getattr(update, "update_id", None))
                return web.Response(status=400, text="bad update")
        return web.Response(status=200)

    # --- updates -----------------------------------------------------------------------------

    async def handle_update(self, update: Update) -> None:
        """Filter one update and hand what should be answered to the inbox."""
        received = time.perf_counter()
        msg = update.message or update.edited_message
        if msg is None:
            return
        inbound = self.to_inbound(msg, received, edited=update.edited_message is not None)
        if inbound is None:
            return
        inbox = self._inbox
        if inbox is None:
            return
        self.delivered += 1
        await inbox.submit(inbound)

    def to_inbound(self, msg: Message, received: float | None = None, *, edited: bool = False) -> InboundMessage | None:
        """The InboundMessage for `msg`, or None when it is not for us (counted as ignored).

        An edited message is a delivery of its own (its id carries the edit time) that names the
        message it changes (`edit_of`): the core answers it again only if it was the last one
        answered in the conversation, recently.
        """
        text = msg.text if msg.text is not None else msg.caption
        user = msg.from_user
        chat = msg.chat
        if not isinstance(text, str) or user is None:  # no text, or not text at all (a malformed update)
            self.ignored += 1
            return None
        if user.is_bot and user.id != _ANONYMOUS_ADMIN:
            self.ignored += 1
            return None
        private = chat.type == "private"
        if not private and chat.type not in _GROUP_TYPES:
            self.ignored += 1
            return None
        command = parse_command(text)
        text, addressed = self._address(msg, text, private, command)
        if not addressed:
            self.ignored += 1
            return None
        topic = msg.message_thread_id if msg.is_topic_message else None
        if private:
            kind = ChatKind.PRIVATE
        elif topic is not None:
            kind = ChatKind.THREAD
        else:
            kind = ChatKind.GROUP
        return InboundMessage(
            channel=self.name,
            conversation=conversation_key(self.name, chat.id, topic),
            sender_id=str(user.id),
            text=text,
            message_id=f"{chat.id}:{msg.message_id}" + (f":edit:{_edit_stamp(msg)}" if edited else ""),
            edit_of=f"{chat.id}:{msg.message_id}" if edited else None,
            chat_kind=kind,
            sender_name=user.full_name or user.username,
            sender_handle=user.username,
            chat_id=str(chat.id),
            thread_id=None if topic is None else str(topic),
            reply_to=str(msg.message_id),
            command=command,
            received_mono=received if received is not None else time.perf_counter(),
        )

    def _address(self, msg: Message, text: str, private: bool, command: Command | None) -> tuple[str, bool]:
        """(normalised text, whether the message is for this bot)."""
        me = self._username
        if command is not None:
            if command.target is None:
                return text, True
            if command.target.lower() != me:
                return text, private  # a command for another bot: ours only in a private chat
            return text.replace(f"@{command.target}", "", 1), True  # "/cmd@Bot args" -> "/cmd args"
        if private:
            return text, True
        mentioned = False
        for ent, value in msg.parse_entities(["mention", "text_mention"]).items():
            if (ent.type == "mention" and value.lower() == f"@{me}") or (
                ent.type == "text_mention" and ent.user is not None and self.me and ent.user.id == self.me.id
            ):
                mentioned = True
        if not mentioned and me and re.search(rf"(?<![\w@])@{re.escape(me)}\b", text, re.IGNORECASE):
            mentioned = True
        if mentioned:
            stripped = re.sub(rf"[ \t]*(?<![\w@])@{re.escape(me)}\b[,:]?", "", text, flags=re.IGNORECASE).strip()
            return (stripped or text), True
        reply = msg.reply_to_message
        if reply is not None and self.me is not None:
            topic_root = msg.is_topic_message and reply.message_id == msg.message_thread_id
            if not topic_root and reply.from_user is not None and reply.from_user.id == self.me.id:
                return text, True
        return text, False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _capabilities(cfg: TelegramConfig) -> dict[str, Capabilities]:
    """Private chats stream drafts; groups edit, within the group's message budget."""
    group_budget = RateBudget(cfg.group_messages_per_minute, 60.0)

    def caps(mode: Streaming, budget: RateBudget | None) -> Capabilities:
        return Capabilities(
            streaming=mode,
            latency_class=LatencyClass.SEMI_SYNC,
            max_chars=MAX_CHARS,
            min_edit_interval=cfg.draft_interval if mode is Streaming.DRAFT else cfg.edit_interval,
            min_send_interval=cfg.edit_interval,  # new messages at about one a second per chat
            typing_refresh=cfg.typing_refresh,
            markup=Markup.TELEGRAM_HTML,
            # the very first delta goes out at once: a draft costs no message budget, and the first
            # message of an edited reply is one request whatever its length (waiting for a dozen
            # characters cost word-by-word providers two chunk intervals, ~40 ms, in groups)
            first_chunk_chars=1,
            chat_budget=budget,
        )

    return {
        "private": caps(Streaming(cfg.private_streaming), None),
        "group": caps(Streaming(cfg.group_streaming), group_budget),
    }


def _edit_stamp(msg: Message) -> int:
    """When the message was edited (unix seconds): two edits of one message are two deliveries."""
    when = msg.edit_date or msg.date
    return int(when.timestamp())
