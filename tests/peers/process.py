"""Start a peer server (an identity provider the tests talk to) as a process of its own, wait
until ``ready_url`` answers 200, and stop it at the end."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests


def peer_running(argv: list[str], *, env: dict, workdir: Path, ready_url: str, what: str, cwd=None):
    """A generator for a fixture: yields once the peer answers, stops it when closed."""
    log = open(workdir / "peer.log", "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(ready_url, timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            raise RuntimeError(f"the {what} did not start: {(workdir / 'peer.log').read_text()[-2000:]}")
        time.sleep(0.2)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
