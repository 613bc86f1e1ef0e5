"""structlog set-up: JSON lines when not on a terminal, readable lines on one; secrets masked."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_SECRET_KEY = re.compile(r"^(.*_)?(token|secret|api_key|apikey|password|authorization)$", re.I)
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_-]{6,}|xox[abpr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|\d{6,}:[A-Za-z0-9_-]{30,})")


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for k, v in list(event.items()):
        if _SECRET_KEY.search(k) and v not in (None, ""):
            event[k] = "***"
        elif isinstance(v, str) and _SECRET_VALUE.search(v):
            event[k] = _SECRET_VALUE.sub("***", v)
    return event


def configure(level: str = "info", fmt: str = "auto", stream=None) -> None:
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    # libraries log through the standard logging module: keep them quiet and on the same stream
    logging.basicConfig(level=logging.WARNING, stream=stream, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "telegram", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
