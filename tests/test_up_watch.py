"""`campaign-engine up` notices that the Temporal dev server it started has died, and stops
everything with one line; its data directory is private."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_config_errors import CLI, ROOT, clean_env, free_port

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_up_stops_with_one_line_when_its_temporal_dies(tmp_path):
    data = tmp_path / "data"
    args = [CLI, "up", "--data-dir", str(data), "--temporal-port", str(free_port()),
            "--ui-port", str(free_port()), "--api-port", str(free_port())]
    proc = subprocess.Popen(args, env=clean_env(tmp_path), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        seen = ""
        while "Ctrl-C stops everything." not in seen:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, (seen, proc.stderr.read())
            seen += line
            assert time.monotonic() < deadline, seen
        assert stat.S_IMODE(data.stat().st_mode) in (0o700, 0o711)
        for file in data.iterdir():
            if file.is_file():
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file

        temporal = [c for c in children(proc.pid) if "start-dev" in cmdline(c)]
        assert len(temporal) == 1, [cmdline(c) for c in children(proc.pid)]
        os.kill(temporal[0], signal.SIGKILL)
        status = proc.wait(timeout=60)
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and "Temporal dev server" in lines[0] and "exited" in lines[0], stderr
