"""The composition root: the only place that knows every part and wires them from the config."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import structlog
from aiohttp import web

from bot.channel import Channel, Check
from bot.config import Config
from bot.dispatcher import Dispatcher
from bot.errors import ConfigError, StartupError
from bot.intake import Intake
from bot.metrics import Metrics
from bot.model_chain import ModelChain
from bot.providers import build_provider
from bot.providers.base import Provider
from bot.responder import Responder
from bot.state import MemorySpendLedger, StoredSeenDeliveries
from bot.store.base import Store
from bot.types import Capabilities, ChatKind
from routing.catalog import Catalog
from routing.router import Router

log = structlog.get_logger("switchboard.app")

# channel name -> module with `CHANNEL` (its Channel class) and `build(cfg, table) -> Channel`;
# imported only when configured. Registering a platform is one line here.
CHANNEL_MODULES = {
    "webchat": "channels.webchat",
    "console": "channels.console",
    "telegram": "channels.telegram",
    "discord": "channels.discord",
    "slack": "channels.slack",
}


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


def port_problem(host: str, port: int, e: OSError) -> str:
    """One line naming the address, the config key and the fix."""
    if e.errno == errno.EADDRINUSE:
        return (
            f"http.port: {host}:{port} is already in use (another switchboard running?); "
            "stop it, or set another port: switchboard config set http.port 8081"
        )
    return f"http.host / http.port: cannot listen on {host}:{port} ({e.strerror or e})"


def channel_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(CHANNEL_MODULES[name])
    except KeyError:
        raise ConfigError(f"unknown channel '{name}' (known: {', '.join(CHANNEL_MODULES)})") from None


def build_channel(cfg: Config, name: str, table: dict[str, Any]) -> Channel:
    builder: Callable[[Config, dict[str, Any]], Channel] = channel_module(name).build
    try:
        return builder(cfg, table)
    except ConfigError as e:
        raise ConfigError(with_missing_env(str(e), cfg, f"channels.{name}.")) from None


def with_missing_env(message: str, cfg: Config, prefix: str) -> str:
    """A channel's error, where a key is empty because its ${VARIABLE} is unset: say which variable,
    as the file names it, and which file (the channel itself only sees the empty value)."""
    lines = message.splitlines()
    for key, var in cfg._missing_env.items():
        if not key.startswith(prefix):
            continue
        fixed = f"  {key}: environment variable {var} is not set (referenced in {cfg._source}); export it"
        for i, line in enumerate(lines):
            if line.strip().startswith(f"{key}:"):
                lines[i] = fixed
                break
        else:
            lines.append(fixed)
    return "\n".join(lines)


def channel_capabilities(name: str, chat_kind: ChatKind | None) -> Capabilities:
    """What a default-configured channel declares for a chat kind (`switchboard route`)."""
    cls: type[Channel] = channel_module(name).CHANNEL
    return cls.declared_capabilities(chat_kind or ChatKind.PRIVATE)


async def doctor_checks(cfg: Config, deep: bool = False) -> list[Check]:
    """Every channel's own checks and the routing config's problems (providers: bot.doctor)."""
    checks: list[Check] = []
    try:
        channels = configured_channels(cfg)
    except ConfigError as e:
        channels = {}
        checks.append(Check("channels", False, str(e), "fix the channel table named above"))
    for name, table in channels.items():
        try:
            channel = build_channel(cfg, name, table)
        except ConfigError as e:
            checks.append(Check(f"channel {name}", False, str(e).replace("\n", " "), "fix the keys named above"))
            continue
        try:
            checks += await channel.doctor_checks(deep=deep)
        except Exception as e:
            checks.append(Check(f"channel {name}", False, f"check failed: {e}", f"fix channels.{name}"))
    catalog = Catalog.from_config(cfg)
    router = Router(cfg, catalog)
    for problem in router.problems():
        checks.append(Check("routing", False, problem, "fix the model name in [routing] or add it under [models]"))
    for ref in [cfg.routing.default, *cfg.routing.fallbacks]:
        m = catalog.get(ref) if ref else None  # unknown names were reported by router.problems() above
        if m is not None and not router.is_available(m):
            checks.append(
                Check(
                    f"routing model {ref}",
                    False,
                    f"provider '{m.provider}' not configured or no key",
                    f"add [providers.{m.provider}] with its api_key",
                )
            )
    return checks


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
    """Everything running: store, providers, intake, dispatcher, the HTTP server and the channels."""

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
        self.channels: dict[str, Channel] = {c.name: c for c in channels}
        self.spend = MemorySpendLedger(cfg.budget.monthly_usd)
        self.responder = Responder(
            cfg,
            channels=self.channels,
            chain=ModelChain(self.providers, self.router, max_tokens=cfg.bot.max_tokens),
            router=self.router,
            store=self.store,
            metrics=self.metrics,
            spend=self.spend,
        )
        self.seen = StoredSeenDeliveries(self.store, window=cfg.dispatcher.dedupe_window)
        self.dispatcher = Dispatcher(
            self.responder,
            on_duplicate=lambda m: self.metrics.duplicates.labels(m.channel).inc(),
            max_concurrent=cfg.dispatcher.max_concurrent,
            queue_mode=cfg.dispatcher.queue_mode,
            seen=self.seen,
        )
        self.intake = Intake(self.dispatcher, self.channels, metrics=self.metrics, history=self.store.history)
        self.serve_http = serve_http
        self.http = web.Application()
        self._runner: web.AppRunner | None = None
        self.http_port: int | None = None

    # --- http --------------------------------------------------------------------------------

    def _build_http(self) -> None:
        self.http.router.add_get("/healthz", self._healthz)
        self.http.router.add_get("/metrics", self._metrics)
        for ch in self.channels.values():
            self.http.add_routes(ch.http_routes())

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
            await self.stop(grace=0)  # a channel refused to start (bad token, 409): close what was opened
            raise

    async def _start(self) -> None:
        await self.store.open()
        await self.seen.load()  # a delivery taken before a restart is still a repeat
        self.spend.add(await self.store.spend_since(self.spend.month))
        # providers connect / load in parallel; a provider that fails to start is logged, and
        # routing falls through to the next model when it is asked
        results = await asyncio.gather(*(p.start() for p in self.providers.values()), return_exceptions=True)
        for name, res in zip(self.providers, results, strict=True):
            if isinstance(res, BaseException):
                log.error("provider_start_failed", provider=name, error=str(res))
        if self.serve_http:
            self._build_http()
            self._runner = web.AppRunner(self.http, access_log=None, handle_signals=False)
            await self._runner.setup()
            host, port = self.cfg.http.host, self.cfg.http.port
            site = web.TCPSite(self._runner, host, port)
            try:
                await site.start()
            except OSError as e:
                raise StartupError(port_problem(host, port, e)) from None
            self.http_port = _bound_port(self._runner)
        # ready before the first message: providers warm, models loaded, and the garbage collector
        # tuned now, not with the first replies in flight (a full collection here cost ~80 ms)
        tune_gc()
        self.intake.open()
        for ch in self.channels.values():
            await ch.start(self.intake)
        log.info("started", channels=list(self.channels), providers=list(self.providers), http=self.http_port)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking messages; give the replies in flight `grace` seconds (config:
        dispatcher.shutdown_grace) to finish; end the rest with a visible mark; only then close the
        platform connections those last words go out on."""
        grace = self.cfg.dispatcher.shutdown_grace if grace is None else grace
        for ch in self.channels.values():  # the platforms first: what they already took is still queued
            with contextlib.suppress(Exception):
                await ch.stop()
        self.intake.close()
        if grace > 0 and not await self.dispatcher.drain(grace):
            log.warning("shutdown_grace_over", active=self.dispatcher.active, grace=grace)
        dropped = await self.dispatcher.aclose()
        await self.responder.flush()
        await self.intake.tell_dropped(dropped)
        await self.intake.flush()
        for ch in self.channels.values():
            with contextlib.suppress(Exception):
                await ch.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for p in self.providers.values():
            with contextlib.suppress(Exception):
                await p.aclose()
        with contextlib.suppress(Exception):
            await self.seen.aclose()
        await self.store.close()

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _bound_port(runner: web.AppRunner) -> int | None:
    """The port the server listens on (the config may say 0: any free port)."""
    for addr in runner.addresses:  # public API; (host, port[, flow, scope]) for TCP sites
        if isinstance(addr, tuple) and len(addr) >= 2:
            return int(addr[1])
    return None
