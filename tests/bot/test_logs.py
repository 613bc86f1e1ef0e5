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
    log.info(
        "provider_failed",
        api_key="sk-live-abcdefgh",
        token="123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
        error="HTTP 401 for key sk-proj-abcdef123456",
        prompt_tokens=12,
        completion_tokens=3,
    )
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["event"] == "provider_failed"
    assert line["api_key"] == "***" and line["token"] == "***"
    assert "sk-proj-abcdef123456" not in line["error"] and "***" in line["error"]
    assert line["prompt_tokens"] == 12 and line["completion_tokens"] == 3  # counts are not secrets
    structlog.reset_defaults()


# --- review fixes: tracebacks, nesting, more key formats, literal secrets, the shared key rule ----

import logging  # noqa: E402

import pytest  # noqa: E402

TG_TOKEN = "7512345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
GOOGLE_KEY = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"


@pytest.fixture
def capture():
    factory = logging.getLogRecordFactory()
    out = io.StringIO()
    logs.configure("info", "json", stream=out)
    yield out
    structlog.reset_defaults()
    logs.clear_secrets()
    logging.setLogRecordFactory(factory)


def last(out: io.StringIO) -> dict:
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_traceback_text_is_redacted(capture):
    log = structlog.get_logger("t")
    try:
        try:
            raise ConnectionError(f"Cannot connect to https://api.telegram.org/bot{TG_TOKEN}/getUpdates")
        except ConnectionError as e:
            raise RuntimeError("poll failed") from e
    except RuntimeError:
        log.exception("telegram_poll_failed")
    line = last(capture)
    assert "ConnectionError" in line["exception"] and "poll failed" in line["exception"]
    assert TG_TOKEN not in capture.getvalue()
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1" not in capture.getvalue()
    assert "/bot***/getUpdates" in line["exception"]


def test_nested_dicts_and_lists_are_redacted(capture):
    structlog.get_logger("t").info(
        "request",
        request={
            "headers": {
                "Authorization": "Bearer abcdefgh12345",
                "X-Api-Key": "k-12345678",
                "Accept": "application/json",
            },
            "urls": [f"https://api.telegram.org/bot{TG_TOKEN}/sendMessage"],
            "usage": {"prompt_tokens": 5, "cached_tokens": 1},
        },
    )
    line = last(capture)
    headers = line["request"]["headers"]
    assert headers["Authorization"] == "***" and headers["X-Api-Key"] == "***"
    assert headers["Accept"] == "application/json"
    assert TG_TOKEN not in line["request"]["urls"][0]
    assert line["request"]["usage"] == {"prompt_tokens": 5, "cached_tokens": 1}


@pytest.mark.parametrize(
    "key",
    [
        "csk-4f8x2kd9wmv3r6t1yq8pn5c2",
        "gsk_Wd82kfJq0LmZp3xTvR7nYb4c",
        GOOGLE_KEY,
        "xoxb-1234567890-0987654321-AbCdEfGhIjKl",
        "xoxe-1-My0xLTEyMzQ1Njc4OTAtYWJj",
        "xapp-1-A0123456789-1234567890123-abcdef",
        "sk-ant-api03-abcdef123456",
    ],
)
def test_provider_key_formats_in_free_text(capture, key):
    structlog.get_logger("t").warning("provider_failed", error=f"HTTP 401: invalid key '{key}' (see docs)")
    line = last(capture)
    assert key not in capture.getvalue()
    assert "***" in line["error"] and "HTTP 401" in line["error"]


def test_registered_literal_secrets_are_redacted_anywhere(capture):
    logs.register_secrets(["hunter2-webhook-secret", "short", ""])
    log = structlog.get_logger("t")
    log.info("odd hunter2-webhook-secret in the event", detail={"list": ["x hunter2-webhook-secret y"]})
    line = last(capture)
    assert "hunter2-webhook-secret" not in capture.getvalue()
    assert line["detail"]["list"] == ["x *** y"]
    log.info("short words stay", note="short")  # below 6 characters: not registered
    assert last(capture)["note"] == "short"
    try:
        raise ValueError("bad signature for hunter2-webhook-secret")
    except ValueError:
        log.exception("webhook_failed")
    assert "hunter2-webhook-secret" not in capture.getvalue()


def test_token_counts_are_not_masked(capture):
    structlog.get_logger("t").info(
        "reply", prompt_tokens=120, completion_tokens=30, cached_tokens=64, max_tokens=512, token_count=9
    )
    line = last(capture)
    assert (line["prompt_tokens"], line["completion_tokens"], line["cached_tokens"], line["max_tokens"]) == (
        120,
        30,
        64,
        512,
    )


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "api_key",
        "apikey",
        "apiKey",
        "secret",
        "signing_secret",
        "webhook_secret",
        "password",
        "authorization",
        "Authorization",
        "x-api-key",
        "bot_token",
        "client_secret",
        "Proxy-Authorization",
    ],
)
def test_is_secret_key_yes(name):
    assert logs.is_secret_key(name)


@pytest.mark.parametrize(
    "name",
    [
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "max_tokens",
        "tokens",
        "event",
        "error",
        "url",
        "model",
        "Accept",
        "key_env",
        "secret_ref",
    ],
)
def test_is_secret_key_no(name):
    assert not logs.is_secret_key(name)


def test_standard_logging_records_are_redacted(capture, caplog):
    logging.getLogger("aiohttp.client").warning("retrying https://api.telegram.org/bot%s/getUpdates", TG_TOKEN)
    try:
        raise OSError(f"connect failed bot{TG_TOKEN}/getMe")
    except OSError:
        logging.getLogger("telegram.ext").exception("poll error")
    assert "retrying https://api.telegram.org/bot***/getUpdates" in caplog.text
    assert "connect failed bot***/getMe" in caplog.text
    assert TG_TOKEN not in caplog.text


def test_app_registers_every_config_secret_with_the_logs():
    from bot.app import config_secrets
    from bot.config import parse

    cfg = parse(
        {
            "providers": {
                "c": {
                    "kind": "openai",
                    "base_url": "http://x/v1",
                    "api_key": "csk-provider-key",
                    "headers": {"X-Api-Key": "header-secret-1", "X-Team": "visible"},
                }
            },
            "channels": {"telegram": {"token": "123456:telegram-token-abc", "allow_users": [1]}},
        }
    )
    secrets = config_secrets(cfg)
    assert set(secrets) == {"csk-provider-key", "header-secret-1", "123456:telegram-token-abc"}
