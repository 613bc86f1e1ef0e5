"""Webchat: a single page served by the shared aiohttp server, streaming replies token by token."""

from channels.webchat.channel import WebchatChannel, build

__all__ = ["WebchatChannel", "build"]
