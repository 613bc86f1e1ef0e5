"""Any OpenAI-compatible chat completions endpoint: Cerebras, OpenAI, vLLM, Ollama, llama.cpp
server and mlx_lm.server all speak this protocol.

Two HTTP paths, chosen by `providers.<name>.client`:

- ``fast`` (default): the streaming call is a plain aiohttp POST whose Server-Sent Events are parsed
  with `json.loads`. Measured on this project's 2-core machine (bench/added_latency.py), the `openai`
  SDK spent about 30 ms of CPU per 60-chunk reply building request and chunk models, which alone
  blew the 3 ms added-latency budget at 200 conversations.
- ``sdk``: the same call through the `openai` SDK (`AsyncOpenAI`, its own httpx client), for
  endpoints that need something only the SDK does. Both paths yield the same deltas and raise the
  same typed errors; the tests run both.

Connections stay warm: the SDK's HTTP client normally drops an idle keep-alive connection after
5 s, so the first message after a quiet minute would pay a new TCP + TLS handshake. We keep idle
connections for `keepalive_expiry` seconds (minutes), open one at start-up, and re-warm it before
it expires. The SDK's own retries are off: a failure moves down the router's fallback chain
instead of silently adding seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai

from bot.config import ProviderConfig
from bot.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from bot.types import Delta, GenerationRequest, Usage

# parameters the chat completions endpoint takes at top level; anything else goes in extra_body
_TOP_LEVEL = frozenset(
    {
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "reasoning_effort",
        "service_tier",
        "prediction",
        "frequency_penalty",
        "presence_penalty",
        "response_format",
        "logit_bias",
        "user",
    }
)


class OpenAICompatProvider:
    def __init__(self, name: str, cfg: ProviderConfig) -> None:
        if not cfg.base_url:
            raise ValueError(f"providers.{name}.base_url is required for kind = 'openai'")
        self.name = name
        self._cfg = cfg
        # the SDK's own Limits class (httpx or httpx2, whichever this openai release is built on)
        limits = type(openai.DEFAULT_CONNECTION_LIMITS)(
            max_connections=cfg.max_connections,
            max_keepalive_connections=cfg.max_connections,
            keepalive_expiry=cfg.keepalive_expiry,
        )
        http = openai.DefaultAsyncHttpxClient(
            limits=limits, timeout=openai.Timeout(cfg.timeout, connect=cfg.connect_timeout)
        )
        key = cfg.api_key.get_secret_value() if cfg.api_key else "none"
        self._client = openai.AsyncOpenAI(
            api_key=key or "none",
            base_url=cfg.base_url,
            http_client=http,
            max_retries=0,
            default_headers=cfg.headers or None,
        )
        self._url = cfg.base_url.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream", **cfg.headers}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._session: aiohttp.ClientSession | None = None
        self._last_used = 0.0
        self._warmer: asyncio.Task[None] | None = None

    async def list_models(self) -> None:
        """One authenticated read-only call (`GET /models`); raises the SDK's errors (doctor)."""
        await self._client.models.list()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The fast path's connection pool, created inside the running loop on first use."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._cfg.max_connections,
                    keepalive_timeout=self._cfg.keepalive_expiry,
                    ttl_dns_cache=300,
                ),
                # `timeout` bounds the wait for each piece of the answer, not the whole answer: a long
                # reply that keeps streaming is never cut
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._cfg.connect_timeout, sock_read=self._cfg.timeout
                ),
                headers=self._headers,
                raise_for_status=False,
            )
        return self._session

    # --- connection warmth -------------------------------------------------------------------

    async def start(self) -> None:
        if not self._cfg.warm:
            return
        await self.warm()
        self._warmer = asyncio.create_task(self._keep_warm(), name=f"warm:{self.name}")

    async def warm(self) -> bool:
        """Cheap requests (GET /models), `warm_connections` at once, so that many connections are
        open in the pool the replies use: a burst of replies does not wait for handshakes."""
        results = await asyncio.gather(*(self._warm_one() for _ in range(self._cfg.warm_connections)))
        return all(results)

    async def _warm_one(self) -> bool:
        try:
            if self._cfg.client == "sdk":
                try:
                    await self._client.models.list()
                except openai.APIStatusError:
                    pass  # 401/404 still left a warm connection behind
            else:
                async with self.session.get(f"{self._url}/models") as resp:
                    await resp.read()  # any status: the connection is open either way
        except (TimeoutError, openai.APIError, aiohttp.ClientError):
            return False
        self._last_used = time.monotonic()
        return True

    async def _keep_warm(self) -> None:
        period = self._cfg.keepalive_expiry * 0.8
        while True:
            await asyncio.sleep(max(period - (time.monotonic() - self._last_used), 0.05))
            if time.monotonic() - self._last_used >= period:
                await self.warm()

    async def aclose(self) -> None:
        if self._warmer is not None:
            self._warmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warmer
        await self._client.close()
        if self._session is not None:
            await self._session.close()

    # --- streaming ---------------------------------------------------------------------------

    def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        if self._cfg.client == "sdk":
            return self._stream_sdk(req)
        return self._stream_fast(req)

    async def _stream_fast(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        body: dict[str, Any] = {
            "model": req.model,
            "messages": [{"role": t.role, "content": t.content} for t in req.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if req.max_tokens is not None:
            body["max_tokens"] = req.max_tokens
        if req.temperature is not None:
            body["temperature"] = req.temperature
        body.update(req.extra)  # passed through as given (reasoning_effort, service_tier, prediction, ...)
        start = time.perf_counter()
        self._last_used = time.monotonic()
        ttft: float | None = None
        usage: Usage | None = None
        finish: str | None = None
        loads = json.loads
        try:
            async with self.session.post(f"{self._url}/chat/completions", data=json.dumps(body)) as resp:
                if resp.status != 200:
                    raise self._status_error(resp.status, await resp.text(), resp.headers.get("retry-after"))
                async for raw in resp.content:
                    if not raw.startswith(b"data:"):
                        continue  # blank separators, comments (": keep-alive"), event names
                    data = raw[5:].strip()
                    if data == b"[DONE]":
                        continue  # read to the end so the connection goes back to the pool
                    chunk = loads(data)
                    if "error" in chunk:
                        err = chunk["error"]
                        raise ProviderUnavailable(
                            f"{self.name}: {err.get('message', err) if isinstance(err, dict) else err}",
                            provider=self.name,
                        )
                    choices = chunk.get("choices")
                    if choices:
                        choice = choices[0]
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            if ttft is None:
                                ttft = time.perf_counter() - start
                            yield Delta(text)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
                    u = chunk.get("usage")
                    if u:
                        details = u.get("prompt_tokens_details") or {}
                        usage = Usage(
                            u.get("prompt_tokens") or 0,
                            u.get("completion_tokens") or 0,
                            details.get("cached_tokens") or 0,
                        )
        except ProviderError:
            raise
        except (TimeoutError, aiohttp.ClientError) as e:
            raise ProviderUnavailable(f"{self.name}: {type(e).__name__}: {e}", provider=self.name) from e
        except (ValueError, TypeError, AttributeError, KeyError) as e:  # chunks not shaped as the protocol says
            raise self._malformed(e) from e
        finally:
            self._last_used = time.monotonic()
        yield self._final(finish, usage, ttft)

    def _malformed(self, e: Exception) -> ProviderError:
        return ProviderUnavailable(f"{self.name}: malformed stream: {type(e).__name__}", provider=self.name)

    def _final(self, finish: str | None, usage: Usage | None, ttft: float | None) -> Delta:
        """The closing delta; a stream that ended without a finish reason was cut, not finished."""
        if finish is None:
            raise ProviderUnavailable(f"{self.name}: stream ended before the answer was complete", provider=self.name)
        return Delta(usage=usage or Usage(), ttft=ttft, finish_reason=finish)

    def _status_error(self, status: int, text: str, retry_after: str | None) -> ProviderError:
        try:
            err = json.loads(text).get("error") or {}
            detail = err.get("message") if isinstance(err, dict) else str(err)
        except (ValueError, AttributeError):
            detail = text[:200]
        msg = f"{self.name}: HTTP {status}: {detail}"
        if status in (401, 403):
            return ProviderAuthError(msg, provider=self.name, status=status)
        if status == 429:
            try:
                ra = float(retry_after) if retry_after else None
            except ValueError:
                ra = None
            return ProviderRateLimited(msg, retry_after=ra, provider=self.name, status=status)
        if status >= 500:
            return ProviderUnavailable(msg, provider=self.name, status=status)
        return ProviderBadRequest(msg, provider=self.name, status=status)

    async def _stream_sdk(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        params: dict[str, Any] = {}
        extra_body: dict[str, Any] = {}
        for k, v in req.extra.items():
            (params if k in _TOP_LEVEL else extra_body)[k] = v
        if req.max_tokens is not None:
            params.setdefault("max_tokens", req.max_tokens)
        if req.temperature is not None:
            params.setdefault("temperature", req.temperature)
        if extra_body:
            params["extra_body"] = extra_body
        messages = [{"role": t.role, "content": t.content} for t in req.messages]
        start = time.perf_counter()
        self._last_used = time.monotonic()
        ttft: float | None = None
        usage: Usage | None = None
        finish: str | None = None
        try:
            stream = await self._client.chat.completions.create(  # type: ignore[call-overload]  # untyped pass-through params
                model=req.model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **params,
            )
            async with stream:
                async for chunk in stream:
                    if chunk.choices:
                        choice = chunk.choices[0]
                        text = choice.delta.content if choice.delta else None
                        if text:
                            if ttft is None:
                                ttft = time.perf_counter() - start
                            yield Delta(text)
                        if choice.finish_reason:
                            finish = choice.finish_reason
                    if chunk.usage is not None:
                        details = chunk.usage.prompt_tokens_details
                        usage = Usage(
                            prompt_tokens=chunk.usage.prompt_tokens or 0,
                            completion_tokens=chunk.usage.completion_tokens or 0,
                            cached_tokens=(details.cached_tokens or 0) if details else 0,
                        )
        except openai.APIError as e:
            raise self._translate(e) from e
        except (ValueError, TypeError, AttributeError, KeyError) as e:  # chunks not shaped as the protocol says
            raise self._malformed(e) from e
        finally:
            self._last_used = time.monotonic()
        yield self._final(finish, usage, ttft)

    def _translate(self, e: openai.APIError) -> ProviderError:
        if isinstance(e, openai.APIStatusError):
            return self._status_error(e.status_code, e.response.text, e.response.headers.get("retry-after"))
        return ProviderUnavailable(f"{self.name}: {e}", provider=self.name)
