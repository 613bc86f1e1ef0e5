"""The composition root: the only place that knows every part and wires them from the config."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
from pathlib import Path
from typing import Any, Callable

import structlog
from aiohttp import web

from bot.config import Config, ProviderConfig
from bot.dispatcher import Dispatcher
from bot.errors import ConfigError
from bot.metrics import Metrics
from bot.providers.base import Provider
from bot.responder import Responder
from bot.store.base import Store
from channels.base import Channel
from routing.catalog import Catalog
from routing.router import Router

log = structlog.get_logger("switchboard.app")

# channel name -> module with `build(cfg, table) -> Channel`; imported only when configured
CHANNEL_MODULES = {
    "webchat": "channels.webchat",
    "console": "channels.console",
    "telegram": "channels.telegram",
}

GEMINI_OPENAI_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"


def build_provider(name: str, pc: ProviderConfig) -> Provider:
    if pc.kind == "local":
        from bot.providers.local import LocalProvider

        return LocalProvider(name, pc)
    from bot.providers.openai_compat import OpenAICompatProvider

    if pc.kind == "gemini" and not pc.base_url:
        pc = pc.model_copy(update={"base_url": GEMINI_OPENAI_URL})
    return OpenAICompatProvider(name, pc)


def store_path(cfg: Config) -> Path:
    """The SQLite file under the configured data directory."""
    return Path(cfg.store.data_dir).expanduser() / "switchboard.sqlite3"


def build_store(cfg: Config) -> Store:
    from bot.store.sqlite import SqliteStore

    return SqliteStore(None if cfg.store.kind == "memory" else store_path(cfg))


def configured_channels(cfg: Config) -> dict[str, dict[str, Any]]:
    """Channel name -> its raw table, for every channel the config turns on."""
    out: dict[str, dict[str, Any]] = {}
    if cfg.channels.webchat.enabled:
        out["webchat"] = cfg.channels.webchat.model_dump()
    if cfg.channels.console.enabled:
        out["console"] = cfg.channels.console.model_dump()
    for name, table in (cfg.channels.model_extra or {}).items():
        if name not in CHANNEL_MODULES:
            raise ConfigError(f"channels.{name}: unknown channel (known: {', '.join(CHANNEL_MODULES)})")
        if isinstance(table, dict) and table.get("enabled", True) is not False:
            out[name] = table
    return out


def build_channel(cfg: Config, name: str, table: dict[str, Any]) -> Channel:
    module = importlib.import_module(CHANNEL_MODULES[name])
    builder: Callable[[Config, dict[str, Any]], Channel] = module.build
    return builder(cfg, table)


_gc_tuned = False


def tune_gc() -> None:
    """Keep the garbage collector off the message path.

    Measured in bench/added_latency.py: with the default thresholds, full collections walking every
    object loaded at start-up (libraries, model metadata, clients) paused the event loop for tens
    of milliseconds, the whole p99 of first messages. Freezing what start-up built takes it out of
    every later collection, and a larger young generation makes collections rarer.
    """
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, 50_000), gen1, gen2)


def config_secrets(cfg: Config) -> list[str]:
    """Every secret value in the config, so logs can mask it wherever it shows up."""
    from bot.logs import is_secret_key

    out: list[str] = []
    for pc in cfg.providers.values():
        if pc.api_key is not None:
            out.append(pc.api_key.get_secret_value())
        out += [v for k, v in pc.headers.items() if is_secret_key(k)]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, str) and is_secret_key(str(k)):
                    out.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(cfg.channels.model_extra or {})
    return [v for v in out if v]


class App:
    """Everything running: store, providers, dispatcher, the HTTP server and the channels."""

    def __init__(
        self,
        cfg: Config,
        *,
        providers: dict[str, Provider] | None = None,
        channels: list[Channel] | None = None,
        store: Store | None = None,
        serve_http: bool = True,
    ) -> None:
        self.cfg = cfg
        from bot.logs import register_secrets

        register_secrets(config_secrets(cfg))
        self.catalog = Catalog.from_config(cfg)
        self.router = Router(cfg, self.catalog)
        self.metrics = Metrics()
        self.store = store if store is not None else build_store(cfg)
        if providers is None:
            needed = {m.provider for m in self.catalog if self.router.is_available(m)} & set(cfg.providers)
            providers = {name: build_provider(name, cfg.providers[name]) for name in sorted(needed)}
        self.providers = providers
        if channels is None:
            channels = [build_channel(cfg, n, t) for n, t in configured_channels(cfg).items()]
        self.channels = {c.name: c for c in channels}
        self.responder = Responder(
            cfg,
            channels=self.channels,
            providers=self.providers,
            catalog=self.catalog,
            router=self.router,
            store=self.store,
            metrics=self.metrics,
        )
        self.dispatcher = Dispatcher(
            self.responder,
            on_duplicate=lambda m: self.metrics.duplicates.labels(m.channel).inc(),
            max_concurrent=cfg.dispatcher.max_concurrent,
            queue_mode=cfg.dispatcher.queue_mode,
            dedupe_window=cfg.dispatcher.dedupe_window,
        )
        self.serve_http = serve_http
        self.http = web.Application()
        self._runner: web.AppRunner | None = None
        self.http_port: int | None = None

    # --- http --------------------------------------------------------------------------------

    def _build_http(self) -> None:
        self.http.router.add_get("/healthz", self._healthz)
        self.http.router.add_get("/metrics", self._metrics)
        for ch in self.channels.values():
            routes = getattr(ch, "http_routes", None)
            if routes is not None:
                self.http.add_routes(routes())

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True, "active_replies": self.dispatcher.active})

    async def _metrics(self, _: web.Request) -> web.Response:
        self.metrics.active.set(self.dispatcher.active)
        return web.Response(body=self.metrics.render(), content_type="text/plain")

    @property
    def base_url(self) -> str:
        return f"http://{self.cfg.http.host}:{self.http_port}"

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()  # a channel refused to start (bad token, 409): close what was opened
            raise

    async def _start(self) -> None:
        await self.store.open()
        await self.responder.budget.load()
        # providers connect / load in parallel; a provider that fails to start is logged, and
        # routing falls through to the next model when it is asked
        results = await asyncio.gather(*(p.start() for p in self.providers.values()), return_exceptions=True)
        for name, res in zip(self.providers, results):
            if isinstance(res, BaseException):
                log.error("provider_start_failed", provider=name, error=str(res))
        if self.serve_http:
            self._build_http()
            self._runner = web.AppRunner(self.http, access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.cfg.http.host, self.cfg.http.port)
            await site.start()
            self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        for ch in self.channels.values():
            await ch.start(self.dispatcher)
        tune_gc()
        log.info("started", channels=list(self.channels), providers=list(self.providers), http=self.http_port)

    async def stop(self) -> None:
        # stop taking messages, end the replies in progress (each leaves a visible mark), and only
        # then close the platform connections those last words go out on
        for ch in self.channels.values():
            with contextlib.suppress(Exception):
                await ch.stop()
        await self.dispatcher.aclose()
        await self.responder.flush()
        for ch in self.channels.values():
            closer = getattr(ch, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for p in self.providers.values():
            with contextlib.suppress(Exception):
                await p.aclose()
        await self.store.close()

    async def __aenter__(self) -> "App":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
