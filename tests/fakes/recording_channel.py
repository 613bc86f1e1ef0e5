"""A channel whose replies go to RecordingSurfaces: for runtime tests that need no real platform."""

from __future__ import annotations

from typing import ClassVar

from bot.channel import Channel
from bot.types import Capabilities, ChatKind, InboundMessage, LatencyClass, Markup, Streaming
from tests.fakes.recording_surface import RecordingSurface

EDITING = Capabilities(
    Streaming.EDIT,
    LatencyClass.SEMI_SYNC,
    max_chars=4096,
    min_edit_interval=0.02,
    typing_refresh=1.0,
    markup=Markup.PLAIN,
    first_chunk_chars=1,
)


class RecordingChannel(Channel):
    name: ClassVar[str] = "rec"

    def __init__(self, caps: Capabilities = EDITING) -> None:
        self.caps = caps
        self.inbox = None
        self.surfaces: list[RecordingSurface] = []
        self._n = 0

    async def start(self, inbox) -> None:
        self.inbox = inbox

    async def stop(self) -> None:
        return None

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        return self.caps

    def surface(self, msg: InboundMessage) -> RecordingSurface:
        s = RecordingSurface()
        self.surfaces.append(s)
        return s

    async def say(self, text: str, conversation: str = "rec:1") -> InboundMessage:
        self._n += 1
        msg = InboundMessage(self.name, conversation, "u1", text, str(self._n), ChatKind.PRIVATE, chat_id=conversation)
        await self.inbox.submit(msg)
        return msg

    def replies(self) -> list[str]:
        return [s.visible_text for s in self.surfaces]
