"""Shared fixtures. Every fixture set holds two institutions, A and B, each with its own users
and students, so every test can check that A's people never reach B's data."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.utils import translation
from rest_framework.test import APIClient

from institutions.models import Institution, Role
from students.models import FeatureKind, Outcome

from .factories import FeatureDefinitionFactory, InstitutionFactory, MembershipFactory, StudentFactory, UserFactory


@pytest.fixture(autouse=True)
def _no_language_carried_over():
    """A page activates its reader's language for the rest of the thread (as a worker's next request
    would activate its own); the next test starts from the default, as a fresh request does."""
    yield
    translation.deactivate()


PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Tenant:
    institution: Institution
    admin: object
    advisor: object
    viewer: object
    students: list
    features: list


def build_tenant(slug: str) -> Tenant:
    institution = InstitutionFactory(slug=slug, name=f"{slug.upper()} University")
    users = {}
    for role in (Role.ADMIN, Role.ADVISOR, Role.VIEWER):
        user = UserFactory(username=f"{slug}-{role}")
        MembershipFactory(institution=institution, user=user, role=role)
        users[role] = user
    features = [
        FeatureDefinitionFactory(institution=institution, key="units_approved", label="Units approved",
                                 min_value=0, max_value=30, actionable=True),
        FeatureDefinitionFactory(institution=institution, key="tuition_up_to_date", label="Tuition up to date",
                                 kind=FeatureKind.BOOLEAN, min_value=None, max_value=None, actionable=True),
        FeatureDefinitionFactory(institution=institution, key="gender", label="Gender",
                                 kind=FeatureKind.CATEGORICAL, min_value=None, max_value=None, protected=True,
                                 categories=[{"value": "f", "label": "Female"}, {"value": "m", "label": "Male"}]),
    ]
    students = [
        StudentFactory(institution=institution, external_id=f"S{i:03d}", advisor=users[Role.ADVISOR],
                       outcome=Outcome.ENROLLED if i % 3 else Outcome.DROPPED_OUT,
                       features={"units_approved": float(i), "tuition_up_to_date": bool(i % 2), "gender": "f"})
        for i in range(1, 7)
    ]
    return Tenant(institution, users[Role.ADMIN], users[Role.ADVISOR], users[Role.VIEWER], students, features)


@pytest.fixture
def tenant_a(db) -> Tenant:
    return build_tenant("alpha")


@pytest.fixture
def tenant_b(db) -> Tenant:
    # Deliberately the same external ids as A: isolation must not depend on ids being distinct.
    return build_tenant("beta")


@pytest.fixture
def tenants(tenant_a, tenant_b) -> tuple[Tenant, Tenant]:
    return tenant_a, tenant_b


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


# Redelivery of a task whose worker died needs Redis (the filesystem broker deletes a message once read).
needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a real Redis (REDIS_URL)")


def database_url_of_test_database() -> str:
    db = settings.DATABASES["default"]
    # A socket directory (the embedded server) goes in the host part percent-encoded.
    host = quote(db["HOST"] or "127.0.0.1", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{quote(db['USER'] or '', safe='')}{password}@{host}{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_session(django_db_setup, django_db_blocker):
    """A real ``celery worker`` process on the configured broker, using the test database (started once).

    For tests marked ``worker``. The broker is Redis where REDIS_URL is set (CI), otherwise the
    filesystem broker of the embedded default; the database is the test database either way.
    """
    yield from celery_worker_started()


def celery_worker_started(name: str = "", extra_env: dict | None = None, loglevel: str = "INFO"):
    """Start a worker (its own queue, ``extra_env`` on top of this process's), yield its details,
    stop it: the body of :func:`celery_worker_session`, for a test that needs a worker configured
    differently (e.g. pointed at a mail server of its own)."""
    env = {**os.environ, "DATABASE_URL": database_url_of_test_database(),
           "DJANGO_SETTINGS_MODULE": "dropout_platform.settings_test", "PYTHONPATH": str(PROJECT_ROOT),
           **(extra_env or {})}
    # A queue of its own, so a worker left over from another run can never steal these tasks.
    queue = f"test-{name}{socket.gethostname()}-{os.getpid()}"
    log = open(PROJECT_ROOT / "var" / f"test-worker-{name}{os.getpid()}.log", "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dropout_platform", "worker", f"--loglevel={loglevel}", "--pool=solo",
         "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue,
         "-n", f"{queue}@%h"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    from dropout_platform.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = app.control.ping(destination=[f"{queue}@{socket.gethostname()}"], timeout=1.0)
        if replies:
            break
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited early; see {log.name}")
    else:
        process.kill()
        raise RuntimeError(f"celery worker did not answer a ping within 60 s; see {log.name}")
    try:  # a finally, so that closing the generator (not only exhausting it) stops the worker
        yield {"process": process, "queue": queue, "env": env, "log": log.name}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def celery_worker_process(celery_worker_session):
    """Send this test's tasks to the real worker; every other test keeps running them in-process."""
    yield from tasks_sent_to(celery_worker_session)


def tasks_sent_to(worker: dict):
    """Until the generator is closed, tasks go to ``worker``'s queue instead of running in-process."""
    from dropout_platform.celery import app

    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = worker["queue"]
    try:
        yield worker
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous


def pytest_sessionstart(session):
    """The translation catalogues are compiled (as ``make install`` does), so that pytest run
    straight from a fresh clone renders the Spanish and Portuguese pages too (tests/test_i18n.py)."""
    from institutions.translations import catalogues_compile

    catalogues_compile()
