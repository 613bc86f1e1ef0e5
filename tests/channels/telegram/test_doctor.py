from __future__ import annotations

from channels.telegram.doctor import check
from tests.fakes.telegram_server import FakeTelegram


async def test_doctor_ok(fake: FakeTelegram) -> None:
    res = await check({"token": fake.token, "base_url": fake.base_url})
    assert all(ok for _, ok, _, _ in res), res
    assert any("@switchboard_bot" in detail for _, _, detail, _ in res)
    assert fake.webhook is None and not fake.calls_of("deleteWebhook", "setWebhook", "getUpdates")


async def test_doctor_bad_token_and_bad_config(fake: FakeTelegram) -> None:
    res = await check({"token": "1:bad", "base_url": fake.base_url})
    assert res[-1][0] == "telegram token" and not res[-1][1]
    res = await check({"token": "1:bad", "colour": "red"})
    assert not res[0][1] and "channels.telegram.colour" in res[0][2]


async def test_doctor_webhook_not_registered(fake: FakeTelegram) -> None:
    res = await check({"token": fake.token, "base_url": fake.base_url, "mode": "webhook",
                       "webhook_url": "https://bot.example.com/tg"})
    name, ok, detail, fix = res[-1]
    assert name == "telegram webhook" and not ok and "(none)" in detail and fix
