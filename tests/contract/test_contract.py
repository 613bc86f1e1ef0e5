"""The channel contract: what every adapter, through the whole runtime, guarantees to the person.

Each test is generated for the drivers declaring what it needs (see conftest.py). Timing checks
use the platform's own arrival timestamps with a small tolerance (EPS); where a test sleeps, it
only gives a violation room to show up, it never makes a check pass.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from bot.splitting import split_text
from bot.types import RateBudget
from tests.channels.telegram.test_e2e import words
from tests.contract.drivers import CREATES_MESSAGE, Driver, Request, TimedProvider
from tests.fakes.scripted_provider import ScriptedProvider

EPS = 0.001  # clock granularity: a paced gap may be this much under its interval, no more
MARK = "[…]"  # what a reply cut by shutdown ends with (bot.responder.INTERRUPTED, as rendered)

PLAIN = "Paris is the capital of France, and about two million people live there today."
_VOCAB = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


def pieces_of(text: str, n: int) -> list[str]:
    """`text` in `n` pieces of about equal size (a model streaming it)."""
    size = max(1, -(-len(text) // n))
    return [text[i : i + size] for i in range(0, len(text), size)]


def long_text(n: int) -> str:
    """`n` characters of Markdown-free sentences (every renderer shows them as they are)."""
    out: list[str] = []
    length = i = 0
    while length < n + 20:
        w = _VOCAB[i % len(_VOCAB)] + ("." if i % 9 == 8 else "")
        out.append(w)
        length += len(w) + 1
        i += 1
    return " ".join(out)[:n].rstrip(" .") + "."


def gaps(reqs: list[Request]) -> list[float]:
    return [round(b.t - a.t, 4) for a, b in zip(reqs, reqs[1:], strict=False)]


def timeline(driver: Driver) -> list[tuple[str, float, bool]]:
    reqs = driver.requests()
    t0 = reqs[0].t if reqs else 0.0
    return [(r.kind, round(r.t - t0, 3), r.ok) for r in reqs]


def no_whitespace(s: str) -> str:
    return re.sub(r"\s+", "", s)


# --- what the person reads -------------------------------------------------------------------


async def test_final_text_is_exactly_the_model_text(driver: Driver) -> None:
    await driver.start(ScriptedProvider(pieces_of(PLAIN, 12), interval=0.02))
    await driver.say("What about Paris?")
    assert await driver.final_texts() == [PLAIN], timeline(driver)
    assert driver.outcomes() == {"ok": 1}


async def test_markdown_answer_shows_its_visible_text(driver: Driver) -> None:
    """A renderer turns **bold** into formatting (the visible text drops the stars); a channel
    that passes Markdown on shows the source as it is. Either way: every word, once, in order."""
    source = "Some **bold** answer, streamed in pieces."
    await driver.start(ScriptedProvider(["Some ", "**bold**", " answer, ", "streamed in ", "pieces."], interval=0.02))
    await driver.say("Make it bold")
    expected = "Some bold answer, streamed in pieces." if driver.renders_markup else source
    assert await driver.final_texts() == [expected], timeline(driver)


async def test_long_answer_is_one_message_per_part(driver: Driver) -> None:
    provider = ScriptedProvider([], interval=0.01)
    await driver.start(provider)
    limit = driver.caps.max_chars
    text = long_text(limit * 5 // 2)
    expected = split_text(text, limit)
    assert len(expected) == 3
    provider.pieces = pieces_of(text, 40)
    await driver.say("Write a lot")
    shown = await driver.final_texts(timeout=30)
    assert len(shown) == 3, [len(m) for m in shown]
    assert all(len(m) <= limit for m in shown), [len(m) for m in shown]
    assert no_whitespace("".join(shown)) == no_whitespace(text)  # only whitespace at the cuts is dropped
    assert shown == expected  # cut where split_text cuts: a frozen part never changes again


# --- pacing and budgets ----------------------------------------------------------------------


@pytest.mark.needs("paces_requests")
async def test_requests_of_a_reply_are_paced(driver: Driver) -> None:
    """Every text request starts at least min_edit_interval after the previous one (the platform
    sees them at least that far apart); new messages at least min_send_interval apart."""
    provider = ScriptedProvider([], interval=0.03)
    await driver.start(provider, interval=0.15, send_interval=0.3)
    caps = driver.caps
    assert caps.min_edit_interval == pytest.approx(0.15)
    send_interval = caps.min_send_interval if caps.min_send_interval is not None else caps.min_edit_interval
    text = long_text(caps.max_chars * 5 // 2)
    provider.pieces = pieces_of(text, 40)  # about 1.2 s of streaming, three parts
    await driver.say("Write a lot, slowly")
    assert await driver.final_texts(timeout=30) == split_text(text, caps.max_chars)
    reqs = driver.text_requests()
    assert len(reqs) >= 6, timeline(driver)  # really streamed: pacing was exercised
    assert min(gaps(reqs)) >= caps.min_edit_interval - EPS, (gaps(reqs), timeline(driver))
    sends = [r for r in reqs if r.kind in CREATES_MESSAGE]
    assert len(sends) >= 3, timeline(driver)
    assert min(gaps(sends)) >= send_interval - EPS, (gaps(sends), timeline(driver))


@pytest.mark.needs("has_chat_budget")
async def test_chat_budget_is_shared_by_concurrent_replies(driver: Driver) -> None:
    """Two replies at once in one chat draw on one leaky bucket: over any stretch of the sends and
    edits made there, count <= capacity + elapsed * rate."""
    capacity, per = 2, 2.0
    rate = capacity / per
    await driver.start(ScriptedProvider(["Reply", *words(30)], interval=0.05))
    driver.set_chat_budget(RateBudget(capacity, per))
    await driver.say_concurrently(["one", "two"])
    expected = "Reply" + "".join(words(30))
    assert await driver.final_texts(timeout=30) == [expected, expected], timeline(driver)
    metered = [r for r in driver.requests() if r.kind in ("send", "edit")]
    threads = {r.thread for r in metered}
    assert len(threads) == 2, threads
    first = {th: min(r.t for r in metered if r.thread == th) for th in threads}
    last = {th: max(r.t for r in metered if r.thread == th) for th in threads}
    assert max(first.values()) < min(last.values()), "the two replies did not overlap"
    assert len(metered) >= capacity + 2  # enough requests for the bucket to matter
    slack = 0.1  # arrival jitter between taking a budget slot and the request reaching the platform
    for i in range(len(metered)):
        for j in range(i, len(metered)):
            count, elapsed = j - i + 1, metered[j].t - metered[i].t
            assert count <= capacity + (elapsed + slack) * rate, (i, j, timeline(driver))


# --- what the platform answers ---------------------------------------------------------------


@pytest.mark.needs("can_inject_errors")
async def test_retry_after_is_waited_and_no_words_are_lost(driver: Driver) -> None:
    retry_after = 0.6
    await driver.start(ScriptedProvider(["Start", *words(20)], interval=0.03))
    driver.inject_rate_limit(retry_after)
    await driver.say("go")
    expected = "Start" + "".join(words(20))
    assert await driver.final_texts() == [expected], timeline(driver)
    reqs = driver.requests()
    limited = [r for r in reqs if not r.ok and "retry after" in (r.error or "").lower()]
    assert len(limited) == 1, timeline(driver)
    after = [r for r in reqs if r.t > limited[0].t]
    assert after, timeline(driver)
    assert after[0].t - limited[0].t >= retry_after - EPS, timeline(driver)  # the whole wait
    assert [r for r in reqs if not r.ok] == limited  # nothing else refused
    assert driver.outcomes() == {"ok": 1}


@pytest.mark.needs("edits_messages", "can_inject_errors")
async def test_not_modified_is_success(driver: Driver) -> None:
    """The final edit got through but answers "message is not modified": no resend, no notice."""
    expected = "First" + "".join(words(12))
    await driver.start(ScriptedProvider(["First", *words(12)], interval=0.05))
    driver.inject_not_modified(expected)
    await driver.say("go")
    assert await driver.final_texts() == [expected], timeline(driver)
    reqs = driver.text_requests()
    refused = [r for r in reqs if not r.ok]
    assert len(refused) == 1 and "not modified" in (refused[0].error or ""), timeline(driver)
    assert [r for r in reqs if r.t > refused[0].t] == []  # not sent again, in any form
    assert len([r for r in reqs if r.kind in CREATES_MESSAGE]) == 1
    assert driver.outcomes() == {"ok": 1}


@pytest.mark.needs("can_inject_errors", "renders_markup")
async def test_markup_rejected_falls_back_to_plain_text(driver: Driver) -> None:
    source = "Some **bold** answer that streams on."
    await driver.start(ScriptedProvider(["Some **bold** answer ", "that", " streams", " on."], interval=0.05))
    driver.reject_markup()
    await driver.say("go")
    assert await driver.final_texts() == [source], timeline(driver)  # the same text, as plain text
    reqs = [r for r in driver.text_requests() if r.kind in ("send", "edit")]
    rejected = [r for r in reqs if not r.ok]
    assert rejected and all("can't parse entities" in (r.error or "") for r in rejected), timeline(driver)
    for r in rejected:  # the very next request of that kind is the same call, plain
        nxt = next(x for x in reqs if x.t > r.t and x.kind == r.kind)
        assert nxt.ok and "parse_mode" not in nxt.raw, timeline(driver)
        if r.kind == "edit":
            assert nxt.raw["message_id"] == r.raw["message_id"]
    assert len([r for r in reqs if r.kind in CREATES_MESSAGE and r.ok]) == 1
    assert driver.outcomes() == {"ok": 1}


@pytest.mark.needs("shows_typing")
async def test_typing_goes_out_at_once_and_stops_before_the_text(driver: Driver) -> None:
    """Typing goes out before the model has said anything, is refreshed while it thinks, and is
    stopped for good before the first text: none while the text streams, none after it."""
    ttft = 0.4
    pieces = ["Thought", " about", " it", *words(10)]  # then half a second of streaming
    provider = TimedProvider(pieces, ttft=ttft, interval=0.05)
    await driver.start(provider, typing_refresh=0.1)
    await driver.say("think first")
    assert await driver.final_texts() == ["".join(pieces)]
    refresh = driver.caps.typing_refresh
    assert refresh is not None
    window = min(2 * refresh, 0.3)
    await asyncio.sleep(window)  # room for a typing action that was never stopped to show up
    reqs = driver.requests()
    typing = [r for r in reqs if r.kind == "typing"]
    texts = [r for r in reqs if r.is_text]
    assert reqs[0].kind == "typing", timeline(driver)
    assert provider.first_piece_at is not None and typing[0].t < provider.first_piece_at  # before the model spoke
    assert all(t.t < texts[0].t for t in typing), timeline(driver)  # stopped before the first text
    assert texts[-1].t - texts[0].t > 2 * refresh or refresh > 1, timeline(driver)  # a stray refresh had room
    if refresh < ttft / 2:  # the indicator is kept alive while the model thinks
        assert len(typing) >= 2, timeline(driver)


@pytest.mark.needs("can_delete_messages")
async def test_deleted_message_is_sent_again(driver: Driver) -> None:
    """The person deletes the reply's message mid-stream: the edit answers "message to edit not
    found", the part goes out again as a new message, complete; nothing crashes."""
    expected = "Start" + "".join(words(30))
    await driver.start(ScriptedProvider(["Start", *words(30)], interval=0.05))
    await driver.say("go")
    first = await driver.wait_for_text()
    assert first.kind in CREATES_MESSAGE
    driver.delete_last_message()
    assert await driver.final_texts() == [expected], timeline(driver)
    reqs = driver.text_requests()
    gone = [r for r in reqs if not r.ok]
    assert gone and all("message to edit not found" in (r.error or "") for r in gone), timeline(driver)
    sends = [r for r in reqs if r.kind in CREATES_MESSAGE and r.ok]
    assert len(sends) == 2 and sends[1].t > gone[0].t, timeline(driver)
    assert driver.outcomes() == {"ok": 1}


@pytest.mark.needs("drops_connections")
async def test_client_gone_mid_reply_is_quiet_and_the_next_connection_is_answered(driver: Driver) -> None:
    expected = "Start" + "".join(words(30))
    app = await driver.start(ScriptedProvider(["Start", *words(30)], interval=0.02))
    await driver.say("go")
    await driver.wait_for_text()
    await driver.drop_connection()
    await driver.say("are you still there?")  # a new connection, same session
    shown = await driver.final_texts()
    assert len(shown) == 2 and shown[-1] == expected, timeline(driver)
    assert shown[0] and expected.startswith(shown[0])  # what the closed tab had shown so far
    async with aiohttp.ClientSession() as http, http.get(f"{app.base_url}/healthz") as r:
        assert (await r.json()) == {"ok": True, "active_replies": 0}
    assert "failed" not in driver.outcomes() and driver.outcomes().get("ok") == 1, driver.outcomes()


# --- shutdown --------------------------------------------------------------------------------


async def test_shutdown_within_grace_finishes_the_reply(driver: Driver) -> None:
    text = "Start" + "".join(words(15))
    await driver.start(ScriptedProvider(["Start", *words(15)], interval=0.05), dispatcher={"shutdown_grace": 5.0})
    await driver.say("go")
    await driver.wait_for_text()
    await driver.stop()  # the configured grace
    assert await driver.final_texts() == [text], timeline(driver)
    assert driver.outcomes() == {"ok": 1}
    closed = driver.closed_seen_at()
    assert closed is not None and closed >= max(r.t for r in driver.text_requests()), timeline(driver)


async def test_shutdown_past_grace_ends_with_a_mark_before_connections_close(driver: Driver) -> None:
    full = "Partial answer" + "".join(words(200))
    await driver.start(
        ScriptedProvider(["Partial answer", *words(200)], interval=0.05), dispatcher={"shutdown_grace": 0.2}
    )
    await driver.say("long one")
    await driver.wait_for_text()
    await asyncio.sleep(0.3)  # let some more text out (what is asserted does not depend on how much)
    await driver.stop()
    shown = await driver.final_texts()
    assert len(shown) == 1, shown
    assert shown[0].endswith(MARK), shown[0][-60:]
    kept = shown[0].removesuffix(MARK).rstrip()
    assert kept.startswith("Partial answer") and full.startswith(kept), kept[-60:]  # no word lost or garbled
    assert driver.outcomes() == {"interrupted": 1}
    marked = [r for r in driver.text_requests() if r.ok and r.text and MARK in r.text]
    assert marked, timeline(driver)
    closed = driver.closed_seen_at()  # the connections closed only after the mark got through
    assert closed is not None and closed >= marked[-1].t, timeline(driver)
    assert [r for r in driver.requests() if r.t > closed] == []
