"""A ReplySurface that records every call, plays a platform's latency and errors, and shows what a
person would see.

Used by the ReplyStream tests and the benchmark. Every call is recorded with `time.perf_counter()`
start and end stamps. Errors can be scripted on the Nth call of a kind, or on any call a predicate
picks. The fake keeps the visible text of each message (ref id -> text) and the current draft, and
records a violation whenever two requests for the same message (or two sends, or two draft calls)
overlap, or a draft is asked to show empty text.

Behaviour modelled on Telegram: editing a message to the text it already shows raises NotModified
(switch off with `not_modified_on_same=False`); a scripted NotModified on an edit first applies the
text (the platform already shows it, e.g. an earlier attempt got through) and then raises; any other
scripted error leaves the visible state unchanged. `finish()` sends the final part as a new message,
like Telegram's sendMessage after a draft.

Use one RecordingSurface per reply (as a channel hands out one surface per reply): the overlap
check treats all sends, and all draft / finish calls, of one surface as one message stream.
For a benchmark, `latency_fn(kind)` can return a varying latency, and `first_visible` gives the
perf_counter() stamp at which the first text became visible.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.errors import MessageGone, NotModified, PlatformError
from bot.types import MessageRef

KINDS = ("typing", "send", "edit", "draft", "finish")


@dataclass(slots=True)
class Call:
    kind: str  # typing | send | edit | draft | finish
    n: int  # 1-based count of this kind
    text: str | None
    ref: str | None  # the message id edited, or created by send / finish
    plain: bool
    start: float
    end: float | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.end is not None and self.error is None

    @property
    def accepted(self) -> bool:
        """The platform shows the text afterwards (success, or NotModified)."""
        return self.end is not None and (self.error is None or isinstance(self.error, NotModified))


@dataclass(slots=True)
class _Rule:
    kind: str
    error: BaseException | Callable[[], BaseException]
    nth: int | None = None
    when: Callable[[Call], bool] | None = None
    times: int = 1

    def matches(self, call: Call) -> bool:
        if self.times <= 0 or call.kind != self.kind:
            return False
        if self.nth is not None and call.n != self.nth:
            return False
        return self.when is None or self.when(call)

    def take(self) -> BaseException:
        self.times -= 1
        return self.error() if callable(self.error) and not isinstance(self.error, BaseException) else self.error


@dataclass
class RecordingSurface:
    latency: float = 0.0  # seconds each call takes (asyncio.sleep), unless `latencies` names the kind
    latencies: Mapping[str, float] = field(default_factory=dict)
    not_modified_on_same: bool = True
    latency_fn: Callable[[str], float] | None = None  # overrides both: latency per call kind

    calls: list[Call] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)  # ref id -> visible text
    plain: dict[str, bool] = field(default_factory=dict)  # ref id -> last write was plain
    order: list[str] = field(default_factory=list)  # ref ids in send order
    deleted: set[str] = field(default_factory=set)
    draft_text: str | None = None
    history: list[tuple[float, str, str]] = field(default_factory=list)  # (time, ref id or "draft", text)
    violations: list[str] = field(default_factory=list)
    max_in_flight: int = 0  # most text requests (not typing) in flight at once

    def __post_init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._rules: list[_Rule] = []
        self._busy: set[str] = set()
        self._in_flight = 0
        self._next_id = 0

    # --- scripting ---------------------------------------------------------------------------

    def fail(self, kind: str, error: BaseException | Callable[[], BaseException], *, nth: int = 1) -> None:
        """Raise `error` on the `nth` call of `kind` (1-based, counting every call of that kind)."""
        assert kind in KINDS, kind
        self._rules.append(_Rule(kind, error, nth=nth))

    def fail_when(
        self,
        kind: str,
        error: BaseException | Callable[[], BaseException],
        when: Callable[[Call], bool],
        *,
        times: int = 1,
    ) -> None:
        """Raise `error` on the next `times` calls of `kind` for which `when(call)` is true."""
        assert kind in KINDS, kind
        self._rules.append(_Rule(kind, error, when=when, times=times))

    def delete(self, ref_id: str) -> None:
        """Someone deleted the message: it is no longer visible, and editing it raises MessageGone."""
        self.deleted.add(ref_id)

    # --- what a person sees ----------------------------------------------------------------------

    @property
    def visible(self) -> list[str]:
        """The texts of the messages on screen, in the order they were sent."""
        return [self.messages[r] for r in self.order if r not in self.deleted]

    @property
    def first_visible(self) -> float | None:
        """perf_counter() when the first text (message or draft) became visible, if any."""
        return next((c.end for c in self.calls if c.kind != "typing" and c.accepted), None)

    @property
    def visible_text(self) -> str:
        return "".join(self.visible)

    def of(self, *kinds: str) -> list[Call]:
        return [c for c in self.calls if c.kind in kinds]

    @property
    def text_calls(self) -> list[Call]:
        return [c for c in self.calls if c.kind != "typing"]

    # --- ReplySurface ------------------------------------------------------------------------

    async def typing(self) -> None:
        await self._call("typing", None, None, False)

    async def send(self, text: str, *, plain: bool = False) -> MessageRef:
        call = await self._call("send", text, None, plain)
        return MessageRef(call.ref or "")

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None:
        await self._call("edit", text, ref.id, plain)

    async def draft(self, text: str) -> None:
        await self._call("draft", text, None, False)

    async def finish(self, text: str, *, plain: bool = False) -> MessageRef | None:
        call = await self._call("finish", text, None, plain)
        return MessageRef(call.ref) if call.ref else None

    # --- machinery ---------------------------------------------------------------------------

    async def _call(self, kind: str, text: str | None, ref: str | None, plain: bool) -> Call:
        self._counts[kind] += 1
        call = Call(kind, self._counts[kind], text, ref, plain, time.perf_counter())
        self.calls.append(call)
        key = None
        if kind != "typing":
            key = ref if kind == "edit" else ("draft" if kind in ("draft", "finish") else "send")
            if key in self._busy:
                self.violations.append(f"overlapping {kind} on {key} at call {len(self.calls)}")
            self._busy.add(key)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            if kind == "draft" and not (text or "").strip():
                self.violations.append(f"draft with empty text at call {len(self.calls)}")
        try:
            delay = self.latency_fn(kind) if self.latency_fn else self.latencies.get(kind, self.latency)
            if delay > 0:
                await asyncio.sleep(delay)
            error = next((r.take() for r in self._rules if r.matches(call)), None)
            if error is None and kind == "draft" and not (text or "").strip():
                error = PlatformError("Bad Request: text must be non-empty")
            if error is None and kind == "edit":
                assert ref is not None and text is not None
                if ref in self.deleted or ref not in self.messages:
                    error = MessageGone("Bad Request: message to edit not found")
                elif self.not_modified_on_same and self.messages[ref] == text:
                    error = NotModified("Bad Request: message is not modified")
            if error is None or (isinstance(error, NotModified) and kind == "edit"):
                self._apply(call)
            call.error = error
            call.end = time.perf_counter()
            if error is not None:
                raise error
            return call
        except BaseException as exc:  # cancelled: still stamp the end
            if call.end is None:
                call.end = time.perf_counter()
                call.error = exc
            raise
        finally:
            if key is not None:
                self._busy.discard(key)
                self._in_flight -= 1

    def _apply(self, call: Call) -> None:
        now = time.perf_counter()
        if call.kind in ("send", "finish"):
            self._next_id += 1
            call.ref = f"m{self._next_id}"
            self.order.append(call.ref)
            if call.kind == "finish":
                self.draft_text = None
        elif call.kind == "draft":
            self.draft_text = call.text
            self.history.append((now, "draft", call.text or ""))
            return
        if call.kind == "typing":
            return
        assert call.ref is not None and call.text is not None
        self.messages[call.ref] = call.text
        self.plain[call.ref] = call.plain
        self.history.append((now, call.ref, call.text))
