from __future__ import annotations

from bot.app import doctor_checks
from bot.config import parse
from channels.telegram import TelegramChannel, parse_config
from tests.fakes.telegram_server import FakeTelegram


async def test_doctor_ok(fake: FakeTelegram) -> None:
    res = await TelegramChannel(parse_config({"token": fake.token, "base_url": fake.base_url})).doctor_checks()
    assert all(c.ok for c in res), res
    assert any("@switchboard_bot" in c.detail for c in res)
    assert fake.webhook is None and not fake.calls_of("deleteWebhook", "setWebhook", "getUpdates")


async def test_doctor_bad_token_and_bad_config(fake: FakeTelegram) -> None:
    res = await TelegramChannel(parse_config({"token": "1:bad", "base_url": fake.base_url})).doctor_checks()
    assert res[-1].name == "telegram token" and not res[-1].ok
    # a bad table is reported by the app's doctor, naming the key, without a traceback
    cfg = parse({"channels": {"telegram": {"token": "1:bad", "colour": "red"}}})
    res = await doctor_checks(cfg)
    bad = [c for c in res if c.name == "channel telegram"]
    assert bad and not bad[0].ok and "channels.telegram.colour" in bad[0].detail


async def test_doctor_webhook_not_registered(fake: FakeTelegram) -> None:
    table = {
        "token": fake.token,
        "base_url": fake.base_url,
        "mode": "webhook",
        "webhook_url": "https://bot.example.com/tg",
    }
    res = await TelegramChannel(parse_config(table)).doctor_checks()
    last = res[-1]
    assert last.name == "telegram webhook" and not last.ok and "(none)" in last.detail and last.fix
