"""How the channel talks HTTP to the Bot API: `make_bot` (PTB's Bot with long-lived connections)
and a python-telegram-bot request class on aiohttp, for the reply hot path.

PTB's default `HTTPXRequest` costs about 1.1 ms of CPU per Bot API call here (httpx + httpcore's
pool bookkeeping grows with the number of connections); a burst of typing actions and drafts for
many chats at once queues behind that. The same calls through an aiohttp session cost about a
third of it. PTB stays in charge of everything else (parameters, JSON, errors, types): this class
only moves bytes, as `telegram.request.BaseRequest` intends.

Connections are kept `keepalive` seconds when idle (aiohttp's default is 15 s; httpx's is 5 s).
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import httpx
from telegram import Bot
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from channels.telegram.config import TelegramConfig

_TOKEN_IN_URL = re.compile(r"/bot[^/\s]+/")


def scrub(text: str) -> str:
    """Hide the bot token in a URL quoted by an error message."""
    return _TOKEN_IN_URL.sub("/bot<token>/", text)


class AiohttpRequest(BaseRequest):
    __slots__ = ("_connect", "_keepalive", "_pool", "_pool_size", "_read", "_session", "_timeouts", "_write")

    def __init__(
        self,
        *,
        connection_pool_size: int = 256,
        keepalive: float = 300.0,
        connect_timeout: float | None = 5.0,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._pool_size = connection_pool_size
        self._keepalive = keepalive
        self._connect = connect_timeout
        self._read = read_timeout
        self._write = write_timeout
        self._pool = pool_timeout
        self._timeouts: dict[tuple[float | None, float | None, float | None], aiohttp.ClientTimeout] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        return self._session

    @property
    def default_timeout(self) -> aiohttp.ClientTimeout:
        return self._timeout(self._read, self._connect, self._pool)

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size,
                limit_per_host=self._pool_size,
                keepalive_timeout=self._keepalive,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None),
            )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _timeout(self, read: float | None, connect: float | None, pool: float | None) -> aiohttp.ClientTimeout:
        key = (read, connect, pool)
        t = self._timeouts.get(key)
        if t is None:
            # aiohttp: `connect` covers waiting for a pooled connection and connecting;
            # `sock_connect` the TCP/TLS set-up alone; `sock_read` the wait for each read.
            total_connect = None if connect is None and pool is None else (connect or 0) + (pool or 0)
            t = aiohttp.ClientTimeout(total=None, connect=total_connect, sock_connect=connect, sock_read=read)
            if len(self._timeouts) < 64:
                self._timeouts[key] = t
        return t

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        # PTB's DefaultValue type is in a private module: compare with the public sentinel instead
        read = self._read if read_timeout is BaseRequest.DEFAULT_NONE else read_timeout
        connect = self._connect if connect_timeout is BaseRequest.DEFAULT_NONE else connect_timeout
        pool = self._pool if pool_timeout is BaseRequest.DEFAULT_NONE else pool_timeout
        data: aiohttp.FormData | dict[str, str] | None = None
        if request_data is not None:
            files = request_data.multipart_data
            params = request_data.json_parameters
            if files:
                form = aiohttp.FormData()
                for k, v in params.items():
                    form.add_field(k, v)
                for name, (filename, content, mime) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mime)
                data = form
            elif params:
                data = params
        try:
            async with session.request(method, url, data=data, timeout=self._timeout(read, connect, pool)) as resp:
                body = await resp.read()
                return resp.status, body
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp: {type(err).__name__}: {scrub(str(err))}") from err


def make_bot(cfg: TelegramConfig) -> Bot:
    """A PTB Bot whose connections stay open for minutes (httpx drops idle ones after 5 s by default)."""
    if cfg.http_client == "aiohttp":

        def aio(pool: int) -> AiohttpRequest:
            return AiohttpRequest(
                connection_pool_size=pool,
                keepalive=cfg.keepalive_expiry,
                connect_timeout=cfg.connect_timeout,
                read_timeout=cfg.read_timeout,
                write_timeout=cfg.write_timeout,
                pool_timeout=cfg.pool_timeout,
            )

        return Bot(
            cfg.token.get_secret_value(),
            base_url=cfg.base_url,
            base_file_url=cfg.base_file_url,
            request=aio(cfg.connection_pool_size),
            get_updates_request=aio(2),  # the long poll never takes a slot from replies
            local_mode=cfg.local_mode,
        )
    limits = httpx.Limits(
        max_connections=cfg.connection_pool_size,
        max_keepalive_connections=cfg.connection_pool_size,
        keepalive_expiry=cfg.keepalive_expiry,
    )
    request = HTTPXRequest(
        connection_pool_size=cfg.connection_pool_size,
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        write_timeout=cfg.write_timeout,
        pool_timeout=cfg.pool_timeout,
        httpx_kwargs={"limits": limits},
    )
    # getUpdates gets its own connection so a held long poll never takes a slot from replies;
    # PTB adds the poll timeout to this read timeout by itself.
    updates_request = HTTPXRequest(
        connection_pool_size=2,
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        write_timeout=cfg.write_timeout,
        pool_timeout=cfg.pool_timeout,
        httpx_kwargs={"limits": httpx.Limits(max_connections=2, keepalive_expiry=cfg.keepalive_expiry)},
    )
    return Bot(
        cfg.token.get_secret_value(),
        base_url=cfg.base_url,
        base_file_url=cfg.base_file_url,
        request=request,
        get_updates_request=updates_request,
        local_mode=cfg.local_mode,
    )
