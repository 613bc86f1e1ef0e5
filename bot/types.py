"""The shared vocabulary: what a message is, what a channel can do, what a model returns.

Nothing platform-specific lives here; adapters translate their events into these types.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Streaming(StrEnum):
    """How a channel can show a reply while it is being written."""

    NATIVE = "native"  # the platform has a real stream (Slack chat streams, our webchat)
    DRAFT = "draft"  # an animated preview finished by a normal send (Telegram sendMessageDraft)
    EDIT = "edit"  # send a message, then edit it as text arrives
    NONE = "none"  # typing indicator until one final send


class LatencyClass(StrEnum):
    """How long a person on a channel waits comfortably for the answer to start."""

    SYNC = "sync"
    SEMI_SYNC = "semi_sync"
    ASYNC = "async"
    BATCH = "batch"

    @property
    def target_seconds(self) -> float:
        return _LATENCY_TARGETS[self]


_LATENCY_TARGETS = {
    LatencyClass.SYNC: 0.5,
    LatencyClass.SEMI_SYNC: 1.0,
    LatencyClass.ASYNC: 3.0,
    LatencyClass.BATCH: 10.0,
}


class Markup(StrEnum):
    PLAIN = "plain"
    MARKDOWN = "markdown"  # Discord, webchat, console
    TELEGRAM_HTML = "telegram_html"
    SLACK_MRKDWN = "slack_mrkdwn"


class ChatKind(StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    THREAD = "thread"
    DM = "dm"
    COMMAND = "command"


@dataclass(frozen=True, slots=True)
class RateBudget:
    """At most `requests` message sends + edits every `per_seconds` in one chat, shared by all replies there."""

    requests: int
    per_seconds: float


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one conversation on one platform can do; adapters answer per conversation."""

    streaming: Streaming
    latency_class: LatencyClass
    max_chars: int  # longest single message, counted on the source text (see bot.rendering)
    min_edit_interval: float = 1.0
    typing_refresh: float | None = None  # seconds before a typing indicator must be re-sent; None: no indicator
    markup: Markup = Markup.PLAIN  # what the adapter's renderer produces from the reply's Markdown
    first_chunk_chars: int = 12  # send the first visible text once this much (a few words) exists
    min_send_interval: float | None = None  # seconds between two new messages of a reply; None: min_edit_interval
    chat_budget: RateBudget | None = None  # the chat's own limit across replies; None: no such limit
    preview_marker: str = ""  # appended to a message while it is still being written (" ▌"); EDIT mode
    # an answer that took longer than this many seconds ends as new messages (edits raise no
    # notification) and the previews are deleted; EDIT mode, surfaces that can delete; None: off
    renotify_after: float | None = None
    # a reply message deleted while it is written: True sends the part again as a new message;
    # False stops the reply quietly (where deleting it is how a person says "stop")
    resend_deleted: bool = True


@dataclass(frozen=True, slots=True)
class Command:
    """A command addressed to the bot: `/model fast` typed as text, or a platform's slash command.

    Parsed once (by the adapter, or by the intake from the text) and carried on the message.
    `target` is the bot a command names (`/model@OtherBot`), if any.
    """

    name: str
    args: str = ""
    target: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message from a person, already translated out of the platform's types.

    Plain data only (it can be serialised and queued): ids, text and times. The platform's live
    objects (a socket, a client context) stay in the adapter, found again from these ids.
    """

    channel: str
    conversation: str  # see conversation_key(); strict order is kept per conversation
    sender_id: str
    text: str
    message_id: str  # unique per channel: (channel, message_id) identifies a delivery
    chat_kind: ChatKind = ChatKind.PRIVATE
    sender_name: str | None = None
    sender_handle: str | None = None  # @username where the platform has one (allow-lists)
    chat_id: str = ""  # the platform's chat / channel id (per-chat budget, allow-lists)
    thread_id: str | None = None  # thread or topic inside the chat
    workspace_id: str | None = None  # Slack workspace / Discord guild
    reply_to: str | None = None  # the platform's id of the message a reply answers (quote / reference)
    edit_of: str | None = None  # an edited question: the message_id of the message it changes
    command: Command | None = None
    received_at: float = field(default_factory=time.time)  # wall clock, seconds
    received_mono: float = field(default_factory=time.perf_counter, compare=False)  # for latency figures


def conversation_key(channel: str, chat_id: object, thread_id: object | None = None) -> str:
    """A stable string naming one conversation: one chat, or one thread/topic inside it."""
    if thread_id is None:
        return f"{channel}:{chat_id}"
    return f"{channel}:{chat_id}:{thread_id}"


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A sent message the adapter can edit later; `id` is the platform's, `extra` is adapter-private."""

    id: str
    extra: Any = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Delta:
    """One piece of a provider's stream: text, and on the last piece the usage and timings."""

    text: str = ""
    usage: Usage | None = None
    ttft: float | None = None  # seconds from request to the first text, on the final delta
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What a provider needs: its own model id, the prompt (static parts first), and parameters."""

    model: str
    messages: tuple[ChatTurn, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # passed through (reasoning_effort, service_tier, ...)
