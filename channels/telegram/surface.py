"""The primitive moves on one Telegram reply, and the translation of Bot API errors.

One object per reply. Each method makes exactly one Bot API call and either succeeds or raises one
of bot.errors — no retry, no waiting for flood control (ReplyStream owns both). The one exception
to "no pacing" is the per-group message budget (about 20 sends + edits a minute in one group,
shared by every reply there): that limiter belongs to the chat, not to one reply, so the channel
hands the group's limiter to each surface and sends / edits pass through it.
"""

from __future__ import annotations

import datetime as dtm
from dataclasses import dataclass
from typing import Any

from aiolimiter import AsyncLimiter
from telegram import Bot, LinkPreviewOptions, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError, TimedOut

from bot.errors import MarkupRejected, MessageGone, NotModified, PlatformError, RateLimited
from bot.types import MessageRef
from channels.telegram.render import markdown_to_html


@dataclass(frozen=True, slots=True)
class TgContext:
    """Where a message came from: everything the surface needs to answer it (InboundMessage.platform)."""

    chat_id: int
    chat_type: str  # "private" | "group" | "supergroup"
    message_id: int
    thread_id: int | None = None  # forum topic the message is in
    user_id: int | None = None

    @property
    def private(self) -> bool:
        return self.chat_type == "private"


_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def translate(err: TelegramError) -> PlatformError:
    """A Bot API error as one of the shared errors ReplyStream acts on."""
    if isinstance(err, RetryAfter):
        ra = getattr(err, "_retry_after", None)
        seconds = ra.total_seconds() if isinstance(ra, dtm.timedelta) else float(err.retry_after)  # type: ignore[arg-type]
        return RateLimited(seconds, f"telegram flood control: retry after {seconds:g}s")
    text = str(err.message if hasattr(err, "message") else err)
    low = text.lower()
    if isinstance(err, BadRequest):
        if "message is not modified" in low:
            return NotModified(text)
        if "can't parse entities" in low or "can't find end" in low or "unsupported start tag" in low:
            return MarkupRejected(text)
        if (
            "message to edit not found" in low
            or "message can't be edited" in low
            or "message_id_invalid" in low
            or "message to be replied not found" in low
        ):
            return MessageGone(text)
        return PlatformError(f"telegram refused the call: {text}")
    if isinstance(err, Forbidden):
        return PlatformError(f"telegram: not allowed to write here: {text}")
    if isinstance(err, ChatMigrated):
        return PlatformError(f"telegram: the group became a supergroup ({err.new_chat_id})")
    if isinstance(err, TimedOut):
        return PlatformError(f"telegram: request timed out (it may still have been delivered): {text}")
    return PlatformError(f"telegram: {type(err).__name__}: {text}")


class TelegramSurface:
    """ReplySurface for one reply in one Telegram chat (or forum topic)."""

    __slots__ = ("_bot", "ctx", "_quote", "_preview", "_limiter", "draft_id", "_quoted", "calls")

    def __init__(
        self,
        bot: Bot,
        ctx: TgContext,
        *,
        draft_id: int,
        quote: bool = False,
        link_previews: bool = False,
        limiter: AsyncLimiter | None = None,
    ) -> None:
        self._bot = bot
        self.ctx = ctx
        self.draft_id = draft_id or 1  # Telegram wants a non-zero id, the same for the whole reply
        self._quote = quote
        self._preview = None if link_previews else _NO_PREVIEW
        self._limiter = limiter
        self._quoted = False
        self.calls = 0

    # --- ReplySurface --------------------------------------------------------------------------

    async def typing(self) -> None:
        try:
            await self._bot.send_chat_action(
                self.ctx.chat_id, ChatAction.TYPING, message_thread_id=self.ctx.thread_id
            )
        except TelegramError as e:
            raise translate(e) from e

    async def send(self, text: str, *, plain: bool = False) -> MessageRef:
        body, mode = self._body(text, plain)
        kw: dict[str, Any] = {}
        if self._quote and not self._quoted:
            kw["reply_parameters"] = ReplyParameters(
                message_id=self.ctx.message_id, allow_sending_without_reply=True
            )
        if self._limiter is not None:
            await self._limiter.acquire()
        try:
            msg = await self._bot.send_message(
                self.ctx.chat_id,
                body,
                parse_mode=mode,
                message_thread_id=self.ctx.thread_id,
                link_preview_options=self._preview,
                **kw,
            )
        except TelegramError as e:
            raise translate(e) from e
        finally:
            self.calls += 1
        self._quoted = True
        return MessageRef(str(msg.message_id), extra=msg.message_id)

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None:
        body, mode = self._body(text, plain)
        mid = ref.extra if isinstance(ref.extra, int) else int(ref.id)
        if self._limiter is not None:
            await self._limiter.acquire()
        try:
            await self._bot.edit_message_text(
                body,
                chat_id=self.ctx.chat_id,
                message_id=mid,
                parse_mode=mode,
                link_preview_options=self._preview,
            )
        except TelegramError as e:
            raise translate(e) from e
        finally:
            self.calls += 1

    async def draft(self, text: str, *, plain: bool = False) -> None:
        """Show `text` (the reply so far) as an animated draft. Empty text is never sent."""
        if not text.strip():
            return
        body, mode = self._body(text, plain)
        if not body.strip():
            return
        try:
            await self._bot.send_message_draft(
                self.ctx.chat_id,
                self.draft_id,
                body,
                message_thread_id=self.ctx.thread_id,
                parse_mode=mode,
            )
        except TelegramError as e:
            raise translate(e) from e
        finally:
            self.calls += 1

    async def finish(self, text: str, *, plain: bool = False) -> MessageRef | None:
        """A draft is only a preview: the reply is kept by one normal sendMessage.

        If Telegram refuses the HTML, the same text goes once more as plain text right here:
        ReplyStream retries plain only for send / edit, and a refused sendMessage created nothing,
        so this cannot duplicate. (Drop this fallback once ReplyStream passes plain= to finish.)
        """
        if plain:
            return await self.send(text, plain=True)
        try:
            return await self.send(text)
        except MarkupRejected:
            return await self.send(text, plain=True)

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _body(text: str, plain: bool) -> tuple[str, str | None]:
        if plain:
            return text, None
        html = markdown_to_html(text)
        if not html.strip():  # e.g. only whitespace / markup: show the source as it is
            return text, None
        return html, ParseMode.HTML
