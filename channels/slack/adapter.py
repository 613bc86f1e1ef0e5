"""The Slack channel: events in (slack-bolt's AsyncApp over Socket Mode, or the HTTP Events API on
the shared server), InboundMessages out, surfaces back.

slack-bolt acknowledges every envelope / HTTP event before its listener runs (so within Slack's
3 s, before any model is called), verifies the signing secret and the 5-minute timestamp window in
HTTP mode, answers `url_verification`, and drops the bot's own events. The reply path goes over
the channel's own AsyncWebClient with slack_sdk's retries off (`surface.SlackApi`), so a 429 is
waited out in exactly one place: the core's ReplyStream.

What is answered: every DM (`message.im`); in channels, a message mentioning the bot
(`app_mention`, or the `message` event carrying the mention), answered in a thread under it; then
every message in that thread, without a mention; assistant threads (the side panel: suggested
prompts when one starts, the thread titled after its first question). Messages from bots, itself
included, never. A retried event (same message) reaches the core with the same message id, so its
one duplicate check drops it. An edited question (`message_changed`) is a delivery of its own
naming the message it changes (`edit_of`).

Conversations: one per thread; a DM's top level is one conversation (each answer is still a thread
reply under its question: Slack streams only into threads).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import structlog
from aiohttp import web
from pydantic import SecretStr
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.middleware.authorization.async_single_team_authorization import AsyncSingleTeamAuthorization
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.access import AccessPolicy
from bot.channel import Channel, Check, Inbox
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
from channels.slack.config import SlackConfig
from channels.slack.render import RENDERER
from channels.slack.surface import ChannelPace, ReplyTarget, SlackApi, SlackSurface, SurfaceSettings

if TYPE_CHECKING:
    from aiohttp.web import AbstractRouteDef

log = structlog.get_logger("switchboard.slack")

MAX_CHARS = 12_000  # per stream call; a part is never longer, so every call fits
TITLE_CHARS = 60
REQUIRED_SCOPES = ("app_mentions:read", "chat:write", "im:history", "channels:history")
SCOPE_USES = {
    "app_mentions:read": "mentions in channels",
    "chat:write": "sending answers",
    "im:history": "reading DMs",
    "channels:history": "follow-ups in threads",
    "reactions:write": "the eyes reaction while thinking",
    "assistant:write": "the assistant panel's status, prompts and titles",
    "commands": "the slash command",
}
BOT_TOKEN_FIX = "copy the Bot User OAuth Token (xoxb-…) from your app's OAuth & Permissions page"
APP_TOKEN_FIX = "create one under Basic Information → App-Level Tokens with the connections:write scope (xapp-…)"
SOCKET_FIX = 'turn on Settings → Socket Mode for the app, or set mode = "http" with signing_secret'
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_ANSWERED_SUBTYPES = (None, "thread_broadcast", "file_share", "me_message")


class SlackChannel(Channel):
    name: ClassVar[str] = "slack"
    renderer: ClassVar[Renderer] = RENDERER

    def __init__(self, cfg: SlackConfig) -> None:
        self.cfg = cfg
        self.client: AsyncWebClient | None = None
        self.api: SlackApi | None = None
        self.bolt: AsyncApp | None = None
        self.handler: AsyncSocketModeHandler | None = None
        self.me: str | None = None  # the bot's user id, learned at start
        self.bot_id: str | None = None
        self.team_id: str | None = None
        self.scopes: frozenset[str] | None = None
        self._auth_result: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._inbox: Inbox | None = None
        self._threads: set[tuple[str, str]] = set()  # (channel, thread_ts) the bot answers in
        self._assistant: dict[tuple[str, str], dict[str, Any]] = {}  # assistant threads -> context
        self._titled: set[tuple[str, str]] = set()
        self._paces: dict[str, ChannelPace] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._indicating: set[SlackSurface] = set()  # surfaces whose status / reaction is on
        self._settings = SurfaceSettings(cfg.status_text, cfg.reaction, cfg.edit_interval)
        self._caps = _capabilities(cfg)
        self._policy = access_policy(cfg)
        # counters (also handy in tests)
        self.ignored = 0
        self.delivered = 0

    # --- Channel -----------------------------------------------------------------------------

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        try:
            client = self._client()
            await self._auth(client)
            self.bolt = self._make_app(client)
            if self.cfg.mode == "socket":
                await self._connect_socket(client)
        except BaseException:
            self._inbox = None
            await self._close_connections()
            raise
        log.info("slack.started", bot=self.me, team=self.team_id, mode=self.cfg.mode)

    async def stop(self) -> None:
        self._inbox = None  # no new messages; replies in flight keep the Web API until aclose()

    async def aclose(self) -> None:
        # a reply that ended without any text (cut at shutdown before the first token) never told
        # its surface: take its status / reaction off before the connections close
        for surface in list(self._indicating):
            surface.end()
        await self._close_connections()

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        if msg.chat_kind is ChatKind.COMMAND:
            return self._caps["command"]
        return self._caps["dm" if msg.chat_kind is ChatKind.DM else "thread"]

    @classmethod
    def declared_capabilities(cls, chat_kind: ChatKind) -> Capabilities:
        caps = _capabilities(SlackConfig.model_construct(bot_token=SecretStr("")))
        if chat_kind is ChatKind.COMMAND:
            return caps["command"]
        return caps["dm" if chat_kind in (ChatKind.DM, ChatKind.PRIVATE) else "thread"]

    def surface(self, msg: InboundMessage) -> SlackSurface:
        api = self.api
        if api is None:
            raise PlatformError("slack: the channel is not started")
        response_url = msg.reply_to if msg.chat_kind is ChatKind.COMMAND else None
        target = ReplyTarget(
            channel=msg.chat_id,
            thread_ts=msg.thread_id or msg.reply_to or "",
            question_ts=None if response_url else msg.reply_to,
            team_id=msg.workspace_id,
            user_id=msg.sender_id,
            assistant=(msg.chat_id, msg.thread_id or "") in self._assistant,
            response_url=response_url,
        )
        return SlackSurface(
            api,
            target,
            settings=self._settings,
            pace=self._pace(msg.chat_id),
            spawn=self._spawn,
            http=self._http,
            indicating=self._indicating,
        )

    def access_policy(self) -> AccessPolicy:
        return self._policy

    def http_routes(self) -> list[AbstractRouteDef]:
        if self.cfg.mode != "http":
            return []
        return [web.post(self.cfg.events_path, self._http_event)]

    async def doctor_checks(self, *, deep: bool = False) -> list[Check]:
        from channels.slack.doctor import checks, offline_checks  # imported when asked: doctor only

        return await checks(self.cfg) if deep else offline_checks(self.cfg)

    # --- start-up ----------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=300),
                timeout=aiohttp.ClientTimeout(total=self.cfg.request_timeout),
            )
        return self._session

    def _client(self) -> AsyncWebClient:
        client = self.client = AsyncWebClient(
            token=self.cfg.bot_token.get_secret_value(),
            base_url=self.cfg.api_base,
            timeout=int(self.cfg.request_timeout),
            session=self._http(),
            retry_handlers=[],  # a 429 is waited out once, by the core; nothing is sent twice
        )
        self.api = SlackApi(client)
        return client

    async def _auth(self, client: AsyncWebClient) -> None:
        """auth.test at start: the bot's own ids (so the first event does not wait for them) and
        its scopes, each missing one named."""
        try:
            resp = await client.auth_test()
        except SlackApiError as e:
            raise token_error(e) from None
        except (aiohttp.ClientError, TimeoutError) as e:
            raise PlatformError(
                f"slack: cannot reach Slack at {self.cfg.base_url} ({type(e).__name__}: {e}); "
                "check the network / proxy, or channels.slack.base_url"
            ) from None
        self.me, self.bot_id, self.team_id = str(resp["user_id"]), resp.get("bot_id"), resp.get("team_id")
        self._auth_result = resp
        scopes = scopes_of(resp.headers)
        self.scopes = scopes
        if scopes is not None:
            missing = missing_scopes(scopes, self.cfg)
            if missing:
                raise StartupError("\n".join(scope_problem(s) for s in missing))

    def _make_app(self, client: AsyncWebClient) -> AsyncApp:
        secret = self.cfg.signing_secret.get_secret_value() if self.cfg.signing_secret is not None else None
        app = AsyncApp(
            client=client,
            signing_secret=secret,
            request_verification_enabled=self.cfg.mode == "http",
            ssl_check_enabled=False,
            process_before_response=False,  # ack first, then the listener
            name="switchboard",
        )
        for mw in app._async_middleware_list:  # bolt would call auth.test on the first event: done
            if isinstance(mw, AsyncSingleTeamAuthorization):
                mw.auth_test_result = self._auth_result

        async def on_event(body: dict[str, Any], event: dict[str, Any]) -> None:
            await self.handle_event(event, body, time.perf_counter())

        for name in ("message", "app_mention", "assistant_thread_started", "assistant_thread_context_changed"):
            app.event(name)(on_event)

        async def on_command(ack: Any, command: dict[str, Any]) -> None:
            received = time.perf_counter()
            await ack()
            await self.handle_command(command, received)

        app.command(self.cfg.slash_command)(on_command)
        return app

    async def _connect_socket(self, client: AsyncWebClient) -> None:
        assert self.cfg.app_token is not None and self.bolt is not None
        app_token = self.cfg.app_token.get_secret_value()
        try:  # checked here, with a clear error: slack_sdk would log and retry forever
            opened = await client.apps_connections_open(app_token=app_token)
        except SlackApiError as e:
            error = str(e.response.get("error", ""))
            if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
                raise ConfigError(
                    f"channels.slack.app_token: Slack refused the app-level token ({error}); {APP_TOKEN_FIX}"
                ) from None
            if error == "not_allowed_token_type":
                raise ConfigError(
                    f"channels.slack.app_token: not an app-level token (not_allowed_token_type); {APP_TOKEN_FIX}"
                ) from None
            raise StartupError(f"slack: Socket Mode could not be opened ({error}); {SOCKET_FIX}") from None
        handler = self.handler = AsyncSocketModeHandler(self.bolt, app_token, web_client=client)
        handler.client.wss_uri = str(opened["url"])  # the URL just issued: no second apps.connections.open
        await handler.connect_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated

    async def _close_connections(self) -> None:
        handler, self.handler = self.handler, None
        if handler is not None:
            try:
                await handler.close_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
            except Exception as e:
                log.warning("slack.close_failed", error=str(e))
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(self._quietly(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _quietly(coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except Exception as e:  # a nicety (status, reaction, title): logged, never fatal
            log.warning("slack.background_failed", error=f"{type(e).__name__}: {e}")

    def _pace(self, channel: str) -> ChannelPace:
        pace = self._paces.get(channel)
        if pace is None:
            pace = self._paces[channel] = ChannelPace(self.cfg.channel_messages, self.cfg.channel_seconds)
        return pace

    # --- HTTP events -------------------------------------------------------------------------

    async def _http_event(self, request: web.Request) -> web.Response:
        app = self.bolt
        if app is None or self._inbox is None:
            return web.Response(status=503, text="not started")
        bolt_req = await to_bolt_request(request)
        resp = await app.async_dispatch(bolt_req)
        return await to_aiohttp_response(resp)

    # --- events ------------------------------------------------------------------------------

    async def handle_event(self, event: dict[str, Any], body: dict[str, Any], received: float) -> None:
        etype = event.get("type")
        if etype == "assistant_thread_started":
            await self._assistant_started(event)
            return
        if etype == "assistant_thread_context_changed":
            thread = event.get("assistant_thread") or {}
            key = (str(thread.get("channel_id")), str(thread.get("thread_ts")))
            self._assistant[key] = dict(thread.get("context") or {})
            return
        inbound = self.to_inbound(event, received, team=body.get("team_id"))
        inbox = self._inbox
        if inbound is None or inbox is None:
            return
        self.delivered += 1
        key = (inbound.chat_id, inbound.thread_id or "")
        if key in self._assistant and key not in self._titled and inbound.edit_of is None and self.api is not None:
            self._titled.add(key)
            self._spawn(self._set_title(key, inbound.text))
        await inbox.submit(inbound)

    def to_inbound(
        self, event: dict[str, Any], received: float | None = None, *, team: str | None = None
    ) -> InboundMessage | None:
        """The InboundMessage for one `message` / `app_mention` event, or None when it is not for
        us (counted as ignored)."""
        subtype = event.get("subtype")
        edited = subtype == "message_changed"
        inner: dict[str, Any] = event.get("message") or {} if edited else event
        channel = str(event.get("channel") or "")
        user = inner.get("user")
        text = str(inner.get("text") or "")
        if (
            (not edited and subtype not in _ANSWERED_SUBTYPES)
            or inner.get("bot_id")
            or inner.get("subtype") == "bot_message"
            or not user
            or user == self.me
            or not text.strip()
            or not channel
        ):
            self.ignored += 1
            return None
        if edited and (inner.get("text") == (event.get("previous_message") or {}).get("text")):
            self.ignored += 1  # an unfurl or a reaction changed it, not its words
            return None
        ts = str(inner.get("ts"))
        thread_ts = inner.get("thread_ts")
        channel_type = event.get("channel_type") or ("im" if channel.startswith("D") else "channel")
        me = self.me
        mentioned = event.get("type") == "app_mention" or (me is not None and f"<@{me}" in text)
        if me is not None:
            text = re.sub(rf"\s*<@{me}(?:\|[^>]*)?>[,:]?", " ", text).strip() or text
        team_id = str(inner.get("user_team") or inner.get("team") or event.get("team") or team or self.team_id or "")
        if channel_type == "im":
            kind = ChatKind.DM
            root = str(thread_ts) if thread_ts else ts
            conversation = (
                conversation_key(self.name, channel, thread_ts) if thread_ts else conversation_key(self.name, channel)
            )
            thread_id = str(thread_ts) if thread_ts else None
        else:
            root = str(thread_ts) if thread_ts else ts
            if not mentioned and (channel, root) not in self._threads:
                self.ignored += 1
                return None
            self._threads.add((channel, root))  # follow-ups in this thread need no mention
            kind = ChatKind.THREAD
            conversation = conversation_key(self.name, channel, root)
            thread_id = root
        message_id = f"{channel}:{ts}"
        edit_of = None
        if edited:
            edit_of = message_id
            message_id = f"{message_id}:edit:{(inner.get('edited') or {}).get('ts') or event.get('event_ts')}"
        return InboundMessage(
            channel=self.name,
            conversation=conversation,
            sender_id=str(user),
            text=text,
            message_id=message_id,
            edit_of=edit_of,
            chat_kind=kind,
            chat_id=channel,
            thread_id=thread_id if thread_id is not None else root if kind is ChatKind.THREAD else None,
            workspace_id=team_id or None,
            reply_to=ts,
            received_mono=received if received is not None else time.perf_counter(),
        )

    def assistant_context(self, channel: str, thread_ts: str) -> dict[str, Any]:
        """What the person was looking at when they used the assistant panel (channel_id, team_id)."""
        return dict(self._assistant.get((channel, thread_ts)) or {})

    async def _assistant_started(self, event: dict[str, Any]) -> None:
        thread = event.get("assistant_thread") or {}
        channel, thread_ts = str(thread.get("channel_id") or ""), str(thread.get("thread_ts") or "")
        if not channel or not thread_ts or self.api is None:
            return
        self._assistant[(channel, thread_ts)] = dict(thread.get("context") or {})
        prompts = [{"title": p[:75], "message": p} for p in self.cfg.suggested_prompts[:4]]
        if prompts:
            try:
                await self.api.call(
                    "assistant.threads.setSuggestedPrompts", channel_id=channel, thread_ts=thread_ts, prompts=prompts
                )
            except PlatformError as e:
                log.warning("slack.prompts_failed", error=str(e))

    async def _set_title(self, key: tuple[str, str], question: str) -> None:
        assert self.api is not None
        title = " ".join(question.split())
        if len(title) > TITLE_CHARS:
            title = title[: TITLE_CHARS - 1].rstrip() + "…"
        await self.api.call("assistant.threads.setTitle", channel_id=key[0], thread_ts=key[1], title=title)

    # --- slash command -----------------------------------------------------------------------

    async def handle_command(self, command: dict[str, Any], received: float) -> None:
        """`/switchboard model [alias]`, `/switchboard reset`, `/switchboard status`: acknowledged
        already; handed to the core as the structured command, answered through the
        response_url (only the person sees it)."""
        inbox = self._inbox
        if inbox is None:
            return
        words = str(command.get("text") or "").split(maxsplit=1)
        name = words[0].lower().lstrip("/") if words else "help"
        args = words[1] if len(words) > 1 else ""
        channel = str(command.get("channel_id") or "")
        user = str(command.get("user_id") or "")
        conversation = (
            conversation_key(self.name, channel)
            if channel.startswith("D")
            else conversation_key(self.name, channel, f"user-{user}")
        )
        msg = InboundMessage(
            channel=self.name,
            conversation=conversation,
            sender_id=user,
            text=f"/{name} {args}".strip(),
            message_id=f"command:{command.get('trigger_id') or time.time_ns()}",
            chat_kind=ChatKind.COMMAND,
            sender_handle=command.get("user_name"),
            chat_id=channel,
            workspace_id=str(command.get("team_id") or self.team_id or "") or None,
            reply_to=str(command.get("response_url") or ""),
            command=Command(name, args),
            received_mono=received,
        )
        self.delivered += 1
        await inbox.submit(msg)


def access_policy(cfg: SlackConfig) -> AccessPolicy:
    """The core's policy from the allow-lists, with Slack's user ids (U0123ABC: letters and digits)
    as ids: `AccessPolicy.build` would read any id that is not all digits as a username."""
    return AccessPolicy(
        user_ids=frozenset(str(u).lstrip("@") for u in cfg.allow_users),
        chat_ids=frozenset(str(c) for c in cfg.allow_chats),
        workspace_ids=frozenset(cfg.workspaces()),
        refusal_text=cfg.refusal_text,
        refusal_every=cfg.refusal_every,
    )


# --- start-up errors ---------------------------------------------------------------------------


def token_error(e: SlackApiError) -> BaseException:
    error = str(e.response.get("error", "")) if isinstance(e.response.data, dict) else ""
    if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"):
        return ConfigError(f"channels.slack.bot_token: Slack refused the bot token ({error}); {BOT_TOKEN_FIX}")
    if error == "not_allowed_token_type":
        return ConfigError(
            f"channels.slack.bot_token: not a bot token (not_allowed_token_type; an xapp- token belongs in "
            f"app_token); {BOT_TOKEN_FIX}"
        )
    return PlatformError(f"slack: auth.test failed ({error or e.response.status_code})")


def scopes_of(headers: Any) -> frozenset[str] | None:
    """The granted scopes from auth.test's X-OAuth-Scopes header (None when it is not there)."""
    for k, v in dict(headers or {}).items():
        if str(k).lower() == "x-oauth-scopes":
            raw = v[0] if isinstance(v, list) else v
            return frozenset(s.strip() for s in str(raw).split(",") if s.strip())
    return None


def missing_scopes(granted: frozenset[str], cfg: SlackConfig) -> list[str]:
    needed = list(REQUIRED_SCOPES)
    if cfg.reaction:
        needed.append("reactions:write")
    return [s for s in needed if s not in granted]


def scope_problem(scope: str) -> str:
    return (
        f"slack: the bot token lacks the {scope} scope (needed for {SCOPE_USES.get(scope, 'the bot')}); add it under "
        "OAuth & Permissions → Bot Token Scopes and reinstall the app"
    )


def _capabilities(cfg: SlackConfig) -> dict[str, Capabilities]:
    """Native streams in threads, paced by stream_interval; parts (finished streams, the fallback's
    messages) at the channel's pace; DMs and assistant threads semi_sync, channel threads async."""
    budget = RateBudget(cfg.channel_messages, cfg.channel_seconds)
    common: dict[str, Any] = {
        "streaming": Streaming.NATIVE,
        "max_chars": MAX_CHARS,
        "min_edit_interval": cfg.stream_interval,
        "min_send_interval": cfg.edit_interval,
        "typing_refresh": cfg.status_refresh,
        "markup": Markup.SLACK_MRKDWN,
        "chat_budget": budget,
    }
    return {
        "dm": Capabilities(latency_class=LatencyClass.SEMI_SYNC, **common),
        "thread": Capabilities(latency_class=LatencyClass.ASYNC, **common),
        "command": Capabilities(
            streaming=Streaming.NONE,
            latency_class=LatencyClass.SYNC,
            max_chars=MAX_CHARS,
            markup=Markup.SLACK_MRKDWN,
        ),
    }
