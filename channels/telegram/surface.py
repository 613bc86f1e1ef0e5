"""The primitive moves on one Telegram reply, and the translation of Bot API errors.

One object per reply. Each method makes exactly one Bot API call and either succeeds or raises one
of bot.errors: no retry, no pacing, no waiting for flood control, no group budget (ReplyStream owns
all of them, and retries a refused HTML body as plain text on send, edit and finish alike).

The calls go out through `FastCalls` (aiohttp, no PTB objects; the default) or PTB's typed methods.
"""

from __future__ import annotations

import datetime as dtm
from dataclasses import dataclass
from typing import Any

from telegram import Bot, LinkPreviewOptions, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import ChatMigrated, RetryAfter, TelegramError

from bot.errors import PlatformError, RateLimited
from bot.types import ChatKind, InboundMessage, MessageRef
from channels.telegram.api import FastCalls, classify
from channels.telegram.render import RENDERER


@dataclass(frozen=True, slots=True)
class TgContext:
    """Where a message came from: everything the surface needs to answer it (from its InboundMessage)."""

    chat_id: int
    chat_type: str  # "private" | "group" | "supergroup"
    message_id: int
    thread_id: int | None = None  # forum topic the message is in
    user_id: int | None = None

    @classmethod
    def of(cls, msg: InboundMessage) -> TgContext:
        return cls(
            int(msg.chat_id),
            "private" if msg.chat_kind is ChatKind.PRIVATE else "group",
            int(msg.reply_to or 0),
            int(msg.thread_id) if msg.thread_id is not None else None,
            int(msg.sender_id) if msg.sender_id.lstrip("-").isdigit() else None,
        )

    @property
    def private(self) -> bool:
        return self.chat_type == "private"


_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_NO_PREVIEW_JSON = {"is_disabled": True}


def translate(err: TelegramError) -> PlatformError:
    """A python-telegram-bot error as one of the shared errors ReplyStream acts on."""
    if isinstance(err, RetryAfter):
        # the exact value, whichever type PTB is configured to expose (its `retry_after` property
        # warns about a coming int -> timedelta change); no public accessor for it
        ra = getattr(err, "_retry_after", None)
        seconds = ra.total_seconds() if isinstance(ra, dtm.timedelta) else float(err.retry_after)  # type: ignore[arg-type]  # int unless PTB_TIMEDELTA is set
        return RateLimited(seconds, f"telegram flood control: retry after {seconds:g}s")
    if isinstance(err, ChatMigrated):
        return PlatformError(f"telegram: the group became a supergroup ({err.new_chat_id})")
    text = str(getattr(err, "message", err))
    kind = type(err).__name__
    if kind == "TimedOut":
        return PlatformError(f"telegram: request timed out (it may still have been delivered): {text}")
    if kind in ("BadRequest", "Forbidden", "InvalidToken"):
        return classify(0, text, kind)
    return PlatformError(f"telegram: {kind}: {text}")


class TelegramSurface:
    """ReplySurface for one reply in one Telegram chat (or forum topic)."""

    __slots__ = (
        "_bot",
        "_fast",
        "_previews",
        "_quote",
        "_quoted",
        "calls",
        "ctx",
        "draft_id",
    )

    def __init__(
        self,
        bot: Bot,
        ctx: TgContext,
        *,
        draft_id: int,
        quote: bool = False,
        link_previews: bool = False,
        fast: FastCalls | None = None,
    ) -> None:
        self._bot = bot
        self._fast = fast
        self.ctx = ctx
        self.draft_id = draft_id or 1  # Telegram wants a non-zero id, the same for the whole reply
        self._quote = quote
        self._previews = link_previews
        self._quoted = False
        self.calls = 0

    # --- ReplySurface --------------------------------------------------------------------------

    async def typing(self) -> None:
        ctx = self.ctx
        self.calls += 1
        if self._fast is not None:
            params: dict[str, Any] = {"chat_id": ctx.chat_id, "action": "typing"}
            if ctx.thread_id is not None:
                params["message_thread_id"] = ctx.thread_id
            await self._fast.call("sendChatAction", params)
            return
        try:
            await self._bot.send_chat_action(ctx.chat_id, ChatAction.TYPING, message_thread_id=ctx.thread_id)
        except TelegramError as e:
            raise translate(e) from e

    async def send(self, text: str, *, plain: bool = False) -> MessageRef:
        body, mode = self._body(text, plain)
        quote = self._quote and not self._quoted
        ctx = self.ctx
        self.calls += 1
        if self._fast is not None:
            params: dict[str, Any] = {"chat_id": ctx.chat_id, "text": body}
            if mode:
                params["parse_mode"] = mode
            if ctx.thread_id is not None:
                params["message_thread_id"] = ctx.thread_id
            if not self._previews:
                params["link_preview_options"] = _NO_PREVIEW_JSON
            if quote:
                params["reply_parameters"] = {"message_id": ctx.message_id, "allow_sending_without_reply": True}
            result = await self._fast.call("sendMessage", params)
            mid = int(result["message_id"])
        else:
            kw: dict[str, Any] = {}
            if quote:
                kw["reply_parameters"] = ReplyParameters(message_id=ctx.message_id, allow_sending_without_reply=True)
            try:
                msg = await self._bot.send_message(
                    ctx.chat_id,
                    body,
                    parse_mode=mode,
                    message_thread_id=ctx.thread_id,
                    link_preview_options=None if self._previews else _NO_PREVIEW,
                    **kw,
                )
            except TelegramError as e:
                raise translate(e) from e
            mid = msg.message_id
        self._quoted = True
        return MessageRef(str(mid), extra=mid)

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None:
        body, mode = self._body(text, plain)
        mid = ref.extra if isinstance(ref.extra, int) else int(ref.id)
        self.calls += 1
        if self._fast is not None:
            params: dict[str, Any] = {"chat_id": self.ctx.chat_id, "message_id": mid, "text": body}
            if mode:
                params["parse_mode"] = mode
            if not self._previews:
                params["link_preview_options"] = _NO_PREVIEW_JSON
            await self._fast.call("editMessageText", params)
            return
        try:
            await self._bot.edit_message_text(
                body,
                chat_id=self.ctx.chat_id,
                message_id=mid,
                parse_mode=mode,
                link_preview_options=None if self._previews else _NO_PREVIEW,
            )
        except TelegramError as e:
            raise translate(e) from e

    async def draft(self, text: str, *, plain: bool = False) -> None:
        """Show `text` (the reply so far) as an animated draft. Empty text is never sent."""
        if not text.strip():
            return
        body, mode = self._body(text, plain)
        if not body.strip():
            return
        ctx = self.ctx
        self.calls += 1
        if self._fast is not None:
            params: dict[str, Any] = {"chat_id": ctx.chat_id, "draft_id": self.draft_id, "text": body}
            if mode:
                params["parse_mode"] = mode
            if ctx.thread_id is not None:
                params["message_thread_id"] = ctx.thread_id
            await self._fast.call("sendMessageDraft", params)
            return
        try:
            await self._bot.send_message_draft(
                ctx.chat_id, self.draft_id, body, message_thread_id=ctx.thread_id, parse_mode=mode
            )
        except TelegramError as e:
            raise translate(e) from e

    async def finish(self, text: str, *, plain: bool = False) -> MessageRef | None:
        """A draft is only a preview: the reply is kept by one normal sendMessage."""
        return await self.send(text, plain=plain)

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _body(text: str, plain: bool) -> tuple[str, str | None]:
        if plain:
            return text, None
        html = RENDERER.render(text)
        if not html.strip():  # e.g. only whitespace / markup: show the source as it is
            return text, None
        return html, ParseMode.HTML
