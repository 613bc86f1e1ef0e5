"""The four reply calls (sendChatAction, sendMessage, editMessageText, sendMessageDraft) straight
over the shared aiohttp session, and the translation of Bot API failures into bot.errors.

python-telegram-bot builds a full `Message` object from every answer and runs every call through
its generic machinery: about 0.6-0.9 ms of CPU per call here, against about 0.2 ms for the same
request sent directly. On the reply path — typing, drafts, edits, the final send, for every chat at
once — that difference is the runtime's latency budget, so these four calls skip PTB (set
`fast_calls = false` to send them through PTB's typed methods instead). PTB keeps everything else:
getMe, polling, webhooks, Update parsing. The request is the same form-encoded POST PTB sends
(strings as they are, everything else JSON-encoded) to the same base URL, on the same connections;
the body is encoded here in one pass (aiohttp's FormData costs about five times as much).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import aiohttp

from bot.errors import MarkupRejected, MessageGone, NotModified, PlatformError, RateLimited
from channels.telegram.transport import AiohttpRequest, scrub


def classify(status: int, description: str, kind: str = "") -> PlatformError:
    """A failed Bot API call as a shared error (retry_after is handled by the caller)."""
    low = description.lower()
    if status == 400 or kind == "BadRequest":
        if "message is not modified" in low:
            return NotModified(description)
        if "can't parse entities" in low or "can't find end" in low or "unsupported start tag" in low:
            return MarkupRejected(description)
        if (
            "message to edit not found" in low
            or "message can't be edited" in low
            or "message_id_invalid" in low
            or "message to be replied not found" in low
        ):
            return MessageGone(description)
        return PlatformError(f"telegram refused the call: {description}")
    if status == 403 or kind == "Forbidden":
        return PlatformError(f"telegram: not allowed to write here: {description}")
    if status in (401, 404) or kind == "InvalidToken":
        return PlatformError(f"telegram: the bot token was refused: {description}")
    return PlatformError(f"telegram: HTTP {status}: {description}" if status else f"telegram: {description}")


_JSON = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps(v, separators=...) builds one per call
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form_body(params: dict[str, Any]) -> bytes:
    """`params` as PTB puts them on the wire: strings as they are, anything else as JSON, urlencoded."""
    parts = []
    for k, v in params.items():
        if isinstance(v, str):
            s = v
        elif v is True or v is False:
            s = "true" if v else "false"
        elif type(v) is int:
            s = str(v)
        else:
            s = _JSON(v)
        parts.append(f"{quote_plus(k)}={quote_plus(s)}")
    return "&".join(parts).encode()


class FastCalls:
    """POST one Bot API method over the bot's aiohttp session; the result, or a bot.errors error."""

    __slots__ = ("_base", "_request")

    def __init__(self, request: AiohttpRequest, base_url: str) -> None:
        self._request = request
        self._base = base_url.rstrip("/") + "/"  # PTB's resolved base: ".../bot<token>"

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        session = self._request.session
        data = form_body(params)
        try:
            async with session.post(
                self._base + method, data=data, headers=_FORM, timeout=self._request.default_timeout
            ) as resp:
                status = resp.status
                body = await resp.read()
        except TimeoutError:
            raise PlatformError(f"telegram: {method} timed out (it may still have been delivered)") from None
        except aiohttp.ClientError as e:
            raise PlatformError(f"telegram: {method}: {type(e).__name__}: {scrub(str(e))}") from None
        try:
            payload = json.loads(body)
        except ValueError:
            raise PlatformError(f"telegram: {method}: HTTP {status}, answer is not JSON") from None
        if payload.get("ok"):
            return payload.get("result")
        description = str(payload.get("description") or f"HTTP {status}")
        parameters = payload.get("parameters") or {}
        retry_after = parameters.get("retry_after")
        if retry_after:
            raise RateLimited(float(retry_after), f"telegram flood control: retry after {retry_after}s")
        if parameters.get("migrate_to_chat_id"):
            raise PlatformError(f"telegram: the group became a supergroup ({parameters['migrate_to_chat_id']})")
        raise classify(status, description)
