"""The model chain's memory of failures (bot/model_chain.py with bot/state.py's MemoryModelHealth):
a circuit breaker per model shared by every conversation."""

from __future__ import annotations

import asyncio

from bot.app import App
from bot.errors import ProviderAuthError, ProviderRateLimited, ProviderUnavailable
from bot.state import MemoryModelHealth
from tests.conftest import make_config
from tests.fakes.recording_channel import RecordingChannel
from tests.fakes.scripted_provider import ScriptedProvider

HOSTED = {
    "providers": {"hosted": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}},
    "models": {"hosted/big": {"price": {"input": 1.0, "output": 2.0}}},
    "routing": {"default": "hosted/big", "use_table": False},
}


async def ask(app: App, channel: RecordingChannel, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        await channel.say(f"question {i}", conversation=f"rec:{i}")  # every one its own conversation
        await app.dispatcher.drain()
    await app.responder.flush()


async def started(hosted: ScriptedProvider, local: ScriptedProvider) -> tuple[App, RecordingChannel]:
    channel = RecordingChannel()
    app = App(make_config(**HOSTED), providers={"hosted": hosted, "local": local}, channels=[channel])
    await app.start()
    return app, channel


async def test_three_failures_open_the_breaker_for_every_conversation() -> None:
    hosted = ScriptedProvider(["hosted"], name="hosted", fail_before=ProviderUnavailable("down", provider="hosted"))
    local = ScriptedProvider(["local"], name="local")
    app, channel = await started(hosted, local)
    try:
        await ask(app, channel, 6)
        assert len(hosted.requests) == 3  # then the breaker is open: nobody pays for it again
        assert channel.replies() == ["local"] * 6
    finally:
        await app.stop()


async def test_a_retry_after_opens_it_at_once_and_a_probe_closes_it() -> None:
    err = ProviderRateLimited("slow down", provider="hosted", status=429, retry_after=0.3)
    hosted = ScriptedProvider(["hosted"], name="hosted", fail_before=err)
    local = ScriptedProvider(["local"], name="local")
    app, channel = await started(hosted, local)
    try:
        await ask(app, channel, 2)
        assert len(hosted.requests) == 1  # the second question did not go back to it
        hosted.fail_before = None
        await asyncio.sleep(0.35)  # the provider's own retry-after, not a guess
        await ask(app, channel, 2, first=2)
        assert len(hosted.requests) == 3  # the probe went through and closed the breaker
        assert channel.replies() == ["local", "local", "hosted", "hosted"]
    finally:
        await app.stop()


async def test_a_refused_key_disables_the_model_and_the_last_resort_is_still_asked() -> None:
    hosted = ScriptedProvider(["hosted"], name="hosted", fail_before=ProviderAuthError("bad key", provider="hosted"))
    local = ScriptedProvider(["local"], name="local", fail_before=ProviderUnavailable("no", provider="local"))
    app, channel = await started(hosted, local)
    try:
        await ask(app, channel, 5)
        assert len(hosted.requests) == 1
        # every model is in cooldown now: the chain still asks its last one rather than nobody
        assert len(local.requests) == 5
        assert all(r.startswith("Sorry, I couldn't get an answer") for r in channel.replies())
    finally:
        await app.stop()


def test_the_cooldown_doubles_and_is_capped() -> None:
    import time

    h = MemoryModelHealth(threshold=1, cooldown=10.0, max_cooldown=25.0)
    h.failed("m")
    assert not h.usable("m") and 9 < h.open_models()["m"] <= 10
    h._breakers["m"].open_until = time.monotonic() - 1  # the cooldown is over
    assert h.usable("m") and not h.usable("m")  # one probe at a time
    h.failed("m")  # the probe failed
    assert 19 < h.open_models()["m"] <= 20
    h._breakers["m"].open_until = time.monotonic() - 1
    assert h.usable("m")
    h.failed("m")
    assert 24 < h.open_models()["m"] <= 25
    h._breakers["m"].open_until = time.monotonic() - 1
    assert h.usable("m")
    h.succeeded("m")
    assert h.usable("m") and h.open_models() == {}
