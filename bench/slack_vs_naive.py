"""Slack, side by side: Switchboard and the naive bot most people write first.

Two bots answer the SAME scripted traffic from the SAME fakes, each in a process of its own, one
after the other:

- switchboard: the real runtime (`bot.app.App` + `channels.slack.SlackChannel`: slack-bolt's
  AsyncApp in Socket Mode, replies over its own AsyncWebClient with native streams:
  chat.startStream / appendStream / stopStream) with its OpenAI-compatible provider
  (`providers.fake = {kind = "openai", ...}`, `routing.default = "fake/bench"`), everything else
  at its defaults (the eyes reaction while the model thinks, appends 0.5 s apart, the channel
  budget of 1 message a second for finished streams, history);
- naive (bench/naive_slack_bot.py): slack-bolt's AsyncApp + AsyncSocketModeHandler, an
  `app_mention` handler, the openai SDK streaming; `chat.postMessage` with the first token in the
  thread, `chat.update` at most once a second with the text so far, a final update; 429s as
  slack_sdk leaves them (the call raises).

The fakes run in their own processes on 127.0.0.1: Slack (tests/fakes/slack_server.py run as
`python -m tests.fakes.slack_server`: Web API + Socket Mode, its /_control/* endpoints on) and an
OpenAI-compatible server (tests/fakes/openai_server.py: a fixed TTFT, then a chunk of --chunk-words
words every --token-interval seconds, 60 words in all). The fake Slack enforces no rate limits of
its own (Slack's tiers are per workspace and tolerate undocumented bursts): the only 429 is the
injected one.

Traffic, per bot and round (the same for both bots in a round; seeded): one unmeasured warm-up
wave (a new thread in each of the --channels channels), then two measured scenarios, every
question a mention of the bot in a channel thread (`<@UBOT> ... (ref r.p.i)`; the fake sends the
`message` and the `app_mention` envelope of it, as Slack does for an app subscribed to both):

- 1 thread: --sequence mentions by one person in one thread, each sent a think time (uniform
  --think LO HI seconds) after the previous answer showed in full;
- 100 threads: a mention opening a new thread in each of --threads threads (spread over
  --channels channels), sent --gap apart (0: all at once); it waits until every answer shows in
  full (or --reply-timeout).

Every bot run gets one injected HTTP 429 (Retry-After: 1) on its first answer-carrying update
(chat.appendStream or chat.update with text) in the channel of the 100-thread wave's first
question. Rounds alternate the order of the bots.

Per reply, on the machine-wide monotonic clock (both fakes stamp with CLOCK_MONOTONIC):

    added = first successful Web API request carrying answer text for that question
            (chat.startStream / appendStream / stopStream with text, chat.postMessage or
            chat.update with non-empty text; reactions and status do not count) arriving at the
            fake
          - the question's first envelope sent by the fake Socket Mode server (its `message`
            envelope; the `app_mention` one follows it at once: their gap is printed)
          - the provider's own TTFT for that request (the fake OpenAI server's stamp: handler
            entered -> first chunk written; matched by the question's unique text)

Clean reply: exactly one bot message answering the question, finished (no open stream), whose
visible text is exactly the expected answer; for a message made with chat.postMessage, no two
requests on it (the post and every update, failed ones included) less than 1 s apart (native
streams are exempt). Also counted: 429s a bot caused beyond the injected one; its CPU per reply;
where the added time goes (to model: first envelope -> the provider's handler; to text: first chunk
written -> first answer text at the fake) and how long after the first text the whole answer shows
(the last successful text call: Switchboard's chat.stopStream, the naive bot's final chat.update).
`--sb-set KEY=JSON` overrides one of Switchboard's [channels.slack] keys (e.g. `reaction='""'`) to
measure what a default costs.

    python bench/slack_vs_naive.py --rounds 2
    python bench/slack_vs_naive.py --rounds 2 --seed 2 --order naive switchboard
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._stats import percentile  # noqa: E402

if "--child" not in sys.argv:  # the driver; the Switchboard process loads nothing of Telegram's
    from bench.telegram_vs_naive import BotProcess, get_json, ms, start_openai, stats

BOTS = ("switchboard", "naive")
EXPECTED = " ".join(f"word{i}" for i in range(60))  # what tests/fakes/openai_server.py answers as a program
INTERVAL = 1.0  # Slack: one message updated at most about once a second (the naive bot's own pace too)
TEXT_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream", "chat.postMessage", "chat.update")
CREATE_METHODS = ("chat.startStream", "chat.postMessage")
REF = re.compile(r"\(ref (\d+\.\d+\.\d+)\)")
SCENARIOS = ("1 thread", "100 threads")
# /_control/calls rows
METHOD, T, STATUS, CHANNEL, THREAD, TS, TEXT, ERROR = range(8)


# --- the Switchboard process ---------------------------------------------------------------------


async def _switchboard(
    base_url: str, token: str, app_token: str, openai_url: str, model: str, overrides: dict[str, Any]
) -> None:
    from bench._botproc import serve_commands
    from bot.app import App
    from bot.config import parse
    from bot.logs import configure
    from bot.providers import build_provider
    from channels.slack import SlackChannel, parse_config

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
    table = {"bot_token": token, "app_token": app_token, "base_url": base_url, **overrides}
    channel = SlackChannel(parse_config(table))
    provider = build_provider("fake", cfg.providers["fake"])
    app = App(cfg, providers={"fake": provider}, channels=[channel], serve_http=False)
    await app.start()
    await serve_commands(app.stop)


# --- the fakes -----------------------------------------------------------------------------------


def start_slack() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.slack_server"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"fake Slack did not start: {line!r}")
    return proc, int(line.split()[1])


def control(port: int, path: str, body: object | None = None, timeout: float = 30) -> Any:
    return get_json(f"http://127.0.0.1:{port}/_control/{path}", body, timeout=timeout)


def bot_argv(bot: str, world: dict[str, Any], openai_url: str, sb_set: list[str] | None = None) -> list[str]:
    common = ["--base-url", world["api_base"], "--token", world["bot_token"], "--app-token", world["app_token"]]
    common += ["--openai-url", openai_url]
    if bot == "switchboard":
        extra = [a for kv in sb_set or [] for a in ("--sb-set", kv)]
        return [sys.executable, str(ROOT / "bench/slack_vs_naive.py"), "--child", *common, *extra]
    return [sys.executable, str(ROOT / "bench/naive_slack_bot.py"), *common]


# --- traffic and judging -------------------------------------------------------------------------


@dataclass
class Question:
    scenario: str
    channel: str
    ref: str
    user: int
    thread_ts: str | None = None
    ts: str = ""
    sent: float | None = None  # its first envelope (message) sent by the fake
    mention_at: float | None = None  # its app_mention envelope sent


@dataclass
class Reply:
    bot: str
    round: int
    scenario: str
    added: float | None  # seconds; None: no answer text ever showed
    ttft: float | None
    clean: bool
    why: str
    to_model: float | None = None  # first envelope -> the provider's handler entered
    to_text: float | None = None  # first chunk written -> first answer text at the fake Slack
    envelope_gap: float | None = None  # message envelope -> app_mention envelope
    rest: float | None = None  # first answer text -> the last successful text call (the whole answer shown)


@dataclass
class BotRun:
    bot: str
    round: int
    replies: list[Reply]
    caused_429: int
    injected_429: int
    other_errors: list[str]
    cpu_per_reply: dict[str, float]
    incomplete: int


def ask(q: Question) -> dict[str, Any]:
    return {
        "channel": q.channel,
        "text": f"Tell me sixty words, please (ref {q.ref})",
        "user": f"U{50_000 + q.user}",
        "thread_ts": q.thread_ts,
        "topic": f"Topic {q.ref}",
    }


def judge(
    bot: str, rnd: int, questions: list[Question], calls: list[list[Any]], shown: dict, ttfts: dict
) -> list[Reply]:
    # the questions of one thread, in order: a reply belongs to the last question before it
    by_thread: dict[tuple[str, str], list[Question]] = defaultdict(list)
    for q in questions:
        if q.sent is not None and q.thread_ts:
            by_thread[(q.channel, q.thread_ts)].append(q)
    out = []
    for q in questions:
        stamp = ttfts.get(q.ref)
        ttft = stamp[1] - stamp[0] if stamp else None
        if q.sent is None or not q.thread_ts:
            out.append(Reply(bot, rnd, q.scenario, None, ttft, False, "never sent"))
            continue
        siblings = sorted(by_thread[(q.channel, q.thread_ts)], key=lambda x: x.sent or 0.0)
        later = [x.sent for x in siblings if x.sent is not None and x.sent > q.sent]
        until = min(later, default=float("inf"))
        creates = [
            c
            for c in calls
            if c[METHOD] in CREATE_METHODS
            and c[CHANNEL] == q.channel
            and c[THREAD] == q.thread_ts
            and q.sent <= c[T] < until
        ]
        created = [c[TS] for c in creates if c[STATUS] == 200 and c[TS]]
        mine = sorted(
            [*creates, *(c for c in calls if c[METHOD] not in CREATE_METHODS and c[TS] in created)], key=lambda c: c[T]
        )
        texts = [c for c in mine if c[METHOD] in TEXT_METHODS and c[STATUS] == 200 and str(c[TEXT] or "").strip()]
        first = texts[0] if texts else None
        added = first[T] - q.sent - ttft if first is not None and ttft is not None else None
        why = []
        if len(created) != 1:
            why.append(f"{len(created)} messages")
        else:
            m = shown.get((q.channel, created[0]))
            if m is None or m[5]:
                why.append("message deleted")
            elif m[4]:
                why.append("stream never stopped")
            elif m[3] != EXPECTED:
                why.append("final text is not the answer")
        for c in creates:
            if c[METHOD] != "chat.postMessage" or c[STATUS] != 200:
                continue
            at = [x[T] for x in mine if x[TS] == c[TS] and x[METHOD] in ("chat.postMessage", "chat.update")]
            gaps = [b - a for a, b in zip(at, at[1:], strict=False)]
            if gaps and min(gaps) < INTERVAL:
                why.append(f"requests on one message {min(gaps) * 1000:.0f} ms apart")
        if first is None:
            why.append("no answer text")
        reply = Reply(bot, rnd, q.scenario, added, ttft, not why, "; ".join(why))
        if q.mention_at is not None:
            reply.envelope_gap = q.mention_at - q.sent
        if stamp is not None:
            reply.to_model = stamp[0] - q.sent
            if first is not None:
                reply.to_text = first[T] - stamp[1]
        if first is not None:
            reply.rest = texts[-1][T] - first[T]
        out.append(reply)
    return out


def run_bot(
    bot: str, rnd: int, args: argparse.Namespace, port: int, world: dict[str, Any], openai_url: str, logs: Path
) -> BotRun:
    channels = [f"C{1000 + i}" for i in range(args.channels)]
    solo_channel = "C0999"  # the 1-thread scenario's own channel
    rng = random.Random(args.seed * 1000 + rnd)  # the same traffic for every bot in this round
    order = list(range(args.threads))
    rng.shuffle(order)
    thinks = [rng.uniform(*args.think) for _ in range(args.sequence)]
    warm = [Question("warm-up", c, f"{rnd}.0.{i:03d}", i + 1) for i, c in enumerate(channels)]
    seq = [Question(SCENARIOS[0], solo_channel, f"{rnd}.1.{k:03d}", 0) for k in range(args.sequence)]
    burst = [Question(SCENARIOS[1], channels[i % len(channels)], f"{rnd}.2.{i:03d}", i + 1) for i in order]
    timeout = args.reply_timeout

    def wave(qs: list[Question], gap: float) -> int:
        body = {"questions": [ask(q) for q in qs], "gap": gap, "final": EXPECTED, "timeout": timeout}
        got = control(port, "wave", body, timeout=gap * len(qs) + timeout + 30)
        for q, o in zip(qs, got["questions"], strict=True):
            q.thread_ts, q.ts, q.sent, q.mention_at = o["thread_ts"], o["ts"], o["message_at"], o["mention_at"]
        return len(got["incomplete"])

    control(port, "fail", {"clear": True})
    proc = BotProcess(bot, bot_argv(bot, world, openai_url, args.sb_set), logs / f"{bot}-round{rnd}.log")
    incomplete = 0
    cpu: dict[str, float] = {}
    try:
        proc.expect("READY", 60)
        wave(warm, 0.01)
        time.sleep(args.settle)
        n_stamps = len(get_json(openai_url.removesuffix("/v1") + "/_ttft"))
        since = time.monotonic()
        # 1 thread: one person, one mention at a time, in one thread
        cpu0 = float(proc.ask("cpu", "CPU"))
        for k, q in enumerate(seq):
            q.thread_ts = seq[0].thread_ts
            incomplete += wave([q], 0.0)
            time.sleep(thinks[k])
        cpu[SCENARIOS[0]] = (float(proc.ask("cpu", "CPU")) - cpu0) / max(1, len(seq))
        # 100 threads at once, one injected 429 on the first answer update in the first one's channel
        control(
            port,
            "fail",
            {
                "methods": ["chat.appendStream", "chat.update"],
                "status": 429,
                "error": "ratelimited",
                "retry_after": 1,
                "times": 1,
                "channel": burst[0].channel,
                "with_text": True,
            },
        )
        cpu0 = float(proc.ask("cpu", "CPU"))
        incomplete += wave(burst, args.gap)
        time.sleep(args.settle)
        cpu[SCENARIOS[1]] = (float(proc.ask("cpu", "CPU")) - cpu0) / max(1, len(burst))
    finally:
        try:
            control(port, "fail", {"clear": True})
        finally:
            proc.stop()
    until = time.monotonic()
    calls = [c for c in control(port, f"calls?since={since}")["calls"] if c[T] <= until]
    (logs / f"{bot}-round{rnd}-calls.json").write_text(json.dumps(calls))
    shown = {(m[0], m[1]): m for m in control(port, "messages")["messages"]}
    stamps = get_json(openai_url.removesuffix("/v1") + "/_ttft")[n_stamps:]
    ttfts = {m.group(1): (entered, first) for text, entered, first in stamps if (m := REF.search(text))}
    replies = judge(bot, rnd, [*seq, *burst], calls, shown, ttfts)
    # the injected failure is the first 429 on an update in that channel; any other 429 is the bot's
    limited = [c for c in calls if c[STATUS] == 429]
    injected = [c for c in limited if c[METHOD] in ("chat.appendStream", "chat.update")][:1]
    return BotRun(
        bot,
        rnd,
        replies,
        caused_429=len(limited) - len(injected),
        injected_429=len(injected),
        other_errors=[f"{c[METHOD]}: {c[ERROR]}" for c in calls if c[STATUS] != 429 and c[ERROR]],
        cpu_per_reply=cpu,
        incomplete=incomplete,
    )


# --- the report ----------------------------------------------------------------------------------


def report(runs: list[BotRun], bots: list[str], nominal_ttft: float) -> None:
    print()
    print("added latency to first answer text, ms (p50 p95 p99 max)")
    head = f"{'bot':12s} {'replies':>7s} | {'all':^31s} | {SCENARIOS[0]:^31s} | {SCENARIOS[1]:^31s} |"
    print(head + f" {'clean':>7s} {'429 caused':>10s} {'CPU/reply 1th 100th':>19s}")
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
        "added = to model (first envelope sent -> the model request at the provider) + to text (first chunk"
        " written -> answer text at Slack) - nothing else, both from the fakes' stamps"
    )
    for bot in bots:
        mine = [r for run in runs if run.bot == bot for r in run.replies]
        rs = [run for run in runs if run.bot == bot]
        late = [r.ttft - nominal_ttft for r in mine if r.ttft is not None]
        gaps = [r.envelope_gap for r in mine if r.envelope_gap is not None]
        reasons: dict[str, int] = defaultdict(int)
        for r in mine:
            if not r.clean:
                reasons[f"{r.scenario}: " + re.sub(r"\d+ ms apart", "< 1 s apart", r.why)] += 1
        errors: dict[str, int] = defaultdict(int)
        for run in rs:
            for e in run.other_errors:
                errors[e] += 1
        missing = sum(1 for r in mine if r.added is None)
        print(
            f"{bot}: injected 429s hit {sum(run.injected_429 for run in rs)}, other failed calls"
            f" {dict(errors) or 0}, answers not complete in time {sum(run.incomplete for run in rs)},"
            f" replies without a latency {missing}; provider TTFT over nominal p50 {ms(percentile(late, 50))}"
            f" max {ms(max(late, default=float('nan')))} ms (subtracted); message -> app_mention envelope p50"
            f" {ms(percentile(gaps, 50))} ms"
        )
        for why, n in sorted(reasons.items()):
            print(f"    not clean x{n}: {why}")
        for s in SCENARIOS:
            cells = []
            for name in ("to_model", "to_text"):
                v = [getattr(r, name) for r in mine if r.scenario == s and getattr(r, name) is not None]
                cells.append(f"{name.replace('_', ' ')} {ms(percentile(v, 50))} / {ms(max(v, default=float('nan')))}")
            v = [r.rest for r in mine if r.scenario == s and r.rest is not None]
            cells.append(f"then whole answer shown {ms(percentile(v, 50))} / {ms(max(v, default=float('nan')))}")
            print(f"    {s:12s} p50 / max ms: {'   '.join(cells)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bots", nargs="+", choices=BOTS, default=list(BOTS))
    ap.add_argument("--order", nargs="+", choices=BOTS, help="the first round's order (then rotated each round)")
    ap.add_argument("--threads", type=int, default=100, help="threads of the concurrent scenario")
    ap.add_argument("--channels", type=int, default=10, help="channels those threads are spread over")
    ap.add_argument("--gap", type=float, default=0.0, help="seconds between two mentions of that wave (0: at once)")
    ap.add_argument("--sequence", type=int, default=6, help="mentions of the 1-thread scenario")
    ap.add_argument("--think", type=float, nargs=2, default=[1.0, 2.0], metavar=("LO", "HI"))
    ap.add_argument("--ttft", type=float, default=0.17, help="the fake provider's TTFT, seconds")
    ap.add_argument("--token-interval", type=float, default=0.03, help="seconds between two chunks")
    ap.add_argument("--chunk-words", type=int, default=3, help="words per chunk (60 words in all)")
    ap.add_argument("--reply-timeout", type=float, default=15.0, help="seconds a wave waits for its last answer")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds of quiet after a wave")
    ap.add_argument(
        "--sb-set",
        action="append",
        metavar="KEY=JSON",
        help="a [channels.slack] key for Switchboard (e.g. reaction='\"\"'), to measure what it costs; repeatable",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    ap.add_argument("--token", help=argparse.SUPPRESS)
    ap.add_argument("--app-token", help=argparse.SUPPRESS)
    ap.add_argument("--openai-url", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="bench", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # the Switchboard bot process
        overrides = {k: json.loads(v) for k, _, v in (kv.partition("=") for kv in args.sb_set or [])}
        asyncio.run(_switchboard(args.base_url, args.token, args.app_token, args.openai_url, args.model, overrides))
        return

    order = [b for b in (args.order or BOTS) if b in args.bots]
    order += [b for b in args.bots if b not in order]
    logs = Path(tempfile.mkdtemp(prefix="sl-vs-naive-"))
    print(
        f"traffic: 1 thread ({args.sequence} mentions one after the other, think {args.think[0]:g}-{args.think[1]:g} s)"
        f" and {args.threads} threads in {args.channels} channels ({args.gap * 1000:.0f} ms apart), seed {args.seed};"
        f" 1 warm-up wave + both scenarios per bot and round, {args.rounds} rounds; provider TTFT"
        f" {args.ttft * 1000:.0f} ms, {args.chunk_words} words every {args.token_interval * 1000:.0f} ms; bot logs in {logs}",
        flush=True,
    )
    sl_proc = oa_proc = None
    runs: list[BotRun] = []
    try:
        sl_proc, port = start_slack()
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
        for proc in (oa_proc, sl_proc):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
    report(runs, order, args.ttft)
    print(
        f"reproduce: python bench/slack_vs_naive.py --rounds {args.rounds} --seed {args.seed}"
        f" --bots {' '.join(order)} --order {' '.join(order)} --threads {args.threads} --channels {args.channels}"
        f" --gap {args.gap} --sequence {args.sequence} --think {args.think[0]} {args.think[1]} --ttft {args.ttft}"
        f" --token-interval {args.token_interval} --chunk-words {args.chunk_words}"
        f" --reply-timeout {args.reply_timeout} --settle {args.settle}"
        + "".join(f" --sb-set '{kv}'" for kv in args.sb_set or [])
    )


if __name__ == "__main__":
    main()
