"""Entries of reads made outside a transaction, written in batches by one thread per process.

A page or API read is cheap (an API student detail costs about 1.5 ms of the web worker and one
indexed SELECT); a transaction of its own for each entry cost about as much again, because a write
is several times a read's work in PostgreSQL (a transaction id, the heap and four index entries,
the commit record), and under load that showed as +30-60 % at p95 (docs/benchmarks.md). Here an
entry joins this process's batch instead; a flusher thread writes the batch in one multi-row
``INSERT`` (:func:`audit.sql.access_entries_insert_batch`) when it holds ``AUDIT_BATCH_SIZE``
entries or its oldest is ``AUDIT_BATCH_MAX_WAIT_MS`` old, whichever comes first, so one write
serves many reads and no request waits for it.

What this trades (docs/privacy.md says it for a privacy officer):

- **Visibility.** Another process sees an entry at most ``AUDIT_BATCH_MAX_WAIT_MS`` later. This
  process sees it at once: every reader of the log (:mod:`audit.selectors`, the subject export,
  the erasure's check) calls :func:`flush` first.
- **A hard kill.** The entries still waiting when the process is killed with SIGKILL (or the machine
  loses power) are lost: at most one batch, the reads of the last ``AUDIT_BATCH_MAX_WAIT_MS``. A
  normal exit (gunicorn's graceful stop, SIGTERM, the end of a command) writes them first
  (``atexit``), and so does the end of each Celery task. While PostgreSQL is unreachable the
  entries wait and are retried; once ``AUDIT_BATCH_LIMIT`` entries wait, a new entry is written
  by its request itself, so nothing is dropped while the process lives.
- **Erasure.** An entry of a student erased while it waited is written without the student (the
  batch statement links an entry to a student only if that student still exists), so an erasure
  cannot be undone by a read that happened just before it.

An entry written inside a transaction (the erasure's own record, say) never waits: it is part of
that transaction. With ``AUDIT_BATCH_SIZE=1`` every entry is written before its response leaves,
as before this module.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time

from django.conf import settings
from django.db import IntegrityError, connection, connections
from psycopg2 import sql as pgsql

from . import sql

logger = logging.getLogger(__name__)
CHECK_EVERY_SECONDS = 0.25  # how often the thread looks at the batch's age (and lets an idle connection go)


class _Batch:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[dict] = []
        self.oldest = 0.0  # monotonic time of the oldest waiting entry
        self.due = threading.Event()
        self.pid = 0  # the process whose flusher thread runs (a fork starts its own)
        self.write_lock = threading.Lock()  # one writer at a time: the thread, or a reader's flush

    def add(self, row: dict) -> bool:
        """Queue ``row``; False when the batch is full (the caller writes it itself)."""
        with self.lock:
            if os.getpid() != self.pid:  # a forked child inherits the parent's rows: not its own
                self.rows, self.pid = [], os.getpid()
                self.due = threading.Event()
                threading.Thread(target=self._run, name="audit-batch", daemon=True).start()
            if len(self.rows) >= settings.AUDIT_BATCH_LIMIT:
                return False
            if not self.rows:
                self.oldest = time.monotonic()
            self.rows.append(row)
            if len(self.rows) >= settings.AUDIT_BATCH_SIZE:
                self.due.set()
        return True

    def take(self) -> list[dict]:
        with self.lock:
            rows, self.rows = self.rows, []
            self.due.clear()
            return rows

    def put_back(self, rows: list[dict]) -> None:
        with self.lock:
            self.rows[:0] = rows
            self.oldest = time.monotonic()

    def write(self) -> int:
        """Write what waits now, in the calling thread; returns how many entries were written."""
        with self.write_lock:
            rows = self.take()
            if not rows:
                return 0
            try:
                write_rows(rows)
            except IntegrityError:
                return _write_one_by_one(rows)
            except Exception:
                self.put_back(rows)
                connection.close()  # this thread's; the next attempt connects again
                raise
            return len(rows)

    def _run(self) -> None:
        try:
            while True:
                wait = settings.AUDIT_BATCH_MAX_WAIT_MS / 1000
                self.due.wait(timeout=min(wait, CHECK_EVERY_SECONDS))
                with self.lock:
                    idle = not self.rows
                    waiting = not idle and (self.due.is_set() or time.monotonic() - self.oldest >= wait)
                if not waiting:
                    if idle:
                        connection.close()  # a process that reads nothing holds no connection for its log
                    continue
                try:
                    self.write()
                except Exception as error:  # the thread must outlive any failure: the entries wait
                    logger.warning("Access log entries could not be written yet (%s); retrying", error)
                    time.sleep(min(wait, 1.0))
        finally:
            connections.close_all()


_batch = _Batch()


_statement = sql.ACCESS_ENTRIES_INSERT_BATCH_UNLINKED.format(**sql.ACCESS_ENTRIES_BATCH_PARTS)


def link_entries_to_students(table: str) -> None:
    """Called by the students app when it is loaded: a batch names a student only if ``table``
    still holds that student's row when the batch is written."""
    global _statement
    _statement = sql.ACCESS_ENTRIES_INSERT_BATCH.format(students=pgsql.Identifier(table),
                                                        **sql.ACCESS_ENTRIES_BATCH_PARTS)


def write_rows(rows: list[dict]) -> None:
    """One statement for ``rows`` (entries as :func:`audit.services.access_record` builds them):
    each field goes as the array of the entries' values."""
    arrays = {name: [row[name] for row in rows] for name in sql.INSERTED_FIELDS}
    with connection.cursor() as cursor:
        cursor.execute(_statement, arrays)


def _write_one_by_one(rows: list[dict]) -> int:
    """After a batch was refused by a constraint: the entries alone. An entry whose institution was
    removed while it waited is refused again, and dropped (its log went with the institution)."""
    written = 0
    for row in rows:
        try:
            write_rows([row])
            written += 1
        except IntegrityError as error:
            logger.warning("Access log entry of institution %s dropped: %s", row.get("institution_id"), error)
    return written


def enqueue(row: dict) -> None:
    """Record ``row``: in this process's batch, or at once when the batch is full or disabled."""
    if settings.AUDIT_BATCH_SIZE <= 1 or not _batch.add(row):
        write_rows([row])


def flush() -> int:
    """Write this process's waiting entries now (before reading the log); returns how many.

    Inside a transaction the entries are written on a connection of their own (a thread's), so
    that they do not depend on the caller's commit."""
    if not _batch.rows:
        return 0
    if not connection.in_atomic_block:
        return _batch.write()
    outcome: list = []

    def write_apart():
        # Whatever stops the write is handed to the caller, as _batch.write raises it in a
        # caller's own thread (the entries were put back): one error path, not a silent thread.
        try:
            outcome.append(_batch.write())
        except BaseException as error:
            outcome.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=write_apart, name="audit-flush")
    thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def waiting() -> int:
    return len(_batch.rows)


def _flush_at_exit() -> None:
    try:
        flush()
    except Exception as error:  # the process is ending (its log handlers may be closed): say what was lost
        print(f"Access log: {waiting()} entries could not be written at exit: {error}", file=sys.__stderr__)


atexit.register(_flush_at_exit)
