"""The project's PostgreSQL backend: Django's, plus the database-level tenancy guard (``base.py``)."""
