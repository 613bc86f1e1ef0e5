"""Fitting a prompt into a model's context window, so that no conversation can get stuck.

The prompt is the system prompt, the history (oldest first) and the new message. When it does not
fit the model's window with room left for the answer, the oldest history turns go first; if the
system prompt and the new message alone are still too long, the new message is cut and the person
is told (`FittedPrompt.note`). Token counts are estimated from characters on the safe side (fewer
characters per token than English prose has, so code and other languages fit too); the local
engines count exactly and trim again if the estimate was still too optimistic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.types import ChatTurn

CHARS_PER_TOKEN = 3  # on the safe side: English prose is ~4, code and other scripts fewer
TURN_OVERHEAD = 8  # tokens a chat template adds around each message
MIN_ANSWER_TOKENS = 256  # always leave at least this much room for the answer


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    messages: tuple[ChatTurn, ...]
    dropped_turns: int = 0  # history turns left out (oldest first)
    kept_chars: int | None = None  # set when the new message was cut: how much of it was kept
    note: str = ""  # what to tell the person, when their message was cut


def estimate_tokens(turns: Sequence[ChatTurn]) -> int:
    return sum(len(t.content) // CHARS_PER_TOKEN + TURN_OVERHEAD for t in turns)


def answer_room(context_window: int, max_tokens: int | None) -> int:
    """Tokens kept free for the answer: max_tokens, but never more than a quarter of the window."""
    want = max_tokens if max_tokens is not None else MIN_ANSWER_TOKENS
    return max(min(want, context_window // 4), min(MIN_ANSWER_TOKENS, context_window // 4))


def fit_prompt(
    messages: Sequence[ChatTurn], context_window: int, max_tokens: int | None, *, model: str = ""
) -> FittedPrompt:
    """`messages` (system turns first, the new message last) trimmed to fit `context_window`."""
    budget = context_window - answer_room(context_window, max_tokens)
    msgs = list(messages)
    if estimate_tokens(msgs) <= budget:
        return FittedPrompt(tuple(msgs))
    head = [t for t in msgs[:-1] if t.role == "system"]
    history = [t for t in msgs[:-1] if t.role != "system"]
    last = msgs[-1]
    dropped = 0
    while history and estimate_tokens([*head, *history, last]) > budget:
        history.pop(0)
        dropped += 1
    if history and history[0].role == "assistant":  # never start the history with an answer
        history.pop(0)
        dropped += 1
    if estimate_tokens([*head, *history, last]) <= budget:
        return FittedPrompt((*head, *history, last), dropped)
    room_chars = max(0, (budget - estimate_tokens(head) - TURN_OVERHEAD) * CHARS_PER_TOKEN)
    kept = last.content[:room_chars]
    where = f" for {model}" if model else ""
    note = f"[your message was too long{where}: I read the first {len(kept):,} of its {len(last.content):,} characters]"
    return FittedPrompt((*head, ChatTurn(last.role, kept)), dropped, len(kept), note)
