"""llama.cpp (llama-cpp-python) engine: the default on Linux and x86.

llama_cpp is imported in load(), never at module import time (it is a heavy native library and
absent on Apple silicon installs).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bot.errors import ProviderUnavailable
from bot.providers.local.engine import (
    END_OF_TURN_TOKENS,
    GenerationStats,
    SamplingParams,
    Utf8Stream,
    answer_reserve,
    common_prefix,
    fit_tokens,
    render_segments,
    token_budget,
)
from bot.types import ChatTurn


class LlamaCppEngine:
    name = "llama_cpp"

    def __init__(self, model_path: Path, *, n_ctx: int = 8192, n_threads: int | None = None) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._llm: Any = None
        self._template: str | None = None
        self._bos = ""
        self._eos = ""
        self._stop_ids: frozenset[int] = frozenset()
        self._is_eog: Any = None

    def load(self) -> None:
        try:
            import llama_cpp
        except ImportError as e:
            raise ProviderUnavailable(
                f"llama-cpp-python is not installed ({e}); `pip install llama-cpp-python` "
                'or set engine = "mlx" for the local provider'
            ) from e
        try:
            llm = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                verbose=False,
            )
        except Exception as e:  # llama_cpp raises ValueError/RuntimeError for unreadable files
            raise ProviderUnavailable(f"llama.cpp could not load the model {self.model_path}: {e}") from e
        self._llm = llm
        meta = llm.metadata or {}
        self._template = meta.get("tokenizer.chat_template")
        self._bos = self._piece(llm.token_bos())
        self._eos = self._piece(llm.token_eos())
        stop = {llm.token_eos()}
        for text in END_OF_TURN_TOKENS:
            ids = llm.tokenize(text.encode(), add_bos=False, special=True)
            if len(ids) == 1:
                stop.add(ids[0])
        self._stop_ids = frozenset(stop)
        vocab = getattr(getattr(llm, "_model", None), "vocab", None)
        is_eog = getattr(llama_cpp, "llama_vocab_is_eog", None)
        if vocab is not None and is_eog is not None:
            self._is_eog = lambda tok: bool(is_eog(vocab, tok))

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        piece: bytes = self._llm.detokenize([token], special=True)
        return piece.decode("utf-8", errors="replace")

    def prompt_tokens(self, messages: Sequence[ChatTurn]) -> list[int]:
        """The template's text with its control tokens; every message's content as plain text."""
        segments = render_segments(self._template, messages, bos=self._bos, eos=self._eos)
        add_bos = not (self._bos and segments and segments[0][0].startswith(self._bos))
        tokens: list[int] = []
        for text, is_content in segments:
            tokens += self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=not is_content)
            add_bos = False
        return tokens

    def _stops(self, token: int) -> bool:
        if token in self._stop_ids:
            return True
        return self._is_eog is not None and self._is_eog(token)

    def generate(self, messages: Sequence[ChatTurn], params: SamplingParams) -> Iterator[str | GenerationStats]:
        llm = self._llm
        if llm is None:
            raise ProviderUnavailable("the llama.cpp model is not loaded")
        n_ctx = llm.n_ctx()
        prompt = fit_tokens(messages, self.prompt_tokens, n_ctx, answer_reserve(n_ctx, params.max_tokens))
        budget = token_budget(len(prompt), n_ctx, params.max_tokens)
        utf8 = Utf8Stream()
        n = 0
        finish = "length"
        # llama.generate keeps the KV state of the longest common prefix with the last request
        cached = min(common_prefix(llm.input_ids[: llm.n_tokens].tolist(), prompt), len(prompt) - 1)
        if budget > 0:
            tokens = llm.generate(
                prompt,
                temp=max(0.0, params.temperature),
                top_k=params.top_k,
                top_p=params.top_p,
                min_p=params.min_p,
                repeat_penalty=1.0,
            )
            try:
                for tok in tokens:
                    if self._stops(tok):
                        finish = "stop"
                        break
                    n += 1
                    yield utf8.push(llm.detokenize([tok]))
                    if n >= budget:
                        break
            finally:
                tokens.close()
        tail = utf8.flush()
        if tail:
            yield tail
        yield GenerationStats(
            prompt_tokens=len(prompt), completion_tokens=n, finish_reason=finish, cached_tokens=max(0, cached)
        )

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
