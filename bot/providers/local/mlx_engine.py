"""MLX (mlx-lm) engine: the default on Apple silicon; also runs on Linux CPU with `mlx[cpu]`.

It reads the same GGUF file as llama.cpp. `mx.load(path, return_metadata=True)` returns the
tensors of a Q4_0/Q4_1/Q8_0 GGUF already in MLX's affine-quantized layout (packed uint32 weight,
float16 scales and biases, group size 32, 4 or 8 bits per tensor); we rename them onto
mlx_lm.models.llama, quantize each layer with the bits its tensor was stored with, and build a
byte-level BPE tokenizer from the GGUF vocabulary and merges. GGUF stores Q/K projections permuted
for llama.cpp's interleaved RoPE, hence `rope_traditional=True`.

mlx, mlx_lm and tokenizers are imported in load(), never at module import time.
"""

from __future__ import annotations

import re
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

GROUP_SIZE = 32  # GGUF Q4_0 / Q4_1 / Q8_0 blocks hold 32 weights

_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK = re.compile(r"blk\.(\d+)\.(\w+)")
_CONTROL = 3  # tokenizer.ggml.token_type of special tokens such as <|im_start|>


def gguf_to_mlx_name(name: str) -> str:
    """`blk.3.attn_q.scales` -> `model.layers.3.self_attn.q_proj.scales`."""
    base, _, suffix = name.rpartition(".")
    if base in _TOP_NAMES:
        return f"{_TOP_NAMES[base]}.{suffix}"
    m = _BLOCK.fullmatch(base)
    if m is None or m.group(2) not in _LAYER_NAMES:
        raise ValueError(f"unexpected GGUF tensor {name!r}")
    return f"model.layers.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}.{suffix}"


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: the printable stand-in character -> the byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=False)}


class MlxEngine:
    name = "mlx"
    shared_thread = True  # run on the process-wide MLX thread, which never exits (see worker.py)

    def __init__(self, model_path: Path, *, n_ctx: int = 8192) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self._model: Any = None
        self._tokenizer: Any = None
        self._plain_tokenizer: Any = None
        self._token_bytes: list[bytes] = []
        self._template: str | None = None
        self._bos = ""
        self._eos = ""
        self._stop_ids: frozenset[int] = frozenset()
        # KV cache of the previous prompt, reused for the prefix the next prompt shares with it
        self._stream: Any = None
        self._cache: list[Any] | None = None
        self._cache_tokens: list[int] = []

    # --- loading ------------------------------------------------------------------------------

    def load(self) -> None:
        try:
            import mlx.core as mx
            import mlx.nn as nn
            from mlx_lm.models import llama
        except ImportError as e:
            raise ProviderUnavailable(
                f"mlx / mlx-lm are not installed ({e}); `pip install mlx-lm` (on Linux also "
                '`mlx[cpu]`) or set engine = "llama_cpp" for the local provider'
            ) from e
        try:
            loaded: Any = mx.load(str(self.model_path), return_metadata=True)  # (tensors, metadata) for GGUF
            tensors: dict[str, Any] = loaded[0]
            meta: dict[str, Any] = loaded[1]
        except Exception as e:
            raise ProviderUnavailable(f"MLX could not read the GGUF file {self.model_path}: {e}") from e

        def get(key: str, default: Any = None) -> Any:
            v = meta.get(key, default)
            return v.item() if isinstance(v, mx.array) and v.size == 1 else v

        arch = get("general.architecture")
        if arch != "llama":
            raise ProviderUnavailable(
                f"the MLX engine reads llama-architecture GGUF files; {self.model_path} is {arch!r}"
            )
        if get("tokenizer.ggml.model") != "gpt2":
            raise ProviderUnavailable(
                f"the MLX engine needs a byte-level BPE (gpt2) tokenizer; {self.model_path} has "
                f'{get("tokenizer.ggml.model")!r} (use engine = "llama_cpp")'
            )
        try:
            weights = {gguf_to_mlx_name(k): v for k, v in tensors.items()}
        except ValueError as e:
            raise ProviderUnavailable(f"{self.model_path}: {e}") from e
        vocab: list[str] = list(meta["tokenizer.ggml.tokens"])
        n_heads = int(get(f"{arch}.attention.head_count"))
        hidden = int(get(f"{arch}.embedding_length"))
        args = llama.ModelArgs(
            model_type="llama",
            hidden_size=hidden,
            num_hidden_layers=int(get(f"{arch}.block_count")),
            intermediate_size=int(get(f"{arch}.feed_forward_length")),
            num_attention_heads=n_heads,
            num_key_value_heads=int(get(f"{arch}.attention.head_count_kv", n_heads)),
            rms_norm_eps=float(get(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
            vocab_size=len(vocab),
            head_dim=int(get(f"{arch}.rope.dimension_count", hidden // n_heads)),
            rope_theta=float(get(f"{arch}.rope.freq_base", 10000.0)),
            rope_traditional=True,
            max_position_embeddings=int(get(f"{arch}.context_length", self.n_ctx)),
            tie_word_embeddings="lm_head.weight" not in weights,
        )
        model = llama.Model(args)

        def quantized_as(path: str, module: Any) -> bool | dict[str, int]:
            scales = weights.get(f"{path}.scales")
            if scales is None or not hasattr(module, "to_quantized"):
                return False
            packed = weights[f"{path}.weight"].shape[-1]  # uint32 words per row
            bits = packed * 32 // (scales.shape[-1] * GROUP_SIZE)
            if bits not in (4, 8):
                raise ProviderUnavailable(f"{self.model_path}: {path} has {bits}-bit weights, MLX reads 4 or 8")
            return {"group_size": GROUP_SIZE, "bits": bits}

        nn.quantize(model, class_predicate=quantized_as)  # type: ignore[attr-defined]  # mlx.nn exports it; its stubs do not say so
        try:
            model.load_weights(list(weights.items()), strict=True)
        except ValueError as e:
            raise ProviderUnavailable(f"{self.model_path}: tensors do not fit mlx-lm's llama model: {e}") from e
        mx.eval(model.parameters())
        model.eval()
        # a stream of our own rather than mlx-lm's thread-local `generation_stream`
        self._stream = mx.new_stream(mx.default_device())

        merges = list(meta["tokenizer.ggml.merges"])
        self._tokenizer = self._build_tokenizer(vocab, merges, meta)
        # message contents are tokenized without the control tokens: nobody can type a turn
        self._plain_tokenizer = self._build_tokenizer(vocab, merges, meta, special_tokens=False)
        decoder = _byte_decoder()
        types = meta.get("tokenizer.ggml.token_type")
        types = [int(t) for t in types.tolist()] if types is not None else [1] * len(vocab)
        # special tokens are never shown: they decode to nothing
        self._token_bytes = [
            b"" if types[i] == _CONTROL else bytes(decoder.get(ch, 0x3F) for ch in tok) for i, tok in enumerate(vocab)
        ]
        bos_id = get("tokenizer.ggml.bos_token_id")
        eos_id = get("tokenizer.ggml.eos_token_id")
        self._bos = vocab[bos_id] if bos_id is not None else ""
        self._eos = vocab[eos_id] if eos_id is not None else ""
        index = {t: i for i, t in enumerate(vocab)}
        stop = {index[t] for t in END_OF_TURN_TOKENS if t in index}
        if eos_id is not None:
            stop.add(int(eos_id))
        self._stop_ids = frozenset(stop)
        self._add_bos = bool(get("tokenizer.ggml.add_bos_token", False)) and bos_id is not None
        self._bos_id = bos_id
        self._template = get("tokenizer.chat_template")
        self._model = model
        self._cache = None
        self._cache_tokens = []

    @staticmethod
    def _build_tokenizer(
        vocab: list[str], merges: list[str], meta: dict[str, Any], *, special_tokens: bool = True
    ) -> Any:
        try:
            from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
        except ImportError as e:
            raise ProviderUnavailable(f"the `tokenizers` package is needed by the MLX engine ({e})") from e
        bpe = models.BPE(
            vocab={t: i for i, t in enumerate(vocab)},
            merges=[(a, b) for a, _, b in (m.partition(" ") for m in merges)],
            fuse_unk=False,
        )
        tok = Tokenizer(bpe)
        # SmolLM2 / StarCoder pre-tokenizer: digits one by one, then GPT-2's byte-level split
        pre: list[pre_tokenizers.PreTokenizer] = [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        if str(meta.get("tokenizer.ggml.pre", "")) in ("smollm", "starcoder", "refact", "default", ""):
            pre.insert(0, pre_tokenizers.Digits(individual_digits=True))
        tok.pre_tokenizer = pre_tokenizers.Sequence(pre)
        tok.decoder = decoders.ByteLevel()
        types = meta.get("tokenizer.ggml.token_type")
        if types is not None and special_tokens:
            specials = [vocab[i] for i, t in enumerate(types.tolist()) if int(t) == _CONTROL]
            tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
        return tok

    # --- generation ---------------------------------------------------------------------------

    def prompt_tokens(self, messages: Sequence[ChatTurn]) -> list[int]:
        """The template's text with its control tokens; every message's content as plain text."""
        ids: list[int] = []
        for text, is_content in render_segments(self._template, messages, bos=self._bos, eos=self._eos):
            tokenizer = self._plain_tokenizer if is_content else self._tokenizer
            ids += tokenizer.encode(text, add_special_tokens=False).ids
        if self._add_bos and (not ids or ids[0] != self._bos_id):
            ids = [int(self._bos_id), *ids]
        return ids

    def generate(self, messages: Sequence[ChatTurn], params: SamplingParams) -> Iterator[str | GenerationStats]:
        import mlx.core as mx
        from mlx_lm.generate import generate_step
        from mlx_lm.models.cache import make_prompt_cache, trim_prompt_cache
        from mlx_lm.sample_utils import make_sampler

        model = self._model
        if model is None:
            raise ProviderUnavailable("the MLX model is not loaded")
        prompt = fit_tokens(messages, self.prompt_tokens, self.n_ctx, answer_reserve(self.n_ctx, params.max_tokens))
        budget = token_budget(len(prompt), self.n_ctx, params.max_tokens)
        utf8 = Utf8Stream()
        n = 0
        finish = "length"
        reused = 0
        if budget > 0:
            cache, reused = self._reuse_cache(prompt, make_prompt_cache, trim_prompt_cache)
            if params.temperature > 0:
                sampler = make_sampler(
                    temp=params.temperature, top_p=params.top_p, min_p=params.min_p, top_k=params.top_k
                )
            else:
                sampler = make_sampler(temp=0.0)
            steps = generate_step(
                mx.array(prompt[reused:]),
                model,
                self._stream,
                max_tokens=budget,
                sampler=sampler,
                prompt_cache=cache,
            )
            ok = False
            try:
                for tok, _logprobs in steps:
                    if tok in self._stop_ids:
                        finish = "stop"
                        break
                    n += 1
                    yield utf8.push(self._token_bytes[tok] if 0 <= tok < len(self._token_bytes) else b"")
                    if n >= budget:
                        break
                ok = True
            except GeneratorExit:  # the caller stopped early: the prompt's cache is still good
                ok = True
                raise
            finally:
                steps.close()
                self._keep_prompt_cache(cache, prompt if ok else None, trim_prompt_cache)
        tail = utf8.flush()
        if tail:
            yield tail
        yield GenerationStats(
            prompt_tokens=len(prompt), completion_tokens=n, finish_reason=finish, cached_tokens=reused
        )

    def _reuse_cache(self, prompt: list[int], make_prompt_cache: Any, trim_prompt_cache: Any) -> tuple[list[Any], int]:
        """The KV cache to start from and how many prompt tokens it already holds."""
        cache, held = self._cache, self._cache_tokens
        self._cache, self._cache_tokens = None, []
        if cache is not None:
            common = min(common_prefix(held, prompt), len(prompt) - 1)  # at least one token must be fed to get logits
            if common > 0:
                offset = cache[0].offset
                if trim_prompt_cache(cache, offset - common) == offset - common:
                    return cache, common
        return make_prompt_cache(self._model), 0

    def _keep_prompt_cache(self, cache: list[Any], prompt: list[int] | None, trim_prompt_cache: Any) -> None:
        """Keep the cache trimmed back to the prompt, so a later prompt with the same start skips it."""
        if prompt is None or not cache:
            return
        extra = cache[0].offset - len(prompt)
        if extra >= 0 and trim_prompt_cache(cache, extra) == extra:
            self._cache, self._cache_tokens = cache, prompt

    def close(self) -> None:
        self._model = None
        self._tokenizer = None
        self._cache = None
        self._cache_tokens = []
        self._stream = None
        try:
            import mlx.core as mx

            mx.clear_cache()
        except Exception:  # pragma: no cover
            pass
