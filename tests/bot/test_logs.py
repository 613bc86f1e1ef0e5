"""Logs are JSON off a terminal and never carry a secret."""

from __future__ import annotations

import io
import json

import structlog

from bot import logs


def test_json_lines_with_secrets_masked():
    out = io.StringIO()
    logs.configure("info", "auto", stream=out)  # not a terminal: JSON
    log = structlog.get_logger("t")
    log.info("provider_failed", api_key="sk-live-abcdefgh", token="123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
             error="HTTP 401 for key sk-proj-abcdef123456", prompt_tokens=12, completion_tokens=3)
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["event"] == "provider_failed"
    assert line["api_key"] == "***" and line["token"] == "***"
    assert "sk-proj-abcdef123456" not in line["error"] and "***" in line["error"]
    assert line["prompt_tokens"] == 12 and line["completion_tokens"] == 3  # counts are not secrets
    structlog.reset_defaults()
