"""Any OpenAI-compatible chat completions endpoint through the `openai` SDK.

Cerebras, OpenAI, vLLM, Ollama, llama.cpp server and mlx_lm.server all speak this protocol.
Connections stay warm: the SDK's HTTP client normally drops an idle keep-alive connection after
5 s, so the first message after a quiet minute would pay a new TCP + TLS handshake. We keep idle
connections for `keepalive_expiry` seconds (minutes), open one at start-up, and re-warm it before
it expires. The SDK's own retries are off: a failure moves down the router's fallback chain
instead of silently adding seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator

import openai
from openai._constants import DEFAULT_CONNECTION_LIMITS

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
    {"max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop", "reasoning_effort",
     "service_tier", "prediction", "frequency_penalty", "presence_penalty", "response_format", "logit_bias", "user"}
)


class OpenAICompatProvider:
    def __init__(self, name: str, cfg: ProviderConfig) -> None:
        if not cfg.base_url:
            raise ValueError(f"providers.{name}.base_url is required for kind = 'openai'")
        self.name = name
        self._cfg = cfg
        limits = type(DEFAULT_CONNECTION_LIMITS)(
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
        self._last_used = 0.0
        self._warmer: asyncio.Task[None] | None = None

    # --- connection warmth -------------------------------------------------------------------

    async def start(self) -> None:
        if not self._cfg.warm:
            return
        await self.warm()
        self._warmer = asyncio.create_task(self._keep_warm(), name=f"warm:{self.name}")

    async def warm(self) -> bool:
        """One cheap request (GET /models) so a connection is open and in the pool."""
        try:
            await self._client.models.list()
        except openai.APIStatusError:
            pass  # 401/404 still left a warm connection behind
        except openai.APIError:
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

    # --- streaming ---------------------------------------------------------------------------

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
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
            stream = await self._client.chat.completions.create(
                model=req.model,
                messages=messages,  # type: ignore[arg-type]
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
        finally:
            self._last_used = time.monotonic()
        if ttft is None and finish is None:
            raise ProviderUnavailable("stream ended without any answer", provider=self.name)
        yield Delta(usage=usage or Usage(), ttft=ttft, finish_reason=finish)

    def _translate(self, e: openai.APIError) -> ProviderError:
        msg = f"{self.name}: {getattr(e, 'message', None) or e}"
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            if status in (401, 403):
                return ProviderAuthError(msg, provider=self.name, status=status)
            if status == 429:
                ra = e.response.headers.get("retry-after")
                try:
                    retry_after = float(ra) if ra else None
                except ValueError:
                    retry_after = None
                return ProviderRateLimited(msg, retry_after=retry_after, provider=self.name, status=status)
            if status >= 500:
                return ProviderUnavailable(msg, provider=self.name, status=status)
            return ProviderBadRequest(msg, provider=self.name, status=status)
        return ProviderUnavailable(msg, provider=self.name)
