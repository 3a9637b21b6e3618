"""``make run``: a real Celery worker (with beat) beside Django's development server.

The worker is a separate process, as in production, so a request that starts a retrain, rescore
or import returns at once and the job page shows its progress while the worker runs it. With
``REDIS_URL`` unset its broker is the filesystem folder of the settings (nothing to install).
The worker's log goes to ``var/worker.log``; stopping the server (Ctrl-C) stops the worker.
A worker that dies (killed, out of memory, or exiting when its broker drops) is started again
by :mod:`dropout_platform.supervisor`, as systemd or a container's restart policy does in
production; its job's lease runs out and the embedded beat's sweeper queues it again.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dropout_platform.supervisor import Supervised

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKER_READY_SECONDS = 90


def worker_command() -> list[str]:
    # prefork with one child: the task time limits need it (the solo pool cannot enforce them).
    return [sys.executable, "-m", "celery", "-A", "dropout_platform", "worker", "--beat", "--loglevel=INFO",
            "--concurrency=1", "--without-gossip", "--without-mingle",
            "--schedule", str(PROJECT_ROOT / "var" / "celerybeat-schedule")]


def start_worker(log_path: Path) -> Supervised:
    """The worker under a supervisor that starts it again whenever it exits."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    worker = Supervised(worker_command(), log_path=log_path, cwd=PROJECT_ROOT, name="worker")
    worker.start()
    return worker


def wait_until_ready(worker: Supervised, log_path: Path) -> None:
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise SystemExit(f"the worker exited at start-up; see {log_path}:\n{log_path.read_text()[-2000:]}")
        if " ready." in log_path.read_text():
            return
        time.sleep(0.3)
    raise SystemExit(f"the worker was not ready within {WORKER_READY_SECONDS} s; see {log_path}")


def serve_while_supervising(server: subprocess.Popen, worker: Supervised, *, interval: float = 0.5) -> int:
    """Until the web server exits: a worker that died is started again (after a pause that grows
    while it keeps dying). Returns the server's exit status."""
    while server.poll() is None:
        worker.check()
        time.sleep(interval)
    return server.returncode


def stop(process: subprocess.Popen) -> None:
    """Stop a process started in a session of its own, with all its children."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the worker's warm shutdown: a running task finishes
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _exit_on_signal(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args(argv)
    log_path = PROJECT_ROOT / "var" / "worker.log"
    # A `kill` or a closed terminal must stop the worker too, not leave it running unseen.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    worker = start_worker(log_path)
    server = None
    try:
        wait_until_ready(worker, log_path)
        print(f"  worker ready (pid {worker.process.pid}); its log: {log_path}", flush=True)
        # Its own session too, so that stopping it stops runserver's autoreload child as well.
        server = subprocess.Popen(  # noqa: S603 - our own manage.py with the host and port given to make
            [sys.executable, "manage.py", "runserver", f"{args.host}:{args.port}"], cwd=PROJECT_ROOT,
            start_new_session=True,
        )
        return serve_while_supervising(server, worker)
    except KeyboardInterrupt:
        return 0
    finally:
        if server is not None:
            stop(server)
        worker.stop()


if __name__ == "__main__":
    sys.exit(main())
