from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bot.app import channel_capabilities
from bot.cli import main
from bot.types import ChatKind, LatencyClass
from routing.cli import add_models_parser, add_route_parser, format_models_table, models_table
from tests.routing._util import LONG_DOC, make_cfg

KEYS_TOML = """
[providers.cerebras]
kind = "openai"
api_key = "k"
[providers.gemini]
kind = "gemini"
api_key = "k"
"""


@pytest.fixture
def keyed_config(tmp_path: Path) -> str:
    p = tmp_path / "switchboard.toml"
    p.write_text(KEYS_TOML)
    return str(p)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


def test_latency_class_comes_from_the_adapter_class() -> None:
    assert channel_capabilities("console", None).latency_class is LatencyClass.SYNC
    assert channel_capabilities("webchat", ChatKind.PRIVATE).latency_class is LatencyClass.SEMI_SYNC
    group = channel_capabilities("telegram", ChatKind.GROUP)
    assert group.latency_class is LatencyClass.SEMI_SYNC and group.chat_budget is not None
    assert channel_capabilities("telegram", ChatKind.PRIVATE).chat_budget is None


def test_unknown_channel_exits_2(keyed_config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "hi", "--channel", "pigeon", "--config", keyed_config]) == 2
    assert "unknown channel 'pigeon'" in capsys.readouterr().err


def test_route_prints_a_decision(keyed_config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["route", "hi!", "--channel", "console", "--config", keyed_config], capsys)
    assert code == 0
    assert "model:    cerebras/llama3.1-8b" in out
    assert "sync" in out and "reason:" in out


def test_route_json(keyed_config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        [
            "route",
            "hi",
            "--channel",
            "telegram",
            "--chat",
            "thread",
            "--latency",
            "async",
            "--json",
            "--config",
            keyed_config,
        ],
        capsys,
    )
    d = json.loads(out)
    assert code == 0
    assert d["latency_class"] == "async" and d["tier"] == "simple" and d["chain"][-1] == "local/smollm2-135m"
    assert d["decision_ms"] >= 0


def test_route_reads_a_file_and_sticky(keyed_config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text(LONG_DOC)
    _, out = run(["route", f"@{doc}", "--config", keyed_config, "--json"], capsys)
    assert json.loads(out)["model"] == "gemini/gemini-2.5-flash"
    _, out = run(["route", "hi", "--sticky", "pro", "--config", keyed_config, "--json"], capsys)
    assert json.loads(out)["model"] == "gemini/gemini-2.5-pro"


def test_route_without_config_uses_the_local_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWITCHBOARD_CONFIG", raising=False)
    _, out = run(["route", "Prove that there are infinitely many primes.", "--json"], capsys)
    assert json.loads(out)["chain"] == ["local/smollm2-135m"]


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[routing]\nnope = 1\n")
    assert main(["route", "hi", "--config", str(bad)]) == 2


def test_parsers_wire_into_a_main_parser_with_its_own_config() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    sub = parser.add_subparsers(dest="cmd")
    add_route_parser(sub)
    add_models_parser(sub)
    args = parser.parse_args(["--config", "x.toml", "route", "hello", "--channel", "telegram"])
    assert args.config == "x.toml" and args.text == "hello" and args.channel == "telegram"
    args = parser.parse_args(["models", "list"])
    assert args.func.__name__ == "run_models"


def test_models_table_shows_catalog_aliases_and_availability() -> None:
    cfg = make_cfg({"providers": {"gemini": {"kind": "gemini", "api_key": "k"}}})
    rows = {r["ref"]: r for r in models_table(cfg)}
    assert rows["gemini/gemini-2.5-flash"]["available"] is True
    assert rows["cerebras/llama-3.3-70b"]["available"] is False
    assert "not configured" in rows["cerebras/llama-3.3-70b"]["unavailable_because"]
    assert rows["local/smollm2-135m"]["available"] is True
    assert "fast" in rows["cerebras/llama-3.3-70b"]["aliases"]
    text = format_models_table(list(rows.values()))
    assert "gemini/gemini-2.5-flash" in text and "0.3/2.5/0.03" in text and "checked 2026-" in text


def test_models_list_command(keyed_config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["models", "list", "--config", keyed_config, "--json"], capsys)
    assert code == 0
    assert any(r["ref"] == "cerebras/gpt-oss-120b" and r["available"] for r in json.loads(out))
