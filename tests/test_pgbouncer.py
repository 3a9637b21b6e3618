"""Behind PgBouncer in transaction mode (Debian's pgbouncer, started here) every query sees its own
institution's rows only, although one server connection serves every client in turn; and the
session-mode code would leak there, which is why DATABASE_POOL_MODE=transaction exists."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
from django.db import connection

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
POOLED_ROLE = "dropout_app_pooled"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(PGBOUNCER).exists(),
                       reason="Debian's pgbouncer is not installed (.ci/run installs it)"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_connection():
    params = connection.settings_dict
    return psycopg2.connect(host=params["HOST"] or "127.0.0.1", port=params["PORT"] or 5432,
                            user=params["USER"], password=params["PASSWORD"] or None, dbname=params["NAME"])


@pytest.fixture
def pgbouncer():
    """PgBouncer in transaction mode with ONE server connection, logging in as a member of the
    application role (what docs/operations.md, "PgBouncer", asks a deployment to create)."""
    server = _server_connection()
    server.autocommit = True
    with server.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [POOLED_ROLE])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE ROLE "{POOLED_ROLE}" LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE dropout_app')
    server.close()
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    folder.chmod(0o777)
    port = _free_port()
    params = connection.settings_dict
    (folder / "users.txt").write_text(f'"{POOLED_ROLE}" ""\n')
    (folder / "pgbouncer.ini").write_text(f"""[databases]
{params["NAME"]} = host={params["HOST"] or "127.0.0.1"} port={params["PORT"] or 5432} dbname={params["NAME"]}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = 1
max_client_conn = 50
ignore_startup_parameters = extra_float_digits,options
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
""")
    for path in folder.iterdir():
        path.chmod(0o644)
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        command[1:1] = ["-u", "nobody"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {process.stdout.read().decode()}") from None
            time.sleep(0.1)
    try:
        yield {"url": f"postgres://{POOLED_ROLE}@127.0.0.1:{port}/{params['NAME']}", "folder": folder}
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


CHILD = r"""
import json, sys, threading
import django
django.setup()
from django.db import connection, transaction
from django.test import Client
from institutions.models import Institution
from institutions.scoping import institution_scope

slugs, expected = sys.argv[1].split(","), json.loads(sys.argv[2])
institutions = [Institution.objects.get(slug=slug) for slug in slugs]
barrier = threading.Barrier(len(institutions))
errors = []

def count(cursor):
    cursor.execute("SELECT count(*) FROM students_student")  # no WHERE: row-level security alone
    return cursor.fetchone()[0]

def work(institution):
    want = expected[institution.slug]
    try:
        for step in range(30):
            barrier.wait(timeout=60)
            with institution_scope(institution):
                with connection.cursor() as cursor:
                    got = count(cursor)
                    if got != want:
                        errors.append([institution.slug, step, "autocommit", got])
                if step % 3 == 0:
                    # In a transaction: its own rows, the other institution's inside a nested
                    # scope, and its own again after it.
                    other = next(o for o in institutions if o != institution)
                    with transaction.atomic(), connection.cursor() as cursor:
                        got = count(cursor)
                        with institution_scope(other):
                            theirs = count(cursor)
                        again = count(cursor)
                    if (got, theirs, again) != (want, expected[other.slug], want):
                        errors.append([institution.slug, step, "transaction", got, theirs, again])
    except threading.BrokenBarrierError:
        errors.append([institution.slug, "barrier broken"])
        barrier.abort()
    finally:
        connection.close()

threads = [threading.Thread(target=work, args=(institution,)) for institution in institutions]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

pages = {}
if len(sys.argv) > 3:
    from django.contrib.auth import get_user_model
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=sys.argv[3]))
    page = client.get(f"/i/{slugs[0]}/students/")
    pages = {"status": page.status_code, "text": page.content.decode()}
print(json.dumps({"errors": errors, "pages": pages}))
"""


def _run(pgbouncer: dict, mode: str, tenants, username: str | None = None) -> dict:
    a, b = tenants
    from students.models import Student

    expected = {t.institution.slug: Student.objects.for_institution(t.institution).count() for t in tenants}
    assert len(set(expected.values())) == 2  # different counts, so a leak shows
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dropout_platform.settings_test", "PYTHONPATH": str(PROJECT_ROOT),
           "DATABASE_URL": pgbouncer["url"], "DATABASE_POOL_MODE": mode, "DATABASE_CONN_MAX_AGE": "60"}
    env.pop("TEST_DATABASE_NAME", None)
    args = [sys.executable, "-c", CHILD, f"{a.institution.slug},{b.institution.slug}", json.dumps(expected)]
    run = subprocess.run(args + ([username] if username else []), cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_behind_pgbouncer_in_transaction_mode_each_query_sees_its_institution_only(pgbouncer, tenants):
    a, b = tenants
    b.students[0].delete()  # different counts, so a leak shows as a wrong count
    result = _run(pgbouncer, "transaction", (a, b), username=a.advisor.username)
    assert result["errors"] == []
    assert result["pages"]["status"] == 200
    assert a.students[1].external_id in result["pages"]["text"]


def test_the_session_mode_code_would_leak_behind_a_transaction_pooler(pgbouncer, tenants):
    """The control: what DATABASE_POOL_MODE=transaction prevents really happens without it."""
    a, b = tenants
    b.students[0].delete()
    result = _run(pgbouncer, "session", (a, b))
    assert result["errors"], "expected the session-level setting to follow the server connection"


def test_a_pooled_login_must_not_bypass_row_level_security(pgbouncer, tenants):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dropout_platform.settings_test", "PYTHONPATH": str(PROJECT_ROOT),
           "DATABASE_URL": pgbouncer["url"].replace(POOLED_ROLE, "postgres"), "DATABASE_POOL_MODE": "transaction"}
    (pgbouncer["folder"] / "users.txt").chmod(0o644)
    script = ("import django; django.setup()\nfrom django.db import connection\n"
              "try:\n    connection.ensure_connection()\n"
              "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    direct = connection.settings_dict
    env["DATABASE_URL"] = (f"postgres://{direct['USER']}@{direct['HOST'] or '127.0.0.1'}:{direct['PORT'] or 5432}/"
                           f"{direct['NAME']}")  # a superuser login, as a misconfigured pooler would pass
    env.pop("TEST_DATABASE_NAME", None)
    run = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert "ImproperlyConfigured DATABASE_POOL_MODE=transaction: DATABASE_URL must log in as the application role" \
        in run.stdout, run.stdout + run.stderr[-2000:]
