"""Shared fixtures: an App wired to fakes, on an ephemeral port, with an in-memory store."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bot import config


def make_config(**sections: Any) -> config.Config:
    data: dict[str, Any] = {"http": {"port": 0}, "store": {"kind": "memory"}, "logging": {"level": "warning"}}
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
    return config.parse(data)


@pytest.fixture
def app_config():
    return make_config


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a skipped test is a failure: a missing install step must not pass silently."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (an install step is missing?): {report.longrepr}"
