"""The PostgreSQL connection the web processes keep: a health check at the start of a request
that costs no round trip for a healthy idle connection, a session the server ended is replaced
instead of failing the request, and prepared reads outlive a migration."""

from __future__ import annotations

import time

import psycopg2
import pytest
from django.conf import settings
from django.db import NotSupportedError, close_old_connections, connection, connections, transaction
from django.urls import reverse

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend's health check"),
    pytest.mark.django_db(transaction=True),  # the test ends the connection's session
]


def session_activity(pid: int, other) -> tuple[str, str]:
    """The state and last statement of the session ``pid``, as pg_stat_activity shows them."""
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()


def admin_connection():
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    other = psycopg2.connect(**params)
    other.autocommit = True
    return other


def test_the_backend_in_use_is_the_one_with_the_socket_health_check():
    assert settings.DATABASES["default"]["ENGINE"] == "dropout_platform.db.postgresql"
    assert type(connections["default"]).__module__ == "dropout_platform.db.postgresql.base"


def test_a_healthy_idle_connection_is_usable_without_running_a_query():
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'marker-before-health-check'")
    other = admin_connection()
    try:
        assert connection.is_usable()
        # The session's last statement is still ours: the check sent nothing.
        state, query = session_activity(connection.connection.info.backend_pid, other)
        assert state == "idle" and query == "SELECT 'marker-before-health-check'"
    finally:
        other.close()


def test_a_session_ended_by_the_server_is_replaced_and_the_request_succeeds(tenant_a, client):
    client.force_login(tenant_a.admin)
    url = reverse("api-student-list", args=[tenant_a.institution.slug])
    assert client.get(url).status_code == 200
    ended = connection.connection.info.backend_pid
    other = admin_connection()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [ended])
        deadline = time.monotonic() + 5
        while connection.is_usable() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not connection.is_usable()

        # What Django runs when a request starts (the test client skips it): the request's first
        # query then checks the connection and reconnects before the view runs.
        close_old_connections()
        response = client.get(url)
        assert response.status_code == 200 and response.json()["count"] == len(tenant_a.students)
        assert connection.connection.info.backend_pid != ended
    finally:
        other.close()


def test_a_prepared_read_survives_a_migration_that_changes_a_returned_columns_type():
    # PostgreSQL refuses to run a prepared statement whose result columns changed type ("cached
    # plan must not change result type"); the statement is prepared again instead of failing
    # every request on the connection until it is closed.
    from institutions.prepared import execute_prepared

    sql = "SELECT a FROM prepared_probe WHERE a = %s"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE prepared_probe (a varchar(5))")
        cursor.execute("INSERT INTO prepared_probe VALUES ('x')")
        execute_prepared(cursor, sql, ["x"])
        assert cursor.fetchone() == ("x",)
        cursor.execute("ALTER TABLE prepared_probe ALTER COLUMN a TYPE varchar(10)")
        execute_prepared(cursor, sql, ["x"])
        assert cursor.fetchone() == ("x",)

        cursor.execute("ALTER TABLE prepared_probe ALTER COLUMN a TYPE text")
        with pytest.raises(NotSupportedError), transaction.atomic():  # inside a transaction: it fails once...
            execute_prepared(cursor, sql, ["x"])
        execute_prepared(cursor, sql, ["x"])  # ...and the connection's next use prepares it again
        assert cursor.fetchone() == ("x",)
        cursor.execute("DROP TABLE prepared_probe")
