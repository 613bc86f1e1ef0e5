"""The `/model` directive: parse it here, store it in ConversationState.sticky_model (runtime).

    parse_model_directive("/model pro")      -> "pro"       # stick to this model (alias or ref)
    parse_model_directive("/model default")  -> "default"   # forget the sticky choice
    parse_model_directive("/model")          -> None        # no argument: show the current choice
    parse_model_directive("hello")           -> None        # not a directive

`is_model_directive(text)` tells a directive (with or without argument) from other text. Also
accepted: `/model@BotName pro` (Telegram's addressed form), `/model auto|reset|clear|off`
(= "default"), any case. The command handler validates the name with
`Catalog.resolve()` (UnknownModel -> tell the user `models list`) before storing it; the router
re-checks availability on every message and says in its reason when it cannot honour it.
"""

from __future__ import annotations

import re
from typing import Literal

DEFAULT = "default"
_RESET_WORDS = frozenset({"default", "auto", "reset", "clear", "off", "none"})
_DIRECTIVE = re.compile(r"^\s*/model(?:@\w+)?(?:\s+(?P<arg>\S+))?\s*$", re.IGNORECASE)


def is_model_directive(text: str) -> bool:
    return bool(_DIRECTIVE.match(text or ""))


def parse_model_directive(text: str) -> str | None | Literal["default"]:
    """The model named by a `/model NAME` message, "default" to clear, None otherwise."""
    m = _DIRECTIVE.match(text or "")
    if not m or not m.group("arg"):
        return None
    arg = m.group("arg").strip()
    if arg.lower() in _RESET_WORDS:
        return DEFAULT
    return arg


def apply_directive(current: str | None, text: str) -> str | None:
    """The sticky model after `text`: a new choice, None after "default", else unchanged."""
    d = parse_model_directive(text)
    if d is None:
        return current
    return None if d == DEFAULT else d
