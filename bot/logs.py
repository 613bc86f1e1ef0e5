"""structlog set-up: JSON lines when not on a terminal, readable lines on one; secrets masked.

Masking happens last, after exceptions are formatted, so traceback text is covered too. Three rules:
a value under a secret-looking key (`is_secret_key`) is replaced whole, at any depth of dicts and
lists; well-known credential shapes (provider keys, Slack and Telegram tokens, bearer tokens) are
replaced inside any string; and the literal secret values the app registers at start-up
(`register_secrets`, every secret of the config) are replaced wherever they appear. Records of the
standard `logging` module (aiohttp, httpx, telegram) get the last two rules as well.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

MASK = "***"
MIN_SECRET_LEN = 6  # shorter literals would mask ordinary words

# names, compared lower-case with "-" read as "_": token, bot_token, api_key, apiKey, x-api-key,
# secret, signing_secret, webhook_secret, password, authorization, Proxy-Authorization, cookie...
# The plural counts (prompt_tokens, max_tokens) don't end in "token", so they stay visible.
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:token|secret|api_?key|password|passwd|passphrase|authorization|cookie|credentials?"
    r"|private_?key|access_?key)$"
    r"|(?:access|auth|bot|bearer|refresh|session|id)token$|apikey$|secret$"
    r"|(?:^|_)key$|(?:^|_)auth$",  # x-subscription-key, x-custom-key, x-auth: headers that carry credentials
)

# credential shapes worth masking wherever they show up in text
_SECRET_VALUE = re.compile(
    r"\b(?:sk|csk)-[A-Za-z0-9_-]{6,}"  # OpenAI / Anthropic / OpenRouter (sk-...), Cerebras (csk-...)
    r"|\bgsk_[A-Za-z0-9]{6,}"  # Groq
    r"|\bAIza[0-9A-Za-z_-]{20,}"  # Google
    r"|\bhf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|\bxox[a-z]-[A-Za-z0-9-]+|\bxapp-[A-Za-z0-9-]+"  # Slack bot, user, refresh, app tokens
    r"|(?<![0-9])[0-9]{6,}:[A-Za-z0-9_-]{30,}"  # Telegram, also inside .../bot<token>/getUpdates
    r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/-]{8,}=*"  # Authorization: Bearer <anything>
)

_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^/\s@]+@")

_literals: frozenset[str] = frozenset()
_literal_re: re.Pattern[str] | None = None


@functools.lru_cache(maxsize=2048)
def is_secret_key(name: str) -> bool:
    """Whether a field, key or header of this name holds a secret (the rule logs and `config get` share).

    True for token, api_key, apikey, apiKey, x-api-key, secret, signing_secret, webhook_secret,
    client_secret, password, authorization, Proxy-Authorization, cookie...; False for counts such
    as prompt_tokens, completion_tokens, cached_tokens, max_tokens.
    """
    return bool(_SECRET_KEY.search(str(name).lower().replace("-", "_")))


def register_secrets(values: Iterable[Any]) -> None:
    """Mask these literal values wherever they appear in a logged string, from now on.

    Call it at start-up with every secret of the config; plain strings and pydantic SecretStr are
    accepted, None and values shorter than 6 characters are skipped. Calls add to what earlier
    calls registered (a secret that was live once stays masked)."""
    global _literals, _literal_re
    new = set(_literals)
    for v in values:
        if v is None:
            continue
        if hasattr(v, "get_secret_value"):
            v = v.get_secret_value()
        if isinstance(v, str) and len(v) >= MIN_SECRET_LEN:
            new.add(v)
    if new == _literals:
        return
    # longest first, so a secret that contains another is masked whole
    pattern = re.compile("|".join(re.escape(s) for s in sorted(new, key=len, reverse=True)))
    _literals, _literal_re = frozenset(new), pattern


def clear_secrets() -> None:
    """Forget the registered literal secrets (tests)."""
    global _literals, _literal_re
    _literals, _literal_re = frozenset(), None


def redact_text(text: str) -> str:
    """`text` with registered secrets and credential-shaped substrings replaced by ***, and the
    password of any URL (https://user:password@host) masked."""
    literal = _literal_re
    if literal is not None:
        text = literal.sub(MASK, text)
    if "@" in text:
        text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
    return _SECRET_VALUE.sub(MASK, text)


_PLAIN = (int, float, bool, type(None))


def _redact_value(v: Any, depth: int = 0) -> Any:
    if isinstance(v, str):
        return redact_text(v)
    if isinstance(v, _PLAIN):
        return v
    if depth > 20:  # a cycle or an absurdly deep structure: show it as masked text
        return redact_text(repr(v))
    if isinstance(v, dict):
        return {
            k: (MASK if is_secret_key(k) and v2 not in (None, "") else _redact_value(v2, depth + 1))
            for k, v2 in v.items()
        }
    if isinstance(v, (list, tuple, set, frozenset)):
        out = [_redact_value(x, depth + 1) for x in v]
        return out if isinstance(v, list) else tuple(out) if isinstance(v, tuple) else out
    # anything else is rendered through str()/repr() (exceptions, URLs, paths): mask that text when needed
    try:
        text = str(v)
    except Exception:
        return v
    masked = redact_text(text)
    return v if masked == text else masked


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for k, v in list(event.items()):
        if is_secret_key(k) and v not in (None, ""):
            event[k] = MASK
        else:
            event[k] = _redact_value(v)
    return event


# --- the standard logging module: aiohttp, httpx and telegram log there -----------------------

_base_factory: Any = None


def _redacting_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record: logging.LogRecord = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:
        return record
    masked = redact_text(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        # formatters use exc_text when it is set: give them the masked traceback
        record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    return record


def _install_record_factory() -> None:
    global _base_factory
    current = logging.getLogRecordFactory()
    if current is _redacting_record_factory:
        return
    _base_factory = current
    logging.setLogRecordFactory(_redacting_record_factory)


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # traceback to text first...
            _redact,  # ...so masking sees it
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    # libraries log through the standard logging module: keep them quiet and on the same stream
    logging.basicConfig(level=logging.WARNING, stream=stream, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "telegram", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _install_record_factory()
