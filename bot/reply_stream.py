"""ReplyStream: the one place that turns model deltas into platform calls.

One stream per reply. The caller does::

    rs = ReplyStream(surface, caps, log=log)
    await rs.start()            # the moment the message is accepted: typing goes out at once
    async for delta in provider.stream(req):
        rs.push(delta.text)     # never blocks; delivery happens in one background task
    result = await rs.close()   # everything delivered; raises DeliveryFailed if it could not be
    # on a model failure or a cancel instead: result = await rs.abort("⚠️ The model stopped.")

What it guarantees, whatever the platform answers on the way:

- The visible text is exactly the pushed text, cut into `split_text(text, caps.max_chars)` parts
  (one message each). Parts are frozen while streaming only when the final split is sure to cut at
  the same place (`bot.splitting.Splitter`), so a frozen message never changes again.
- Pacing: every text request of the stream (send, edit, draft, finish) starts at least
  `caps.min_edit_interval` after the previous one ended, the final one included, and only one is
  in flight at a time; a request that creates a message (send, a draft's finish) also waits
  `caps.min_send_interval` after the previous one (fast draft previews, messages at the chat's
  pace), and every send / edit / finish also takes a slot of the chat's budget (`budget`, from
  `caps.chat_budget`, shared by every reply in that chat). Each request carries the newest text
  (coalescing); an edit to the text a message already shows is skipped. The first visible text goes out as soon as
  `caps.first_chunk_chars` characters exist, without waiting for an interval.
- RateLimited(retry_after): wait the whole retry_after (no cap), then send the newest text.
  NotModified is success. MarkupRejected on send / edit / finish: the same call again with plain=True, and
  plain from then on for that message. MessageGone on edit: the part is sent again as a new message
  (or, with `caps.resend_deleted` False, the reply stops quietly and `gone` is set). ClientGone
  on any request: nobody is there any more; the reply stops quietly and `gone` is set.
  Other errors: two more tries with a short backoff; while streaming, previews then pause until
  close(); at close() the final delivery gets its tries too, then close() raises DeliveryFailed
  (carrying the ReplyResult) so the caller can post a notice. Nothing is dropped silently.
- Typing (if `caps.typing_refresh`): sent at start(), refreshed every typing_refresh seconds, and
  stopped for good before the first text request starts (with Streaming.NONE: the final send).
  Typing errors are logged, never fatal.

Modes: NONE sends everything at close(); EDIT sends the first chunk and then edits it (each
preview ending in `caps.preview_marker`, if any, which the final edit removes); DRAFT and
NATIVE call `surface.draft(text_of_the_part_so_far)` (never empty) and `surface.finish(part)` per
part (finish may come without any draft for that part: it must then simply send it).

Hot path: push() appends to a list of pieces and sets an event (O(len(delta))); the text is joined
only when a request is about to be made. Logs never carry text content.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.channel import DeletingSurface, ReplySurface
from bot.errors import ClientGone, MarkupRejected, MessageGone, NotModified, PlatformError, RateLimited
from bot.splitting import LOOKAHEAD, Part, Splitter, fence_at_end
from bot.state import RateGate
from bot.types import Capabilities, MessageRef, Streaming

__all__ = ["Action", "DeliveryFailed", "ReplyResult", "ReplyStream"]

MAX_ATTEMPTS = 3  # tries of one request failing with a generic PlatformError
BACKOFF = (0.1, 0.3)  # seconds before the 2nd and 3rd try
MIN_TYPING_REFRESH = 0.05
BUDGET_WAIT = 0.001  # a budget slot that took longer than this to get was a wait (plan again)


@dataclass(slots=True)
class ReplyResult:
    text: str  # the whole reply (with the notice after abort())
    parts: list[str]  # the text of each message, in order (== split_text(text, max_chars))
    refs: list[MessageRef]  # the messages sent (finish() may return None: then fewer refs)
    first_visible_at: float | None  # clock() when text first became visible
    requests: int  # text requests made (send/edit/draft/finish, failed ones included; not typing)
    error: BaseException | None = None  # set when delivery failed (close() then raises DeliveryFailed)


class DeliveryFailed(PlatformError):
    """close() could not make the platform show the whole reply; `result` says what was done."""

    def __init__(self, result: ReplyResult) -> None:
        super().__init__(f"reply delivery failed: {type(result.error).__name__}: {result.error}")
        self.result = result


class _NullLog:
    def _noop(self, *args: Any, **kw: Any) -> None:
        return None

    debug = info = warning = error = exception = _noop


_NULL_LOG = _NullLog()


class Action(StrEnum):
    """The platform requests a stream makes (typing aside)."""

    SEND = "send"  # a new message
    EDIT = "edit"  # new text in a message already sent
    DRAFT = "draft"  # the part so far, in a draft / native stream
    FINISH = "finish"  # close a draft / native stream with the part's final text


class _GiveUp(Exception):
    def __init__(self, error: BaseException) -> None:
        self.error = error


@dataclass(slots=True)
class _Slot:
    """One message (EDIT / NONE) or one draft-then-finish (DRAFT / NATIVE), i.e. one part."""

    ref: MessageRef | None = None
    shown: str | None = None  # what the person sees in it now (message text or draft text)
    plain: bool = False
    done: bool = False
    drafts_off: bool = False


class ReplyStream:
    def __init__(
        self,
        surface: ReplySurface,
        caps: Capabilities,
        *,
        clock: Callable[[], float] = time.perf_counter,
        log: Any = None,
        budget: RateGate | None = None,
        existing: Sequence[MessageRef] = (),
    ) -> None:
        """`existing`: messages of an earlier reply this one replaces in place (an edited question);
        its parts are edited into them, in order (needs Streaming.EDIT or NONE)."""
        self._surface = surface
        self._budget = budget
        self._budget_held = False
        self._caps = caps
        self._clock = clock
        self._log = log if log is not None else _NULL_LOG
        self._live = caps.streaming is not Streaming.NONE
        self._drafting = caps.streaming in (Streaming.DRAFT, Streaming.NATIVE)
        self._interval = max(0.0, float(caps.min_edit_interval))
        send_interval = caps.min_send_interval if caps.min_send_interval is not None else caps.min_edit_interval
        self._send_interval = max(0.0, float(send_interval))
        self._last_send: float | None = None  # end of the last request that created a message
        self._first_chunk = max(1, int(caps.first_chunk_chars))
        self._limit = caps.max_chars

        self._pieces: list[str] = []
        self._len = 0
        self._splitter = Splitter(caps.max_chars)
        self._parts: list[Part] = []
        self._slots: list[_Slot] = [_Slot(ref=ref) for ref in existing]
        self._next_slot = 0  # every slot before this one is finished

        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._typing_task: asyncio.Task[None] | None = None
        self._typing_wake = asyncio.Event()
        self._typing_stopped = caps.typing_refresh is None
        self._started = False
        self._started_at: float | None = None
        self._closing = False
        self._result: ReplyResult | None = None

        self._last_request: float | None = None
        self._not_before = float("-inf")
        self._failures = 0
        self._suspended = False
        self._requests = 0
        self._error: BaseException | None = None

        self.first_visible_at: float | None = None
        # why nothing more is sent: "deleted" (on the platform, with resend_deleted off) or
        # "client_gone" (ClientGone: nobody is there); "" while the reply goes on
        self.gone = ""
        self.typing_at: float | None = None

    # --- the caller's side -------------------------------------------------------------------

    async def start(self) -> None:
        """Call the moment a message is accepted: starts typing (if any) without waiting for it."""
        if self._started:
            return
        self._started = True
        self._started_at = self._clock()
        if self._live:
            self._ensure_worker()
        if not self._typing_stopped and self._typing_task is None:
            # scheduled, not awaited: it goes out at the caller's next wait (routing, the provider
            # request), so the model call starts first and typing follows within a millisecond
            self._typing_task = asyncio.create_task(self._typing_loop(), name="reply-typing")

    def push(self, text: str) -> None:
        """Append a model delta. Never blocks; delivery happens in the stream's background task."""
        if not text:
            return
        if self._closing:
            raise RuntimeError("ReplyStream.push() after close() or abort()")
        self._pieces.append(text)
        self._len += len(text)
        if self._live:
            if self._worker is None:
                self._ensure_worker()
            self._wake.set()

    async def close(self) -> ReplyResult:
        """The model finished: deliver everything. Raises DeliveryFailed if the platform would not."""
        if self._result is None:
            stale = self._renotify()
            self._closing = True
            self._suspended = False
            self._failures = 0
            self._ensure_worker()
            self._wake.set()
            try:
                await self._worker  # type: ignore[misc]  # _ensure_worker() just set it
            except asyncio.CancelledError:
                self._stop_typing()
                raise
            finally:
                self._stop_typing()
            if stale and self._error is None:
                await self._delete(stale)
            self._result = self._make_result()
            self._log.debug(  # the responder logs the reply itself; this is detail
                "reply_stream.closed",
                mode=str(self._caps.streaming),
                chars=self._len,
                parts=len(self._result.parts),
                requests=self._requests,
                failed=self._error is not None,
            )
        if self._result.error is not None:
            raise DeliveryFailed(self._result)
        return self._result

    def _renotify(self) -> list[MessageRef]:
        """A long answer ends as new messages (an edit notifies nobody): forget the previews'
        messages so every part is sent again, and return them, to delete once that is done."""
        after = self._caps.renotify_after
        if after is None or self._drafting or self._started_at is None:
            return []
        if self._clock() - self._started_at < after or not isinstance(self._surface, DeletingSurface):
            return []
        stale = [slot.ref for slot in self._slots if slot.ref is not None]
        for slot in self._slots:
            slot.ref, slot.shown, slot.done = None, None, False
        self._next_slot = 0
        return stale

    async def _delete(self, refs: list[MessageRef]) -> None:
        surface = self._surface
        assert isinstance(surface, DeletingSurface)
        for ref in refs:
            try:
                await surface.delete(ref)
            except Exception as e:  # the final text is out; a preview left behind is only untidy
                self._log.warning("reply_stream.delete_failed", error=type(e).__name__)

    async def abort(self, notice: str) -> ReplyResult:
        """Failure or cancel: keep what was shown, add `notice` after it, stop typing.

        The notice becomes part of the reply (after a blank line; an open code block is closed
        first) and is delivered like close() would. Does not raise on delivery failure: the
        result's `error` says so.
        """
        self._stop_typing()
        if not self._closing:
            text = self._text()
            addition = _notice_suffix(text, notice)
            if addition:
                self.push(addition)
        try:
            return await self.close()
        except DeliveryFailed as e:
            return e.result

    # --- internals ---------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="reply-stream")

    def _text(self) -> str:
        pieces = self._pieces
        if len(pieces) == 1:
            return pieces[0]
        if not pieces:
            return ""
        joined = "".join(pieces)
        pieces.clear()
        pieces.append(joined)
        return joined

    def _slot(self, i: int) -> _Slot:
        while len(self._slots) <= i:
            self._slots.append(_Slot())
        return self._slots[i]

    def _typing_off(self) -> bool:
        """Whether typing was stopped (read through a call: it changes while the loop awaits)."""
        return self._typing_stopped

    def _stop_typing(self) -> None:
        if not self._typing_stopped:
            self._typing_stopped = True
            self._typing_wake.set()

    async def _typing_loop(self) -> None:
        refresh = max(float(self._caps.typing_refresh or 0.0), MIN_TYPING_REFRESH)
        while not self._typing_stopped:
            t0 = self._clock()
            if self.typing_at is None:
                self.typing_at = t0
            deadline = t0 + refresh
            try:
                await self._surface.typing()
            except asyncio.CancelledError:
                raise
            except RateLimited as e:
                deadline = max(deadline, self._clock() + e.retry_after)
                self._log.warning("reply_stream.typing_rate_limited", retry_after=e.retry_after)
            except Exception as e:  # typing is a nicety: log, never fail the reply
                self._log.warning("reply_stream.typing_failed", error=type(e).__name__)
            if self._typing_off():
                return
            delay = deadline - self._clock()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._typing_wake.wait(), delay)
                except TimeoutError:
                    pass

    def _freeze(self, final: bool) -> None:
        """Fix every part whose final shape is already certain."""
        sp = self._splitter
        text: str | None = None
        while not sp.done:
            if not final and self._len - sp.pos < sp.room() + LOOKAHEAD:
                return  # fits, or not enough text yet to decide where the cut goes
            if text is None:
                text = self._text()
            part = sp.next_part(text, final=final)
            if part is None:
                return
            self._parts.append(part)
            self._slot(len(self._parts) - 1)

    def _plan(self) -> tuple[Action, int, str] | None:
        """The next request to make, with the newest text: (kind, slot index, text), or None."""
        if self.gone:
            return None
        if self._closing:
            self._freeze(final=True)
        elif self._suspended:
            return None
        elif self._live and self._len - self._splitter.pos > self._splitter.room():
            self._freeze(final=False)

        parts, slots = self._parts, self._slots
        while self._next_slot < len(parts):
            i = self._next_slot
            part, slot = parts[i], slots[i]
            if not part.skip and not slot.done:
                if self._drafting:
                    return (Action.FINISH, i, part.text)
                if slot.ref is None:
                    return (Action.SEND, i, part.text)
                if slot.shown != part.text:
                    return (Action.EDIT, i, part.text)
                slot.done = True
            self._next_slot += 1

        if self._closing or not self._live:
            return None
        # The live part: the text after the last frozen part, shown as it grows.
        i = len(parts)
        slot = self._slot(i)
        if slot.drafts_off:
            return None
        rem = self._len - self._splitter.pos
        if i == 0 and slot.shown is None and rem < self._first_chunk:
            return None
        prefix = self._splitter.prefix()
        marker = "" if self._drafting else self._caps.preview_marker
        if len(prefix) + rem + len(marker) > self._limit:
            return None  # about to be cut; wait for the text that decides where
        display = prefix + self._text()[self._splitter.pos :]
        if not display.strip():
            return None
        display += marker  # "still writing": the final text (at close) comes without it
        if display == slot.shown:
            return None
        if self._drafting:
            return (Action.DRAFT, i, display)
        return (Action.SEND if slot.ref is None else Action.EDIT, i, display)

    async def _run(self) -> None:
        try:
            while True:
                action = self._plan()
                if action is None:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if await self._pace(action[0], action[1]):
                    continue  # newer text may have arrived while waiting: plan (and pace) again
                await self._execute(*action)
        except _GiveUp as g:
            self._error = g.error

    def _creates_message(self, kind: Action, i: int) -> bool:
        """A new message in the chat: a send; a draft's finish (Telegram keeps a draft with one
        sendMessage); in a native stream, the part's first draft (Slack's startStream) or a finish
        that never had one, while a later finish only closes what is already shown."""
        if kind is Action.SEND:
            return True
        if self._caps.streaming is not Streaming.NATIVE:
            return kind is Action.FINISH
        first = i >= len(self._slots) or self._slots[i].shown is None
        return kind in (Action.DRAFT, Action.FINISH) and first

    def _metered(self, kind: Action, i: int) -> bool:
        """Counts against the chat's budget: what creates or edits a message, except a native
        stream's own calls (a platform meters its streams apart from its messages; measured with
        Slack: a budgeted stream start made the tenth answer in a channel wait nine seconds)."""
        if self._caps.streaming is Streaming.NATIVE:
            return False
        return kind is Action.EDIT or self._creates_message(kind, i)

    async def _pace(self, kind: Action, i: int) -> bool:
        """Wait until the next request (of this kind) may start; True if it waited."""
        waited = False
        for _ in range(8):
            t = self._not_before
            if self._last_request is not None:
                t = max(t, self._last_request + self._interval)
            if self._creates_message(kind, i) and self._last_send is not None:
                t = max(t, self._last_send + self._send_interval)  # a new message: the chat's own pace
            delay = t - self._clock()
            if delay <= 0:
                break
            waited = True
            await asyncio.sleep(delay)
        if self._metered(kind, i) and self._budget is not None and not self._budget_held:
            # the chat's budget, shared with every other reply there; the slot is held until the
            # next metered request, and the text is planned again after the wait (coalescing)
            asked = self._clock()
            await self._budget.acquire()
            self._budget_held = True
            if self._clock() - asked > BUDGET_WAIT:  # it really waited: newer text may be there
                waited = True
        return waited

    async def _execute(self, kind: Action, i: int, text: str) -> None:
        slot = self._slots[i]
        self._stop_typing()  # the indicator must not outlive (or follow) the text
        creates = self._creates_message(kind, i)  # decided before the call changes what is shown
        if self._metered(kind, i):
            self._budget_held = False  # this request spends the budget slot _pace() took
        self._last_request = self._clock()
        self._requests += 1
        try:
            await self._call(kind, slot, text)
        finally:
            # pace from the end of this request: the platform sees requests at least an
            # interval apart even when one was slow on the way
            self._last_request = self._clock()
            if creates:
                self._last_send = self._last_request

    async def _call(self, kind: Action, slot: _Slot, text: str) -> None:
        surface = self._surface
        try:
            if kind is Action.SEND:
                slot.ref = await surface.send(text, plain=slot.plain)
            elif kind is Action.EDIT:
                assert slot.ref is not None
                await surface.edit(slot.ref, text, plain=slot.plain)
            elif kind is Action.DRAFT:
                await surface.draft(text)
            else:  # Action.FINISH
                slot.ref = await surface.finish(text, plain=slot.plain)
                slot.done = True
        except asyncio.CancelledError:
            raise
        except NotModified as e:
            if kind is Action.SEND:
                self._failed(kind, e)
                return
            if kind is Action.FINISH:
                slot.done = True
        except RateLimited as e:
            self._not_before = max(self._not_before, self._clock() + e.retry_after)
            self._log.warning("reply_stream.rate_limited", request=kind, retry_after=e.retry_after)
            return
        except MarkupRejected as e:
            if kind is not Action.DRAFT and not slot.plain:
                slot.plain = True  # same call again, as plain text, from now on for this message
                self._log.warning("reply_stream.markup_rejected", request=kind)
            elif kind is Action.DRAFT:
                slot.drafts_off = True  # the preview can't show it; finish() will
                self._log.warning("reply_stream.markup_rejected", request=kind)
            else:
                self._failed(kind, e)
            return
        except ClientGone:
            self.gone = "client_gone"  # nobody will see the rest: nothing more is sent, quietly
            self._log.info("reply_stream.client_gone")
            return
        except MessageGone as e:
            if kind is Action.EDIT and not self._caps.resend_deleted:
                self.gone = "deleted"  # the person deleted it: nothing more is sent, quietly
                self._log.info("reply_stream.reply_deleted")
                return
            if kind is Action.EDIT:
                slot.ref = None  # deleted under us: send the part again as a new message
                slot.shown = None
                self._log.warning("reply_stream.message_gone")
            elif kind is Action.DRAFT:
                slot.drafts_off = True
                self._log.warning("reply_stream.draft_gone")
            else:
                self._failed(kind, e)
            return
        except Exception as e:  # PlatformError, or an adapter that leaked its own error
            self._failed(kind, e)
            return
        slot.shown = text
        self._failures = 0
        if self.first_visible_at is None:
            self.first_visible_at = self._clock()

    def _failed(self, kind: Action, error: BaseException) -> None:
        self._failures += 1
        self._log.warning(
            "reply_stream.request_failed", request=kind, attempt=self._failures, error=type(error).__name__
        )
        if self._failures >= MAX_ATTEMPTS:
            self._failures = 0
            if self._closing:
                raise _GiveUp(error)
            self._suspended = True  # stop previews; close() tries the final delivery again
            return
        self._not_before = max(self._not_before, self._clock() + BACKOFF[min(self._failures, len(BACKOFF)) - 1])

    def _make_result(self) -> ReplyResult:
        parts: list[str] = []
        refs: list[MessageRef] = []
        for part, slot in zip(self._parts, self._slots, strict=False):
            if part.skip:
                continue
            parts.append(part.text)
            if slot.ref is not None:
                refs.append(slot.ref)
        return ReplyResult(self._text(), parts, refs, self.first_visible_at, self._requests, self._error)


def _notice_suffix(text: str, notice: str) -> str:
    """What to append to `text` so that `notice` shows after it: close an open code block, blank line.

    A notice starting with a space is a mark that belongs on the last line (" […]").
    """
    if not notice:
        return ""
    add = ""
    if fence_at_end(text) is not None:
        add = ("" if text.endswith("\n") else "\n") + "```"
    body = text + add
    if notice.startswith(" ") and not add and body.strip() and not body[-1].isspace():
        return notice  # an inline mark, right after the last word ("... and then […]")
    notice = notice.lstrip(" ")
    if not body.strip() or body.endswith("\n\n"):
        sep = ""
    elif body.endswith("\n"):
        sep = "\n"
    else:
        sep = "\n\n"
    return add + sep + notice
