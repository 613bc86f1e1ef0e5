"""Chat commands every channel shares: /start, /help, /model, /reset, /status.

`/ask QUESTION` is the one command a model answers (a platform's slash command for questions);
the question is never read as a command again, even when it starts with "/".

A command is parsed once: by the adapter (a platform's slash command, or text it had to read for
addressing) or by the intake from the text (`parse_command`), and arrives on the message as a
`bot.types.Command`. This module answers it without calling a model; an unknown command gets a
short hint instead of being sent to a model.
"""

from __future__ import annotations

import re

from bot.errors import UnknownModel
from bot.route import Router
from bot.store.base import Store
from bot.types import Command, InboundMessage

HELP = (
    "Send a message and I answer it.\n"
    "/model — show this chat's model; /model NAME — use that model here; /model default — back to automatic\n"
    "/reset — forget this conversation\n"
    "/status — model, route and timing of the last reply\n"
    "/help — this text"
)

ASK = "ask"  # a question as a command (a platform's /ask): the model answers its argument

RESET_WORDS = frozenset({"default", "auto", "reset", "clear", "off", "none"})  # `/model default` and its synonyms
_COMMAND = re.compile(r"^/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?(?=\s|$)")


def parse_command(text: str) -> Command | None:
    """'/model@MyBot fast' -> Command('model', 'fast', target='MyBot'); None when not a command."""
    m = _COMMAND.match(text)
    if m is None:
        return None
    return Command(m.group(1).lower(), text[m.end() :].strip(), m.group(2))


class Commands:
    def __init__(self, router: Router, store: Store) -> None:
        self.router = router
        self.store = store

    async def answer(self, msg: InboundMessage, cmd: Command) -> str:
        handler = getattr(self, f"_cmd_{cmd.name}", None)
        if handler is None:
            return f"Unknown command /{cmd.name}. Try /help."
        text: str = await handler(msg, cmd.args)
        return text

    async def _cmd_start(self, msg: InboundMessage, args: str) -> str:
        return "Hi! " + HELP

    async def _cmd_help(self, msg: InboundMessage, args: str) -> str:
        return HELP

    async def _cmd_reset(self, msg: InboundMessage, args: str) -> str:
        await self.store.reset(msg.conversation)
        return "Conversation cleared."

    async def _cmd_model(self, msg: InboundMessage, args: str) -> str:
        name = args.split()[0] if args.split() else ""
        if not name:
            conv = await self.store.conversation(msg.conversation)
            if conv.sticky_model:
                return f"This chat uses {conv.sticky_model} (set with /model). /model default goes back to automatic."
            return "This chat picks a model automatically for each message. /model NAME picks one."
        if name.lower() in RESET_WORDS:
            await self.store.set_sticky_model(msg.conversation, None)
            return "Back to automatic model choice."
        try:
            model = self.router.resolve(name)
        except UnknownModel:
            known = ", ".join(self.router.aliases()) or "none"
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
