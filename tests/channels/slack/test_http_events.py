"""The HTTP Events API on the App's shared server: signed requests answered, bad or stale
signatures refused (401), Slack's retries (X-Slack-Retry-Num) not answered twice."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests.fakes.scripted_provider import ScriptedProvider
from tests.fakes.slack_server import FakeSlack

from .conftest import DM, settled

PATH = "/slack/events"


async def post(app, body: str, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.post(f"{app.base_url}{PATH}", data=body, headers=headers) as r:
        return r.status, await r.text()


async def test_signed_events_are_answered_and_bad_or_stale_signatures_refused(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(
        ScriptedProvider(["Signed", " and answered."]),
        serve_http=True,
        mode="http",
        signing_secret=fake.signing_secret,
        app_token=None,
    )
    q = fake.person_message(DM, "hello over HTTP")
    body = json.dumps(fake.event_callback(fake.message_event(q)))

    status, _ = await post(app, body, fake.sign(body, secret="not-the-secret"))
    assert status == 401
    status, _ = await post(app, body, fake.sign(body, timestamp=int(time.time()) - 301))
    assert status == 401  # older than 5 minutes
    headers = fake.sign(body)
    status, _ = await post(app, body, {**headers, "X-Slack-Signature": headers["X-Slack-Signature"][:-2] + "00"})
    assert status == 401
    status, _ = await post(app, body, {"Content-Type": "application/json"})
    assert status == 401
    await asyncio.sleep(0.05)
    assert not fake.of("chat.startStream", "chat.postMessage")

    t0 = time.monotonic()
    status, _ = await post(app, body, fake.sign(body))
    acked = time.monotonic() - t0
    assert status == 200 and acked < 3.0
    retry = {**fake.sign(body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    status, _ = await post(app, body, retry)
    assert status == 200
    await settled(app)
    await asyncio.sleep(0.05)
    assert fake.texts(DM, q.ts) == ["Signed and answered."]
    assert not fake.sent_envelopes and not fake.of("apps.connections.open")  # no Socket Mode


async def test_url_verification_is_answered(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(
        ScriptedProvider(["x"]), serve_http=True, mode="http", signing_secret=fake.signing_secret, app_token=None
    )
    body = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"})
    status, text = await post(app, body, fake.sign(body))
    assert status == 200 and "c-123" in text
