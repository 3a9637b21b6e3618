"""Behind PgBouncer in transaction mode (Debian's pgbouncer, started here) every query sees its own
institution's rows only, although one server connection serves every client in turn; and the
session-mode code would leak there, which is why DATABASE_POOL_MODE=transaction exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from .servers import PGBOUNCER, POOLED_ROLE, PgBouncer, pooled_login_role_ensure

PROJECT_ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(PGBOUNCER).exists(),
                       reason="Debian's pgbouncer is not installed (.ci/run installs it)"),
]


def _server() -> dict:
    params = connection.settings_dict
    return {"host": params["HOST"] or "127.0.0.1", "port": int(params["PORT"] or 5432), "dbname": params["NAME"]}


@pytest.fixture
def pgbouncer():
    """PgBouncer in transaction mode with ONE server connection, logging in as a member of the
    application role (what docs/operations.md, "PgBouncer", asks a deployment to create)."""
    params = connection.settings_dict
    pooled_login_role_ensure(**_server(), user=params["USER"], password=params["PASSWORD"] or None)
    bouncer = PgBouncer(**_server(), users=[POOLED_ROLE, params["USER"]])
    bouncer.start()
    try:
        yield {"url": bouncer.url(POOLED_ROLE), "folder": bouncer.folder}
    finally:
        bouncer.stop()


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
