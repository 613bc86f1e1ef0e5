from __future__ import annotations

from channels.slack import SlackChannel
from tests.fakes.slack_server import FakeSlack

from .conftest import sl_config


async def test_doctor_offline_does_not_call_slack(fake: FakeSlack) -> None:
    checks = await SlackChannel(sl_config(fake)).doctor_checks()
    assert all(c.ok for c in checks) and fake.calls == []


async def test_doctor_deep_checks_tokens_and_scopes(fake: FakeSlack) -> None:
    checks = await SlackChannel(sl_config(fake)).doctor_checks(deep=True)
    assert all(c.ok for c in checks), checks
    assert [c.method for c in fake.calls] == ["auth.test", "apps.connections.open"]
    assert not fake.sent_envelopes and fake.connections == 0  # the issued URL is never connected to


async def test_doctor_deep_names_problems(fake: FakeSlack) -> None:
    fake.scopes = "chat:write,im:history,channels:history,reactions:write"
    checks = await SlackChannel(sl_config(fake, app_token="xapp-wrong")).doctor_checks(deep=True)
    bad = {c.name: c for c in checks if not c.ok}
    assert set(bad) == {"slack scope app_mentions:read", "slack socket mode"}
    assert "Bot Token Scopes" in bad["slack scope app_mentions:read"].fix
    assert "App-Level Tokens" in bad["slack socket mode"].fix
    checks = await SlackChannel(sl_config(fake, bot_token="xoxb-nope")).doctor_checks(deep=True)
    assert [c.name for c in checks if not c.ok] == ["slack bot token"]
