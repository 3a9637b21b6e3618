"""Keep a process running: start it, and start it again whenever it exits, until told to stop.

``make run`` keeps its Celery worker under this (``local_stack``), and it runs any command where
no systemd or container runtime restarts one (``deploy/systemd/`` and docs/operations.md show
those)::

    python -m dropout_platform.supervisor --log var/worker.log -- \\
        celery -A dropout_platform worker --loglevel=INFO --concurrency=2

A worker that dies (SIGKILL, the OOM killer, an exit when Redis drops mid-task) is started again
after a pause that doubles while it keeps dying soon after starting (1 s, 2 s ... at most 30 s)
and drops back to 1 s once it has run for a minute. Its job is not lost meanwhile: the job's
lease runs out and the sweeper queues it again for the restarted worker.

The command runs in a session of its own, so stopping the supervisor (SIGTERM, SIGINT, SIGHUP)
stops it with all its children: SIGTERM first (a Celery worker's warm shutdown lets the running
task finish), SIGKILL after ``--grace`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0
# A run this long proves the command starts: the next restart waits the first pause again.
STEADY_RUN_SECONDS = 60.0


class Supervised:
    """One command kept running. :meth:`check` restarts it when it has exited (call it often)."""

    def __init__(self, command: Sequence[str], *, log_path: Path | None = None, cwd: Path | None = None,
                 env: dict[str, str] | None = None, name: str = "process",
                 first_pause: float = FIRST_PAUSE_SECONDS, longest_pause: float = LONGEST_PAUSE_SECONDS,
                 steady_run: float = STEADY_RUN_SECONDS, pid_file: Path | None = None):
        self.command = list(command)
        self.log_path, self.cwd, self.env, self.name = log_path, cwd, env, name
        self.first_pause, self.longest_pause, self.steady_run = first_pause, longest_pause, steady_run
        self.pid_file = pid_file
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self._pause = first_pause
        self._started_at = 0.0
        self._restart_at: float | None = None
        self._log: IO[str] | None = None

    def start(self) -> subprocess.Popen:
        if self._log is None and self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("a", buffering=1)
        output = self._log if self._log is not None else None
        self.process = subprocess.Popen(  # noqa: S603 - the operator's own command line
            self.command, cwd=self.cwd, env=self.env, stdout=output, stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
        self._started_at = time.monotonic()
        self._restart_at = None
        if self.pid_file is not None:
            self.pid_file.write_text(f"{self.process.pid}\n")
        return self.process

    def check(self) -> None:
        """Restart the command if it exited and its pause is over; note the exit otherwise."""
        if self.process is None:
            self.start()
            return
        code = self.process.poll()
        if code is None:
            return
        now = time.monotonic()
        if self._restart_at is None:
            ran = now - self._started_at
            self._pause = self.first_pause if ran >= self.steady_run else self._pause
            self._restart_at = now + self._pause
            self._say(f"{self.name} (pid {self.process.pid}) exited {describe_exit(code)} after {ran:.0f} s; "
                      f"starting it again in {self._pause:g} s")
            self._pause = min(self._pause * 2, self.longest_pause)
        if now >= self._restart_at:
            _kill_group(self.process.pid)  # children it left behind (a prefork pool) go with it
            self.restarts += 1
            self.start()
            self._say(f"{self.name} started again (pid {self.process.pid}, restart {self.restarts})")

    def stop(self, *, grace: float = 20.0) -> None:
        process = self.process
        if process is not None:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    _signal_group(process.pid, signal.SIGKILL)
                    process.wait()
            _kill_group(process.pid)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _say(self, message: str) -> None:
        line = f"[supervisor {time.strftime('%Y-%m-%d %H:%M:%S')}] {message}"
        print(line, file=sys.stderr, flush=True)
        if self._log is not None:
            self._log.write(line + "\n")


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"on {signal.Signals(-code).name}"
        except ValueError:
            return f"on signal {-code}"
    return f"with status {code}"


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _kill_group(pgid: int) -> None:
    _signal_group(pgid, signal.SIGKILL)


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     usage="%(prog)s [--log FILE] [--name NAME] [--grace S] -- command ...")
    parser.add_argument("--log", type=Path, help="append the command's output (and restarts) to this file")
    parser.add_argument("--name", default="worker", help="what to call the command in messages")
    parser.add_argument("--grace", type=float, default=20.0, help="seconds between SIGTERM and SIGKILL on stop")
    parser.add_argument("--pid-file", type=Path, help="write the running command's pid here at each start")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    supervised = Supervised(command, log_path=args.log, name=args.name, pid_file=args.pid_file)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    try:
        supervised.start()
        while True:
            time.sleep(0.2)
            supervised.check()
    except _Stop:
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        supervised.stop(grace=args.grace)


if __name__ == "__main__":
    sys.exit(main())
