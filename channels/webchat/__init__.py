"""Webchat: a single page served by the shared aiohttp server, streaming replies token by token."""

from channels.webchat.channel import CHANNEL, WebchatChannel, build

__all__ = ["CHANNEL", "WebchatChannel", "build"]
