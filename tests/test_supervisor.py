"""Workers that come back (issue 17, item 6): the supervisor that `make run` keeps its worker under,
and that runs any command where no systemd or container runtime restarts it; the systemd units
shipped in deploy/systemd/. Real processes, killed with real signals."""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from dropout_platform.local_stack import serve_while_supervising
from dropout_platform.supervisor import Supervised
from tests.servers import alive, wait_for

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A stand-in worker: writes its pid, then runs until killed.
SLEEPER = "import os, sys, time; open(sys.argv[1], 'a').write(f'{os.getpid()}\\n'); time.sleep(600)"


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_a_killed_command_is_started_again_and_stopping_the_supervisor_stops_it(tmp_path):
    pids, log = tmp_path / "pids", tmp_path / "supervisor.log"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "dropout_platform.supervisor", "--log", str(log), "--name", "worker", "--grace", "5",
         "--", sys.executable, "-c", SLEEPER, str(pids)], cwd=PROJECT_ROOT, start_new_session=True)
    try:
        (first,) = wait_for(lambda: _pids(pids), timeout=20)
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: len(_pids(pids)) == 2 and _pids(pids)[1], timeout=20, log=log)
        assert second != first and alive(second) and not alive(first)
        assert f"worker (pid {first}) exited on SIGKILL" in log.read_text()
        assert f"worker started again (pid {second}, restart 1)" in log.read_text()

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=20) == 0
        wait_for(lambda: not alive(second), timeout=10)
        assert len(_pids(pids)) == 2  # not started a third time on the way out
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
        for pid in _pids(pids):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_command_that_keeps_dying_at_once_is_restarted_ever_more_slowly(tmp_path):
    log = tmp_path / "supervisor.log"
    dying = Supervised([sys.executable, "-c", "raise SystemExit(3)"], log_path=log, name="worker",
                       first_pause=0.2, longest_pause=0.8, steady_run=60)
    try:
        dying.start()
        deadline = time.monotonic() + 20
        while dying.restarts < 4 and time.monotonic() < deadline:
            dying.check()
            time.sleep(0.02)
        assert dying.restarts == 4
        pauses = [line.rsplit("again in ", 1)[1] for line in log.read_text().splitlines() if "again in" in line]
        assert pauses[:4] == ["0.2 s", "0.4 s", "0.8 s", "0.8 s"]  # doubling, up to the longest pause
        assert "exited with status 3" in log.read_text()
    finally:
        dying.stop(grace=1)


def test_make_run_starts_its_worker_again_until_the_web_server_exits(tmp_path):
    pids, log = tmp_path / "pids", tmp_path / "worker.log"
    worker = Supervised([sys.executable, "-c", SLEEPER, str(pids)], log_path=log, name="worker", first_pause=0.1)
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    worker.start()
    try:
        (first,) = wait_for(lambda: _pids(pids), timeout=20)
        os.kill(first, signal.SIGKILL)

        def stop_the_server_once_restarted():
            wait_for(lambda: len(_pids(pids)) == 2, timeout=20, log=log)
            server.terminate()

        stopper = threading.Thread(target=stop_the_server_once_restarted)
        stopper.start()
        assert serve_while_supervising(server, worker, interval=0.05) == -signal.SIGTERM
        stopper.join()
        assert alive(_pids(pids)[1])
    finally:
        worker.stop(grace=2)
        if server.poll() is None:
            server.kill()
    assert not any(alive(pid) for pid in _pids(pids))


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(path.read_text().replace("\\\n", " "))
    return parser


def test_the_shipped_systemd_units_restart_always_and_the_docs_show_the_worker_unit_as_shipped():
    units = sorted((PROJECT_ROOT / "deploy" / "systemd").glob("*.service"))
    assert {unit.name for unit in units} == {"dropout-platform-worker@.service", "dropout-platform-beat.service",
                                             "dropout-platform-web.service"}
    for path in units:
        unit = _unit(path)
        assert unit["Service"]["Restart"] == "always", path.name
        assert unit["Unit"]["StartLimitIntervalSec"] == "0", path.name  # never gives up
        assert "dropout_platform" in unit["Service"]["ExecStart"]
    worker = _unit(PROJECT_ROOT / "deploy" / "systemd" / "dropout-platform-worker@.service")["Service"]
    assert "celery -A dropout_platform worker" in worker["ExecStart"] and worker["KillMode"] == "mixed"
    shipped = (PROJECT_ROOT / "deploy" / "systemd" / "dropout-platform-worker@.service").read_text()
    assert shipped in (PROJECT_ROOT / "docs" / "operations.md").read_text()
