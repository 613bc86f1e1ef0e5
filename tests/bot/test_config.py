"""Config: valid files, each kind of error with its key path, env expansion, `config set` round trip."""

from __future__ import annotations

import pytest

from bot import config
from bot.cli import main
from bot.config_edit import get_value, set_value
from bot.errors import ConfigError

VALID = """
# my bot
[providers.cerebras]
kind = "openai"                 # any OpenAI-compatible endpoint
base_url = "https://api.cerebras.ai/v1"
api_key = "${CEREBRAS_API_KEY}"

[models."cerebras/llama-3.3-70b"]
alias = "fast"
context_window = 128000
price = { input = 0.85, output = 1.20 }

[routing]
default = "cerebras/llama-3.3-70b"
fallbacks = ["local/smollm2-135m"]

[budget]
monthly_usd = 10

[channels.webchat]
title = "Team bot"
"""


def write(tmp_path, text: str):
    p = tmp_path / "switchboard.toml"
    p.write_text(text)
    return p


def test_valid_file_with_env_secret(tmp_path):
    cfg = config.load(write(tmp_path, VALID), env={"CEREBRAS_API_KEY": "csk-abc"})
    assert cfg.providers["cerebras"].api_key.get_secret_value() == "csk-abc"
    assert cfg.providers["cerebras"].has_key
    assert "local" in cfg.providers  # the bundled model is always there
    assert cfg.models["cerebras/llama-3.3-70b"].price.output == 1.20
    assert cfg.channels.webchat.title == "Team bot"
    assert cfg.budget.monthly_usd == 10
    assert "csk-abc" not in repr(cfg)  # secrets never show in reprs (and so in logs)


def test_missing_env_var_leaves_provider_without_key(tmp_path):
    cfg = config.load(write(tmp_path, VALID), env={})
    assert cfg.providers["cerebras"].api_key is None
    assert not cfg.providers["cerebras"].has_key


def test_env_expansion_inside_strings():
    cfg = config.parse(
        {"providers": {"x": {"kind": "openai", "base_url": "http://${HOST}:${PORT}/v1"}}},
        env={"HOST": "127.0.0.1", "PORT": "9000"},
    )
    assert cfg.providers["x"].base_url == "http://127.0.0.1:9000/v1"


def test_built_in_default_when_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(config.CONFIG_ENV, raising=False)
    assert config.resolve_path(None) is None
    cfg = config.load(None)
    assert cfg.channels.webchat.enabled and cfg.http.port == 8080 and cfg.http.host == "127.0.0.1"


def test_lookup_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "switchboard.toml").write_text("")
    monkeypatch.delenv(config.CONFIG_ENV, raising=False)
    assert config.resolve_path(None).name == "switchboard.toml"
    monkeypatch.setenv(config.CONFIG_ENV, str(tmp_path / "env.toml"))
    assert config.resolve_path(None).name == "env.toml"
    assert config.resolve_path(tmp_path / "explicit.toml").name == "explicit.toml"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[bot]\nsystem_promt = 'x'\n", "bot.system_promt: unknown key"),
        ("[providers.x]\nkind = 'grpc'\n", "providers.x.kind: Input should be 'openai', 'gemini' or 'local'"),
        ("[providers.x]\nkind = 'openai'\ntimeout = -1\n", "providers.x.timeout: Input should be greater than 0"),
        ("[http]\nport = 'eighty'\n", "http.port: Input should be a valid integer"),
        (
            "[dispatcher]\nqueue_mode = 'drop'\n",
            "dispatcher.queue_mode: Input should be 'followup', 'collect' or 'interrupt'",
        ),
        ("[routing]\nfallbacks = 'x'\n", "routing.fallbacks: Input should be a valid list"),
    ],
)
def test_errors_name_the_key_and_reason(tmp_path, text, expected):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, text))
    assert expected in str(e.value)


def test_required_value_from_unset_env_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, "[providers.x]\nkind = '${KIND}'\n"), env={})
    assert "providers.x.kind" in str(e.value) and "KIND is not set" in str(e.value)


def test_toml_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="invalid TOML"):
        config.load(write(tmp_path, "[bot\n"))
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml")


def test_config_set_round_trip_keeps_comments(tmp_path):
    p = write(tmp_path, VALID)
    set_value(p, "channels.webchat.title", '"Ops bot"')
    set_value(p, "http.port", "9090")
    set_value(p, "dispatcher.queue_mode", "collect")  # a bare word is a string
    text = p.read_text()
    assert "# my bot" in text and "# any OpenAI-compatible endpoint" in text
    assert 'api_key = "${CEREBRAS_API_KEY}"' in text  # the reference, not the secret
    cfg = config.load(p, env={})
    assert cfg.channels.webchat.title == "Ops bot" and cfg.http.port == 9090 and cfg.dispatcher.queue_mode == "collect"
    assert get_value(cfg, "http.port") == "9090"


def test_config_set_refuses_an_invalid_value(tmp_path):
    p = write(tmp_path, VALID)
    before = p.read_text()
    with pytest.raises(ConfigError, match=r"http\.port"):
        set_value(p, "http.port", "'x'")
    assert p.read_text() == before


def test_config_get_masks_secrets(tmp_path):
    cfg = config.load(write(tmp_path, VALID), env={"CEREBRAS_API_KEY": "csk-abc"})
    assert get_value(cfg, "providers.cerebras.api_key") == "********"
    assert "csk-abc" not in get_value(cfg, "providers")
    with pytest.raises(ConfigError, match="nope: no such key"):
        get_value(cfg, "providers.nope")


def test_cli_config_commands(tmp_path, capsys):
    p = write(tmp_path, VALID)
    assert main(["--config", str(p), "config", "validate"]) == 0
    assert main(["--config", str(p), "config", "set", "bot.max_tokens", "256"]) == 0
    assert main(["--config", str(p), "config", "get", "bot.max_tokens"]) == 0
    assert capsys.readouterr().out.strip().endswith("256")
    bad = write(tmp_path, "[bot]\nmax_tokens = 0\n")
    assert main(["--config", str(bad), "config", "validate"]) == 2
    assert "bot.max_tokens: Input should be greater than 0" in capsys.readouterr().err


TELEGRAM = """
[providers.corp]
kind = "openai"
base_url = "https://llm.corp.example/v1"
api_key = "${CORP_KEY}"
headers = { Authorization = "Bearer corp-secret-123", "x-api-key" = "xk-secret-456", "X-Team" = "search" }

[channels.telegram]
token = "${TELEGRAM_TOKEN}"
webhook_secret = "wh-secret-789"
allowed = [1, 2]
"""


def test_config_get_masks_raw_channel_tables_and_headers(tmp_path):
    cfg = config.load(
        write(tmp_path, TELEGRAM),
        env={"CORP_KEY": "ck-abc123", "TELEGRAM_TOKEN": "123456789:AAAAbbbbCCCCddddEEEEffffGGGGhhhhIII"},
    )
    assert get_value(cfg, "channels.telegram.token") == "********"
    assert get_value(cfg, "channels.telegram.webhook_secret") == "********"
    table = get_value(cfg, "channels.telegram")
    assert "AAAAbbbb" not in table and "wh-secret-789" not in table and '"allowed"' in table
    assert "AAAAbbbb" not in get_value(cfg, "channels")
    headers = get_value(cfg, "providers.corp.headers")
    assert "corp-secret-123" not in headers and "xk-secret-456" not in headers
    assert '"X-Team": "search"' in headers
    assert get_value(cfg, "providers.corp.headers.Authorization") == "********"
    assert get_value(cfg, "providers.corp.headers.X-Team") == "search"
    everything = get_value(cfg, "providers")
    assert "corp-secret-123" not in everything and "ck-abc123" not in everything
    assert get_value(cfg, "bot.max_tokens") != "********"  # a count, not a secret


def test_config_get_shows_an_empty_secret_as_empty(tmp_path):
    cfg = config.load(write(tmp_path, '[channels.telegram]\ntoken = ""\n'), env={})
    assert get_value(cfg, "channels.telegram.token") == '""'


def test_openai_kind_needs_a_base_url_unless_well_known():
    cfg = config.parse({"providers": {"cerebras": {"kind": "openai", "api_key": "k"}}})
    assert cfg.providers["cerebras"].base_url == "https://api.cerebras.ai/v1"
    with pytest.raises(ConfigError, match=r"providers\.myllm\.base_url is required"):
        config.parse({"providers": {"myllm": {"kind": "openai"}}})


def test_passwords_in_urls_and_credential_headers_are_masked(tmp_path):
    from bot.config_edit import get_value
    from bot.logs import redact_text

    cfg = config.parse(
        {
            "providers": {
                "mine": {
                    "kind": "openai",
                    "base_url": "https://bob:hunter2@llm.example.com/v1",
                    "headers": {"Ocp-Apim-Subscription-Key": "abc123", "X-Auth": "t0k", "X-Trace": "visible"},
                }
            }
        }
    )
    url = get_value(cfg, "providers.mine.base_url")
    assert "hunter2" not in url and "bob:" in url and "llm.example.com" in url
    headers = get_value(cfg, "providers.mine.headers")
    assert "abc123" not in headers and "t0k" not in headers and "visible" in headers
    assert redact_text("GET https://u:p4ss@h/x failed") == "GET https://u:***@h/x failed"
