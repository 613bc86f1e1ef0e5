"""The Telegram channel: updates in (long polling or webhook), InboundMessages out, surfaces back.

Built on python-telegram-bot's `Bot` (its HTTP client, types and errors) with our own small polling
loop instead of `Application`: an update goes from the HTTP response straight to the dispatcher's
`submit()` — no extra queue hop before the typing indicator — and start-up problems (bad token,
another poller, a refused webhook URL) surface as clear errors from `start()`.

What is answered: private chats always; groups and supergroups only when the bot is mentioned,
replied to, or sent a command (not one addressed to another bot). Forum topics are answered in their
topic. With `allow_users` / `allow_chats` set, nobody else reaches a model: one short refusal in a
private chat (at most every few minutes per chat), silence in groups. Repeated update_ids are dropped.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import random
import re
import secrets
import time
import weakref
from collections import OrderedDict
from typing import Any

import httpx
import structlog
from aiohttp import web
from aiolimiter import AsyncLimiter
from telegram import Bot, Message, Update, User
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest

from bot.errors import ConfigError, PlatformError
from bot.types import Capabilities, ChatKind, InboundMessage, LatencyClass, Markup, Streaming, conversation_key
from channels.base import Inbox
from channels.telegram.api import FastCalls
from channels.telegram.config import TelegramConfig
from channels.telegram.surface import TelegramSurface, TgContext, translate
from channels.telegram.transport import AiohttpRequest

log = structlog.get_logger("switchboard.telegram")

MAX_CHARS = 4096
ALLOWED_UPDATES = ["message"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
REFUSAL_EVERY = 600.0  # seconds between refusals to one private chat
_ANONYMOUS_ADMIN = 1087968824  # @GroupAnonymousBot: an admin writing as the group
_COMMAND = re.compile(r"^/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?(?=\s|$)")
_GROUP_TYPES = ("group", "supergroup")
_YIELDS_BEFORE_REPOLL = 4  # event-loop turns from submit() to the reply's first real wait


def make_bot(cfg: TelegramConfig) -> Bot:
    """A PTB Bot whose connections stay open for minutes (httpx drops idle ones after 5 s by default)."""
    if cfg.http_client == "aiohttp":
        def aio(pool: int) -> AiohttpRequest:
            return AiohttpRequest(
                connection_pool_size=pool,
                keepalive=cfg.keepalive_expiry,
                connect_timeout=cfg.connect_timeout,
                read_timeout=cfg.read_timeout,
                write_timeout=cfg.write_timeout,
                pool_timeout=cfg.pool_timeout,
            )

        return Bot(
            cfg.token.get_secret_value(),
            base_url=cfg.base_url,
            base_file_url=cfg.base_file_url,
            request=aio(cfg.connection_pool_size),
            get_updates_request=aio(2),  # the long poll never takes a slot from replies
            local_mode=cfg.local_mode,
        )
    limits = httpx.Limits(
        max_connections=cfg.connection_pool_size,
        max_keepalive_connections=cfg.connection_pool_size,
        keepalive_expiry=cfg.keepalive_expiry,
    )
    request = HTTPXRequest(
        connection_pool_size=cfg.connection_pool_size,
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        write_timeout=cfg.write_timeout,
        pool_timeout=cfg.pool_timeout,
        httpx_kwargs={"limits": limits},
    )
    # getUpdates gets its own connection so a held long poll never takes a slot from replies;
    # PTB adds the poll timeout to this read timeout by itself.
    updates_request = HTTPXRequest(
        connection_pool_size=2,
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        write_timeout=cfg.write_timeout,
        pool_timeout=cfg.pool_timeout,
        httpx_kwargs={"limits": httpx.Limits(max_connections=2, keepalive_expiry=cfg.keepalive_expiry)},
    )
    return Bot(
        cfg.token.get_secret_value(),
        base_url=cfg.base_url,
        base_file_url=cfg.base_file_url,
        request=request,
        get_updates_request=updates_request,
        local_mode=cfg.local_mode,
    )


class TelegramChannel:
    name = "telegram"

    def __init__(self, cfg: TelegramConfig, *, bot: Bot | None = None) -> None:
        self.cfg = cfg
        self.bot = bot or make_bot(cfg)
        request = self.bot.request
        self._fast = (
            FastCalls(request, self.bot.base_url) if cfg.fast_calls and isinstance(request, AiohttpRequest) else None
        )
        self.me: User | None = None
        self.webhook_secret = (
            cfg.webhook_secret.get_secret_value() if cfg.webhook_secret else secrets.token_urlsafe(32)
        )
        self._inbox: Inbox | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._offset = 0
        self._stopping = False
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._seen_max = 10_000
        self._limiters: dict[int, AsyncLimiter] = {}
        self._refused: dict[int, float] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._live_surfaces: weakref.WeakSet[TelegramSurface] = weakref.WeakSet()  # replies in progress
        self._closer: asyncio.Task[None] | None = None
        self._connected = False
        self._draft_ids = itertools.count(random.randint(1, 1 << 30))
        self._username = ""
        self._caps = self._build_caps()
        # counters (also handy in tests)
        self.duplicates = 0
        self.ignored = 0
        self.refused = 0
        self.delivered = 0

    # --- Channel -----------------------------------------------------------------------------

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._stopping = False
        if self._closer is not None:  # restarted before the last stop() finished closing
            self._closer.cancel()
            await asyncio.gather(self._closer, return_exceptions=True)
            self._closer = None
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
        # No new messages from here on. Replies still being written (the app cancels them after
        # stopping its channels, and they then post their closing notice) keep the connections:
        # those close once the last reply lets go of its surface, or at aclose().
        if self._live_surfaces:
            self._closer = asyncio.create_task(self._close_when_idle(), name="telegram-close")
        else:
            await self._close_connections()

    async def aclose(self) -> None:
        """Close the Bot API connections now (after the app has finished every reply)."""
        closer, self._closer = self._closer, None
        if closer is not None:
            closer.cancel()
            await asyncio.gather(closer, return_exceptions=True)
        await self._close_connections()

    async def _close_when_idle(self, grace: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        try:
            while self._live_surfaces and loop.time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await self._close_connections()

    async def _close_connections(self) -> None:
        if not self._connected:
            return
        self._connected = False
        try:
            await self.bot.shutdown()
        except Exception as e:  # noqa: BLE001 - closing is best effort
            log.warning("telegram.shutdown_failed", error=str(e))

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        ctx: TgContext = msg.platform
        return self._caps["private" if ctx is None or ctx.private else "group"]

    def surface(self, msg: InboundMessage) -> TelegramSurface:
        ctx: TgContext = msg.platform
        group = not ctx.private
        surface = TelegramSurface(
            self.bot,
            ctx,
            draft_id=next(self._draft_ids) % (1 << 31) or 1,
            quote=group and self.cfg.quote_in_groups,
            link_previews=self.cfg.link_previews,
            limiter=self._group_limiter(ctx.chat_id) if group else None,
            fast=self._fast,
        )
        self._live_surfaces.add(surface)
        return surface

    def http_routes(self) -> list[web.RouteDef]:
        """The webhook endpoint for the shared aiohttp server (webhook mode only)."""
        if self.cfg.mode != "webhook":
            return []
        return [web.post(self.cfg.webhook_path, self._webhook)]

    # --- start-up ----------------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            await self.bot.initialize()  # getMe
        except InvalidToken as e:
            raise ConfigError(
                f"channels.telegram.token: Telegram refused the bot token ({e.message}); "
                "check the token from @BotFather"
            ) from None
        except (NetworkError, TelegramError) as e:
            raise PlatformError(f"telegram: cannot reach the Bot API at {self.cfg.base_url}: {e}") from None
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
        except InvalidToken as e:
            raise ConfigError(f"channels.telegram.token: Telegram refused the bot token ({e.message})") from None
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
            except Exception as e:  # noqa: BLE001 - warming is best effort
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
                await asyncio.sleep(translate(e).retry_after)  # type: ignore[attr-defined]
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
            except InvalidToken as e:
                log.error("telegram.token_rejected", error=e.message)
                await asyncio.sleep(30.0)
                continue
            except Exception as e:  # noqa: BLE001 - the loop must survive network trouble
                log.warning("telegram.poll_failed", error=str(e))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            await self._process(updates)
            if updates:
                # Let the replies just handed over get going (lane -> reply -> typing call and
                # the responder up to its first real wait) before building the next long poll:
                # otherwise that request's CPU sits in front of every one of them. An update that
                # arrives meanwhile waits at the Bot API and comes back with the next poll.
                for _ in range(_YIELDS_BEFORE_REPOLL):
                    await asyncio.sleep(0)

    async def _process(self, updates: Any) -> None:
        for u in updates:
            self._offset = max(self._offset, u.update_id + 1)
            try:
                await self.handle_update(u)
            except Exception:  # noqa: BLE001 - one bad update must not stop the rest
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
        except Exception:  # noqa: BLE001
            return web.Response(status=400, text="bad update")
        if update is not None:
            await self.handle_update(update)
        return web.Response(status=200)

    # --- updates -----------------------------------------------------------------------------

    async def handle_update(self, update: Update) -> None:
        """Filter one update and hand what should be answered to the inbox."""
        received = time.perf_counter()
        if self._is_repeat(update.update_id):
            self.duplicates += 1
            return
        msg = update.message
        if msg is None:
            return
        inbound = self.to_inbound(msg, received)
        if inbound is None:
            return
        inbox = self._inbox
        if inbox is None:
            return
        self.delivered += 1
        await inbox.submit(inbound)

    def _is_repeat(self, update_id: int) -> bool:
        if update_id in self._seen:
            return True
        self._seen[update_id] = None
        if len(self._seen) > self._seen_max:
            self._seen.popitem(last=False)
        return False

    def to_inbound(self, msg: Message, received: float | None = None) -> InboundMessage | None:
        """The InboundMessage for `msg`, or None when it is not for us (counted as ignored / refused)."""
        text = msg.text if msg.text is not None else msg.caption
        user = msg.from_user
        chat = msg.chat
        if text is None or user is None:
            self.ignored += 1
            return None
        if user.is_bot and user.id != _ANONYMOUS_ADMIN:
            self.ignored += 1
            return None
        private = chat.type == "private"
        if not private and chat.type not in _GROUP_TYPES:
            self.ignored += 1
            return None
        text, addressed = self._address(msg, text, private)
        if not addressed:
            self.ignored += 1
            return None
        if not self._allowed(user, chat.id):
            self.refused += 1
            if private:
                self._refuse(chat.id)
            return None
        topic = msg.message_thread_id if msg.is_topic_message else None
        ctx = TgContext(chat.id, chat.type, msg.message_id, topic, user.id)
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
            message_id=f"{chat.id}:{msg.message_id}",
            chat_kind=kind,
            sender_name=user.full_name or user.username,
            received_at=received if received is not None else time.perf_counter(),
            platform=ctx,
        )

    def _address(self, msg: Message, text: str, private: bool) -> tuple[str, bool]:
        """(normalised text, whether the message is for this bot)."""
        me = self._username
        m = _COMMAND.match(text)
        if m is not None:
            target = m.group(2)
            if target is not None and target.lower() != me:
                return text, private  # a command for another bot: ours only in a private chat
            return f"/{m.group(1)}{text[m.end():]}", True  # "/cmd@Bot args" -> "/cmd args"
        if private:
            return text, True
        mentioned = False
        for ent, value in msg.parse_entities(["mention", "text_mention"]).items():
            if ent.type == "mention" and value.lower() == f"@{me}":
                mentioned = True
            elif ent.type == "text_mention" and ent.user is not None and self.me and ent.user.id == self.me.id:
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

    def _allowed(self, user: User, chat_id: int) -> bool:
        cfg = self.cfg
        if not cfg.restricted:
            return True
        if user.id in cfg.allowed_user_ids or chat_id in cfg.allow_chats:
            return True
        return bool(user.username) and user.username.lower() in cfg.allowed_usernames  # type: ignore[union-attr]

    def _refuse(self, chat_id: int) -> None:
        now = time.monotonic()
        if now - self._refused.get(chat_id, -REFUSAL_EVERY) < REFUSAL_EVERY:
            return
        self._refused[chat_id] = now
        if len(self._refused) > 10_000:
            self._refused = {k: v for k, v in self._refused.items() if now - v < REFUSAL_EVERY}
        self._spawn(self._send_refusal(chat_id))

    async def _send_refusal(self, chat_id: int) -> None:
        try:
            await self.bot.send_message(chat_id, self.cfg.refusal_text)
        except TelegramError as e:
            log.warning("telegram.refusal_failed", chat_id=chat_id, error=str(e))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- capabilities ------------------------------------------------------------------------

    def _build_caps(self) -> dict[str, Capabilities]:
        cfg = self.cfg
        private_mode = Streaming(cfg.private_streaming)
        group_mode = Streaming(cfg.group_streaming)

        def caps(mode: Streaming) -> Capabilities:
            return Capabilities(
                streaming=mode,
                latency_class=LatencyClass.SEMI_SYNC,
                max_chars=MAX_CHARS,
                min_edit_interval=cfg.draft_interval if mode is Streaming.DRAFT else cfg.edit_interval,
                min_send_interval=cfg.edit_interval,  # new messages at about one a second per chat
                typing_refresh=cfg.typing_refresh,
                markup=Markup.TELEGRAM_HTML,
            )

        return {"private": caps(private_mode), "group": caps(group_mode)}

    def _group_limiter(self, chat_id: int) -> AsyncLimiter:
        lim = self._limiters.get(chat_id)
        if lim is None:
            if len(self._limiters) > 10_000:
                self._limiters.clear()
            lim = self._limiters[chat_id] = AsyncLimiter(self.cfg.group_messages_per_minute, 60.0)
        return lim
