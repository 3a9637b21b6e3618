"""API load: gunicorn on PostgreSQL, an institution of 10,000 students, 20 concurrent clients.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dp_api_bench nice -n 5 .venv/bin/python bench/api_load.py

Creates the database if needed, migrates it, builds the institution ``bench-load-uci`` (10,000
students with the demo's 36 features, real UCI students' values resampled; kept between runs),
runs ``VACUUM ANALYZE`` on its tables (what
autovacuum does in production; a scratch database may not have had it), creates an API key with
every scope, starts ``gunicorn`` with ``--workers`` workers (default 2 sync workers, one per core
of the 2-core machine this was tuned on; ``--worker-class gthread --threads N`` is the
alternative) on a loopback port, and runs a load generator of ``--clients`` concurrent clients
(default 20), for ``--seconds`` per scenario, in two modes: closed loop (each client sends its
next request as soon as the previous answer arrives: the server's saturation point, and what a
Locust user does by default) and paced (each client pauses 0.25-0.75 s between requests, as a
Locust user with ``wait_time = between(0.25, 0.75)`` does):

1. student detail (``GET /students/<id>/``, random students);
2. a 50-item list page (``GET /students/?page=<n>&page_size=50``, random pages);
3. an incremental-sync page (``GET /students/?updated_since=...&page_size=50``, cursor mode).

``--mode closed|paced`` and ``--only detail,list`` run a subset; ``--institution <slug>`` loads
another institution, e.g. one that shares the tables with larger ones. The default load generator
(``--client lean``) drives all clients from one thread with a selector; ``--client threads`` is
the earlier one-Python-thread-per-client generator, which costs the shared CPUs about twice as
much per request. Prints requests/s, p50/p95/p99 latency, the error count, the gunicorn
workers' CPU and the load generator's own CPU per request, and the load average, per scenario,
and checks the targets (detail p95 <= 50 ms, list p95 <= 100 ms, zero errors). ``--pgbouncer`` puts
Debian's PgBouncer in transaction mode between gunicorn and PostgreSQL (``--pool-size`` server
connections, default 4; DATABASE_POOL_MODE=transaction, docs/operations.md "PgBouncer").
``REDIS_URL`` is
passed on when set (rate limits then count in Redis, as in production). The load generator and
PostgreSQL run on the same machine and share its CPUs with the server: the figures are an upper
bound on what the server costs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dropout_platform.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-a-secret")

SLUG = "bench-load-uci"  # 36 features per student, as the demo (and a real SIS export) has
STUDENTS = 10_000
TARGETS_MS = {"detail": 50.0, "list": 100.0}


def ensure_database(url: str) -> None:
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = psycopg2.connect(host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres",
                             password=parts.password or None, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def build_institution(slug: str = SLUG) -> tuple[str, list[int]]:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from audit.models import AccessEntry
    from institutions.api_keys import ALL_SCOPES, api_key_create
    from institutions.models import Institution
    from students.demo import _create_schema, _feature_value, read_uci_rows
    from students.models import FeatureDefinition, Student
    from students.uci_schema import UCI_COLUMNS

    institution, _ = Institution.objects.get_or_create(slug=slug, defaults={"name": "Bench University"})
    students = Student.objects.for_institution(institution)
    if students.count() < STUDENTS:
        started = time.perf_counter()
        uci_rows = read_uci_rows()
        if not FeatureDefinition.objects.for_institution(institution).exists():
            _create_schema(institution, uci_rows)  # the demo's schema: 36 features, as a real institution has
        rng = random.Random(7)
        have = set(students.values_list("external_id", flat=True))
        definitions = list(FeatureDefinition.objects.for_institution(institution))
        new = []
        for i in range(STUDENTS):
            if f"B{i:06d}" in have:
                continue
            row = uci_rows[rng.randrange(len(uci_rows))]  # a real student's values (UCI rows resampled)
            new.append(Student(
                institution=institution, external_id=f"B{i:06d}", name=f"Student {i}",
                email=f"s{i}@bench.example.edu", program=rng.choice(["Nursing", "Law", "Informatics", "Design"]),
                cohort=str(rng.choice([2022, 2023, 2024, 2025])),
                features={column.key: _feature_value(column.kind, row[column.header])
                          for column in UCI_COLUMNS if column.key in {d.key for d in definitions}}))
        students.bulk_create(new, batch_size=2000)
        print(f"built {len(new)} students in {time.perf_counter() - started:.1f} s")
    # Production PostgreSQL runs autovacuum, which keeps the planner's statistics and the
    # visibility map (index-only COUNT) current; a freshly loaded scratch database may not have
    # had it run yet (or run with autovacuum off), so do its work once here.
    # As the tables' owner: the application role may not VACUUM or ANALYZE them (PostgreSQL skips
    # them with only a warning, and the planner then guesses a handful of rows per institution).
    from django.db import connection

    from institutions.db_roles import owner_connection

    with owner_connection(), connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        print(f"PostgreSQL autovacuum: {cursor.fetchone()[0]}; running VACUUM ANALYZE on the bench tables")
        for model in (Student, Institution, AccessEntry):
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        cursor.execute("SELECT count(*) FROM pg_stat_user_tables WHERE relname = %s AND last_analyze IS NOT NULL",
                       [Student._meta.db_table])
        assert cursor.fetchone()[0] == 1, "VACUUM ANALYZE did not reach the students table"
    _key, raw_key = api_key_create(institution=institution, name="bench", scopes=list(ALL_SCOPES),
                                   rate_per_minute=10_000_000)
    ids = list(students.values_list("pk", flat=True))
    return raw_key, ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, worker_class: str = "sync", threads: int = 1,
                   extra_env: dict | None = None) -> subprocess.Popen:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    env = {**os.environ, "DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
           **(extra_env or {})}
    command = [gunicorn, "dropout_platform.wsgi", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
               "--log-level", "warning", "--backlog", "256", "--worker-class", worker_class]
    if worker_class == "gthread":
        command += ["--threads", str(threads)]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def server_cpu_seconds(master_pid: int) -> float:
    """User + system CPU of gunicorn's workers (children of the master), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_scenario(*, port: int, raw_key: str, clients: int, seconds: float, make_path,
                 think: tuple[float, float] = (0.0, 0.0)) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {raw_key}", "Accept": "application/json"}

    def client(seed: int) -> None:
        rng = random.Random(seed)
        mine, my_errors = [], []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < stop_at:
            if think[1]:
                time.sleep(rng.uniform(*think))
            path = make_path(rng)
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - started
                if response.status != 200:
                    my_errors.append(f"{response.status} {path} {body[:200]!r}")
                else:
                    json.loads(body)
                    mine.append(elapsed)
                if response.getheader("Connection", "").lower() == "close" or response.will_close:
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            except (OSError, http.client.HTTPException) as exc:
                my_errors.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.close()
        with lock:
            latencies.extend(mine)
            errors.extend(my_errors)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    own_cpu = time.process_time()
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall
    own_cpu = time.process_time() - own_cpu
    latencies.sort()

    def pct(p: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    return {"requests": len(latencies) + len(errors), "rps": (len(latencies) + len(errors)) / wall,
            "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
            "mean": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
            "errors": len(errors), "first_errors": errors[:3],
            "client_cpu_ms": 1000 * own_cpu / max(1, len(latencies) + len(errors))}


def run_scenario_lean(*, port: int, raw_key: str, clients: int, seconds: float, make_path,
                      think: tuple[float, float] = (0.0, 0.0)) -> dict:
    """The same load as :func:`run_scenario` from one thread: ``clients`` connections driven by a
    selector, each sending its next request when its answer (and pause) is over.

    Twenty Python threads cost the shared CPUs more than the requests they send (GIL hand-offs,
    context switches); here each request costs the generator one send, a read or two and the
    JSON parse that checks the body. Latency runs from before the connect/send to the last byte.
    """
    import selectors

    request_head = (
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        "Accept: application/json\r\n\r\n"
    )
    selector = selectors.DefaultSelector()
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds

    class Client:
        def __init__(self, seed: int):
            self.rng = random.Random(seed)
            self.sock = None
            self.busy = False
            self.wake_at = time.perf_counter() + (self.rng.uniform(*think) if think[1] else 0.0)

        def start(self) -> None:
            self.busy = True
            self.path = make_path(self.rng)
            self.started = time.perf_counter()
            self.buffer = bytearray()
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(("127.0.0.1", port))
                    self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.sock.setblocking(False)
                    selector.register(self.sock, selectors.EVENT_READ, self)
                self.sock.sendall(request_head.format(path=self.path, port=port, key=raw_key).encode())
            except OSError as exc:
                self.fail(f"{type(exc).__name__}: {exc}")

        def fail(self, message: str) -> None:
            errors.append(message)
            self.close()
            self.schedule()

        def close(self) -> None:
            if self.sock is not None:
                selector.unregister(self.sock)
                self.sock.close()
                self.sock = None

        def schedule(self) -> None:
            self.wake_at = time.perf_counter() + (self.rng.uniform(*think) if think[1] else 0.0)
            self.busy = False
            finished.append(self)

        def readable(self) -> None:
            if not self.busy:  # the server closed an idle keep-alive connection
                self.close()
                return None
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError as exc:
                return self.fail(f"{type(exc).__name__}: {exc}")
            self.buffer += chunk
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                if not chunk:
                    self.fail("connection closed before the response head")
                return None
            head = bytes(self.buffer[:head_end]).decode("latin-1").lower()
            length = None
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name == "content-length":
                    length = int(value)
            body = self.buffer[head_end + 4:]
            if length is None:
                if chunk:
                    return None  # delimited by the server closing the connection
            elif len(body) < length:
                if not chunk:
                    self.fail("connection closed mid-body")
                return None
            elapsed = time.perf_counter() - self.started
            # Close first, then check the body: a sync gunicorn worker half-closes after its
            # answer and waits for the client's FIN before it accepts the next connection, so a
            # client that parses before closing holds the worker idle meanwhile.
            if "connection: close" in head or length is None:
                self.close()
            status = int(head.split(" ", 2)[1])
            if status != 200:
                errors.append(f"{status} {self.path} {bytes(body[:200])!r}")
            else:
                json.loads(body)
                latencies.append(elapsed)
            self.schedule()
            return None

    finished: list = []  # clients whose request is over (answered or failed), in order
    pool = [Client(seed) for seed in range(clients)]
    idle = list(pool)
    own_cpu = time.process_time()
    wall = time.perf_counter()
    while True:
        now = time.perf_counter()
        if now < stop_at:
            ready = [client for client in idle if client.wake_at <= now]
            for client in ready:
                idle.remove(client)
                client.start()
        elif all(not client.busy for client in pool):
            break
        idle.extend(finished)
        finished.clear()
        waiting = [client.wake_at for client in idle]
        timeout = max(0.0, min(waiting) - time.perf_counter()) if waiting and now < stop_at else 0.05
        for key, _events in selector.select(timeout):
            key.data.readable()
        idle.extend(finished)
        finished.clear()
    wall = time.perf_counter() - wall
    own_cpu = time.process_time() - own_cpu
    for client in pool:
        client.close()
    selector.close()
    latencies.sort()

    def pct(p: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    total = len(latencies) + len(errors)
    return {"requests": total, "rps": total / wall, "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
            "mean": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
            "errors": len(errors), "first_errors": errors[:3], "client_cpu_ms": 1000 * own_cpu / max(1, total)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker with --worker-class gthread")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--think-min", type=float, default=0.25, help="paced mode: shortest pause (s)")
    parser.add_argument("--think-max", type=float, default=0.75, help="paced mode: longest pause (s)")
    parser.add_argument("--mode", choices=["both", "closed", "paced"], default="both")
    parser.add_argument("--client", choices=["lean", "threads"], default="lean",
                        help="load generator: one selector thread (default) or one Python thread per client")
    parser.add_argument("--only", default="detail,list,sync", help="comma-separated scenarios to run")
    parser.add_argument("--pgbouncer", action="store_true",
                        help="serve through Debian's PgBouncer in transaction mode (docs/operations.md)")
    parser.add_argument("--pool-size", type=int, default=4, help="PgBouncer's server connections (--pgbouncer)")
    parser.add_argument("--institution", default=SLUG,
                        help="slug of the institution to load (built with 10,000 students if it has fewer); "
                             "point it at one that shares the tables with larger institutions to measure that")
    args = parser.parse_args()
    if args.workers < 2:
        parser.error("--workers must be at least 2")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        parser.error("set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/dp_api_bench")
    ensure_database(url)
    raw_key, ids = build_institution(args.institution)
    pages = (len(ids) + 49) // 50
    base = f"/api/v1/institutions/{args.institution}/students/"
    scenarios = {
        "detail": lambda rng: f"{base}{rng.choice(ids)}/",
        "list": lambda rng: f"{base}?page={rng.randint(1, pages)}&page_size=50",
        "sync": lambda rng: f"{base}?updated_since=2000-01-01T00:00:00Z&page_size=50",
    }
    port = free_port()
    bouncer, extra_env = None, {}
    if args.pgbouncer:
        from tests.servers import PgBouncer, pooled_login_role_ensure

        parts = urlsplit(url)
        server_at = {"host": parts.hostname, "port": parts.port or 5432, "dbname": parts.path.lstrip("/")}
        role = pooled_login_role_ensure(**server_at, user=parts.username or "postgres",
                                        password=parts.password or None)
        bouncer = PgBouncer(**server_at, users=[role], pool_size=args.pool_size)
        bouncer.start()
        extra_env = {"DATABASE_URL": bouncer.url(role), "DATABASE_POOL_MODE": "transaction",
                     "DATABASE_OWNER_URL": ""}
        print(f"through PgBouncer (transaction mode, {args.pool_size} server connections) on port {bouncer.port}")
    server = start_gunicorn(port, args.workers, args.worker_class, args.threads, extra_env)
    print(f"load average before: {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min); "
          f"{os.cpu_count()} CPUs")
    kind = f"{args.worker_class} workers" + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
    print(f"gunicorn: {args.workers} {kind} on 127.0.0.1:{port}; {len(ids)} students; "
          f"{args.clients} clients, {args.seconds:.0f} s per scenario; "
          f"rate-limit cache: {'Redis' if os.environ.get('REDIS_URL') else 'per-process memory'}; "
          f"load generator: {args.client}")
    failed = False
    scenarios = {name: make_path for name, make_path in scenarios.items() if name in args.only.split(",")}
    modes = {}
    if args.mode in ("both", "closed"):
        modes["closed loop (no pause)"] = (0.0, 0.0)
    if args.mode in ("both", "paced"):
        modes[f"paced ({args.think_min:.2f}-{args.think_max:.2f} s pause, Locust with a wait_time)"] = (args.think_min,
                                                                                                 args.think_max)
    try:
        for make_path in scenarios.values():  # warm-up: every worker imports, connects and caches
            run_scenario(port=port, raw_key=raw_key, clients=4, seconds=2, make_path=make_path)
        for mode, think in modes.items():
            print(f"-- {args.clients} clients, {mode}")
            for name, make_path in scenarios.items():
                cpu_before = server_cpu_seconds(server.pid)
                runner = run_scenario_lean if args.client == "lean" else run_scenario
                result = runner(port=port, raw_key=raw_key, clients=args.clients, seconds=args.seconds,
                                make_path=make_path, think=think)
                cpu_ms = 1000 * (server_cpu_seconds(server.pid) - cpu_before) / max(1, result["requests"])
                target = TARGETS_MS.get(name)
                verdict = ""
                if target is not None:
                    ok = result["p95"] <= target and result["errors"] == 0
                    failed |= not ok
                    verdict = f"  target p95 <= {target:.0f} ms, 0 errors: {'PASS' if ok else 'FAIL'}"
                print(f"{name:7s} {result['requests']:6d} requests  {result['rps']:7.1f} req/s  "
                      f"p50 {result['p50']:6.1f} ms  p95 {result['p95']:6.1f} ms  p99 {result['p99']:6.1f} ms  "
                      f"errors {result['errors']}  web-worker CPU {cpu_ms:.1f} ms/request  "
                      f"load-generator CPU {result['client_cpu_ms']:.1f} ms/request  "
                      f"load {os.getloadavg()[0]:.1f}{verdict}")
                for line in result["first_errors"]:
                    print("   ", line)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if bouncer is not None:
            bouncer.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
