"""The two database roles of the tenancy guard (docs/operations.md, "Database roles").

- The **owner** owns the tables: ``migrate`` (and the creation of a test database) runs as it.
- The **application role** (``DATABASE_APP_ROLE``, default ``dropout_app``) owns nothing, so
  PostgreSQL's row-level security applies to it; every other connection acts as it. Where only
  one login exists (the embedded server, CI: a superuser), connections switch to it with
  ``SET ROLE``; in production ``DATABASE_URL`` may log in as it directly, with
  ``DATABASE_OWNER_URL`` for ``migrate``.

The backend (``dropout_platform/postgres/base.py``) reads this module; so do the migrations that
create the role and the policies (``institutions.migration_operations``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from django.conf import settings

# The session setting the row-level security policies read: the current institution's id, or
# empty (no institution scope: platform-level code).
INSTITUTION_SETTING = "app.institution_id"

# True while ``migrate`` runs: connections opened then stay the login role, the tables' owner.
_owner_session: ContextVar[bool] = ContextVar("owner_session", default=False)


def app_role() -> str:
    """The role application connections act as ('' turns the guard off: not recommended)."""
    return getattr(settings, "DATABASE_APP_ROLE", "")


def in_owner_session() -> bool:
    return _owner_session.get()


@contextlib.contextmanager
def owner_session() -> Iterator[None]:
    """Open the enclosed block's connections as the owner (``DATABASE_OWNER_URL``, else the login)."""
    token = _owner_session.set(True)
    try:
        yield
    finally:
        _owner_session.reset(token)


@contextlib.contextmanager
def owner_connection(alias: str = "default") -> Iterator[None]:
    """Run the enclosed block on connections of the owner: for ``migrate`` and ``flush``.

    The alias's connection is closed first and last, so no connection opened as the owner is
    used afterwards; its login becomes ``DATABASE_OWNER_URL``'s where that is set.
    """
    from django.db import connections

    connection = connections[alias]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(getattr(settings, "DATABASE_OWNER", {}))
    try:
        with owner_session():
            yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
