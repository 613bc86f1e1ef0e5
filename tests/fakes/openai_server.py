"""A protocol-faithful OpenAI-compatible chat completions server on 127.0.0.1.

Streams Server-Sent Events exactly as the OpenAI API does (chunks, a final usage chunk when
`stream_options.include_usage` is set, then `data: [DONE]`), with a fixed time to first token and a
fixed token rate, and records every request. Used by the provider tests and the latency benchmark.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Scripted:
    """One scripted answer: an HTTP error, or a stream that may break after some tokens."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    break_after: int | None = None  # drop the connection after this many content chunks
    raw_chunks: list[bytes] | None = None  # send these SSE data payloads instead of the reply
    no_finish: bool = False  # end cleanly with [DONE] but never send a finish_reason


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    at: float
    peer_port: int | None


class FakeOpenAI:
    """`async with FakeOpenAI(reply="Hello world") as srv:` then point a client at `srv.base_url`."""

    def __init__(
        self,
        reply: str = "Paris is the capital of France.",
        *,
        ttft: float = 0.0,
        token_interval: float = 0.0,
        chunk_words: int = 1,
        prompt_tokens: int = 12,
        cached_tokens: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        models_delay: float = 0.0,
    ) -> None:
        self.reply = reply
        self.models_delay = models_delay  # seconds GET /models takes (a real API is never instant)
        self.ttft = ttft
        self.token_interval = token_interval
        self.chunk_words = chunk_words
        self.prompt_tokens = prompt_tokens
        self.cached_tokens = cached_tokens
        self.host = host
        self.port = port
        self.record = record
        self.requests: list[RecordedRequest] = []
        # (last user message, handler entered, first chunk written): the provider's own TTFT as the
        # server sees it, on the machine-wide monotonic clock, for benchmarks in another process
        self.ttft_stamps: list[tuple[str, float, float]] = []
        self.script: list[Scripted] = []  # consumed one per chat request, before the default reply
        self.peer_ports: set[int] = set()
        self._runner: web.AppRunner | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/_ttft", self._ttft_stamps)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # --- handlers ----------------------------------------------------------------------------

    def _remember(self, request: web.Request, body: dict[str, Any] | None) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        port = peer[1] if peer else None
        if port is not None:
            self.peer_ports.add(port)
        if self.record:
            self.requests.append(
                RecordedRequest(request.method, request.path, dict(request.headers), body, time.perf_counter(), port)
            )

    async def _models(self, request: web.Request) -> web.Response:
        self._remember(request, None)
        if self.models_delay:
            await asyncio.sleep(self.models_delay)
        return web.json_response(
            {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "fake"}]}
        )

    async def _ttft_stamps(self, _: web.Request) -> web.Response:
        return web.json_response(self.ttft_stamps)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        entered = time.perf_counter()
        body = await request.json()
        self._remember(request, body)
        if "messages" not in body or "model" not in body:
            return _error(400, "missing 'model' or 'messages'", "invalid_request_error")
        scripted = self.script.pop(0) if self.script else Scripted()
        if scripted.status != 200:
            return web.json_response(
                scripted.body or {"error": {"message": f"scripted {scripted.status}", "type": "error"}},
                status=scripted.status,
                headers=scripted.headers,
            )
        pieces = self._pieces()
        usage = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": len(pieces),
            "total_tokens": self.prompt_tokens + len(pieces),
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        }
        if not body.get("stream"):
            if self.ttft:
                await asyncio.sleep(self.ttft)
            return web.json_response(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": self.reply}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        if self.ttft:
            await asyncio.sleep(self.ttft)
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
        }
        if scripted.raw_chunks is not None:
            for raw in scripted.raw_chunks:
                await resp.write(b"data: " + raw + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        for i, piece in enumerate(pieces):
            if scripted.break_after is not None and i >= scripted.break_after:
                request.transport.close()  # type: ignore[union-attr]
                return resp
            if i and self.token_interval:
                await asyncio.sleep(self.token_interval)
            delta = {"content": piece} if i else {"role": "assistant", "content": piece}
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            if i == 0:
                user = next((m.get("content", "") for m in reversed(body["messages"]) if m.get("role") == "user"), "")
                self.ttft_stamps.append((user, entered, time.perf_counter()))
        if scripted.no_finish:
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        if scripted.break_after is not None:  # every piece sent, then dropped before the finish
            request.transport.close()  # type: ignore[union-attr]
            return resp
        final = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await resp.write(b"data: " + json.dumps(final).encode() + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _pieces(self) -> list[str]:
        words = self.reply.split(" ")
        n = max(self.chunk_words, 1)
        out = []
        for i in range(0, len(words), n):
            piece = " ".join(words[i : i + n])
            out.append(piece if i == 0 else " " + piece)
        return out


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": None}}, status=status)


async def _main() -> None:  # `python -m tests.fakes.openai_server PORT TTFT INTERVAL WORDS` for benchmarks
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    ttft = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.002
    words = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    reply = " ".join(f"word{i}" for i in range(60))
    srv = FakeOpenAI(reply, ttft=ttft, token_interval=interval, chunk_words=words, port=port, record=False)
    await srv.start()
    print(f"ready {srv.base_url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main())
