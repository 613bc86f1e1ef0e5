"""Configuration: one TOML file validated by pydantic, secrets from the environment.

Lookup order: --config PATH, else $SWITCHBOARD_CONFIG, else ./switchboard.toml, else the built-in
default (webchat on 127.0.0.1:8080 answered by the bundled local model). `${NAME}` anywhere in a
string value is replaced by the environment variable NAME; an unset variable makes the value
empty (a provider without its key is simply unavailable), and a required value left empty fails
with the key path and the variable's name.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator

from bot.errors import ConfigError

CONFIG_ENV = "SWITCHBOARD_CONFIG"
DEFAULT_FILENAME = "switchboard.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

LOCAL_DEFAULT_MODEL = "local/smollm2-135m"

# OpenAI-compatible endpoints a provider of that name gets when its base_url is not set
KNOWN_ENDPOINTS = {
    "cerebras": "https://api.cerebras.ai/v1",
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1/",
    "groq": "https://api.groq.com/openai/v1",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- providers and models ---------------------------------------------------------------------


class ProviderConfig(_Strict):
    kind: Literal["openai", "gemini", "local"]
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout: float = Field(60.0, gt=0, description="seconds to wait for the next piece of an answer")
    connect_timeout: float = Field(5.0, gt=0)
    keepalive_expiry: float = Field(300.0, gt=0, description="seconds an idle connection is kept")
    warm: bool = Field(True, description="open connections at start-up and re-warm them before they expire")
    warm_connections: int = Field(4, ge=1, le=256, description="connections kept open and warm for bursts of replies")
    client: Literal["fast", "sdk"] = Field(
        "fast", description="streaming path: 'fast' (aiohttp + json) or 'sdk' (the openai SDK)"
    )
    max_connections: int = Field(256, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)
    # local only
    model_path: str | None = Field(None, description="GGUF file; default: the bundled SmolLM2-135M")
    engine: Literal["auto", "llama_cpp", "mlx"] = "auto"
    n_ctx: int = Field(8192, ge=256, description="the local model's context in tokens (the catalog says 8192)")
    n_threads: int | None = None

    @property
    def has_key(self) -> bool:
        if self.kind == "local":
            return True
        return self.api_key is not None and bool(self.api_key.get_secret_value())


class Price(_Strict):
    input: float = Field(0.0, ge=0, description="USD per million input tokens")
    output: float = Field(0.0, ge=0, description="USD per million output tokens")
    cached_input: float | None = Field(None, ge=0, description="USD per million cached input tokens")


class ModelConfig(_Strict):
    """A model entry in config; adds to or overrides the built-in catalog."""

    id: str | None = Field(None, description="the provider's own model id; default: the part after '/'")
    alias: str | list[str] | None = None
    context_window: int | None = Field(None, gt=0)
    max_output: int | None = Field(None, gt=0)
    price: Price | None = None
    ttft_ms: float | None = Field(None, ge=0)
    tokens_per_s: float | None = Field(None, gt=0)
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="extra generation parameters passed through (reasoning_effort, service_tier, "
        "prediction, max_tokens, temperature)",
    )


# --- routing, budget ----------------------------------------------------------------------------


class RoutingConfig(_Strict):
    """How the router picks a model; see the README's Routing section. Unset keys use the shipped table."""

    default: str | None = Field(None, description="model used when nothing more specific applies")
    fallbacks: list[str] = Field(default_factory=list)
    classes: dict[str, dict[str, str | list[str]]] = Field(
        default_factory=dict,
        description="latency class -> complexity tier -> model ref (or a list: primary, then fallbacks); "
        "merged over the shipped table",
    )
    long_context: list[str] | None = Field(
        None, description="models tried, in order, when the prompt is too long for the table's choice"
    )
    use_table: bool = Field(True, description="false: only default + fallbacks (no latency/tier table)")
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {"standard": 0.35, "complex": 0.65},
        description="score at which a message becomes 'standard' / 'complex'",
    )
    scorer: Literal["heuristic", "embedding", "combined"] = "heuristic"
    embedding_weight: float = Field(0.5, ge=0, le=1)
    examples: dict[str, list[str]] = Field(default_factory=dict, description="tier -> example utterances")
    aliases: dict[str, str] = Field(default_factory=dict)
    max_chain: int = Field(4, ge=1, le=10, description="models in a decision's chain, primary included")


class BudgetConfig(_Strict):
    monthly_usd: float | None = Field(None, ge=0)


# --- runtime ------------------------------------------------------------------------------------


class DispatcherConfig(_Strict):
    max_concurrent: int = Field(256, ge=1, description="replies written at once, across conversations")
    queue_mode: Literal["followup", "collect", "interrupt"] = "followup"
    dedupe_window: int = Field(10_000, ge=1, description="recent platform message ids remembered")
    shutdown_grace: float = Field(
        10.0, ge=0, description="seconds replies in flight get to finish on stop before they are cut with a mark"
    )


class StoreConfig(_Strict):
    kind: Literal["sqlite", "memory"] = "sqlite"
    data_dir: str = Field("~/.local/share/switchboard", description="directory for the sqlite file")
    history_turns: int = Field(20, ge=0, description="past messages sent with each prompt")


class BotConfig(_Strict):
    system_prompt: str = "You are a helpful assistant. Answer concisely."
    max_input_chars: int = Field(200_000, gt=0, description="longer messages get a polite refusal")
    edit_window: float = Field(
        600.0, ge=0, description="seconds after an answer in which editing the question answers it again"
    )
    max_tokens: int | None = Field(1024, gt=0)


class LoggingConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class HttpConfig(_Strict):
    """The one aiohttp server: webchat, webhooks, /healthz and /metrics."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class WebchatConfig(_Strict):
    enabled: bool = True
    title: str = "Switchboard"


class ConsoleConfig(_Strict):
    enabled: bool = False


class ChannelsConfig(BaseModel):
    """Known channels are typed; a channel module validates its own table (extra tables pass)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    webchat: WebchatConfig = WebchatConfig()
    console: ConsoleConfig = ConsoleConfig()


class Config(_Strict):
    # where the config came from, and which keys referenced an unset ${VARIABLE} (for error messages)
    _source: str = PrivateAttr(default="built-in default")
    _missing_env: dict[str, str] = PrivateAttr(default_factory=dict)

    bot: BotConfig = BotConfig()
    providers: dict[str, ProviderConfig] = Field(default_factory=dict, validate_default=True)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    routing: RoutingConfig = RoutingConfig()
    budget: BudgetConfig = BudgetConfig()
    dispatcher: DispatcherConfig = DispatcherConfig()
    store: StoreConfig = StoreConfig()
    http: HttpConfig = HttpConfig()
    channels: ChannelsConfig = ChannelsConfig()
    logging: LoggingConfig = LoggingConfig()

    @field_validator("providers")
    @classmethod
    def _complete_providers(cls, v: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        """The bundled local provider is always there; well-known endpoints need no base_url."""
        out = dict(v)
        for name, pc in v.items():
            if pc.kind == "openai" and not pc.base_url:
                if name not in KNOWN_ENDPOINTS:
                    raise ValueError(
                        f"providers.{name}.base_url is required for kind = 'openai' "
                        f"(known without it: {', '.join(sorted(KNOWN_ENDPOINTS))})"
                    )
                out[name] = pc.model_copy(update={"base_url": KNOWN_ENDPOINTS[name]})
        if "local" not in out:
            out["local"] = ProviderConfig(kind="local")
        return out


# --- loading ------------------------------------------------------------------------------------


def resolve_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """Where the config comes from, in the documented order; None means the built-in default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    local = Path(DEFAULT_FILENAME)
    if local.is_file():
        return local
    return None


def expand_env(
    data: Any, env: dict[str, str] | os._Environ[str], path: str = "", missing: dict[str, str] | None = None
) -> Any:
    """Replace ${NAME} in every string; record which key paths referenced an unset variable."""
    if isinstance(data, dict):
        return {k: expand_env(v, env, f"{path}.{k}" if path else str(k), missing) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_env(v, env, f"{path}[{i}]", missing) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            value = env.get(name)
            if value is None:
                if missing is not None:
                    missing[path] = name
                return ""
            return value

        out = _ENV_REF.sub(sub, data)
        if out == "" and missing is not None and path in missing:
            return None
        return out
    return data


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the table at `loc` (a key's parent) accepts, for "did you mean"."""
    model: Any = Config
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = field.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _format_error(err: ValidationError, missing: dict[str, str], source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
            close = difflib.get_close_matches(str(e["loc"][-1]), _known_keys(e["loc"][:-1]), n=1)
            if close:
                msg += f" (did you mean '{close[0]}'?)"
        if key in missing:
            msg += f" (environment variable {missing[key]} is not set)"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def parse(data: dict[str, Any], *, source: str = "<config>", env: dict[str, str] | None = None) -> Config:
    missing: dict[str, str] = {}
    expanded = expand_env(data, os.environ if env is None else env, missing=missing)
    try:
        cfg = Config.model_validate(expanded)
    except ValidationError as err:
        raise ConfigError(_format_error(err, missing, source)) from None
    cfg._source = source
    cfg._missing_env = missing
    return cfg


def load(path: str | os.PathLike[str] | None = None, *, env: dict[str, str] | None = None) -> Config:
    """Load and validate the config; raises ConfigError naming the key and the reason."""
    resolved = resolve_path(path)
    if resolved is None:
        return parse({}, source="built-in default", env=env)
    try:
        text = resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {resolved}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {resolved}: {e.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML in {resolved}: {e}") from None
    return parse(data, source=str(resolved), env=env)


ChannelModel = TypeVar("ChannelModel", bound=BaseModel)


def parse_channel_table(
    model: type[ChannelModel], table: dict[str, Any] | None, name: str, *, secret_hint: tuple[str, str] | None = None
) -> ChannelModel:
    """Validate a channel's raw `[channels.NAME]` table (every adapter's config goes through here).

    Errors name `channels.NAME.key`; a validator's own "key: reason" names that key; an unknown key
    gets a "did you mean"; `secret_hint` = (key, VARIABLE) explains a missing or empty secret.
    """
    prefix = f"channels.{name}"
    try:
        return model.model_validate(table or {})
    except ValidationError as err:
        lines = ["invalid config:"]
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            msg = e["msg"]
            if e["type"] == "extra_forbidden":
                msg = "unknown key"
                close = difflib.get_close_matches(str(e["loc"][-1]), list(model.model_fields), n=1)
                if close:
                    msg += f" (did you mean '{close[0]}'?)"
            elif e["type"] == "value_error":  # our own checks: "key: reason"
                msg = msg.removeprefix("Value error, ")
                key, _, reason = msg.partition(": ")
                if reason:
                    loc, msg = key, reason
            if secret_hint and loc == secret_hint[0] and (e["type"] == "missing" or e.get("input", "") is None):
                key, var = secret_hint
                msg = f'is required and empty (set {key} = "${{{var}}}" and export the variable)'
            lines.append(f"  {prefix}.{loc}: {msg}" if loc else f"  {prefix}: {msg}")
        raise ConfigError("\n".join(lines)) from None
