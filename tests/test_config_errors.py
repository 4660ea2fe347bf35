"""Every configuration error stops `campaign-engine up`, `campaign-engine worker` and
`python worker.py` with one line naming the variable, exit status 2, and no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "campaign-engine")

COMMANDS = {
    "up": [CLI, "up"],
    "worker": [CLI, "worker"],
    "worker.py": [sys.executable, str(ROOT / "worker.py")],
}

# (environment, the variable the line must name)
CASES = [
    ({"API_PORT": "notaport"}, "API_PORT"),
    ({"TEMPORAL_PORT": "70000"}, "TEMPORAL_PORT"),
    ({"SIMULATED_OUTCOMES": "completed=lots"}, "SIMULATED_OUTCOMES"),
    ({"SIMULATED_RING_SECONDS": "8-2"}, "SIMULATED_RING_SECONDS"),
    ({"TELEPHONY_PROVIDER": "twilio"}, "TWILIO_ACCOUNT_SID"),
    ({"TELEPHONY_PROVIDER": "http"}, "HTTP_PROVIDER_URL"),
    ({"TELEPHONY_PROVIDER": "carrier-pigeon"}, "TELEPHONY_PROVIDER"),
    ({"CAMPAIGN_API_KEYS": "acme:"}, "CAMPAIGN_API_KEYS"),
    ({"CAMPAIGN_API_KEYS": ",,, ;;"}, "CAMPAIGN_API_KEYS"),
    ({"CAMPAIGN_API_KEYS": "acme:k-1,globex:k-1"}, "CAMPAIGN_API_KEYS"),
    ({"CAMPAIGN_API_KEYS": "my tenant/x:k-1"}, "CAMPAIGN_API_KEYS"),
    ({"WEBHOOK_SECRETS": ":::"}, "WEBHOOK_SECRETS"),
    ({"WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/33"}, "WEBHOOK_ALLOWED_NETWORKS"),
    ({"MAX_BODY_BYTES": "lots"}, "MAX_BODY_BYTES"),
]

_OURS = ("TEMPORAL_", "CAMPAIGN_", "API_", "SIMULATED_", "TELEPHONY_", "TWILIO_", "HTTP_PROVIDER_",
         "WEBHOOK_", "DATABASE_URL", "MAX_BODY", "BODY_READ")


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(CAMPAIGN_DATA_DIR=str(tmp_path / "data"), CAMPAIGN_ENGINE_HARD_EXIT="1", **extra)
    return env


def run(command: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=False, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def assert_one_line(result: subprocess.CompletedProcess, *mentions: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr[-2000:]
    for mention in mentions:
        assert mention in lines[0], lines[0]
    return lines[0]


# Each case through one of the three commands in turn (they share the check: a process each
# costs two seconds), and two cases through all three.
ROUND_ROBIN = [(env, variable, list(COMMANDS)[i % len(COMMANDS)]) for i, (env, variable) in enumerate(CASES)]
ROUND_ROBIN += [(env, variable, command) for env, variable in (CASES[0], CASES[8]) for command in COMMANDS
                if (env, variable, command) not in ROUND_ROBIN]


@pytest.mark.parametrize(("env", "variable", "command"), ROUND_ROBIN,
                         ids=[f"{c}-{v}={list(e.values())[-1]}" for e, v, c in ROUND_ROBIN])
def test_configuration_error_is_one_line(tmp_path, command, env, variable):
    line = assert_one_line(run(COMMANDS[command], clean_env(tmp_path, **env)), variable)
    assert "k-1" not in line  # a key is never repeated back


@pytest.mark.parametrize("command", ["worker", "worker.py"])
def test_unreachable_temporal_is_one_line_naming_its_address(tmp_path, command):
    port = free_port()
    env = clean_env(tmp_path, TEMPORAL_ADDRESS=f"127.0.0.1:{port}",
                    DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    assert_one_line(run(COMMANDS[command], env), f"127.0.0.1:{port}")


@pytest.mark.parametrize("flag", ["--temporal-port", "--ui-port", "--api-port"])
def test_up_refuses_a_port_another_process_holds(tmp_path, flag):
    with socket.socket() as other:  # someone else's server
        other.bind(("127.0.0.1", 0))
        other.listen()
        busy = other.getsockname()[1]
        ports = {"--temporal-port": str(free_port()), "--ui-port": str(free_port()), "--api-port": str(free_port())}
        ports[flag] = str(busy)
        args = [CLI, "up", "--data-dir", str(tmp_path / "data"), *[x for kv in ports.items() for x in kv]]
        result = run(args, clean_env(tmp_path))
    line = assert_one_line(result, str(busy))
    variable = {"--temporal-port": "TEMPORAL_PORT", "--ui-port": "TEMPORAL_UI_PORT", "--api-port": "API_PORT"}[flag]
    assert "in use" in line and f"{variable}=" in line
    assert "campaign engine is up" not in result.stdout


UVICORN = [str(Path(sys.executable).parent / "uvicorn"), "api.main:app", "--host", "127.0.0.1", "--port", "0"]


@pytest.mark.parametrize(("env", "variable"), [({}, "DATABASE_URL"), ({"API_PORT": "notaport"}, "API_PORT"),
                                               ({"CAMPAIGN_API_KEYS": "acme:k-1,globex:k-1"}, "CAMPAIGN_API_KEYS")],
                         ids=["no-DATABASE_URL", "API_PORT", "CAMPAIGN_API_KEYS"])
def test_the_api_alone_under_uvicorn_is_one_line(tmp_path, env, variable):
    """`uvicorn api.main:app` (the API alone, as the README and docker-compose run it): one line
    naming the variable, exit status 2, before uvicorn serves anything."""
    result = run(UVICORN, clean_env(tmp_path, **env))
    line = assert_one_line(result, variable)
    assert line.startswith("api: ") and "k-1" not in line


def test_the_api_module_builds_its_app_when_configured(module_database):
    import api.main

    assert module_database  # DATABASE_URL is set (the module's own database)
    assert api.main.app is api.main.app  # made once, on first use
    assert any(getattr(route, "path", None) == "/readyz" for route in api.main.app.routes)
