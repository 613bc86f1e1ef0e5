"""The primitive moves on one Discord reply, and the translation of Discord's errors.

One object per reply. Each method is one REST request that succeeds or raises one of bot.errors:
no retry, no pacing, no waiting. The requests go straight over aiohttp (`DiscordRest`), not
through discord.py's HTTP layer, for one reason: discord.py sleeps through a 429 itself and then
re-sends the *old* text, so a reply would wait twice (there and in the core's ReplyStream) or send
stale text. Here a 429 becomes `RateLimited(retry_after)` and the core's ReplyStream is the one
place that waits it out, then sends the newest text.

Every message goes out with `allowed_mentions` = nothing: model output can never ping anyone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from bot.errors import MessageGone, PlatformError, RateLimited
from bot.types import MessageRef
from channels.discord.render import RENDERER

log = structlog.get_logger("switchboard.discord")

NO_MENTIONS: dict[str, Any] = {"parse": [], "users": [], "roles": [], "replied_user": False}
EPHEMERAL = 1 << 6
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
REPLY_NEEDS_HISTORY = 160002  # "Cannot reply without permission to read message history"


class MissingPermissions(PlatformError):
    """The bot may not do this in that channel (send messages, read history, ...)."""


class DiscordRest:
    """The reply path's REST client: one aiohttp session, Discord's errors as bot.errors."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 15.0, user_agent: str = "") -> None:
        self.base = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bot {token}",
            "User-Agent": user_agent or "DiscordBot (https://github.com/switchboard, 0.1) Switchboard",
        }
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.permission_reported: set[str] = set()  # channels whose missing permission was logged

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=300),
                timeout=self._timeout,
                json_serialize=json.dumps,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, path: str, body: Any = None, *, auth: bool = True, where: str = "") -> Any:
        """One request; the JSON answer (None for 204), or one of bot.errors."""
        headers = self._headers if auth else {"User-Agent": self._headers["User-Agent"]}
        try:
            async with self.session().request(method, self.base + path, json=body, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
                if 200 <= status < 300:
                    return json.loads(raw) if raw else None
                retry_header = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise PlatformError(f"discord: {method} {path} failed: {type(e).__name__}: {e}") from e
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        message = str(data.get("message") or raw[:200].decode(errors="replace"))
        code = int(data.get("code") or 0)
        if status == 429:
            ra = data.get("retry_after")
            seconds = float(ra) if isinstance(ra, int | float) else float(retry_header or 1.0)
            scope = "global" if data.get("global") else "route"
            raise RateLimited(seconds, f"discord rate limit ({scope}): retry after {seconds:g}s")
        if status == 404 and code in (UNKNOWN_MESSAGE, UNKNOWN_WEBHOOK):
            raise MessageGone(f"discord: {message} ({code})")
        if status in (400, 403) and code in (MISSING_ACCESS, MISSING_PERMISSIONS, REPLY_NEEDS_HISTORY):
            self.report_permissions(where, message)
            raise MissingPermissions(f"discord: {message} ({code}) in channel {where}")
        if status == 401:
            raise PlatformError("discord: the bot token was refused (401); check channels.discord.token")
        raise PlatformError(f"discord: {method} {path}: {status} {message} ({code})")

    def report_permissions(self, channel: str, message: str) -> None:
        """Missing permissions are logged once per channel, with the fix."""
        if channel in self.permission_reported:
            return
        self.permission_reported.add(channel)
        log.error(
            "discord.missing_permissions",
            channel=channel,
            error=message,
            fix="give the bot View Channel, Send Messages, Send Messages in Threads and Read Message History "
            "in that channel (Server Settings → Roles, or the channel's permissions)",
        )


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where a reply goes: a channel (or thread) and the message it answers, or an interaction."""

    channel_id: str  # the channel or thread the message is posted in
    reply_to: str | None = None  # the message answered (message_reference on the first message)
    app_id: str | None = None  # an interaction: the application and the interaction's token
    token: str | None = None
    ephemeral: bool = False

    @property
    def interaction(self) -> bool:
        return self.token is not None


class DiscordSurface:
    """ReplySurface for one reply in one Discord channel, thread, DM, or slash-command interaction."""

    __slots__ = ("_original_used", "_referenced", "_rest", "calls", "target")

    def __init__(self, rest: DiscordRest, target: ReplyTarget) -> None:
        self._rest = rest
        self.target = target
        self._referenced = False
        self._original_used = False
        self.calls = 0

    # --- ReplySurface --------------------------------------------------------------------------

    async def typing(self) -> None:
        if self.target.interaction:
            return  # a deferred interaction already shows "… is thinking"
        self.calls += 1
        cid = self.target.channel_id
        await self._rest.call("POST", f"/channels/{cid}/typing", where=cid)

    async def send(self, text: str, *, plain: bool = False) -> MessageRef:
        t = self.target
        body: dict[str, Any] = {"content": _content(text, plain), "allowed_mentions": NO_MENTIONS}
        self.calls += 1
        if t.interaction:
            if not self._original_used:
                # the deferred response ("thinking…") becomes the reply's first message
                data = await self._rest.call(
                    "PATCH", f"/webhooks/{t.app_id}/{t.token}/messages/@original", body, auth=False, where=t.channel_id
                )
                self._original_used = True
                return MessageRef(str(data["id"]), extra="@original")
            if t.ephemeral:
                body["flags"] = EPHEMERAL
            data = await self._rest.call("POST", f"/webhooks/{t.app_id}/{t.token}?wait=true", body, auth=False)
            return MessageRef(str(data["id"]))
        if t.reply_to is not None and not self._referenced:
            body["message_reference"] = {"message_id": t.reply_to, "fail_if_not_exists": False}
        data = await self._rest.call("POST", f"/channels/{t.channel_id}/messages", body, where=t.channel_id)
        self._referenced = True
        return MessageRef(str(data["id"]))

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None:
        t = self.target
        body = {"content": _content(text, plain), "allowed_mentions": NO_MENTIONS}
        self.calls += 1
        if t.interaction:
            mid = ref.extra if ref.extra == "@original" else ref.id
            await self._rest.call(
                "PATCH", f"/webhooks/{t.app_id}/{t.token}/messages/{mid}", body, auth=False, where=t.channel_id
            )
            return
        await self._rest.call("PATCH", f"/channels/{t.channel_id}/messages/{ref.id}", body, where=t.channel_id)

    async def draft(self, text: str) -> None:
        raise PlatformError("discord: no drafts (Streaming.EDIT)")

    async def finish(self, text: str, *, plain: bool = False) -> MessageRef | None:
        return await self.send(text, plain=plain)

    async def delete(self, ref: MessageRef) -> None:
        """Remove a message of this reply (not a ReplySurface move; used by the adapter)."""
        t = self.target
        if t.interaction:
            mid = ref.extra if ref.extra == "@original" else ref.id
            await self._rest.call("DELETE", f"/webhooks/{t.app_id}/{t.token}/messages/{mid}", auth=False)
            return
        await self._rest.call("DELETE", f"/channels/{t.channel_id}/messages/{ref.id}", where=t.channel_id)


def _content(text: str, plain: bool) -> str:
    # Discord has no parse mode to fall back from: Markdown is read by the client either way, so
    # `plain` changes nothing but mentions are always neutralised
    return RENDERER.render(text)
