"""The database-level tenancy guard's migrations (docs/tenancy.md, "Database-level guard").

Its migrations span every app (the application role, the same-institution keys between the
apps' tables, row-level security on every tenant table), so they live in an app of their own
that comes after all the others; the operations are in ``institutions.migration_operations``
and the connection side in ``dropout_platform/postgres/base.py``.
"""
