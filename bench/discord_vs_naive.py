"""Discord, side by side: Switchboard and the naive bot most people write first.

Two bots answer the SAME scripted traffic from the SAME fakes, each in a process of its own, one
after the other:

- switchboard: the real runtime (`bot.app.App` + `channels.discord.DiscordChannel`: discord.py on
  the gateway, its own aiohttp REST client for replies) with its OpenAI-compatible provider
  (`providers.fake = {kind = "openai", ...}`, `routing.default = "fake/bench"`), everything else at
  its defaults (typing, edits paced 1.2 s apart, the channel budget of 5 sends + edits per 5 s,
  the streaming marker, history, slash-command sync at start);
- naive (bench/naive_discord_bot.py): a discord.py `Client` with `on_message`, the openai SDK
  streaming; `message.reply(first token)`, an edit at most once a second, a final edit; 429s
  handled only by discord.py's own retry.

The fakes run in their own processes on 127.0.0.1: Discord (tests/fakes/discord_server.py: gateway
+ REST, its /_control/* endpoints on; Discord's ~5 sends + edits per 5 s per channel enforced with
a 429, reset for each bot run) and an OpenAI-compatible server (tests/fakes/openai_server.py: a
fixed TTFT, then a chunk of --chunk-words words every --token-interval seconds, 60 words in all).

Traffic, per bot and round (the same for both bots in a round; seeded): one unmeasured warm-up
wave (every channel of the 100 once), then two measured scenarios, each message mentioning the bot in a
guild channel (`<@bot> ... (ref r.p.i)`):

- 1 channel: --sequence messages from one person in one channel, each sent a think time
  (uniform --think LO HI seconds) after the previous answer showed in full;
- 100 channels: one message in each of --channels channels (5 guilds), dispatched --gap apart
  (0: all at once); it waits until every answer shows in full (or --reply-timeout).

Every bot run gets one injected 429 (Retry-After, `Via`, retry_after 1 s, Content-Type exactly
application/json) on its first answer edit (PATCH with text) in the first channel of the
100-channel wave. Rounds alternate the order of the bots.

Per reply, on the machine-wide monotonic clock (all fakes stamp with CLOCK_MONOTONIC):

    added = first successful REST request carrying answer text for that question (POST
            /channels/{id}/messages replying to it, or PATCH of that message, with non-empty
            content; typing does not count) arriving at the fake
          - the MESSAGE_CREATE dispatch frame sent by the fake gateway
          - the provider's own TTFT for that request (the fake OpenAI server's stamp: handler
            entered -> first chunk written; matched by the question's unique text)

so it holds the gateway frame, both REST trips, the provider request and first chunk on the wire,
and everything the bot does in between. Clean reply: exactly one message replying to the
question, whose final text is exactly the expected answer, and no two requests on that message
(its POST and every PATCH, failed ones included) arriving less than the bot's own interval apart
(Switchboard 1.2 s, naive 1 s). Also counted: 429s a bot caused beyond the injected one; its CPU
per measured reply.

`--trace` splits Switchboard's added latency into segments with stamps taken in its process (the
gateway frame read, on_message, the model request, its first delta, the text request started).

Discord's global limit (50 requests a second per bot, interaction endpoints exempt) is NOT enforced
by default: the issue's scenario is measured as specified. `--global-limit` turns it on in the fake
(a 429 with `global: true`). With 100 channels at once every bot needs 100+ requests in the first
second, so it changes the picture: Switchboard's 100 typing requests spend the first second's
budget before any answer text, and each reply then waits out its own 429 and retries in step with
the others (the 1.2 s edit interval lines them up). Two experiments, patched into the Switchboard
process only (no product file changes): `--sb-no-typing` (no typing requests) and `--sb-fix` (a
process-wide FIFO gate of 50 requests a second in front of `DiscordRest.call`, and typing only when
no text has gone out 0.3 s after the message).

    python bench/discord_vs_naive.py --rounds 2
    python bench/discord_vs_naive.py --rounds 2 --order naive switchboard
    python bench/discord_vs_naive.py --rounds 2 --sequence 1 --global-limit [--sb-fix]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._stats import percentile  # noqa: E402

if "--child" not in sys.argv:  # the driver; the Switchboard process loads nothing of Telegram's
    from bench.telegram_vs_naive import BotProcess, get_json, ms, start_openai, stats

BOTS = ("switchboard", "naive")
EXPECTED = " ".join(f"word{i}" for i in range(60))  # what tests/fakes/openai_server.py answers as a program
INTERVAL = {"switchboard": 1.2, "naive": 1.0}  # each bot's own pace for edits of one message
INJECTED = "You are being rate limited. (injected)"
REF = re.compile(r"\(ref (\d+\.\d+\.\d+)\)")
GUILDS = 5
SCENARIOS = ("1 channel", "100 channels")
# /_control/requests rows
ROUTE, T, DONE, STATUS, CHANNEL, MID, CONTENT, REFD, ERROR = range(9)
TRACE_SEGMENTS = (
    ("ws read", "MESSAGE_CREATE sent -> discord.py has the frame (received_message)"),
    ("parse", "frame -> on_message (JSON, Message objects, the handler's task)"),
    ("to model", "on_message -> model request started (intake, dispatcher, responder, routing, chain)"),
    ("model req", "model request started -> provider handler entered"),
    ("first chunk", "provider wrote it -> bot parsed it"),
    ("to text", "first delta -> text request started (ReplyStream worker, budget, surface)"),
    ("text req", "request started -> at the fake Discord"),
)


# --- the Switchboard process ---------------------------------------------------------------------


async def _switchboard(
    base_url: str,
    gateway_url: str,
    token: str,
    openai_url: str,
    model: str,
    trace: bool,
    no_typing: bool,
    fix: bool = False,
) -> None:
    from bench._botproc import serve_commands
    from bot.app import App
    from bot.config import parse
    from bot.logs import configure
    from bot.providers import build_provider
    from channels.discord import DiscordChannel, parse_config

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
    dc = parse_config({"token": token, "base_url": base_url, "gateway_url": gateway_url, "guild_ready_timeout": 0.05})
    channel = DiscordChannel(dc)
    provider = build_provider("fake", cfg.providers["fake"])
    app = App(cfg, providers={"fake": provider}, channels=[channel], serve_http=False)
    if no_typing:  # an experiment (--sb-no-typing): what the typing requests cost the first text
        from channels.discord.surface import DiscordSurface

        async def no_typing_request(self: Any) -> None:
            return None

        DiscordSurface.typing = no_typing_request  # type: ignore[method-assign]
    if fix:
        _prototype_fix()
    stamps = _trace_switchboard(channel, provider) if trace else None
    await app.start()
    await serve_commands(app.stop, (lambda: stamps) if stamps is not None else None)


def _prototype_fix(limit: int = 50, per: float = 1.0, margin: float = 0.02, typing_after: float = 0.3) -> None:
    """An experiment (--sb-fix), patched in here and nowhere else: what the Discord channel would do
    with (1) one process-wide FIFO gate of Discord's global limit in front of every bot-token REST
    request (`DiscordRest.call`), so that requests wait their turn instead of drawing 429s, and
    (2) typing sent only when no text has gone out `typing_after` seconds after the message
    (`DiscordSurface.typing`), so that a fast answer does not spend the global budget on it."""
    from collections import deque

    from channels.discord.surface import DiscordRest, DiscordSurface

    sent: deque[float] = deque()
    lock = asyncio.Lock()

    async def acquire() -> None:
        async with lock:
            while True:
                now = time.perf_counter()
                while sent and sent[0] <= now - per - margin:
                    sent.popleft()
                if len(sent) < limit:
                    sent.append(now)
                    return
                await asyncio.sleep(sent[0] + per + margin - now)

    call = DiscordRest.call

    async def gated(self: Any, method: str, path: str, body: Any = None, *, auth: bool = True, where: str = "") -> Any:
        if auth:  # interaction webhooks are not under the global limit
            await acquire()
        return await call(self, method, path, body, auth=auth, where=where)

    DiscordRest.call = gated  # type: ignore[method-assign]
    typing = DiscordSurface.typing

    async def late_typing(self: Any) -> None:
        if self.calls == 0:  # the first typing of this reply: only if no text by then
            await asyncio.sleep(typing_after)
            if self.calls:
                return
        await typing(self)

    DiscordSurface.typing = late_typing  # type: ignore[method-assign]


def _trace_switchboard(channel: Any, provider: Any) -> dict[str, Any]:
    """Stamp (perf_counter: CLOCK_MONOTONIC, as the fakes) per question: the gateway frame read by
    discord.py, on_message, the model request, its first delta, the first text request started."""
    from discord.gateway import DiscordWebSocket

    from channels.discord.surface import DiscordSurface

    tr: dict[str, Any] = {"frame": {}, "recv": {}, "llm_req": {}, "llm_first": {}, "text": defaultdict(list)}
    received_message = DiscordWebSocket.received_message

    async def traced_frame(self: Any, msg: Any) -> None:
        now = time.perf_counter()
        if isinstance(msg, str) and (m := REF.search(msg)):
            tr["frame"][m.group(1)] = now
        await received_message(self, msg)

    DiscordWebSocket.received_message = traced_frame  # type: ignore[method-assign]
    handle = channel.handle_message

    async def traced_handle(message: Any, received: float, **kw: Any) -> None:
        if m := REF.search(message.content or ""):
            tr["recv"][m.group(1)] = received
        await handle(message, received, **kw)

    channel.handle_message = traced_handle
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
    for name in ("send", "edit"):
        original = getattr(DiscordSurface, name)

        def wrap(original: Any) -> Any:
            async def traced_text(self: Any, *a: Any, **kw: Any) -> Any:
                tr["text"][str(self.target.channel_id)].append(time.perf_counter())
                return await original(self, *a, **kw)

            return traced_text

        setattr(DiscordSurface, name, wrap(original))
    return tr


# --- the fakes -----------------------------------------------------------------------------------


def start_discord(guilds: int, channels: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.discord_server", "0", str(guilds), str(channels)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"fake Discord did not start: {line!r}")
    return proc, int(line.split()[1])


def control(port: int, path: str, body: object | None = None, timeout: float = 30) -> Any:
    return get_json(f"http://127.0.0.1:{port}/_control/{path}", body, timeout=timeout)


def bot_argv(bot: str, world: dict[str, Any], openai_url: str, args: argparse.Namespace) -> list[str]:
    common = ["--base-url", world["api_base"], "--gateway-url", world["gateway_url"], "--token", world["token"]]
    common += ["--openai-url", openai_url]
    if bot == "switchboard":
        extra = (["--trace"] if args.trace else []) + (["--sb-no-typing"] if args.sb_no_typing else [])
        extra += ["--sb-fix"] if args.sb_fix else []
        return [sys.executable, str(ROOT / "bench/discord_vs_naive.py"), "--child", *common, *extra]
    return [sys.executable, str(ROOT / "bench/naive_discord_bot.py"), *common]


# --- traffic and judging -------------------------------------------------------------------------


@dataclass
class Question:
    scenario: str
    channel: int
    ref: str
    id: str = ""
    dispatched: float | None = None


@dataclass
class Reply:
    bot: str
    round: int
    scenario: str
    added: float | None  # seconds; None: no answer text ever showed
    ttft: float | None
    clean: bool
    why: str
    to_model: float | None = None  # dispatch -> the provider's handler entered (the fake OpenAI's stamp)
    to_text: float | None = None  # first chunk written -> first answer text at the fake Discord
    segments: dict[str, float] = field(default_factory=dict)  # --trace (Switchboard)


@dataclass
class BotRun:
    bot: str
    round: int
    replies: list[Reply]
    caused_429: int
    injected_429: int
    other_errors: int
    cpu_per_reply: dict[str, float]
    incomplete: int
    limited: list[str]  # the 429s it caused: "route channel +seconds after the previous request there"


def message(world: dict[str, Any], channel: int, guild: int, user: int, ref: str) -> dict[str, Any]:
    return {
        "channel_id": channel,
        "content": f"<@{world['bot_id']}> Tell me sixty words, please (ref {ref})",
        "guild_id": guild,
        "user_id": 50_000 + user,
        "username": f"user{user}",
    }


def judge(
    bot: str,
    rnd: int,
    questions: list[Question],
    reqs: list[list[Any]],
    shown: dict[str, list[Any]],
    ttfts: dict,
    trace: dict[str, Any] | None = None,
) -> list[Reply]:
    out = []
    for q in questions:
        stamp = ttfts.get(q.ref)
        ttft = stamp[1] - stamp[0] if stamp else None
        if q.dispatched is None:
            out.append(Reply(bot, rnd, q.scenario, None, ttft, False, "never dispatched"))
            continue
        sends = [r for r in reqs if r[ROUTE] == "send" and r[REFD] == q.id]
        created = [r[MID] for r in sends if r[STATUS] == 200 and r[MID]]
        mine = sorted(
            [r for r in reqs if (r[ROUTE] == "send" and r[REFD] == q.id) or (r[ROUTE] == "edit" and r[MID] in created)],
            key=lambda r: r[T],
        )
        texts = [r for r in mine if r[STATUS] == 200 and str(r[CONTENT] or "").strip()]
        first = texts[0] if texts else None
        added = first[T] - q.dispatched - ttft if first is not None and ttft is not None else None
        why = []
        if len(created) != 1:
            why.append(f"{len(created)} messages")
        else:
            m = shown.get(created[0])
            if m is None or m[4]:
                why.append("message deleted")
            elif m[2] != EXPECTED:
                why.append("final text is not the answer")
        for mid in created:
            at = [r[T] for r in mine if r[MID] == mid]
            gaps = [b - a for a, b in zip(at, at[1:], strict=False)]
            if gaps and min(gaps) < INTERVAL[bot]:
                why.append(f"requests on one message {min(gaps) * 1000:.0f} ms apart")
        if first is None:
            why.append("no answer text")
        reply = Reply(bot, rnd, q.scenario, added, ttft, not why, "; ".join(why))
        if stamp is not None:
            reply.to_model = stamp[0] - q.dispatched
            if first is not None:
                reply.to_text = first[T] - stamp[1]
        if trace is not None and stamp is not None and first is not None:
            frame, recv, req, got = (trace[k].get(q.ref) for k in ("frame", "recv", "llm_req", "llm_first"))
            sent = next((t for t in trace["text"].get(str(q.channel), []) if got is not None and t >= got), None)
            if None not in (frame, recv, req, got, sent):
                steps = (
                    frame - q.dispatched,
                    recv - frame,
                    req - recv,
                    stamp[0] - req,
                    got - stamp[1],
                    sent - got,
                    first[T] - sent,
                )
                reply.segments = dict(zip((n for n, _ in TRACE_SEGMENTS), steps, strict=True))
        out.append(reply)
    return out


def run_bot(
    bot: str, rnd: int, args: argparse.Namespace, port: int, world: dict[str, Any], openai_url: str, logs: Path
) -> BotRun:
    guilds = sorted(int(g) for g in world["guilds"])
    wave_channels = [(c, g) for g in guilds for c in world["guilds"][str(g)][: args.channels // len(guilds)]]
    solo = (world["guilds"][str(guilds[0])][-1], guilds[0])  # the 1-channel scenario's own channel
    rng = random.Random(args.seed * 1000 + rnd)  # the same traffic for every bot in this round
    order = list(range(len(wave_channels)))
    rng.shuffle(order)
    thinks = [rng.uniform(*args.think) for _ in range(args.sequence)]
    warm = [message(world, c, g, i + 1, f"{rnd}.0.{i:03d}") for i, (c, g) in enumerate(wave_channels)]
    seq = [Question("1 channel", solo[0], f"{rnd}.1.{k:03d}") for k in range(args.sequence)]
    burst = [Question("100 channels", wave_channels[i][0], f"{rnd}.2.{i:03d}") for i in order]
    timeout = args.reply_timeout

    def wave(messages: list[dict[str, Any]], gap: float) -> dict[str, Any]:
        body = {"messages": messages, "gap": gap, "final": EXPECTED, "timeout": timeout}
        return control(port, "wave", body, timeout=gap * len(messages) + timeout + 30)

    limits = {"channel_limit": None if args.no_channel_limit else [5, 5.0]}
    control(port, "limits", {**limits, "global_limit": [50, 1.0] if args.global_limit else None})
    control(port, "fail", {"clear": True})
    started = time.monotonic()
    proc = BotProcess(bot, bot_argv(bot, world, openai_url, args), logs / f"{bot}-round{rnd}.log")
    incomplete = 0
    cpu: dict[str, float] = {}
    try:
        proc.expect("READY", 60)
        wave(warm, 0.01)
        time.sleep(args.settle)
        n_stamps = len(get_json(openai_url.removesuffix("/v1") + "/_ttft"))
        since = time.monotonic()
        # 1 channel: one person, one message at a time
        cpu0 = float(proc.ask("cpu", "CPU"))
        for k, q in enumerate(seq):
            got = wave([message(world, q.channel, solo[1], 0, q.ref)], 0.0)
            q.id, q.dispatched = got["ids"][0], got["dispatched"][0]
            incomplete += len(got["incomplete"])
            time.sleep(thinks[k])
        cpu[SCENARIOS[0]] = (float(proc.ask("cpu", "CPU")) - cpu0) / max(1, len(seq))
        # 100 channels at once, one injected 429 on the first answer edit in the first of them
        control(
            port,
            "fail",
            {
                "route": "edit",
                "status": 429,
                "code": 0,
                "message": INJECTED,
                "retry_after": 1.0,
                "times": 1,
                "channel_id": burst[0].channel,
                "with_text": True,
            },
        )
        cpu0 = float(proc.ask("cpu", "CPU"))
        msgs = []
        for q in burst:
            i = next(i for i, (c, _) in enumerate(wave_channels) if c == q.channel)
            msgs.append(message(world, q.channel, wave_channels[i][1], i + 1, q.ref))
        got = wave(msgs, args.gap)
        for q, mid, t in zip(burst, got["ids"], got["dispatched"], strict=True):
            q.id, q.dispatched = mid, t
        incomplete += len(got["incomplete"])
        time.sleep(args.settle)
        cpu[SCENARIOS[1]] = (float(proc.ask("cpu", "CPU")) - cpu0) / max(1, len(burst))
        trace = json.loads(proc.ask("trace", "TRACE")) if args.trace and bot == "switchboard" else None
    finally:
        try:
            control(port, "fail", {"clear": True})
        finally:
            proc.stop()
    until = time.monotonic()
    reqs = [r for r in control(port, f"requests?since={since}")["requests"] if r[T] <= until]
    # every reply request of this bot run, for a look afterwards (rows as /_control/requests)
    (logs / f"{bot}-round{rnd}-requests.json").write_text(
        json.dumps(control(port, f"requests?since={started}")["requests"])
    )
    shown = {m[0]: m for m in control(port, "messages")["messages"]}
    stamps = get_json(openai_url.removesuffix("/v1") + "/_ttft")[n_stamps:]
    ttfts = {m.group(1): (entered, first) for text, entered, first in stamps if (m := REF.search(text))}
    replies = judge(bot, rnd, [*seq, *burst], reqs, shown, ttfts, trace)
    return BotRun(
        bot,
        rnd,
        replies,
        caused_429=sum(1 for r in reqs if r[STATUS] == 429 and r[ERROR] != INJECTED),
        injected_429=sum(1 for r in reqs if r[STATUS] == 429 and r[ERROR] == INJECTED),
        other_errors=sum(1 for r in reqs if r[STATUS] not in (200, 204, 429)),
        cpu_per_reply=cpu,
        incomplete=incomplete,
        limited=[_limited(r, reqs) for r in reqs if r[STATUS] == 429 and r[ERROR] != INJECTED],
    )


def _limited(r: list[Any], reqs: list[list[Any]]) -> str:
    if r[ERROR] and "global" in r[ERROR]:
        return f"{r[ROUTE]}: {r[ERROR]}"
    before = [x for x in reqs if x[CHANNEL] == r[CHANNEL] and r[T] - 5.0 < x[T] < r[T] and x[ROUTE] != "typing"]
    return f"{r[ROUTE]}: {r[ERROR]} (channel; {len(before)} sends/edits there in the 5 s before)"


# --- the report ----------------------------------------------------------------------------------


def report(runs: list[BotRun], bots: list[str], nominal_ttft: float) -> None:
    print()
    print("added latency to first answer text, ms (p50 p95 p99 max)")
    head = f"{'bot':12s} {'replies':>7s} | {'all':^31s} | {'1 channel':^31s} | {'100 channels':^31s} |"
    print(head + f" {'clean':>7s} {'429 caused':>10s} {'CPU/reply 1ch 100ch':>19s}")
    for bot in bots:
        mine = [r for run in runs if run.bot == bot for r in run.replies]
        rs = [run for run in runs if run.bot == bot]
        added = [r.added for r in mine if r.added is not None]
        one = [r.added for r in mine if r.added is not None and r.scenario == SCENARIOS[0]]
        many = [r.added for r in mine if r.added is not None and r.scenario == SCENARIOS[1]]
        clean = sum(r.clean for r in mine)
        caused = sum(run.caused_429 for run in rs)
        cpu = [sum(run.cpu_per_reply.get(s, 0.0) for run in rs) / max(1, len(rs)) * 1000 for s in SCENARIOS]
        print(
            f"{bot:12s} {len(mine):7d} | {stats(added)} | {stats(one)} | {stats(many)} |"
            f" {clean:3d}/{len(mine):<3d} {caused:10d} {cpu[0]:7.2f}ms {cpu[1]:6.2f}ms"
        )
    print()
    print(
        "added = to model (MESSAGE_CREATE sent -> the model request at the provider) + to text (first chunk"
        " written -> answer text at Discord), both from the fakes' stamps"
    )
    for bot in bots:
        mine = [r for run in runs if run.bot == bot for r in run.replies]
        rs = [run for run in runs if run.bot == bot]
        late = [r.ttft - nominal_ttft for r in mine if r.ttft is not None]
        reasons: dict[str, int] = defaultdict(int)
        for r in mine:
            if not r.clean:
                reasons[f"{r.scenario}: " + re.sub(r"\d+ ms apart", "too close", r.why)] += 1
        missing = sum(1 for r in mine if r.added is None)
        print(
            f"{bot}: injected 429s hit {sum(run.injected_429 for run in rs)}, other failed requests"
            f" {sum(run.other_errors for run in rs)}, answers not complete in time {sum(run.incomplete for run in rs)},"
            f" replies without a latency {missing}; provider TTFT over nominal p50 {ms(percentile(late, 50))}"
            f" max {ms(max(late, default=float('nan')))} ms (subtracted)"
        )
        for why, n in sorted(reasons.items()):
            print(f"    not clean x{n}: {why}")
        for s in SCENARIOS:
            cells = []
            for name in ("to_model", "to_text"):
                v = [getattr(r, name) for r in mine if r.scenario == s and getattr(r, name) is not None]
                cells.append(f"{name.replace('_', ' ')} {ms(percentile(v, 50))} / {ms(max(v, default=float('nan')))}")
            print(f"    {s:12s} p50 / max ms: {'   '.join(cells)}")
        limited: dict[str, int] = defaultdict(int)
        for run in rs:
            for line in run.limited:
                limited[line] += 1
        for line, n in sorted(limited.items(), key=lambda x: -x[1])[:8]:
            print(f"    429 caused x{n}: {line}")


def report_trace(runs: list[BotRun]) -> None:
    print()
    print("where Switchboard's added milliseconds go (--trace), p50 / max per segment, ms:")
    for name, what in TRACE_SEGMENTS:
        print(f"  {name:12s} {what}")
    for s in SCENARIOS:
        mine = [r for run in runs if run.bot == "switchboard" for r in run.replies if r.segments and r.scenario == s]
        if not mine:
            continue
        cells = []
        for name, _ in TRACE_SEGMENTS:
            v = [r.segments[name] for r in mine]
            cells.append(f"{name} {percentile(v, 50) * 1000:.2f}/{max(v) * 1000:.2f}")
        print(f"  {s:12s} " + "  ".join(cells) + f"  (n={len(mine)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bots", nargs="+", choices=BOTS, default=list(BOTS))
    ap.add_argument("--order", nargs="+", choices=BOTS, help="the first round's order (then rotated each round)")
    ap.add_argument("--channels", type=int, default=100, help="channels of the concurrent scenario (5 guilds)")
    ap.add_argument("--gap", type=float, default=0.0, help="seconds between two messages of that wave (0: at once)")
    ap.add_argument("--sequence", type=int, default=8, help="messages of the 1-channel scenario")
    ap.add_argument("--think", type=float, nargs=2, default=[2.0, 3.0], metavar=("LO", "HI"))
    ap.add_argument("--ttft", type=float, default=0.17, help="the fake provider's TTFT, seconds")
    ap.add_argument("--token-interval", type=float, default=0.03, help="seconds between two chunks")
    ap.add_argument("--chunk-words", type=int, default=3, help="words per chunk (60 words in all)")
    ap.add_argument("--reply-timeout", type=float, default=10.0, help="seconds a wave waits for its last answer")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds of quiet after a wave")
    ap.add_argument("--no-channel-limit", action="store_true", help="the fake does not enforce 5 per 5 s per channel")
    ap.add_argument(
        "--global-limit", action="store_true", help="the fake enforces Discord's global 50 requests a second"
    )
    ap.add_argument("--trace", action="store_true", help="break Switchboard's added latency down (its own stamps)")
    ap.add_argument("--sb-no-typing", action="store_true", help="experiment: Switchboard without typing requests")
    ap.add_argument(
        "--sb-fix", action="store_true", help="experiment: Switchboard with a global request gate and late typing"
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    ap.add_argument("--gateway-url", help=argparse.SUPPRESS)
    ap.add_argument("--token", help=argparse.SUPPRESS)
    ap.add_argument("--openai-url", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="bench", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # the Switchboard bot process
        asyncio.run(
            _switchboard(
                args.base_url,
                args.gateway_url,
                args.token,
                args.openai_url,
                args.model,
                args.trace,
                args.sb_no_typing,
                args.sb_fix,
            )
        )
        return
    if args.channels % GUILDS:
        raise SystemExit(f"--channels must be a multiple of {GUILDS}")

    order = [b for b in (args.order or BOTS) if b in args.bots]
    order += [b for b in args.bots if b not in order]
    logs = Path(tempfile.mkdtemp(prefix="dc-vs-naive-"))
    print(
        f"traffic: 1 channel ({args.sequence} messages one after the other, think {args.think[0]:g}-{args.think[1]:g} s)"
        f" and {args.channels} channels in {GUILDS} guilds ({args.gap * 1000:.0f} ms apart), the bot mentioned;"
        f" seed {args.seed}; 1 warm-up wave + both scenarios per bot and round, {args.rounds} rounds;"
        f" provider TTFT {args.ttft * 1000:.0f} ms, {args.chunk_words} words every {args.token_interval * 1000:.0f} ms;"
        f" bot logs in {logs}",
        flush=True,
    )
    dc_proc = oa_proc = None
    runs: list[BotRun] = []
    try:
        dc_proc, port = start_discord(GUILDS, args.channels // GUILDS + 1)
        world = control(port, "world")
        oa_proc, openai_url = start_openai(args.ttft, args.token_interval, args.chunk_words)
        for rnd in range(args.rounds):
            k = rnd % len(order)
            for bot in order[k:] + order[:k]:
                run = run_bot(bot, rnd, args, port, world, openai_url, logs)
                runs.append(run)
                cells = []
                for s in SCENARIOS:
                    added = [r.added for r in run.replies if r.added is not None and r.scenario == s]
                    cells.append(f"{s} p50 {ms(percentile(added, 50))} max {ms(max(added, default=0))}")
                print(
                    f"round {rnd} {bot:12s} added {'; '.join(cells)} ms; clean"
                    f" {sum(r.clean for r in run.replies)}/{len(run.replies)}; 429 caused {run.caused_429},"
                    f" injected {run.injected_429}; machine load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        for proc in (oa_proc, dc_proc):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
    report(runs, order, args.ttft)
    if args.trace:
        report_trace(runs)
    extra = " --no-channel-limit" if args.no_channel_limit else ""
    extra += " --global-limit" if args.global_limit else ""
    extra += (" --trace" if args.trace else "") + (" --sb-no-typing" if args.sb_no_typing else "")
    extra += " --sb-fix" if args.sb_fix else ""
    print(
        f"reproduce: python bench/discord_vs_naive.py --rounds {args.rounds} --seed {args.seed}"
        f" --bots {' '.join(order)} --order {' '.join(order)} --channels {args.channels} --gap {args.gap}"
        f" --sequence {args.sequence} --think {args.think[0]} {args.think[1]} --ttft {args.ttft}"
        f" --token-interval {args.token_interval} --chunk-words {args.chunk_words}"
        f" --reply-timeout {args.reply_timeout} --settle {args.settle}{extra}"
    )


if __name__ == "__main__":
    main()
