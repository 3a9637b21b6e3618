"""Run one benchmark on an earlier revision and on the working tree, alternating, in one run.

    .venv/bin/python bench/alternate.py --baseline faf231c --rounds 2 \\
        --database postgres://postgres@127.0.0.1:5432/dp_bench -- bench/api_load.py --seconds 20

Absolute times drift on a shared machine, so a comparison is only fair between runs made in the
same period, interleaved: baseline, current, baseline, current... The baseline is checked out as
a git worktree under ``var/bench-baseline-<rev>`` (kept for later runs) and run with this
checkout's virtualenv. Each side gets a database of its own (``<name>_baseline`` and
``<name>_current``), since the two revisions may differ in their migrations; ``REDIS_URL`` is
passed through as it is. Every run's output is printed under a heading and kept in
``var/bench-logs/``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def baseline_tree(revision: str) -> Path:
    tree = ROOT / "var" / f"bench-baseline-{revision}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, check=True)
    return tree


def run(label: str, tree: Path, database: str, command: list[str], log_dir: Path, round_number: int) -> None:
    env = {**os.environ, "DATABASE_URL": f"{database}_{label}", "PYTHONPATH": str(tree)}
    started = time.strftime("%H:%M:%S")
    print(f"\n===== {label} (round {round_number}, {tree.name}, started {started}) =====", flush=True)
    log = log_dir / f"{Path(command[0]).stem}-{label}-{round_number}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, *command], cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        for line in process.stdout:
            sys.stdout.write(line)
            out.write(line)
        process.wait()
    print(f"===== {label} round {round_number}: exit {process.returncode}, log {log} =====", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database", required=True, help="PostgreSQL URL; each side appends _baseline/_current")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- bench/<script>.py [its arguments]")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the benchmark after --")
    log_dir = ROOT / "var" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    sides = [("baseline", baseline_tree(args.baseline)), ("current", ROOT)]
    for round_number in range(1, args.rounds + 1):
        for label, tree in sides:
            run(label, tree, args.database, command, log_dir, round_number)
    return 0


if __name__ == "__main__":
    sys.exit(main())
