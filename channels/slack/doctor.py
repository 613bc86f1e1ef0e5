"""Checks for `switchboard doctor`: is the Slack channel ready? One result per check, with a fix.

`await checks(cfg)` (doctor --deep) only reads: `auth.test` (the bot token, its team and its
scopes) and, in Socket Mode, `apps.connections.open` (the app-level token; the URL it issues is
not connected to).
"""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.channel import Check
from channels.slack.adapter import (
    APP_TOKEN_FIX,
    BOT_TOKEN_FIX,
    SOCKET_FIX,
    missing_scopes,
    scope_problem,
    scopes_of,
)
from channels.slack.config import SlackConfig


def offline_checks(cfg: SlackConfig) -> list[Check]:
    """Without --deep: the config only; the tokens and scopes are checked with Slack with --deep."""
    return [
        Check("slack config", True, _describe(cfg)),
        Check("slack tokens", True, "present (doctor --deep checks them and the scopes with Slack)"),
    ]


async def checks(cfg: SlackConfig) -> list[Check]:
    out = [Check("slack config", True, _describe(cfg))]
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(
            token=cfg.bot_token.get_secret_value(), base_url=cfg.api_base, session=session, retry_handlers=[]
        )
        try:
            me = await client.auth_test()
        except SlackApiError as e:
            error = str(e.response.get("error", ""))
            return [*out, Check("slack bot token", False, f"refused by Slack ({error})", BOT_TOKEN_FIX)]
        except (aiohttp.ClientError, TimeoutError) as e:
            return [
                *out,
                Check(
                    "slack API", False, f"cannot reach {cfg.base_url}: {e}", "check the network / proxy, or base_url"
                ),
            ]
        out.append(Check("slack bot token", True, f"{me.get('user')} ({me.get('user_id')}) in {me.get('team')}"))
        granted = scopes_of(me.headers)
        if granted is None:
            out.append(Check("slack scopes", True, "not reported by this server"))
        else:
            missing = missing_scopes(granted, cfg)
            for scope in missing:
                problem, _, fix = scope_problem(scope).partition("; ")
                out.append(Check(f"slack scope {scope}", False, problem.removeprefix("slack: "), fix))
            if not missing:
                out.append(Check("slack scopes", True, ", ".join(sorted(granted))))
        if cfg.mode == "socket" and cfg.app_token is not None:
            try:
                await client.apps_connections_open(app_token=cfg.app_token.get_secret_value())
            except SlackApiError as e:
                error = str(e.response.get("error", ""))
                token_problem = error in ("invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked")
                out.append(
                    Check(
                        "slack socket mode",
                        False,
                        f"apps.connections.open refused ({error})",
                        APP_TOKEN_FIX if token_problem else SOCKET_FIX,
                    )
                )
            else:
                out.append(Check("slack socket mode", True, "the app-level token opens a connection"))
    return out


def _describe(cfg: SlackConfig) -> str:
    if cfg.mode == "socket":
        return f"api {cfg.base_url}, Socket Mode"
    return f"api {cfg.base_url}, HTTP events at {cfg.events_path}"
