"""Shared fixtures: an App wired to fakes, on an ephemeral port, with an in-memory store."""

from __future__ import annotations

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
