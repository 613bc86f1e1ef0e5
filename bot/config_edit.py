"""`config get` and `config set`: read one value, or change one value keeping comments and layout."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import BaseModel, SecretStr

from bot.config import Config, parse
from bot.errors import ConfigError
from bot.logs import is_secret_key, redact_text

MASKED = "********"


def get_value(cfg: Config, key: str) -> str:
    """The effective value at a dotted key (defaults included), as TOML-ish text; secrets masked."""
    node: Any = cfg
    walked: list[str] = []
    for part in key.split("."):
        walked.append(part)
        if isinstance(node, BaseModel):
            extra = node.model_extra or {}
            if part in type(node).model_fields:
                node = getattr(node, part)
            elif part in extra:
                node = extra[part]
            else:
                raise ConfigError(f"{'.'.join(walked)}: no such key")
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ConfigError(f"{'.'.join(walked)}: no such key")
    if is_secret_key(walked[-1]):
        # a secret asked for by name (channels.telegram.token, providers.x.headers.Authorization):
        # raw channel tables and header dicts hold plain strings, so the key decides, not the type
        node = _mask_secret(node)
    return _show(node)


def _mask_secret(value: Any) -> Any:
    """What a value under a secret key shows: "********" unless it is empty or unset."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value == {} or value == []:
        return value
    return SecretStr(str(value))  # shown as "********", or as "" when empty


def _show(node: Any) -> str:
    if isinstance(node, str):
        return redact_text(node)  # a password inside a URL, a token pasted where it should not be
    if isinstance(node, SecretStr):
        return MASKED if node.get_secret_value() else '""'
    if isinstance(node, BaseModel):
        node = node.model_dump(mode="python")
    if isinstance(node, (dict, list, tuple)):
        return json.dumps(_mask(node), indent=2, default=str)
    if isinstance(node, bool):
        return "true" if node else "false"
    if node is None:
        return "(unset)"
    return str(node)


def _mask(node: Any) -> Any:
    """A JSON-ready copy with every secret masked: SecretStr values, and any value under a key
    `is_secret_key` names (token, api_key, webhook_secret, Authorization, x-api-key...), at any depth."""
    if isinstance(node, SecretStr):
        return MASKED if node.get_secret_value() else ""
    if isinstance(node, BaseModel):
        return _mask(node.model_dump(mode="python"))
    if isinstance(node, dict):
        return {k: (_mask(_mask_secret(v)) if is_secret_key(str(k)) else _mask(v)) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_mask(v) for v in node]
    if isinstance(node, Enum):
        return node.value
    if isinstance(node, str):
        return redact_text(node)
    return node


def _parse_value(text: str) -> Any:
    """A TOML value ("42", "true", "[1, 2]", '"x"'); anything that isn't one is a plain string."""
    try:
        return tomlkit.parse(f"v = {text}")["v"]
    except Exception:
        return text


def set_value(path: Path, key: str, value: str) -> None:
    """Set `key` in the TOML file at `path` (created if missing), validate, then write."""
    doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    parts = key.split(".")
    table: Any = doc
    for part in parts[:-1]:
        if part not in table:
            table[part] = tomlkit.table()
        table = table[part]
        if not isinstance(table, dict):
            raise ConfigError(f"{key}: '{part}' is a value, not a table")
    table[parts[-1]] = _parse_value(value)
    # refuse to write a file that would not load (secrets stay as ${NAME} references)
    try:
        parse(doc.unwrap(), source=str(path))
    except ConfigError as e:
        reasons = [line.strip() for line in str(e).splitlines()[1:]] or [str(e)]
        raise ConfigError(f"{key} = {value} refused, {path} is unchanged: {'; '.join(reasons)}") from None
    text = tomlkit.dumps(doc)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
