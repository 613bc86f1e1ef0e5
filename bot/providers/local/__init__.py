"""The in-process local model: a GGUF file run by llama.cpp (Linux/x86) or MLX (Apple silicon).

Nothing heavy is imported here; engines load their native libraries when the model is loaded.
"""

from bot.providers.local.provider import (
    BUNDLED_FILE,
    DEFAULT_MODEL_ID,
    DEFAULT_TEMPERATURE,
    LocalProvider,
    default_model_path,
    make_engine,
    resolve_engine,
)

__all__ = [
    "BUNDLED_FILE",
    "DEFAULT_MODEL_ID",
    "DEFAULT_TEMPERATURE",
    "LocalProvider",
    "default_model_path",
    "make_engine",
    "resolve_engine",
]
