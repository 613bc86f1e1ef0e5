"""Chat commands every channel shares: /start, /help, /model, /reset, /status.

Adapters pass commands through as plain text ("/model fast"); this module answers them without
calling a model. Unknown commands get a short hint instead of being sent to a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.base import Store
from bot.types import InboundMessage
from routing.catalog import Catalog, UnknownModel
from routing.directives import DEFAULT, parse_model_directive
from routing.router import Router

HELP = (
    "Send a message and I answer it.\n"
    "/model — show this chat's model; /model NAME — use that model here; /model default — back to automatic\n"
    "/reset — forget this conversation\n"
    "/status — model, route and timing of the last reply\n"
    "/help — this text"
)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: str


def parse_command(text: str) -> Command | None:
    """'/model@MyBot fast' -> Command('model', 'fast'); None when the text is not a command."""
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _, args = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if not name or not name.replace("_", "").isalnum():
        return None
    return Command(name, args.strip())


class Commands:
    def __init__(self, catalog: Catalog, router: Router, store: Store) -> None:
        self.catalog = catalog
        self.router = router
        self.store = store

    async def answer(self, msg: InboundMessage, cmd: Command) -> str:
        handler = getattr(self, f"_cmd_{cmd.name}", None)
        if handler is None:
            return f"Unknown command /{cmd.name}. Try /help."
        return await handler(msg, cmd.args)

    async def _cmd_start(self, msg: InboundMessage, args: str) -> str:
        return "Hi! " + HELP

    async def _cmd_help(self, msg: InboundMessage, args: str) -> str:
        return HELP

    async def _cmd_reset(self, msg: InboundMessage, args: str) -> str:
        await self.store.reset(msg.conversation)
        return "Conversation cleared."

    async def _cmd_model(self, msg: InboundMessage, args: str) -> str:
        conv = await self.store.conversation(msg.conversation)
        if not args:
            if conv.sticky_model:
                return f"This chat uses {conv.sticky_model} (set with /model). /model default goes back to automatic."
            return "This chat picks a model automatically for each message. /model NAME picks one."
        name = parse_model_directive(f"/model {args.split()[0]}")
        if name == DEFAULT:
            await self.store.set_sticky_model(msg.conversation, None)
            return "Back to automatic model choice."
        assert name is not None
        try:
            model = self.catalog.resolve(name)
        except UnknownModel:
            known = ", ".join(sorted(self.catalog.aliases)) or "none"
            return f"Unknown model '{name}'. Aliases: {known}."
        if not self.router.is_available(model):
            return f"{model.ref} is not available: provider '{model.provider}' is not configured or has no key."
        await self.store.set_sticky_model(msg.conversation, model.ref)
        return f"This chat now uses {model.ref}."

    async def _cmd_status(self, msg: InboundMessage, args: str) -> str:
        conv = await self.store.conversation(msg.conversation)
        last = await self.store.last_reply(msg.conversation)
        lines = [f"Model: {conv.sticky_model or 'automatic'}"]
        if last is None:
            lines.append("No reply yet in this chat.")
        else:
            ttft = f"{last.ttft * 1000:.0f} ms" if last.ttft is not None else "n/a"
            lines += [
                f"Last reply: {last.model} ({last.route_reason})",
                f"TTFT {ttft}, total {last.total:.2f} s, {last.completion_tokens} tokens, ${last.cost_usd:.5f}",
            ]
        return "\n".join(lines)
