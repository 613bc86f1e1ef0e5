"""The `switchboard` command, run as a person would run it (subprocesses, real local model)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_CONFIG"}
    e["HOME"] = str(tmp_path)  # the data directory default lives under ~
    return e


def cli(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=tmp_path,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def chat(tmp_path: Path, typed: str) -> subprocess.CompletedProcess[str]:
    """`switchboard chat` with `typed` piped in as the person's lines."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat"],
        cwd=tmp_path,
        env=env(tmp_path),
        input=typed,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_message_send_answers_with_the_bundled_model_and_prints_timings(tmp_path):
    r = cli(tmp_path, "message", "send", "What is the capital of France?")
    assert r.returncode == 0, r.stderr
    answer, _, stats = r.stdout.rpartition("\n— ")
    assert "Paris" in answer
    assert stats.startswith("local/smollm2-135m")
    assert "TTFT" in stats and "tokens/s" in stats and "$0.000000" in stats


async def test_message_send_to_a_hosted_model_by_alias(tmp_path):
    async with FakeOpenAI("Hosted says hi.", ttft=0.01) as srv:
        (tmp_path / "switchboard.toml").write_text(f"""
[providers.hosted]
kind = "openai"
base_url = "{srv.base_url}"
api_key = "${{HOSTED_KEY}}"

[models."hosted/m1"]
alias = "m1"
price = {{ input = 1.0, output = 2.0 }}
""")
        e = env(tmp_path) | {"HOSTED_KEY": "sk-secret-value-123"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "message",
            "send",
            "hello",
            "--model",
            "m1",
            cwd=tmp_path,
            env=e,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert text.startswith("Hosted says hi.") and "— hosted/m1" in text and "/model" in text
    assert "sk-secret-value-123" not in text + err.decode()
    assert srv.chat_requests[0].body["model"] == "m1"


def test_message_send_unknown_model_is_a_clear_error(tmp_path):
    r = cli(tmp_path, "message", "send", "hi", "--model", "nope")
    assert r.returncode == 1 and "unknown model: nope" in r.stderr


def test_doctor_passes_on_the_default(tmp_path):
    r = cli(tmp_path, "doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "provider local (local model): loaded" in r.stdout and "0 problems" in r.stdout


def test_doctor_fails_with_a_fix_per_problem(tmp_path):
    (tmp_path / "switchboard.toml").write_text('[routing]\ndefault = "nope/model"\n')
    r = cli(tmp_path, "doctor")
    assert r.returncode == 1
    assert "routing.default: unknown model 'nope/model'" in r.stdout and "fix:" in r.stdout


def test_bad_config_names_the_key(tmp_path):
    (tmp_path / "switchboard.toml").write_text("[http]\nport = 99999\n")
    r = cli(tmp_path, "run")
    assert r.returncode == 2 and "http.port: Input should be less than or equal to 65535" in r.stderr


def test_models_list_shows_measured_speed_after_traffic(tmp_path):
    r = cli(tmp_path, "models", "list")
    assert r.returncode == 0, r.stderr
    assert "local/smollm2-135m" in r.stdout and "llama-3.3-70b" in r.stdout
    assert "measured here" not in r.stdout
    # a reply in the ledger (any run with a store writes one)
    import json

    (tmp_path / "switchboard.toml").write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\n')
    code = (
        "import asyncio; from bot.store.sqlite import SqliteStore; from bot.store.base import ReplyRecord\n"
        "async def main():\n"
        f"    s = SqliteStore({str(tmp_path / 'data' / 'switchboard.sqlite3')!r}); await s.open()\n"
        "    await s.save_reply('c', [], ReplyRecord(0, 'x', 'c', 'local/smollm2-135m', 'r', 0.1, 0.1, 1.1, 5, 100, 0, 0.0))\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    r = cli(tmp_path, "models", "list", "--json")
    row = next(x for x in json.loads(r.stdout) if x["ref"] == "local/smollm2-135m")
    assert row["measured_ttft_ms"] == 100.0 and row["measured_tokens_per_s"] == 100.0 and row["measured_replies"] == 1


def test_run_serves_webchat_and_stops_on_ctrl_c(tmp_path):
    (tmp_path / "switchboard.toml").write_text("[http]\nport = 0\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=tmp_path,
        env=env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("Switchboard webchat: http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[-1]
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and b"<form" in resp.read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_chat_streams_a_terminal_conversation(tmp_path):
    r = chat(tmp_path, "What is the capital of France?\n/reset\n")
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout and "Conversation cleared." in r.stdout


def test_a_busy_port_is_one_line_with_the_fix_and_doctor_says_so(tmp_path):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        (tmp_path / "switchboard.toml").write_text(f"[http]\nport = {port}\n")
        r = cli(tmp_path, "run")
        assert r.returncode == 1
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert lines[-1] == (
            f"error: http.port: 127.0.0.1:{port} is already in use (another switchboard running?); "
            "stop it, or set another port: switchboard config set http.port 8081"
        )
        assert "Traceback" not in r.stderr
        r = cli(tmp_path, "run", "--debug")
        assert r.returncode != 0 and "Traceback" in r.stderr and "StartupError" in r.stderr
        r = cli(tmp_path, "doctor")
        assert r.returncode == 1 and f"http port 127.0.0.1:{port}: already in use" in r.stdout


def test_an_unreachable_platform_is_one_line_with_the_fix(tmp_path):
    (tmp_path / "switchboard.toml").write_text(
        '[channels.telegram]\ntoken = "1:abc"\nbase_url = "http://127.0.0.1:9/bot"\nconnect_timeout = 1\n'
    )
    r = cli(tmp_path, "run")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: telegram: cannot reach the Bot API at http://127.0.0.1:9/bot")
    assert "channels.telegram.base_url" in last and "1:abc" not in r.stderr


def test_message_send_is_measured_refuses_empty_text_and_says_how_the_model_was_chosen(tmp_path):
    (tmp_path / "switchboard.toml").write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\n')
    r = cli(tmp_path, "message", "send", "  ")
    assert r.returncode == 2 and "the message is empty" in r.stderr
    r = cli(tmp_path, "message", "send", "Say hi.", "--model", "local")
    assert r.returncode == 0, r.stderr
    assert "chosen with --model" in r.stdout and "sticky" not in r.stdout
    r = cli(tmp_path, "models", "list")
    assert "measured here:" in r.stdout and "local/smollm2-135m: TTFT" in r.stdout


def test_config_mistakes_name_the_key_the_file_and_the_fix(tmp_path):
    (tmp_path / "switchboard.toml").write_text('[dispatcher]\nqueue_mod = "collect"\n')
    r = cli(tmp_path, "config", "validate")
    assert r.returncode == 2 and "dispatcher.queue_mod: unknown key (did you mean 'queue_mode'?)" in r.stderr
    (tmp_path / "switchboard.toml").write_text('[channels.telegram]\ntoken = "${MY_TG_TOKEN}"\n')
    r = cli(tmp_path, "config", "validate")
    assert r.returncode == 2
    assert "channels.telegram.token: environment variable MY_TG_TOKEN is not set (referenced in switchboard.toml)" in (
        r.stderr
    )
    (tmp_path / "switchboard.toml").unlink()
    r = cli(tmp_path, "config", "set", "http.port", "99999")
    assert r.returncode == 2 and not (tmp_path / "switchboard.toml").exists()
    assert "http.port = 99999 refused, switchboard.toml is unchanged: http.port: Input should be" in r.stderr
    r = cli(tmp_path, "config", "set", "http.port", "8090")
    assert r.returncode == 0 and (tmp_path / "switchboard.toml").read_text().endswith("8090\n")


def test_piped_chat_shows_each_question_before_its_answer(tmp_path):
    r = chat(tmp_path, "/help\n/status\n")
    out = r.stdout
    assert r.returncode == 0, r.stderr
    assert out.index("/help\n") < out.index("Send a message and I answer it.") < out.index("/status\n")
    assert out.index("/status\n") < out.index("Model: automatic")
