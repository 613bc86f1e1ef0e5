"""A fake Discord on 127.0.0.1: the REST API under /api/v10 and the gateway (WebSocket), recording
every request and every frame with `time.monotonic()` timestamps.

Point discord.py at it with the channel's `base_url` / `gateway_url` (or, for a bare discord.py
client, `discord.http.Route.BASE = fake.api_base` and
`discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)`).

REST: login (`GET /users/@me`, `GET /oauth2/applications/@me`), `GET /gateway[/bot]`, messages
(create / edit / delete, 2000 characters, `message_reference`, `allowed_mentions` recorded),
typing, interaction callbacks and their webhook messages (`@original`, follow-ups), and command
sync (`PUT /applications/{app}/[guilds/{guild}/]commands`). Messages are kept per channel so a test
reads what a person would see. Failures can be scripted per route (`fail`, `rate_limit`): a 429
is answered the way Discord does (`Via` header, `Retry-After`, a JSON body with `retry_after`, and
a Content-Type of exactly `application/json`, which discord.py needs to read it).

Gateway: HELLO (heartbeat interval configurable), heartbeat → ACK, IDENTIFY → READY (with a
`resume_gateway_url` pointing back here) and one GUILD_CREATE per guild of the shard, RESUME →
RESUMED; then whatever the test dispatches (`message_create`, `message_update`, `interaction`).
`close_on_identify = 4014` closes the socket the way Discord does when the message-content intent
is not enabled. Frames are plain JSON text (discord.py asks for zlib-stream but reads text frames).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

MAX_CONTENT = 2000
_EPOCH = 1420070400000  # the Discord epoch, ms


def snowflake(n: int) -> int:
    """A snowflake whose timestamp is now (so discord.py's created_at makes sense)."""
    ms = int(time.time() * 1000) - _EPOCH
    return (ms << 22) | (n & 0x3FFFFF)


@dataclass
class Request:
    """One REST request as the fake received it."""

    t: float  # time.monotonic() on arrival
    method: str
    path: str  # under /api/v10
    route: str  # a short name: send, edit, delete, typing, callback, followup, edit_original, ...
    body: Any
    headers: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    status: int = 200
    error: str | None = None
    code: int | None = None  # Discord's JSON error code
    answer: Any = None
    done: float = 0.0  # time.monotonic() when the answer went out


@dataclass
class Frame:
    t: float
    direction: str  # "in" (client -> fake) | "out"
    shard: int | None
    payload: dict[str, Any]


@dataclass
class FakeMessage:
    id: int
    channel_id: int
    content: str
    author_id: int
    reference: int | None = None  # message_reference.message_id
    allowed_mentions: Any = None
    interaction_token: str | None = None  # a webhook message of an interaction
    deleted: bool = False
    created: float = 0.0
    edits: list[tuple[float, str]] = field(default_factory=list)
    flags: int = 0


@dataclass
class _Failure:
    route: str
    status: int
    code: int
    message: str
    retry_after: float | None
    times: int
    when: Callable[[Request], bool] | None


@dataclass
class Session:
    ws: web.WebSocketResponse
    shard: tuple[int, int]
    seq: int = 0
    identified: bool = False
    intents: int | None = None
    session_id: str = ""


class FakeDiscord:
    def __init__(
        self,
        token: str = "MTIz.fake.bot-token",
        *,
        bot_id: int = 900000000000000001,
        username: str = "switchboard",
        heartbeat_interval: float = 41.25,
        guilds: list[int] | None = None,
        shards: int = 1,
        control: bool = False,
    ) -> None:
        self.token = token
        self.bot_id = bot_id
        self.app_id = bot_id
        self.username = username
        self.heartbeat_interval = heartbeat_interval
        self.recommended_shards = shards
        self.control = control
        self.requests: list[Request] = []
        self.frames: list[Frame] = []
        self.messages: dict[int, FakeMessage] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None: global) -> synced
        self.callbacks: list[tuple[float, int, dict[str, Any]]] = []  # (t, interaction id, body)
        self.sessions: list[Session] = []
        self.close_on_identify: int | None = None
        self.guilds: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.channel_limit: tuple[int, float] | None = None  # (n, seconds): Discord's ~5 per 5 s per channel
        self._window: dict[int, list[float]] = {}
        # (n, seconds): Discord's global limit (50 requests a second per bot token, interaction
        # endpoints exempt); off unless set (POST /_control/limits {"global_limit": [50, 1.0]})
        self.global_limit: tuple[int, float] | None = None
        self._global_window: list[float] = []
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)
        self._interactions: dict[str, dict[str, Any]] = {}  # token -> interaction payload
        self._originals: dict[str, int] = {}  # interaction token -> @original message id
        self._runner: web.AppRunner | None = None
        self._identified = asyncio.Event()
        # question message id -> (text, waiter): set when a bot message replying to it shows that
        # text (POST /_control/wave, for benchmarks driving the fake from another process)
        self._finals: dict[int, tuple[str, asyncio.Future[None]]] = {}
        self.port = 0
        for g in guilds if guilds is not None else [100]:
            self.add_guild(g)

    # --- ids and world ---------------------------------------------------------------------------

    def next_id(self) -> int:
        return snowflake(next(self._ids))

    def add_guild(self, guild_id: int, *, channels: tuple[int, ...] | None = None) -> dict[str, Any]:
        g = {"id": guild_id, "name": f"Guild {guild_id}", "channels": [], "threads": []}
        self.guilds[guild_id] = g
        for cid in channels if channels is not None else (guild_id + 1,):
            self.add_channel(guild_id, cid)
        return g

    def add_channel(self, guild_id: int, channel_id: int, *, name: str | None = None) -> dict[str, Any]:
        ch = {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id),
            "name": name or f"general-{channel_id}",
            "position": len(self.guilds[guild_id]["channels"]),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
        }
        self.guilds[guild_id]["channels"].append(ch)
        self.channels[channel_id] = ch
        return ch

    def add_thread(self, guild_id: int, parent_id: int, thread_id: int, *, owner_id: int = 4242) -> dict[str, Any]:
        th = {
            "id": str(thread_id),
            "type": 11,
            "guild_id": str(guild_id),
            "parent_id": str(parent_id),
            "owner_id": str(owner_id),
            "name": f"thread-{thread_id}",
            "message_count": 1,
            "member_count": 1,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _iso(),
                "locked": False,
            },
        }
        self.guilds[guild_id]["threads"].append(th)
        self.channels[thread_id] = th
        return th

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        if self.control:
            app.router.add_post("/_control/message", self._control_message)
            app.router.add_get("/_control/state", self._control_state)
            app.router.add_post("/_control/fail", self._control_fail)
            app.router.add_post("/_control/wave", self._control_wave)
            app.router.add_get("/_control/requests", self._control_requests)
            app.router.add_get("/_control/messages", self._control_messages)
            app.router.add_post("/_control/limits", self._control_limits)
            app.router.add_get("/_control/world", self._control_world)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for s in list(self.sessions):
            if not s.ws.closed:
                await s.ws.close(code=1001)
        if self._runner:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- scripting -------------------------------------------------------------------------------

    def fail(
        self,
        route: str,
        *,
        status: int = 400,
        code: int = 50035,
        message: str = "Invalid Form Body",
        retry_after: float | None = None,
        times: int = 1,
        when: Callable[[Request], bool] | None = None,
    ) -> None:
        """The next `times` requests of `route` (send, edit, delete, typing, callback, followup,
        edit_original, login, ...) matching `when` are answered with this error, without effect."""
        self._failures.append(_Failure(route, status, code, message, retry_after, times, when))

    def rate_limit(self, route: str, retry_after: float, **kw: Any) -> None:
        self.fail(route, status=429, code=0, message="You are being rate limited.", retry_after=retry_after, **kw)

    def unknown_message(self, route: str = "edit", **kw: Any) -> None:
        self.fail(route, status=404, code=10008, message="Unknown Message", **kw)

    def missing_permissions(self, route: str = "send", **kw: Any) -> None:
        self.fail(route, status=403, code=50013, message="Missing Permissions", **kw)

    def delete(self, message_id: int) -> None:
        """The person (or a moderator) deletes a message."""
        self.messages[message_id].deleted = True

    # --- what the person sees --------------------------------------------------------------------

    def visible(self, channel_id: int) -> list[FakeMessage]:
        return [m for m in self.messages.values() if m.channel_id == channel_id and not m.deleted]

    def texts(self, channel_id: int) -> list[str]:
        """The content of every message the bot has in the channel, in order (after edits)."""
        return [m.content for m in self.visible(channel_id) if m.author_id == self.bot_id]

    def interaction_texts(self, token: str) -> list[str]:
        return [m.content for m in self.messages.values() if m.interaction_token == token and not m.deleted]

    def of(self, *routes: str) -> list[Request]:
        return [r for r in self.requests if r.route in routes]

    async def wait_for(self, pred: Callable[[FakeDiscord], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; requests: {[(r.route, r.status) for r in self.requests]}")
            await asyncio.sleep(0.005)

    async def wait_identified(self, timeout: float = 5.0) -> None:
        """Until a session has been sent READY and its GUILD_CREATEs."""
        await asyncio.wait_for(self._identified.wait(), timeout)

    # --- inbound events (what a person does) -----------------------------------------------------

    def user(self, user_id: int = 4242, name: str = "alice", *, bot: bool = False) -> dict[str, Any]:
        u: dict[str, Any] = {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name.title(),
            "avatar": None,
        }
        if bot:
            u["bot"] = True
        return u

    @property
    def bot_user(self) -> dict[str, Any]:
        return {**self.user(self.bot_id, self.username, bot=True), "verified": True, "flags": 0, "mfa_enabled": True}

    def make_message(
        self,
        channel_id: int,
        content: str,
        *,
        guild_id: int | None = None,
        user_id: int = 4242,
        username: str = "alice",
        bot: bool = False,
        mentions: list[int] | None = None,
        mention_everyone: bool = False,
        reply_to: int | None = None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE payload from a person; `<@bot_id>` in `content` is added to `mentions`."""
        mid = message_id if message_id is not None else self.next_id()
        ids = list(mentions or [])
        if f"<@{self.bot_id}>" in content and self.bot_id not in ids:
            ids.append(self.bot_id)
        data: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self.user(user_id, username, bot=bot),
            "content": content,
            "timestamp": _iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": mention_everyone,
            "mentions": [self.bot_user if i == self.bot_id else self.user(i, f"user{i}") for i in ids],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
            data["member"] = {"roles": [], "joined_at": _iso(), "deaf": False, "mute": False, "flags": 0}
        if reply_to is not None:
            data["type"] = 19
            data["message_reference"] = {"message_id": str(reply_to), "channel_id": str(channel_id), "type": 0}
            if guild_id is not None:
                data["message_reference"]["guild_id"] = str(guild_id)
            ref = self.messages.get(reply_to)
            if ref is not None:
                data["referenced_message"] = self._message_json(ref, guild_id)
        return data

    async def message_create(self, channel_id: int, content: str, **kw: Any) -> dict[str, Any]:
        data = self.make_message(channel_id, content, **kw)
        await self.dispatch("MESSAGE_CREATE", data, guild_id=kw.get("guild_id"))
        return data

    async def message_update(self, original: dict[str, Any], content: str) -> dict[str, Any]:
        """The person edits their message: a MESSAGE_UPDATE with the whole new message."""
        data = {**original, "content": content, "edited_timestamp": _iso()}
        guild = original.get("guild_id")
        await self.dispatch("MESSAGE_UPDATE", data, guild_id=int(guild) if guild else None)
        return data

    def make_interaction(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        channel_id: int,
        guild_id: int | None = None,
        user_id: int = 4242,
        username: str = "alice",
        kind: int = 2,
        focused: str | None = None,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload: slash command `name` (kind 2) or its autocomplete (kind 4)."""
        iid = self.next_id()
        token = f"itoken-{iid}"
        cmd_id = next((c["id"] for cs in self.commands.values() for c in cs if c["name"] == name), str(self.next_id()))
        opts = [
            {"name": k, "type": 3, "value": v, **({"focused": True} if k == focused else {})}
            for k, v in (options or {}).items()
        ]
        data: dict[str, Any] = {"id": str(cmd_id), "name": name, "type": 1, "options": opts}
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.app_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel_id),
            "channel": {"id": str(channel_id), "type": 0 if guild_id else 1},
            "token": token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": "562949953421311",
            "attachment_size_limit": 10485760,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id) if guild_id else str(user_id)},
            "context": 0 if guild_id else 1,
        }
        user = self.user(user_id, username)
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            payload["guild_locale"] = "en-US"
            payload["member"] = {
                "user": user,
                "roles": [],
                "joined_at": _iso(),
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": "562949953421311",
            }
            if any(g is not None and g == guild_id for g in self.commands):
                data["guild_id"] = str(guild_id)
        else:
            payload["user"] = user
        self._interactions[token] = payload
        return payload

    async def interaction(self, name: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        payload = self.make_interaction(name, options, **kw)
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=kw.get("guild_id"))
        return payload

    async def dispatch(self, event: str, data: dict[str, Any], *, guild_id: int | None = None) -> None:
        """Send a dispatch (op 0) to the session of the shard that owns `guild_id` (DMs: shard 0)."""
        sessions = [s for s in self.sessions if s.identified and not s.ws.closed]
        if not sessions:
            raise AssertionError("no identified gateway session to dispatch to")
        target = [s for s in sessions if _shard_of(guild_id, s.shard[1]) == s.shard[0]]
        for s in target[:1] or sessions[:1]:
            await self._send(s, {"op": 0, "t": event, "d": data})

    async def close_sessions(self, code: int) -> None:
        for s in self.sessions:
            if not s.ws.closed:
                await s.ws.close(code=code)

    # --- gateway ---------------------------------------------------------------------------------

    async def _send(self, s: Session, payload: dict[str, Any]) -> None:
        if payload.get("op") == 0:
            s.seq += 1
            payload = {**payload, "s": s.seq}
        else:
            payload = {"s": None, "t": None, **payload}
        self.frames.append(Frame(time.monotonic(), "out", s.shard[0], payload))
        await s.ws.send_str(json.dumps(payload))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        s = Session(ws, (0, 1))
        self.sessions.append(s)
        await self._send(s, {"op": 10, "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)}})
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                if msg.type is WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                break
            payload = json.loads(msg.data)
            self.frames.append(Frame(time.monotonic(), "in", s.shard[0], payload))
            op = payload.get("op")
            if op == 1:
                await self._send(s, {"op": 11})
            elif op == 2:
                await self._identify(s, payload["d"])
            elif op == 6:
                s.identified = True
                await self._send(s, {"op": 0, "t": "RESUMED", "d": {}})
        return ws

    async def _identify(self, s: Session, d: dict[str, Any]) -> None:
        if d.get("token") != self.token:
            await s.ws.close(code=4004, message=b"Authentication failed.")
            return
        if self.close_on_identify is not None:
            await s.ws.close(code=self.close_on_identify, message=b"Disallowed intent(s).")
            return
        shard = d.get("shard") or [0, 1]
        s.shard = (int(shard[0]), int(shard[1]))
        s.intents = d.get("intents")
        s.session_id = f"session-{self.next_id()}"
        mine = [g for g in self.guilds if _shard_of(g, s.shard[1]) == s.shard[0]]
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(g), "unavailable": True} for g in mine],
            "session_id": s.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": list(s.shard),
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "user_settings": {},
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
        }
        await self._send(s, {"op": 0, "t": "READY", "d": ready})
        for g in mine:
            await self._send(s, {"op": 0, "t": "GUILD_CREATE", "d": self._guild_json(g)})
        s.identified = True
        self._identified.set()

    def _guild_json(self, guild_id: int) -> dict[str, Any]:
        g = self.guilds[guild_id]
        return {
            "id": str(guild_id),
            "name": g["name"],
            "icon": None,
            "owner_id": "1",
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "features": [],
            "roles": [
                {
                    "id": str(guild_id),
                    "name": "@everyone",
                    "permissions": "1071698660929",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "channels": [{k: v for k, v in c.items() if k != "guild_id"} for c in g["channels"]],
            "threads": list(g["threads"]),
            "members": [
                {
                    "user": self.bot_user,
                    "roles": [],
                    "joined_at": _iso(),
                    "deaf": False,
                    "mute": False,
                    "flags": 0,
                }
            ],
            "member_count": 2,
            "large": False,
            "unavailable": False,
            "joined_at": _iso(),
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # --- REST ------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
        method = request.method
        route, params = _route(method, path)
        rec = Request(time.monotonic(), method, path, route, body, dict(request.headers), dict(request.query))
        self.requests.append(rec)
        try:
            if request.headers.get("Authorization") != f"Bot {self.token}" and route not in _TOKENLESS:
                return self._error(rec, 401, 0, "401: Unauthorized")
            for f in self._failures:
                if f.times > 0 and f.route == route and (f.when is None or f.when(rec)):
                    f.times -= 1
                    return self._error(rec, f.status, f.code, f.message, f.retry_after)
            if self.global_limit is not None and route not in _TOKENLESS:
                wait = self._over_global_limit()
                if wait is not None:
                    answer = self._error(rec, 429, 0, "You are being rate limited.", wait, scope="global")
                    rec.error = "You are being rate limited. (global)"  # for a reader of `requests`
                    return answer
            if self.channel_limit is not None and route in ("send", "edit", "delete") and "channel" in params:
                limited = self._over_channel_limit(int(params["channel"]))
                if limited is not None:
                    return self._error(rec, 429, 0, "You are being rate limited.", limited)
            handler = getattr(self, f"_r_{route}", None)
            if handler is None:
                return self._error(rec, 404, 0, f"404: Not Found ({method} {path})")
            status, answer = handler(rec, params)
            if status >= 400:
                code, message = answer
                return self._error(rec, status, code, message)
            return self._ok(rec, status, answer)
        finally:
            rec.done = time.monotonic()

    def _over_channel_limit(self, channel_id: int) -> float | None:
        """Discord's bucket: `n` requests, then 429 until `per` seconds after the first of them."""
        assert self.channel_limit is not None
        n, per = self.channel_limit
        now = time.monotonic()
        window = self._window.get(channel_id)
        if not window or now >= window[0] + per:
            window = self._window[channel_id] = []
        if len(window) >= n:
            return round(window[0] + per - now, 3)
        window.append(now)
        return None

    def _ok(self, rec: Request, status: int, answer: Any) -> web.Response:
        rec.status = status
        rec.answer = answer
        if status == 204:
            return web.Response(status=204)
        return web.Response(
            status=status, body=json.dumps(answer).encode(), headers={"Content-Type": "application/json"}
        )

    def _over_global_limit(self) -> float | None:
        assert self.global_limit is not None
        n, per = self.global_limit
        now = time.monotonic()
        window = self._global_window
        if not window or now >= window[0] + per:
            window = self._global_window = []
        if len(window) >= n:
            return round(window[0] + per - now, 3)
        window.append(now)
        return None

    def _error(
        self,
        rec: Request,
        status: int,
        code: int,
        message: str,
        retry_after: float | None = None,
        scope: str = "user",
    ) -> web.Response:
        rec.status, rec.error, rec.code = status, message, code
        headers = {"Content-Type": "application/json"}  # exactly: discord.py parses JSON only then
        if status == 429:
            ra = retry_after if retry_after is not None else 1.0
            body: dict[str, Any] = {"message": message, "retry_after": ra, "global": scope == "global"}
            if scope == "global":  # no bucket headers, a global flag
                headers.update(
                    {
                        "Retry-After": str(max(1, int(-(-ra // 1)))),
                        "Via": "1.1 google",
                        "X-RateLimit-Global": "true",
                        "X-RateLimit-Scope": "global",
                    }
                )
            else:
                headers.update(
                    {
                        "Retry-After": str(max(1, int(-(-ra // 1)))),  # whole seconds, rounded up, like Discord
                        "Via": "1.1 google",
                        "X-RateLimit-Scope": "user",
                        "X-RateLimit-Limit": "5",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset-After": f"{ra:.3f}",
                        "X-RateLimit-Bucket": "fake-bucket",
                    }
                )
        else:
            body = {"message": message, "code": code}
        rec.answer = body
        return web.Response(status=status, body=json.dumps(body).encode(), headers=headers)

    # route handlers: (status, answer) or (status >= 400, (code, message))

    def _r_me(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        return 200, self.bot_user

    def _r_application(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        return 200, {
            "id": str(self.app_id),
            "name": self.username,
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.user(1, "owner"),
            "verify_key": "0" * 64,
            "flags": self.application_flags,
            "summary": "",
            "team": None,
        }

    application_flags = 1 << 19  # GATEWAY_MESSAGE_CONTENT_LIMITED: the intent switch is on (unverified bot)

    def _r_gateway(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    def _r_gateway_bot(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": self.recommended_shards,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        }

    def _r_get_channel(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        ch = self.channels.get(int(p["channel"]))
        if ch is None:
            return 404, (10003, "Unknown Channel")
        return 200, ch

    def _new_message(self, channel_id: int, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
        content = body.get("content") or ""
        if not content.strip():
            return 400, (50006, "Cannot send an empty message")
        if len(content) > MAX_CONTENT:
            return 400, (50035, "Invalid Form Body: content: Must be 2000 or fewer in length.")
        ref = body.get("message_reference") or {}
        m = FakeMessage(
            self.next_id(),
            channel_id,
            content,
            self.bot_id,
            reference=int(ref["message_id"]) if ref.get("message_id") else None,
            allowed_mentions=body.get("allowed_mentions"),
            interaction_token=token,
            created=time.monotonic(),
            flags=int(body.get("flags") or 0),
        )
        self.messages[m.id] = m
        if self._finals:
            self._shown(m)
        return 200, self._message_json(m)

    def _edit(self, m: FakeMessage | None, body: dict[str, Any]) -> tuple[int, Any]:
        if m is None or m.deleted:
            return 404, (10008, "Unknown Message")
        content = body.get("content")
        if content is not None:
            if len(content) > MAX_CONTENT:
                return 400, (50035, "Invalid Form Body: content: Must be 2000 or fewer in length.")
            if not content.strip():
                return 400, (50006, "Cannot send an empty message")
            m.content = content
            m.edits.append((time.monotonic(), content))
            if self._finals:
                self._shown(m)
        if "allowed_mentions" in body:
            m.allowed_mentions = body["allowed_mentions"]
        return 200, self._message_json(m)

    def _r_send(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        cid = int(p["channel"])
        return self._new_message(cid, rec.body or {})

    def _r_edit(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        m = self.messages.get(int(p["message"]))
        if m is not None and m.channel_id != int(p["channel"]):
            m = None
        return self._edit(m, rec.body or {})

    def _r_delete(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        m = self.messages.get(int(p["message"]))
        if m is None or m.deleted or m.channel_id != int(p["channel"]):
            return 404, (10008, "Unknown Message")
        m.deleted = True
        return 204, None

    def _r_typing(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        return 204, None

    def _r_callback(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        token = p["token"]
        inter = self._interactions.get(token)
        if inter is None or inter["id"] != p["interaction"]:
            return 404, (10062, "Unknown interaction")
        if any(i == int(p["interaction"]) for _, i, _ in self.callbacks):
            return 400, (40060, "Interaction has already been acknowledged.")
        body = rec.body or {}
        self.callbacks.append((rec.t, int(p["interaction"]), body))
        kind = body.get("type")
        data = body.get("data") or {}
        m: FakeMessage | None = None
        if kind in (4, 5):  # a message (now, or "thinking…" to be edited)
            m = FakeMessage(
                self.next_id(),
                int(inter["channel_id"]),
                data.get("content", "") if kind == 4 else "",
                self.bot_id,
                allowed_mentions=data.get("allowed_mentions"),
                interaction_token=token,
                created=time.monotonic(),
                flags=int(data.get("flags") or 0),
            )
            self.messages[m.id] = m
            self._originals[token] = m.id
        if rec.query.get("with_response") not in ("1", "true", "True"):
            return 204, None
        answer: dict[str, Any] = {
            "interaction": {
                "id": p["interaction"],
                "type": inter["type"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(m is not None and m.flags & 64),
            },
            "resource": {"type": kind},
        }
        if m is not None:
            answer["interaction"]["response_message_id"] = str(m.id)
            answer["resource"]["message"] = self._message_json(m)
        return 200, answer

    def _r_edit_original(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        mid = self._originals.get(p["token"])
        return self._edit(self.messages.get(mid) if mid else None, rec.body or {})

    def _r_followup(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        inter = self._interactions.get(p["token"])
        if inter is None or p["token"] not in self._originals:
            return 404, (10015, "Unknown Webhook")
        return self._new_message(int(inter["channel_id"]), rec.body or {}, token=p["token"])

    def _r_webhook_edit(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        m = self.messages.get(int(p["message"]))
        if m is not None and m.interaction_token != p["token"]:
            m = None
        return self._edit(m, rec.body or {})

    def _r_webhook_delete(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        mid = self._originals.get(p["token"]) if p["message"] == "@original" else int(p["message"])
        m = self.messages.get(mid) if mid else None
        if m is None or m.deleted:
            return 404, (10008, "Unknown Message")
        m.deleted = True
        return 204, None

    def _r_sync(self, rec: Request, p: dict[str, str]) -> tuple[int, Any]:
        guild = int(p["guild"]) if "guild" in p else None
        out = []
        for c in rec.body or []:
            out.append(
                {
                    "id": str(self.next_id()),
                    "application_id": str(self.app_id),
                    "version": "1",
                    "default_member_permissions": None,
                    "type": c.get("type", 1),
                    "name": c["name"],
                    "description": c.get("description", ""),
                    "options": c.get("options", []),
                    "nsfw": False,
                    "dm_permission": True,
                    **({"guild_id": str(guild)} if guild else {}),
                }
            )
        self.commands[guild] = out
        return 200, out

    def _message_json(self, m: FakeMessage, guild_id: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(m.id),
            "channel_id": str(m.channel_id),
            "author": self.bot_user if m.author_id == self.bot_id else self.user(m.author_id),
            "content": m.content,
            "timestamp": _iso(),
            "edited_timestamp": _iso() if m.edits else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 19 if m.reference else 0,
            "flags": m.flags,
        }
        if m.reference:
            data["message_reference"] = {"message_id": str(m.reference), "channel_id": str(m.channel_id)}
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        return data

    # --- control (another process drives the fake: benchmarks) -----------------------------------

    async def _control_message(self, request: web.Request) -> web.Response:
        body = await request.json()
        out = []
        for item in body if isinstance(body, list) else [body]:
            args = dict(item)
            data = await self.message_create(int(args.pop("channel_id")), args.pop("content"), **args)
            out.append(data["id"])
        return web.json_response({"ok": True, "ids": out})

    async def _control_state(self, request: web.Request) -> web.Response:
        since = float(request.query.get("since", "0"))
        reqs = [
            [r.route, r.t, r.status, r.path, (r.body or {}).get("content") if isinstance(r.body, dict) else None]
            for r in self.requests
            if r.t >= since
        ]
        sent = [
            [f.t, f.payload.get("t"), (f.payload.get("d") or {}).get("id")] for f in self.frames if f.direction == "out"
        ]
        return web.json_response({"requests": reqs, "dispatched": sent})

    async def _control_fail(self, request: web.Request) -> web.Response:
        body = dict(await request.json())
        if body.get("clear"):
            self._failures.clear()
            return web.json_response({"ok": True})
        # optional narrowing (a `when` cannot cross a process): one channel, requests with text
        channel = body.pop("channel_id", None)
        with_text = bool(body.pop("with_text", False))
        if channel is not None or with_text:

            def when(r: Request) -> bool:
                if channel is not None and f"/channels/{channel}/" not in r.path + "/":
                    return False
                content = (r.body or {}).get("content") if isinstance(r.body, dict) else None
                return not with_text or bool(str(content or "").strip())

            body["when"] = when
        self.fail(body.pop("route"), **body)
        return web.json_response({"ok": True})

    async def _control_wave(self, request: web.Request) -> web.Response:
        """Dispatch MESSAGE_CREATEs (`messages`: each {"channel_id", "content", ...make_message
        keywords}) `gap` seconds apart, then wait until each has a bot message replying to it
        (message_reference) that shows `final`, at most `timeout` seconds after the last one. Answers
        the message ids, the time each MESSAGE_CREATE frame was sent (time.monotonic()) and the ids
        whose final text never showed."""
        body = await request.json()
        return web.json_response(await self.wave(**body))

    async def wave(
        self, messages: list[dict[str, Any]], gap: float = 0.0, final: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        waiters: dict[int, asyncio.Future[None]] = {}
        ids: list[int] = []
        first_frame = len(self.frames)
        try:
            start = time.monotonic()
            for i, item in enumerate(messages):
                delay = start + i * gap - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                args = dict(item)
                channel_id, content = int(args.pop("channel_id")), args.pop("content")
                mid = self.next_id()
                if final is not None:
                    fut = loop.create_future()
                    self._finals[mid] = (final, fut)
                    waiters[mid] = fut
                ids.append(mid)
                await self.message_create(channel_id, content, message_id=mid, **args)
            if waiters:
                await asyncio.wait(list(waiters.values()), timeout=timeout)
        finally:
            for mid in waiters:
                self._finals.pop(mid, None)
        sent: dict[str, float] = {}
        for f in self.frames[first_frame:]:
            if f.direction == "out" and f.payload.get("t") == "MESSAGE_CREATE":
                sent[str((f.payload.get("d") or {}).get("id"))] = f.t
        return {
            "ok": True,
            "ids": [str(i) for i in ids],
            "dispatched": [sent.get(str(i)) for i in ids],
            "incomplete": [str(mid) for mid, fut in waiters.items() if not fut.done()],
        }

    def _shown(self, m: FakeMessage) -> None:
        waiter = self._finals.get(m.reference) if m.reference is not None else None
        if waiter is not None and waiter[0] == m.content and not waiter[1].done():
            waiter[1].set_result(None)

    async def _control_requests(self, request: web.Request) -> web.Response:
        """Every reply request (send, edit, delete, typing) since `since`: [route, t, done, status,
        channel id, message id (the edited one, or the one a successful send created), content,
        the referenced message id (a send's message_reference), error]."""
        since = float(request.query.get("since", "0"))
        out = []
        for r in self.requests:
            if r.t < since or r.route not in ("send", "edit", "delete", "typing"):
                continue
            _, params = _route(r.method, r.path)
            body = r.body if isinstance(r.body, dict) else {}
            mid = params.get("message")
            if r.route == "send" and isinstance(r.answer, dict) and "id" in r.answer:
                mid = r.answer["id"]
            ref = (body.get("message_reference") or {}).get("message_id")
            out.append(
                [
                    r.route,
                    r.t,
                    r.done,
                    r.status,
                    params.get("channel"),
                    None if mid is None else str(mid),
                    body.get("content"),
                    None if ref is None else str(ref),
                    r.error,
                ]
            )
        return web.json_response({"requests": out})

    async def _control_messages(self, _: web.Request) -> web.Response:
        """Every message of the bot: [[id, channel id, content, referenced id, deleted], ...]."""
        return web.json_response(
            {
                "messages": [
                    [
                        str(m.id),
                        str(m.channel_id),
                        m.content,
                        None if m.reference is None else str(m.reference),
                        m.deleted,
                    ]
                    for m in self.messages.values()
                    if m.author_id == self.bot_id
                ]
            }
        )

    async def _control_limits(self, request: web.Request) -> web.Response:
        """{"channel_limit": [n, seconds] or null, "global_limit": [n, seconds] or null}: Discord's
        per-channel and global limits on or off (and their windows reset)."""
        body = await request.json()
        limit = body.get("channel_limit")
        self.channel_limit = (int(limit[0]), float(limit[1])) if limit else None
        self._window.clear()
        glob = body.get("global_limit")
        self.global_limit = (int(glob[0]), float(glob[1])) if glob else None
        self._global_window = []
        return web.json_response({"ok": True})

    async def _control_world(self, _: web.Request) -> web.Response:
        """The guilds and their text channels, the bot's id, name and token."""
        return web.json_response(
            {
                "guilds": {str(g): [int(c["id"]) for c in v["channels"]] for g, v in self.guilds.items()},
                "bot_id": self.bot_id,
                "username": self.username,
                "token": self.token,
                "api_base": self.api_base,
                "gateway_url": self.gateway_url,
            }
        )


def _shard_of(guild_id: int | None, count: int) -> int:
    if not guild_id or count <= 1:
        return 0
    return (guild_id >> 22) % count


def _iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


_ROUTES: list[tuple[str, tuple[str, ...], str]] = [
    ("GET", ("users", "@me"), "me"),
    ("GET", ("oauth2", "applications", "@me"), "application"),
    ("GET", ("gateway",), "gateway"),
    ("GET", ("gateway", "bot"), "gateway_bot"),
    ("GET", ("channels", "{channel}"), "get_channel"),
    ("POST", ("channels", "{channel}", "messages"), "send"),
    ("PATCH", ("channels", "{channel}", "messages", "{message}"), "edit"),
    ("DELETE", ("channels", "{channel}", "messages", "{message}"), "delete"),
    ("POST", ("channels", "{channel}", "typing"), "typing"),
    ("POST", ("interactions", "{interaction}", "{token}", "callback"), "callback"),
    ("PATCH", ("webhooks", "{app}", "{token}", "messages", "@original"), "edit_original"),
    ("POST", ("webhooks", "{app}", "{token}"), "followup"),
    ("PATCH", ("webhooks", "{app}", "{token}", "messages", "{message}"), "webhook_edit"),
    ("DELETE", ("webhooks", "{app}", "{token}", "messages", "{message}"), "webhook_delete"),
    ("PUT", ("applications", "{app}", "commands"), "sync"),
    ("PUT", ("applications", "{app}", "guilds", "{guild}", "commands"), "sync"),
]


_TOKENLESS = frozenset({"callback", "edit_original", "followup", "webhook_edit", "webhook_delete"})
"""Interaction responses are authorised by the interaction's token in the path, not the bot token."""


def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
    parts = tuple(x for x in path.split("?")[0].split("/") if x)
    for m, pattern, name in _ROUTES:
        if m != method or len(pattern) != len(parts):
            continue
        params: dict[str, str] = {}
        for want, got in zip(pattern, parts, strict=True):
            if want.startswith("{"):
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            return name, params
    return f"{method} {path}", {}


async def _serve(port: int, guilds: int, channels: int) -> None:
    ids = [1000 * (g + 1) for g in range(guilds)]
    fake = FakeDiscord(guilds=[], control=True)
    for g in ids:
        fake.add_guild(g, channels=tuple(g + 1 + c for c in range(channels)))
    fake.port = port
    await fake.start()
    print(f"PORT {fake.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # python -m tests.fakes.discord_server [PORT [GUILDS [CHANNELS]]]: a fake for another process,
    # with /_control/* on; guild ids 1000, 2000, ..., each with CHANNELS text channels (id + 1, ...)
    import sys

    try:
        asyncio.run(
            _serve(
                int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                int(sys.argv[2]) if len(sys.argv) > 2 else 1,
                int(sys.argv[3]) if len(sys.argv) > 3 else 1,
            )
        )
    except KeyboardInterrupt:
        pass
