"""What every in-process engine offers, and the pieces they share (chat template, byte decoding).

An engine is synchronous and single-threaded: LocalProvider calls it from one worker thread and
never from the event loop. `generate` yields one item per sampled token (the new text, often ""
while a multi-byte character is incomplete) so the caller can stop between any two tokens, and
ends with a GenerationStats.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.errors import ProviderBadRequest
from bot.types import ChatTurn

# ChatML, SmolLM2's format; used when a model file carries no chat template of its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Token texts that end a turn in common chat formats, besides the model's EOS token.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")


@dataclass(frozen=True, slots=True)
class SamplingParams:
    max_tokens: int | None  # None: up to the end of the context
    temperature: float  # 0: greedy
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05


@dataclass(frozen=True, slots=True)
class GenerationStats:
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    cached_tokens: int = 0  # prompt tokens whose KV state was reused from the previous request


class Engine(Protocol):
    name: str

    def load(self) -> None:
        """Read the model file; blocking, called once from the worker thread."""
        ...

    def generate(self, messages: Sequence[ChatTurn], params: SamplingParams) -> Iterator[str | GenerationStats]:
        """Yield new text once per token, then one GenerationStats. Closing the iterator stops it."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


def render_chat(template: str | None, messages: Sequence[ChatTurn], *, bos: str = "", eos: str = "") -> str:
    """The prompt text for `messages` in the model's own chat template (ChatML when it has none)."""
    turns = [{"role": m.role, "content": m.content} for m in messages]
    try:
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:  # pragma: no cover - jinja2 comes with both engines
        return _chatml(turns)

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template or CHATML_TEMPLATE).render(
            messages=turns, add_generation_prompt=True, bos_token=bos, eos_token=eos
        )
    except TemplateError:
        if template is None:
            raise
        # A template that refuses our turns (e.g. "roles must alternate"): ChatML is the best guess.
        return _chatml(turns)


def render_segments(
    template: str | None, messages: Sequence[ChatTurn], *, bos: str = "", eos: str = ""
) -> list[tuple[str, bool]]:
    """The prompt as (text, is_content) pieces, in order.

    The template's own text may hold control tokens (`<|im_start|>`, ...); a message's content is
    what people and models wrote and must be tokenized as plain text, or a person could forge a
    turn by typing `<|im_end|>`. Each content is rendered as a marker first, then put back.
    """
    markers = [f"\ue000{i}\ue001" for i in range(len(messages))]
    masked = [ChatTurn(m.role, markers[i]) for i, m in enumerate(messages)]
    text = render_chat(template, masked, bos=bos, eos=eos)
    out: list[tuple[str, bool]] = []
    pos = 0
    for marker, message in zip(markers, messages, strict=True):
        at = text.find(marker, pos)
        if at < 0:  # the template left this message out
            continue
        out += [(text[pos:at], False), (message.content, True)]
        pos = at + len(marker)
    out.append((text[pos:], False))
    return [(t, is_content) for t, is_content in out if t]


def fit_tokens(
    messages: Sequence[ChatTurn], tokenize: Callable[[Sequence[ChatTurn]], list[int]], n_ctx: int, reserve: int
) -> list[int]:
    """The prompt's tokens, trimmed to leave `reserve` tokens of the context for the answer.

    The oldest turns after the system prompt go first (never the last message); then the last
    message is cut from its end. The runtime trims on an estimate before this (bot.prompt); this
    is the exact count, so a prompt can never fail for its length.
    """
    msgs = list(messages)
    budget = max(1, n_ctx - max(1, reserve))
    tokens = tokenize(msgs)
    while len(tokens) > budget:
        first = next((i for i, m in enumerate(msgs[:-1]) if m.role != "system"), None)
        if first is not None:
            del msgs[first]
        else:
            last = msgs[-1]
            if not last.content:
                break
            keep = int(len(last.content) * budget / len(tokens) * 0.9)
            msgs[-1] = ChatTurn(last.role, last.content[: max(0, min(keep, len(last.content) - 1))])
        tokens = tokenize(msgs)
    return tokens


def answer_reserve(n_ctx: int, max_tokens: int | None) -> int:
    """Room kept for the answer: max_tokens, at most a quarter of the context."""
    return min(max_tokens if max_tokens is not None else 256, n_ctx // 4)


def _chatml(turns: list[dict[str, str]]) -> str:
    body = "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in turns)
    return body + "<|im_start|>assistant\n"


def token_budget(prompt_tokens: int, n_ctx: int, max_tokens: int | None) -> int:
    """How many tokens may be generated; refuses a prompt that leaves no room in the context."""
    room = n_ctx - prompt_tokens
    if room < 1:
        raise ProviderBadRequest(f"prompt is {prompt_tokens} tokens, the local model's context is {n_ctx} (n_ctx)")
    return room if max_tokens is None else max(0, min(max_tokens, room))


class Utf8Stream:
    """Turns token bytes into text, holding back a character split across tokens."""

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, data: bytes) -> str:
        return self._dec.decode(data)

    def flush(self) -> str:
        return self._dec.decode(b"", final=True)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
