"""Fixtures of the contract suite: `driver` is one adapter's driver, started by the test.

A test says what the platform must be able to do with `@pytest.mark.needs("flag", ...)`; it is
generated only for the drivers in `drivers.DRIVERS` whose flags are all True (never skipped).
See tests/contract/__init__.py for adding an adapter.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import pytest

from tests.contract.drivers import DRIVERS, Driver

FLAGS = (
    "shows_typing",
    "paces_requests",
    "edits_messages",
    "has_chat_budget",
    "can_inject_errors",
    "renders_markup",
    "can_delete_messages",
    "drops_connections",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*flags): run a contract test only for drivers declaring these flags")


def drivers_for(*needs: str) -> list[type[Driver]]:
    unknown = set(needs) - set(FLAGS)
    if unknown:
        raise ValueError(f"unknown contract flags: {sorted(unknown)} (known: {FLAGS})")
    return [d for d in DRIVERS if all(getattr(d, n) for n in needs)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "driver_cls" not in metafunc.fixturenames:
        return
    needs = [flag for mark in metafunc.definition.iter_markers("needs") for flag in mark.args]
    chosen = drivers_for(*needs)
    if not chosen:
        raise ValueError(f"{metafunc.definition.name}: no driver declares {needs}")
    metafunc.parametrize("driver_cls", chosen, ids=[d.name for d in chosen])


@pytest.fixture
async def driver(driver_cls: type[Driver]) -> AsyncIterator[Driver]:
    """A driver, not started yet (the test calls `await driver.start(provider, ...)`).

    At the end: everything is torn down, and no exception may have escaped to the event loop
    (an unretrieved task exception, an unclosed session).
    """
    d = driver_cls()
    try:
        yield d
    finally:
        try:
            await d.aclose()
            gc.collect()  # unretrieved task exceptions are reported when the task is collected
        finally:
            d.release_loop()
    assert not d.loop_errors, [
        {k: v for k, v in c.items() if k in ("message", "exception", "task")} for c in d.loop_errors
    ]
