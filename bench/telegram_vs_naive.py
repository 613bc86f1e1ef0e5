"""Telegram, side by side: Switchboard, the naive bot most people write first, and the floor.

Three bots answer the SAME scripted traffic from the SAME fakes, each in a process of its own,
one after the other:

- switchboard: the real runtime (`bot.app.App` + `channels.telegram.TelegramChannel`, long
  polling) with its OpenAI-compatible provider (`providers.fake = {kind = "openai", ...}`,
  `routing.default = "fake/bench"`), everything else at its defaults (drafts in private chats,
  edits in groups, typing, history, the group budget);
- naive (bench/naive_telegram_bot.py): python-telegram-bot's `Application` polling, a
  MessageHandler, the openai SDK streaming; reply_text with the first token, an edit at most once
  a second, a final edit; no 429 handling beyond PTB's (none);
- floor (bench/floor_telegram_bot.py): raw aiohttp getUpdates + a streaming POST; the first delta
  goes out with sendMessage at once, the whole answer in one final edit.

The fakes run in their own processes on 127.0.0.1: the Bot API (tests/fakes/telegram_server.py)
and an OpenAI-compatible server (tests/fakes/openai_server.py: a fixed TTFT, then a chunk of
--chunk-words words every --token-interval seconds, 60 words in all). Traffic: 20 private chats
and 5 groups (group messages mention @switchboard_bot), one message each, pushed by the fake
--gap (100 ms) apart in a seeded order, for --rounds rounds. A round is one process per bot, in an
order rotated every round so that drift on this shared machine favours nobody: the bot starts, one
unmeasured wave warms it (connections, first-call paths), then the measured wave; each wave waits
until every chat shows the whole answer (or --reply-timeout). In the middle round every bot gets
one injected HTTP 429 (retry_after 1) on its first editMessageText with text in the first group.
The fake also enforces Telegram's documented group limit (20 sends + edits per group a minute,
429 beyond it; reset for each bot run).

Per reply, on the machine-wide monotonic clock (both fakes stamp with CLOCK_MONOTONIC):

    added = first successful Bot API request carrying answer text for that chat (sendMessage,
            editMessageText or sendMessageDraft with non-empty text; typing does not count)
            arriving at the fake
          - the update handed out by getUpdates (the fake's `delivered_at`)
          - the provider's own TTFT for that request (the fake OpenAI server's stamp: handler
            entered -> first chunk written; matched by the question's unique text)

so it holds both Bot API trips, the provider request and first chunk on the wire, and everything
the bot does in between. Clean reply: exactly one message, whose final visible text is exactly
the expected answer, and no two requests on that message (its sendMessage and every
editMessageText of it, failed ones included) arriving less than 1 s apart (Telegram's pace for
edits, which every bot here claims; Switchboard's drafts are previews, not messages, and exempt).
Also counted: 429s a bot caused beyond the injected one; its CPU per measured reply. `--trace`
splits Switchboard's and the floor's added latency into segments (where the milliseconds go).

    python bench/telegram_vs_naive.py --rounds 3
    python bench/telegram_vs_naive.py --rounds 3 --seed 2 --order floor naive switchboard --trace
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._stats import percentile  # noqa: E402
from bench.telegram_latency import TOKEN, control, start_fake  # noqa: E402

BOTS = ("switchboard", "naive", "floor")
EXPECTED = " ".join(f"word{i}" for i in range(60))  # what tests/fakes/openai_server.py answers as a program
TEXT_METHODS = ("sendMessage", "editMessageText", "sendMessageDraft")
INTERVAL = 1.0  # Telegram: one message is edited at most once a second
INJECTED = "Too Many Requests: retry after 1 (injected)"
REF = re.compile(r"\(ref (\d+\.\d+\.\d+)\)")
BOT_USERNAME = "switchboard_bot"  # the fake's bot
TRACE_SEGMENTS = (
    ("update in", "getUpdates answer -> bot has the update"),
    ("to model", "update -> model request sent"),
    ("model req", "request on the wire -> provider handler"),
    ("first chunk", "provider wrote it -> bot parsed it"),
    ("to text", "first delta -> text request sent"),
    ("text req", "request sent -> at the Bot API"),
)
# Switchboard only: "update in" and "to model" in finer steps
TRACE_FINE = (
    ("http", "getUpdates answer -> its body read (aiohttp under PTB)"),
    ("ptb parse", "body read -> Update objects (PTB: JSON, Update.de_json)"),
    ("to lane", "Update -> the reply's task runs (adapter, intake, dispatcher)"),
    ("to route", "reply task -> routing decided (stream, typing scheduled, store, router)"),
    ("to request", "routed -> model request sent (model chain, prompt fit, request body)"),
)


# --- the Switchboard process ---------------------------------------------------------------------


async def _switchboard(base_url: str, token: str, openai_url: str, model: str, trace: bool) -> None:
    from bench._botproc import serve_commands
    from bot.app import App
    from bot.config import parse
    from bot.logs import configure
    from bot.providers import build_provider
    from channels.telegram import TelegramChannel, parse_config

    configure("error")
    cfg = parse(
        {
            "providers": {"fake": {"kind": "openai", "base_url": openai_url, "api_key": "bench"}},
            "models": {f"fake/{model}": {"context_window": 128000, "price": {"input": 0.1, "output": 0.1}}},
            "routing": {"default": f"fake/{model}"},
            "store": {"kind": "memory"},
            "logging": {"level": "error"},
            "channels": {"webchat": {"enabled": False}},
        }
    )
    tg = parse_config(
        {
            "token": token,
            "base_url": base_url,
            "base_file_url": base_url.replace("/bot", "/file/bot"),
            "conflict_probe": 0,
            "poll_timeout": 10,
        }
    )
    channel = TelegramChannel(tg)
    provider = build_provider("fake", cfg.providers["fake"])
    app = App(cfg, providers={"fake": provider}, channels=[channel], serve_http=False)
    stamps = _trace_switchboard(app, channel, provider) if trace else None
    await app.start()
    await serve_commands(app.stop, (lambda: stamps) if stamps is not None else None)


def _trace_switchboard(app: Any, channel: Any, provider: Any) -> dict[str, Any]:
    """Stamp (perf_counter) the getUpdates body read, the updates parsed, the reply's task started,
    routing decided, the model request, its first delta, each text call."""
    from bot.responder import Responder
    from channels.telegram.api import FastCalls
    from channels.telegram.transport import AiohttpRequest

    tr: dict[str, Any] = {"recv": {}, "llm_req": {}, "llm_first": {}, "text": defaultdict(list)}
    tr.update(http={}, lane={}, routed={})
    ref_bytes = re.compile(rb"\(ref (\d+\.\d+\.\d+)\)")
    do_request = AiohttpRequest.do_request

    async def traced_request(self: Any, url: str, *a: Any, **kw: Any) -> tuple[int, bytes]:
        status, body = await do_request(self, url, *a, **kw)
        if url.endswith("/getUpdates"):
            now = time.perf_counter()
            for m in ref_bytes.finditer(body):
                tr["http"][m.group(1).decode()] = now
        return status, body

    AiohttpRequest.do_request = traced_request  # type: ignore[method-assign]
    respond = Responder.__call__

    async def traced_respond(self: Any, turn: Any) -> None:
        if m := REF.search(turn.msg.text):
            tr["lane"][m.group(1)] = time.perf_counter()
        await respond(self, turn)

    Responder.__call__ = traced_respond  # type: ignore[method-assign]
    adecide = app.router.adecide

    async def traced_decide(msg: Any, *a: Any, **kw: Any) -> Any:
        decision = await adecide(msg, *a, **kw)
        if m := REF.search(msg.text):
            tr["routed"][m.group(1)] = time.perf_counter()
        return decision

    app.router.adecide = traced_decide
    process = channel._process

    async def _process(updates: Any) -> None:
        now = time.perf_counter()
        for u in updates:
            m = u.message or u.edited_message
            ref = REF.search(m.text or "") if m is not None else None
            if ref:
                tr["recv"][ref.group(1)] = now
        await process(updates)

    channel._process = _process
    stream = provider.stream

    def traced(req: Any) -> Any:
        ref = REF.search(req.messages[-1].content)
        key = ref.group(1) if ref else ""

        async def gen() -> Any:
            tr["llm_req"][key] = time.perf_counter()
            first = True
            async for d in stream(req):
                if first and d.text:
                    tr["llm_first"][key] = time.perf_counter()
                    first = False
                yield d

        return gen()

    provider.stream = traced
    call = FastCalls.call

    async def traced_call(self: Any, method: str, params: dict[str, Any]) -> Any:
        if method in TEXT_METHODS:
            tr["text"][str(params.get("chat_id"))].append(time.perf_counter())
        return await call(self, method, params)

    FastCalls.call = traced_call  # type: ignore[method-assign]
    return tr


# --- driving a bot process -----------------------------------------------------------------------


class BotProcess:
    """One bot in its own process, spoken to over bench/_botproc.py's line protocol."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{self.name}: no {prefix!r} within {timeout} s (log: {self.log_path})") from None
            if line is None:
                raise RuntimeError(f"{self.name} exited ({self.proc.poll()}); log: {self.log_path}")
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def ask(self, command: str, prefix: str, timeout: float = 10.0) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.expect(prefix, timeout)

    def stop(self, timeout: float = 20.0) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # end of input: the bot stops itself
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


def bot_argv(bot: str, tg_port: int, openai_url: str, trace: bool, naive_sequential: bool) -> list[str]:
    common = ["--base-url", f"http://127.0.0.1:{tg_port}/bot", "--token", TOKEN, "--openai-url", openai_url]
    if bot == "switchboard":
        return [sys.executable, str(ROOT / "bench/telegram_vs_naive.py"), "--child", *common] + (
            ["--trace"] if trace else []
        )
    if bot == "naive":
        return [sys.executable, str(ROOT / "bench/naive_telegram_bot.py"), *common] + (
            ["--sequential"] if naive_sequential else []
        )
    return [sys.executable, str(ROOT / "bench/floor_telegram_bot.py"), *common] + (["--trace"] if trace else [])


def get_json(url: str, body: object | None = None, timeout: float = 30.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def start_openai(ttft: float, interval: float, words: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "0", str(ttft), str(interval), str(words)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        raise SystemExit(f"fake OpenAI server did not start: {line!r}")
    return proc, line.split()[1]


# --- traffic and judging -------------------------------------------------------------------------


@dataclass
class Reply:
    bot: str
    round: int
    chat: int
    group: bool
    added: float | None  # seconds; None: no answer text ever showed
    ttft: float | None  # the provider's own, for this request
    clean: bool
    why: str
    segments: dict[str, float] = field(default_factory=dict)  # --trace


@dataclass
class BotRun:
    bot: str
    round: int
    replies: list[Reply]
    caused_429: int
    injected_429: int
    other_errors: int
    cpu_per_reply: float
    incomplete: int


def wave_messages(chats: list[int], groups: set[int], rnd: int, phase: int, rng: random.Random) -> list[dict]:
    order = list(chats)
    rng.shuffle(order)
    out = []
    for c in order:
        i = chats.index(c)
        q = f"Tell me sixty words, please (ref {rnd}.{phase}.{i:02d})"
        out.append(
            {
                "chat_id": c,
                "text": f"@{BOT_USERNAME} {q}" if c in groups else q,
                "user_id": 50_000 + i,
                "username": f"user{i}",
                "first_name": f"User{i}",
            }
        )
    return out


def judge(
    bot: str,
    rnd: int,
    messages: list[dict],
    ids: list[int],
    groups: set[int],
    delivered: dict[int, float],
    calls: list[list[Any]],
    shown: dict[int, dict[int, str]],
    ttfts: dict[str, tuple[float, float]],
    trace: dict[str, Any] | None,
) -> list[Reply]:
    per_chat: dict[int, list[list[Any]]] = defaultdict(list)
    for c in calls:
        if c[3] is not None:
            per_chat[int(c[3])].append(c)
    out = []
    for msg, upd in zip(messages, ids, strict=True):
        chat = int(msg["chat_id"])
        ref_m = REF.search(msg["text"])
        ref = ref_m.group(1) if ref_m else ""
        t0 = delivered.get(upd)
        stamp = ttfts.get(ref)
        ttft = stamp[1] - stamp[0] if stamp else None
        if t0 is None:
            out.append(Reply(bot, rnd, chat, chat in groups, None, ttft, False, "update never delivered"))
            continue
        mine = sorted((c for c in per_chat[chat] if c[1] >= t0), key=lambda c: c[1])
        texts = [c for c in mine if c[0] in TEXT_METHODS and c[5] and str(c[5]).strip()]
        first = next((c for c in texts if c[2] == 200), None)
        added = first[1] - t0 - ttft if first is not None and ttft is not None else None
        why = []
        created = [c[4] for c in mine if c[0] == "sendMessage" and c[2] == 200]
        if len(created) != 1:
            why.append(f"{len(created)} messages")
        elif shown.get(chat, {}).get(created[0]) != EXPECTED:
            why.append("final text is not the answer")
        for mid in created:
            at = [c[1] for c in mine if c[0] in ("sendMessage", "editMessageText") and c[4] == mid]
            gaps = [b - a for a, b in zip(at, at[1:], strict=False)]
            if gaps and min(gaps) < INTERVAL:
                why.append(f"requests on one message {min(gaps) * 1000:.0f} ms apart")
        if first is None:
            why.append("no answer text")
        segments: dict[str, float] = {}
        if trace is not None and first is not None and stamp is not None:
            recv, req, got = (trace[k].get(ref) for k in ("recv", "llm_req", "llm_first"))
            sent = next((t for t in trace["text"].get(str(chat), []) if got is not None and t >= got), None)
            if recv is not None and req is not None and got is not None and sent is not None:
                segments = dict(
                    zip(
                        (s[0] for s in TRACE_SEGMENTS),
                        (recv - t0, req - recv, stamp[0] - req, got - stamp[1], sent - got, first[1] - sent),
                        strict=True,
                    )
                )
                fine = [trace.get(k, {}).get(ref) for k in ("http", "lane", "routed")]
                if fine[0] is not None and fine[1] is not None and fine[2] is not None:
                    http, lane, routed = fine
                    steps = (http - t0, recv - http, lane - recv, routed - lane, req - routed)
                    segments.update(zip((s[0] for s in TRACE_FINE), steps, strict=True))
        out.append(Reply(bot, rnd, chat, chat in groups, added, ttft, not why, "; ".join(why), segments))
    return out


def run_bot(
    bot: str,
    rnd: int,
    args: argparse.Namespace,
    tg_port: int,
    openai_url: str,
    logs: Path,
    state: dict[str, Any],
) -> BotRun:
    privates = [20_001 + i for i in range(args.privates)]
    group_ids = [-1_001_000_000 - i for i in range(args.groups)]
    chats = privates + group_ids
    groups = set(group_ids)
    rng = random.Random(args.seed * 1000 + rnd)  # the same traffic for every bot in this round
    warm = [wave_messages(chats, groups, rnd, p, rng) for p in range(args.warmup)]
    measured = wave_messages(chats, groups, rnd, 9, rng)
    finals = {str(c): EXPECTED for c in chats}
    wave_timeout = args.gap * len(chats) + args.reply_timeout + 30

    def wave(messages: list[dict]) -> dict[str, Any]:
        body = {"messages": messages, "gap": args.gap, "finals": finals, "timeout": args.reply_timeout}
        got = control(tg_port, "wave", body, timeout=wave_timeout)
        state["last_update"] = max([state["last_update"], *got["updates"]])
        return got

    # nothing left over from the previous bot: confirm every update, reset the group limit
    get_json(f"http://127.0.0.1:{tg_port}/bot{TOKEN}/getUpdates", {"offset": state["last_update"] + 1, "timeout": 0})
    control(tg_port, "limits", {"group_per_minute": None if args.no_flood_limit else 20})
    log = logs / f"{bot}-round{rnd}.log"
    proc = BotProcess(bot, bot_argv(bot, tg_port, openai_url, args.trace, args.naive_sequential), log)
    try:
        proc.expect("READY", 60)
        for messages in warm:
            wave(messages)
            time.sleep(args.settle)
        n_stamps = len(get_json(openai_url.removesuffix("/v1") + "/_ttft"))
        cpu0 = float(proc.ask("cpu", "CPU"))
        if rnd == args.rounds // 2:
            control(
                tg_port,
                "fail",
                {
                    "method": "editMessageText",
                    "status": 429,
                    "description": INJECTED,
                    "retry_after": 1,
                    "times": 1,
                    "chat_id": group_ids[0],
                    "with_text": True,
                },
            )
        since = time.monotonic()
        got = wave(measured)
        time.sleep(args.settle)
        cpu1 = float(proc.ask("cpu", "CPU"))
        trace = json.loads(proc.ask("trace", "TRACE")) if args.trace and bot != "naive" else None
    finally:
        try:
            control(tg_port, "fail", {"clear": True})
        finally:
            proc.stop()
    until = time.monotonic()
    calls = [c for c in control(tg_port, f"calls?since={since}")["calls"] if c[1] <= until]
    delivered = {
        int(k): v for k, v in control(tg_port, f"state?since={until}&first={min(got['updates'])}")["delivered"].items()
    }
    shown = {int(k): {m[0]: m[1] for m in v} for k, v in control(tg_port, "messages").items()}
    stamps = get_json(openai_url.removesuffix("/v1") + "/_ttft")[n_stamps:]
    ttfts = {m.group(1): (entered, first) for text, entered, first in stamps if (m := REF.search(text))}
    replies = judge(bot, rnd, measured, got["updates"], groups, delivered, calls, shown, ttfts, trace)
    return BotRun(
        bot,
        rnd,
        replies,
        caused_429=sum(1 for c in calls if c[2] == 429 and c[7] != INJECTED),
        injected_429=sum(1 for c in calls if c[2] == 429 and c[7] == INJECTED),
        other_errors=sum(1 for c in calls if c[2] not in (200, 429)),
        cpu_per_reply=(cpu1 - cpu0) / len(measured),
        incomplete=len(got["incomplete"]),
    )


# --- the report ----------------------------------------------------------------------------------


def ms(v: float) -> str:
    return f"{v * 1000:7.2f}"


def stats(values: list[float]) -> str:
    if not values:
        return "      -       -       -       -"
    return " ".join(ms(percentile(values, p)) for p in (50, 95, 99)) + " " + ms(max(values))


def report(runs: list[BotRun], bots: list[str], nominal_ttft: float, trace: bool) -> None:
    print()
    print("added latency to first answer text, ms (p50 p95 p99 max)")
    head = f"{'bot':12s} {'replies':>7s} | {'all':^31s} | {'private chats':^31s} | {'groups':^31s} |"
    print(head + f" {'clean':>7s} {'429 caused':>10s} {'CPU/reply':>9s}")
    for bot in bots:
        mine = [r for run in runs if run.bot == bot for r in run.replies]
        rs = [run for run in runs if run.bot == bot]
        added = [r.added for r in mine if r.added is not None]
        priv = [r.added for r in mine if r.added is not None and not r.group]
        grp = [r.added for r in mine if r.added is not None and r.group]
        clean = sum(r.clean for r in mine)
        caused = sum(run.caused_429 for run in rs)
        cpu = sum(run.cpu_per_reply for run in rs) / max(1, len(rs))
        print(
            f"{bot:12s} {len(mine):7d} | {stats(added)} | {stats(priv)} | {stats(grp)} |"
            f" {clean:3d}/{len(mine):<3d} {caused:10d} {cpu * 1000:7.2f}ms"
        )
    print()
    for bot in bots:
        mine = [r for run in runs if run.bot == bot for r in run.replies]
        rs = [run for run in runs if run.bot == bot]
        late = [r.ttft - nominal_ttft for r in mine if r.ttft is not None]
        reasons: dict[str, int] = defaultdict(int)
        for r in mine:
            if not r.clean:
                reasons[re.sub(r"\d+ ms apart", "< 1 s apart", r.why)] += 1
        missing = sum(1 for r in mine if r.added is None)
        print(
            f"{bot}: injected 429s hit {sum(run.injected_429 for run in rs)}, other failed calls"
            f" {sum(run.other_errors for run in rs)}, waves not complete {sum(run.incomplete for run in rs)},"
            f" replies without a latency {missing}; provider TTFT over nominal p50 {ms(percentile(late, 50))}"
            f" max {ms(max(late, default=float('nan')))} ms (subtracted)"
        )
        for why, n in sorted(reasons.items()):
            print(f"    not clean x{n}: {why}")
    if trace:
        print()
        print("where the added milliseconds go (--trace), p50 / max per segment, ms:")
        for name, what in TRACE_SEGMENTS:
            print(f"  {name:12s} {what}")
        for bot in bots:
            mine = [r for run in runs if run.bot == bot for r in run.replies if r.segments]
            if not mine:
                continue
            cells = []
            for name, _ in TRACE_SEGMENTS:
                v = [r.segments[name] for r in mine]
                cells.append(f"{name} {percentile(v, 50) * 1000:.2f}/{max(v) * 1000:.2f}")
            print(f"  {bot:12s} " + "  ".join(cells) + f"  (n={len(mine)})")
        fine = [r for run in runs if run.bot == "switchboard" for r in run.replies if TRACE_FINE[0][0] in r.segments]
        if fine:
            print("  switchboard's first two segments in finer steps, p50 / max, ms:")
            for name, what in TRACE_FINE:
                v = [r.segments[name] for r in fine]
                print(f"    {name:11s} {percentile(v, 50) * 1000:6.2f} / {max(v) * 1000:6.2f}  {what}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bots", nargs="+", choices=BOTS, default=list(BOTS))
    ap.add_argument("--order", nargs="+", choices=BOTS, help="the first round's order (then rotated each round)")
    ap.add_argument("--privates", type=int, default=20)
    ap.add_argument("--groups", type=int, default=5)
    ap.add_argument("--gap", type=float, default=0.1, help="seconds between two messages of a wave")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured waves before the measured one")
    ap.add_argument("--ttft", type=float, default=0.17, help="the fake provider's TTFT, seconds")
    ap.add_argument("--token-interval", type=float, default=0.03, help="seconds between two chunks")
    ap.add_argument("--chunk-words", type=int, default=3, help="words per chunk (60 words in all)")
    ap.add_argument("--reply-timeout", type=float, default=8.0, help="seconds a wave waits for its last answer")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds of quiet after a wave")
    ap.add_argument("--no-flood-limit", action="store_true", help="the fake does not enforce 20 a minute per group")
    ap.add_argument("--naive-sequential", action="store_true", help="the naive bot at PTB's default concurrency (1)")
    ap.add_argument("--trace", action="store_true", help="break the added latency down (switchboard, floor)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    ap.add_argument("--token", help=argparse.SUPPRESS)
    ap.add_argument("--openai-url", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="bench", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # the Switchboard bot process
        asyncio.run(_switchboard(args.base_url, args.token, args.openai_url, args.model, args.trace))
        return

    order = [b for b in (args.order or BOTS) if b in args.bots]
    order += [b for b in args.bots if b not in order]
    logs = Path(tempfile.mkdtemp(prefix="tg-vs-naive-"))
    print(
        f"traffic: {args.privates} private chats + {args.groups} groups, one message each, {args.gap * 1000:.0f} ms"
        f" apart, seed {args.seed}; {args.warmup} warm-up + 1 measured wave per bot and round, {args.rounds} rounds;"
        f" provider TTFT {args.ttft * 1000:.0f} ms, {args.chunk_words} words every {args.token_interval * 1000:.0f} ms;"
        f" bot logs in {logs}",
        flush=True,
    )
    tg_proc = oa_proc = None
    runs: list[BotRun] = []
    try:
        tg_proc, tg_port = start_fake()
        oa_proc, openai_url = start_openai(args.ttft, args.token_interval, args.chunk_words)
        state = {"last_update": 0}
        for rnd in range(args.rounds):
            k = rnd % len(order)
            for bot in order[k:] + order[:k]:
                run = run_bot(bot, rnd, args, tg_port, openai_url, logs, state)
                runs.append(run)
                added = [r.added for r in run.replies if r.added is not None]
                print(
                    f"round {rnd} {bot:12s} added p50 {ms(percentile(added, 50))} max {ms(max(added, default=0))} ms;"
                    f" clean {sum(r.clean for r in run.replies)}/{len(run.replies)}; 429 caused {run.caused_429},"
                    f" injected {run.injected_429}; CPU {run.cpu_per_reply * 1000:.2f} ms/reply;"
                    f" machine load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        for proc in (oa_proc, tg_proc):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
    report(runs, order, args.ttft, args.trace)
    extra = (" --trace" if args.trace else "") + (" --naive-sequential" if args.naive_sequential else "")
    extra += " --no-flood-limit" if args.no_flood_limit else ""
    print(
        f"reproduce: python bench/telegram_vs_naive.py --rounds {args.rounds} --seed {args.seed}"
        f" --bots {' '.join(order)} --order {' '.join(order)} --privates {args.privates} --groups {args.groups}"
        f" --gap {args.gap} --warmup {args.warmup} --ttft {args.ttft} --token-interval {args.token_interval}"
        f" --chunk-words {args.chunk_words} --reply-timeout {args.reply_timeout} --settle {args.settle}{extra}"
    )


if __name__ == "__main__":
    main()
