"""The primitive moves on one Slack reply, and the translation of Slack's errors.

One object per reply, always in a thread (`thread_ts`). The core's Streaming.NATIVE moves map to
Slack's native streams: the first `draft()` of a part is `chat.startStream`, each later one
`chat.appendStream` carrying only the text added since (at most 12,000 characters: a part is
never longer), and `finish()` is `chat.stopStream` with whatever was still missing. When the final
text is not an extension of what was streamed (a cut moved, a code block closed), the stream is
stopped and the message set to the exact text with `chat.update`.

Falling back: an error saying streams are unavailable for this reply (`missing_recipient_team_id`,
`message_not_in_streaming_state`, a workspace or a Slack Connect user that refuses them) switches
this reply to `chat.postMessage` + `chat.update` (the text as mrkdwn), starting at once with the
same move. The core keeps pacing it (every draft still waits its interval); what the core cannot
see is that these drafts are now messages and updates, so the surface keeps Slack's pace for them
itself without waiting: a fallback request that would come sooner than `edit_interval` after the
previous one, or over the channel's budget (shared by every reply in that channel), is answered
`RateLimited(seconds)` without a call, and the core waits that long and sends the newest text.

Status while the model thinks (`typing()`): `assistant.threads.setStatus` in assistant threads, an
eyes reaction on the question elsewhere; removed once text is visible, and when a final request
fails (the reply may end without text). Errors: HTTP 429 → RateLimited(Retry-After),
`message_not_found` → MessageGone, `invalid_blocks` and friends → MarkupRejected, the rest
PlatformError. slack_sdk's own retries are off: a 429 is waited out in one place, the core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import MarkupRejected, MessageGone, PlatformError, RateLimited
from bot.types import MessageRef
from channels.slack.render import RENDERER, escape

log = structlog.get_logger("switchboard.slack")

STREAM_CALL_LIMIT = 12_000
STREAM_METHODS = frozenset({"chat.startStream", "chat.appendStream", "chat.stopStream"})
STREAM_UNAVAILABLE = frozenset(
    {
        "missing_recipient_team_id",
        "missing_recipient_user_id",
        "message_not_in_streaming_state",
        "user_not_found",
        "team_not_found",
        "not_allowed",
        "feature_not_enabled",
        "streaming_not_allowed",
        "streaming_not_supported",
        "method_not_supported_for_channel_type",
        "channel_type_not_supported",
        "team_access_not_granted",
        "unknown_method",
        "not_in_streaming_state",
    }
)
GONE = frozenset({"message_not_found"})
MARKUP = frozenset({"invalid_blocks", "invalid_blocks_format", "invalid_markdown", "invalid_mrkdwn"})
QUIET = frozenset({"already_reacted", "no_reaction"})  # the indicator is already as wanted


class StreamUnavailable(PlatformError):
    """Slack will not stream this reply; it falls back to messages and updates."""

    def __init__(self, error: str) -> None:
        super().__init__(f"slack: streaming unavailable ({error})")
        self.error = error


class SlackApi:
    """The reply path's Web API calls: one AsyncWebClient, Slack's errors as bot.errors."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.calls = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        body = {k: v for k, v in params.items() if v is not None}
        self.calls += 1
        try:
            resp = await self.client.api_call(method, json=body)
        except SlackApiError as e:
            raise translate(method, e) from None
        except (aiohttp.ClientError, TimeoutError) as e:
            raise PlatformError(f"slack: {method} failed: {type(e).__name__}: {e}") from e
        data = resp.data
        return data if isinstance(data, dict) else {}


def translate(method: str, e: SlackApiError) -> PlatformError:
    """One of bot.errors for a failed Web API call."""
    resp = e.response
    status = int(getattr(resp, "status_code", 0) or 0)
    data = resp.data if isinstance(resp.data, dict) else {}
    error = str(data.get("error") or "")
    if status == 429 or error == "ratelimited":
        headers = {str(k).lower(): v for k, v in (resp.headers or {}).items()}
        raw = headers.get("retry-after", "1")
        try:
            seconds = float(raw[0] if isinstance(raw, list) else raw)
        except ValueError:
            seconds = 1.0
        return RateLimited(seconds, f"slack rate limit on {method}: retry after {seconds:g}s")
    if error in STREAM_UNAVAILABLE and method in STREAM_METHODS:
        return StreamUnavailable(error)
    if error in GONE:
        return MessageGone(f"slack: {method}: {error}")
    if error in MARKUP:
        return MarkupRejected(f"slack: {method}: {error}")
    return PlatformError(f"slack: {method}: {error or status}")


class ChannelPace:
    """Slack's pace for messages + updates in one channel (a leaky bucket), asked without waiting."""

    def __init__(self, requests: int, per_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(requests)
        self.rate = requests / per_seconds
        self.level = 0.0
        self.at = clock()
        self.clock = clock

    def _leak(self) -> float:
        now = self.clock()
        self.level = max(0.0, self.level - (now - self.at) * self.rate)
        self.at = now
        return now

    def delay(self) -> float:
        """Seconds until one more request fits (0: now)."""
        self._leak()
        over = self.level + 1.0 - self.capacity
        return 0.0 if over <= 0 else over / self.rate

    def take(self) -> None:
        self._leak()
        self.level += 1.0


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where a reply goes: a channel and thread; whom it answers (the reaction, the stream's recipient)."""

    channel: str
    thread_ts: str
    question_ts: str | None = None  # the message the eyes reaction goes on
    team_id: str | None = None
    user_id: str | None = None
    assistant: bool = False  # an assistant thread: status instead of a reaction
    response_url: str | None = None  # a slash command: answered there (only the person sees it)


@dataclass(slots=True)
class SurfaceSettings:
    status_text: str = "is thinking…"
    reaction: str = "eyes"
    edit_interval: float = 1.0


Spawn = Callable[[Coroutine[Any, Any, None]], None]


class SlackSurface:
    """ReplySurface (and DeletingSurface) for one reply in one Slack thread."""

    def __init__(
        self,
        api: SlackApi,
        target: ReplyTarget,
        *,
        settings: SurfaceSettings,
        pace: ChannelPace,
        spawn: Spawn,
        http: Callable[[], aiohttp.ClientSession] | None = None,
        indicating: set[SlackSurface] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`indicating`: the channel's set of surfaces whose indicator is on (taken off at close)."""
        self._api = api
        self.target = target
        self._settings = settings
        self._pace = pace
        self._spawn = spawn
        self._http = http
        self._clock = clock
        self.fallback: str | None = None  # why this reply left native streaming, if it did
        self._stream_ts: str | None = None  # the open stream of the current part
        self._streamed = ""  # the Markdown streamed into it so far
        self._post_ts: str | None = None  # the fallback: the current part's message
        self._last_fallback: float | None = None  # end of the last fallback request
        self._indicator = False  # the status / reaction is on
        self._indicator_call: asyncio.Future[None] | None = None
        self._cleared = False
        self._indicating = indicating if indicating is not None else set()

    # --- status ----------------------------------------------------------------------------------

    async def typing(self) -> None:
        if self._cleared or self.target.response_url is not None:
            return
        if not self.target.assistant and (self._indicator or not self._settings.reaction):
            return
        call = self._indicator_call = asyncio.ensure_future(self._set_indicator())
        self._indicating.add(self)
        await asyncio.shield(call)

    async def _set_indicator(self) -> None:
        t = self.target
        if t.assistant:
            await self._api.call(
                "assistant.threads.setStatus",
                channel_id=t.channel,
                thread_ts=t.thread_ts,
                status=self._settings.status_text,
            )
        elif t.question_ts is not None:
            await self._quiet("reactions.add", channel=t.channel, timestamp=t.question_ts, name=self._settings.reaction)
        self._indicator = True

    def _clear_indicator(self) -> None:
        """Take the status / reaction off (in the background, after any call still setting it)."""
        if self._cleared:
            return
        self._cleared = True
        self._indicating.discard(self)
        if self._indicator_call is None and not self._indicator:
            return
        self._spawn(self._remove_indicator())

    async def _remove_indicator(self) -> None:
        pending = self._indicator_call
        if pending is not None:
            await asyncio.wait([pending])
            if not pending.cancelled() and pending.exception() is not None:
                return  # it never went on
        t = self.target
        try:
            if t.assistant:
                await self._api.call(
                    "assistant.threads.setStatus", channel_id=t.channel, thread_ts=t.thread_ts, status=""
                )
            elif t.question_ts is not None:
                await self._quiet(
                    "reactions.remove", channel=t.channel, timestamp=t.question_ts, name=self._settings.reaction
                )
        except PlatformError as e:
            log.warning("slack.indicator_not_cleared", error=str(e))

    async def _quiet(self, method: str, **params: Any) -> None:
        try:
            await self._api.call(method, **params)
        except PlatformError as e:
            if not any(q in str(e) for q in QUIET):
                raise

    def _shown(self) -> None:
        self._clear_indicator()

    def end(self) -> None:
        """The reply is over whatever it showed (the channel closing): the indicator comes off."""
        self._clear_indicator()

    # --- ReplySurface ----------------------------------------------------------------------------

    async def draft(self, text: str) -> None:
        if self.fallback is not None:
            await self._post_or_update(text)
            return
        t = self.target
        if self._stream_ts is None:
            try:
                data = await self._api.call(
                    "chat.startStream",
                    channel=t.channel,
                    thread_ts=t.thread_ts,
                    markdown_text=text,
                    recipient_team_id=t.team_id,
                    recipient_user_id=t.user_id,
                )
            except StreamUnavailable as e:
                self._fall_back(e)
                await self._post_or_update(text)
                return
            self._stream_ts, self._streamed = str(data["ts"]), text
        else:
            if not text.startswith(self._streamed):
                return  # a stream cannot take text back; finish() sets the exact text
            added = text[len(self._streamed) :]
            if not added:
                return
            try:
                await self._api.call("chat.appendStream", channel=t.channel, ts=self._stream_ts, markdown_text=added)
            except StreamUnavailable as e:
                self._fall_back(e)
                self._post_ts, self._stream_ts = self._stream_ts, None  # the message stays: update it
                await self._post_or_update(text)
                return
            self._streamed = text
        self._shown()

    async def finish(self, text: str, *, plain: bool = False) -> MessageRef | None:
        try:
            if self._stream_ts is not None:
                return await self._finish_stream(text, plain)
            if self._post_ts is not None:
                ts = self._post_ts
                self._gate()
                await self._update(ts, text, plain, fallback=True)
                self._post_ts = None
                return self._ref(ts)
            if self.fallback is not None:
                self._gate()
                return await self._post(text, plain, fallback=True)
            return await self.send(text, plain=plain)
        except RateLimited:
            raise
        except PlatformError:
            self._clear_indicator()  # the reply may end without text: the indicator must not stay
            raise

    async def _finish_stream(self, text: str, plain: bool) -> MessageRef:
        t, ts = self.target, self._stream_ts
        assert ts is not None
        try:
            if text.startswith(self._streamed) and not plain:
                rest = text[len(self._streamed) :]
                await self._api.call("chat.stopStream", channel=t.channel, ts=ts, markdown_text=rest or None)
                self._streamed = text
            else:
                await self._api.call("chat.stopStream", channel=t.channel, ts=ts)
                self._stream_ts, self._post_ts = None, ts
                self._streamed = ""
                await self._update(ts, text, plain)
                self._post_ts = None
        except StreamUnavailable as e:  # expired, or stopped by a try whose answer was lost
            self._fall_back(e)
            self._stream_ts, self._post_ts = None, ts
            self._gate()
            await self._update(ts, text, plain, fallback=True)
            self._post_ts = None
            return self._ref(ts)
        self._stream_ts, self._streamed = None, ""
        self._shown()
        return self._ref(ts)

    async def send(self, text: str, *, plain: bool = False) -> MessageRef:
        try:
            return await self._post(text, plain)
        except RateLimited:
            raise
        except PlatformError:
            self._clear_indicator()
            raise

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None:
        try:
            await self._update(ref.id, text, plain)
        except RateLimited:
            raise
        except PlatformError:
            self._clear_indicator()
            raise

    async def delete(self, ref: MessageRef) -> None:
        await self._api.call("chat.delete", channel=self.target.channel, ts=ref.id)

    # --- the fallback ----------------------------------------------------------------------------

    def _fall_back(self, e: StreamUnavailable) -> None:
        if self.fallback is None:
            self.fallback = e.error
            log.info("slack.stream_fallback", channel=self.target.channel, reason=e.error)

    def _gate(self) -> None:
        """Slack's pace for this reply's fallback requests: RateLimited (no call) when too soon."""
        wait = self._pace.delay()
        if self._last_fallback is not None:
            wait = max(wait, self._last_fallback + self._settings.edit_interval - self._clock())
        if wait > 0:
            raise RateLimited(wait, f"slack: pacing the fallback ({wait:.3f}s)")

    async def _post_or_update(self, text: str) -> None:
        self._gate()
        if self._post_ts is None:
            ref = await self._post(text, False, fallback=True)
            self._post_ts = ref.id
        else:
            await self._update(self._post_ts, text, False, fallback=True)

    async def _post(self, text: str, plain: bool, *, fallback: bool = False) -> MessageRef:
        t = self.target
        if t.response_url is not None:
            await self._respond(text, plain)
            return MessageRef(f"response:{t.response_url}")
        self._pace.take()
        try:
            data = await self._api.call(
                "chat.postMessage",
                channel=t.channel,
                thread_ts=t.thread_ts,
                text=_text(text, plain),
                mrkdwn=False if plain else None,
                unfurl_links=False,
                unfurl_media=False,
            )
        finally:
            if fallback:
                self._last_fallback = self._clock()
        self._shown()
        return self._ref(str(data["ts"]))

    async def _update(self, ts: str, text: str, plain: bool, *, fallback: bool = False) -> None:
        t = self.target
        if t.response_url is not None:
            await self._respond(text, plain, replace=True)
            return
        self._pace.take()
        try:
            await self._api.call("chat.update", channel=t.channel, ts=ts, text=_text(text, plain))
        finally:
            if fallback:
                self._last_fallback = self._clock()
        self._shown()

    async def _respond(self, text: str, plain: bool, *, replace: bool = False) -> None:
        """A slash command's answer, through its response_url (seen only by the person)."""
        assert self.target.response_url is not None and self._http is not None
        body = {"text": _text(text, plain), "response_type": "ephemeral", "replace_original": replace}
        try:
            async with self._http().post(self.target.response_url, json=body) as resp:
                if resp.status == 429:
                    raise RateLimited(float(resp.headers.get("Retry-After", "1")))
                if resp.status >= 400:
                    raise PlatformError(f"slack: response_url answered {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise PlatformError(f"slack: response_url failed: {type(e).__name__}: {e}") from e

    def _ref(self, ts: str) -> MessageRef:
        return MessageRef(ts, extra=self.target.channel)


def _text(text: str, plain: bool) -> str:
    return escape(text) if plain else RENDERER.render(text)
