"""The `switchboard` command. Imports stay inside each command so `--help` is instant."""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Config

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG = 0, 1, 2


def _load_config(args: argparse.Namespace) -> Config:
    from bot import config

    return config.load(args.config)


def _setup_logs(cfg: Config, *, quiet: bool = False) -> None:
    from bot import logs

    logs.configure("warning" if quiet else cfg.logging.level, cfg.logging.format)


# --- run / chat ----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    _setup_logs(cfg)
    import signal

    from bot.app import App

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # docker stop / systemd / Ctrl-C: a clean stop
            loop.add_signal_handler(sig, stop.set)
        app = App(cfg)
        await app.start()
        if "webchat" in app.channels:
            print(f"Switchboard webchat: {app.base_url}/", flush=True)
        print(f"Channels: {', '.join(app.channels) or 'none'}. Ctrl-C stops.", flush=True)
        try:
            await stop.wait()
        finally:
            await app.stop()  # replies in progress end with a mark; Telegram confirms its offset

    asyncio.run(main())
    return EXIT_OK


def cmd_chat(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    _setup_logs(cfg, quiet=True)
    from bot.app import App, build_channel

    async def main() -> None:
        console: Any = build_channel(cfg, "console", {})
        app = App(cfg, channels=[console], serve_http=False)
        await app.start()
        print("Switchboard chat. /help for commands, Ctrl-D to quit.", flush=True)
        echo = not sys.stdin.isatty()  # piped input is not shown by the terminal: show each question
        try:
            while (line := await read_line("> ")) is not None:
                if echo:
                    print(line, flush=True)
                if line.strip():
                    await console.say(line)
                    await app.dispatcher.drain()
        finally:
            await app.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    print()
    return EXIT_OK


# --- message send --------------------------------------------------------------------------------


def cmd_message_send(args: argparse.Namespace) -> int:
    if not args.text.strip():
        print("error: message send: the message is empty (give the text to send)", file=sys.stderr)
        return EXIT_CONFIG
    cfg = _load_config(args)
    _setup_logs(cfg, quiet=True)
    import uuid

    from bot.app import App, build_channel

    async def main() -> int:
        # a conversation of its own each time: no history carried over, but the reply is kept in
        # the ledger (spend, and the speed `models list` shows as measured here)
        conversation = f"cli:message-send:{uuid.uuid4().hex[:12]}"
        console: Any = build_channel(cfg, "console", {"conversation": conversation})
        app = App(cfg, channels=[console], serve_http=False)
        await app.start()
        try:
            if args.model:
                model = app.catalog.get(args.model)
                if model is None:
                    print(f"unknown model: {args.model} (see `switchboard models list`)", file=sys.stderr)
                    return EXIT_PROBLEM
                if not app.router.is_available(model):
                    print(
                        f"model {model.ref} is not available: provider '{model.provider}' is not configured or has no key",
                        file=sys.stderr,
                    )
                    return EXIT_PROBLEM
                await app.store.set_sticky_model(console.conversation, model.ref)
            await console.say(args.text)
            await app.dispatcher.drain()
            await app.responder.flush()
            rec = await app.store.last_reply(console.conversation)
        finally:
            await app.stop()
        if rec is None:
            print("no reply was recorded", file=sys.stderr)
            return EXIT_PROBLEM
        gen_time = rec.total - (rec.ttft or 0)
        tps = rec.completion_tokens / gen_time if gen_time > 0 and rec.completion_tokens else 0.0
        ttft = f"{rec.ttft * 1000:.0f} ms" if rec.ttft is not None else "n/a"
        reason = rec.route_reason
        if args.model:  # one message: there is no conversation for the choice to stick to
            reason = reason.replace("chosen in this conversation (sticky until /model default)", "chosen with --model")
        print(
            f"\n— {rec.model} · {reason} · TTFT {ttft} · {tps:.0f} tokens/s · "
            f"{rec.prompt_tokens}+{rec.completion_tokens} tokens · ${rec.cost_usd:.6f}",
            file=sys.stderr if args.quiet_stats else sys.stdout,
        )
        return EXIT_OK if rec.outcome in ("ok", "fallback") else EXIT_PROBLEM

    return asyncio.run(main())


# --- models / route --------------------------------------------------------------------------------


def cmd_models_list(args: argparse.Namespace) -> int:
    import json

    from routing.cli import format_models_table, models_table

    cfg = _load_config(args)
    rows = models_table(cfg)
    measured = asyncio.run(_measured(cfg))
    for r in rows:
        ttft, tps, n = measured.get(r["ref"], (None, None, 0))
        r["measured_ttft_ms"] = None if ttft is None else round(ttft * 1000, 1)
        r["measured_tokens_per_s"] = None if tps is None else round(tps, 1)
        r["measured_replies"] = n
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(format_models_table(rows))
    seen = [r for r in rows if r["measured_replies"]]
    if seen:
        print("\nmeasured here:")
        for r in seen:
            print(
                f"  {r['ref']}: TTFT {r['measured_ttft_ms']} ms, {r['measured_tokens_per_s']} tokens/s"
                f" over {r['measured_replies']} replies"
            )
    return EXIT_OK


async def _measured(cfg: Config) -> dict[str, tuple[float | None, float | None, int]]:
    """Average TTFT and tokens/s per model from the reply ledger, when there is one."""
    from bot.app import store_path
    from bot.store.sqlite import SqliteStore

    path = store_path(cfg)
    if cfg.store.kind != "sqlite" or not path.exists():
        return {}
    store = SqliteStore(path)
    await store.open()
    try:
        return await store.model_stats()
    finally:
        await store.close()


# --- config --------------------------------------------------------------------------------------


def cmd_config_validate(args: argparse.Namespace) -> int:
    from bot import config
    from bot.app import build_channel, configured_channels

    path = config.resolve_path(args.config)
    cfg = config.load(args.config)
    for name, table in configured_channels(cfg).items():
        build_channel(cfg, name, table)  # each channel validates its own table
    print(f"ok: {path or 'built-in default'}")
    return EXIT_OK


def cmd_config_get(args: argparse.Namespace) -> int:
    from bot.config_edit import get_value

    cfg = _load_config(args)
    print(get_value(cfg, args.key))
    return EXIT_OK


def cmd_config_set(args: argparse.Namespace) -> int:
    from bot import config
    from bot.config_edit import set_value

    path = config.resolve_path(args.config) or Path(config.DEFAULT_FILENAME)
    set_value(path, args.key, args.value)
    print(f"{args.key} set in {path}")
    return EXIT_OK


# --- doctor --------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from bot import logs
    from bot.app import doctor_checks
    from bot.doctor import collect, print_checks

    logs.configure("error")
    return print_checks(asyncio.run(collect(args.config, deep=args.deep, more=doctor_checks)))


# --- route ---------------------------------------------------------------------------------------


def cmd_route(args: argparse.Namespace) -> int:
    from bot.app import channel_capabilities
    from routing.cli import run_route

    return run_route(args, capabilities=channel_capabilities)


# --- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    config_help = "TOML config file (default: $SWITCHBOARD_CONFIG, ./switchboard.toml, built-in)"
    p = argparse.ArgumentParser(prog="switchboard", description="Answer chat messages with LLMs, fast.")
    p.add_argument("--config", "-c", help=config_help)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    # `--config` also works after the command (`switchboard run --config x.toml`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", default=argparse.SUPPRESS, help=config_help)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error"
    )
    sub = p.add_subparsers(dest="command", required=True)

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], help: str, parent: Any = sub
    ) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help, parents=[common])
        sp.set_defaults(func=fn)
        return sp

    add("run", cmd_run, "run every configured channel (default: webchat on http://127.0.0.1:8080)")
    add("chat", cmd_chat, "talk to the bot in this terminal")

    msg = sub.add_parser("message", help="one-shot messages").add_subparsers(dest="sub", required=True)
    send = add("send", cmd_message_send, "send one message, print the reply and its timings", msg)
    send.add_argument("text")
    send.add_argument("--model", "-m", help="model ref or alias to use")
    send.add_argument("--quiet-stats", action="store_true", help="print the timing line on stderr")

    models = sub.add_parser("models", help="the model catalog").add_subparsers(dest="sub", required=True)
    ml = add("list", cmd_models_list, "models, aliases, context, price, availability, measured speed", models)
    ml.add_argument("--json", action="store_true")

    conf = sub.add_parser("config", help="read, change and check the config").add_subparsers(dest="sub", required=True)
    add("validate", cmd_config_validate, "check the config file", conf)
    g = add("get", cmd_config_get, "print one value (dotted key, e.g. channels.webchat.title)", conf)
    g.add_argument("key")
    s = add("set", cmd_config_set, "set one value in the file, keeping comments and layout", conf)
    s.add_argument("key")
    s.add_argument("value", help='a TOML value (42, true, "text", [1, 2]); bare words are strings')

    d = add("doctor", cmd_doctor, "check config, keys, the local model and (with --deep) providers")
    d.add_argument("--deep", action="store_true", help="also call each configured provider")

    from routing.cli import add_route_parser

    add_route_parser(sub).set_defaults(func=cmd_route)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bot.errors import ConfigError, SwitchboardError

    try:
        code: int = args.func(args)
        return code
    except SwitchboardError as e:  # expected failures: one line with the fix; --debug for the traceback
        if getattr(args, "debug", False):
            raise
        from bot.logs import redact_text

        print(f"error: {redact_text(str(e))}", file=sys.stderr)  # a platform's message may quote a token
        return EXIT_CONFIG if isinstance(e, ConfigError) else EXIT_PROBLEM


async def read_line(prompt: str = "> ") -> str | None:
    """One line from stdin without blocking the event loop; None at end of input.

    A daemon thread per line, not the loop's executor: on Ctrl-C the process exits at once
    instead of waiting for the executor's thread to return from input().
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str | None] = loop.create_future()

    def deliver(line: str | None) -> None:
        if not done.done():
            done.set_result(line)

    def read() -> None:
        try:
            line: str | None = input(prompt)
        except (EOFError, KeyboardInterrupt):
            line = None
        try:
            loop.call_soon_threadsafe(deliver, line)
        except RuntimeError:  # the loop is already closed: nobody is waiting
            pass

    threading.Thread(target=read, name="console-input", daemon=True).start()
    return await done


if __name__ == "__main__":
    sys.exit(main())
