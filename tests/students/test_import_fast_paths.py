"""The import's fast paths give the same result as the plain ones.

New students of a first import are staged in pass 1 and written at the commit without a second
read; stored students are compared by jsonb text where that is exact and by value otherwise;
a student written by someone else between validation and commit sends every row through the
full compare again. Small chunks make every path cross chunk boundaries.
"""

from __future__ import annotations

import gc

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections

from students import sql
from students.importing import import_file, import_preview
from students.importing.service import _statistics_stale
from students.importing.uploads import import_job_run, import_upload_create_from_path, import_upload_start
from students.importing.upsert import _STORED, ChunkWriter
from students.models import ChangeSource, Student, StudentChange
from students.services import student_save
from tests.factories import InstitutionFactory

from .import_helpers import database_state, write_file

pytestmark = pytest.mark.django_db

HEADER = "student_id,name,outcome,credits,score,label\r\n"


def rows(count: int, *, score=lambda i: f"{i}.5", label=lambda i: f"group {i % 3}") -> str:
    lines = [f"X{i:03d},Student {i},{'Dropout' if i % 4 == 0 else 'Enrolled'},{i % 7},{score(i)},{label(i)}"
             for i in range(1, count + 1)]
    return HEADER + "\r\n".join(lines) + "\r\n"


def run(institution, path, **kwargs):
    mapping = import_preview(institution=institution, path=path).mapping
    return import_file(institution=institution, path=path, mapping=mapping, commit=True, chunk_rows=3, **kwargs)


def stored(institution) -> dict:
    return {s.external_id: (s.name, s.outcome, s.status, s.features)
            for s in Student.objects.for_institution(institution)}


def test_first_import_into_an_empty_institution_then_no_op_then_changes(tenant_a, tmp_path):
    from institutions.jobs import job_create

    institution = InstitutionFactory(slug="gamma")
    job, _ = job_create(institution=institution, kind="import")
    first = run(institution, write_file(tmp_path, "one.csv", rows(11)), job=job, actor=tenant_a.admin)

    assert (first.created, first.updated, first.unchanged, first.error_count) == (11, 0, 0, 0)
    students = stored(institution)
    assert students["X004"][:3] == ("Student 4", "dropped_out", "inactive")
    assert students["X005"][3] == {"credits": 5.0, "score": 5.5, "label": "group 2"}
    changes = StudentChange.objects.for_institution(institution)
    assert changes.count() == 11
    for change in changes.select_related("student"):
        assert change.created and change.changes == {"external_id": [None, change.student.external_id]}
        assert (change.job_id, change.actor_id, change.source) == (job.pk, tenant_a.admin.pk, ChangeSource.IMPORT)
    state = database_state(institution)

    again = run(institution, write_file(tmp_path, "same.csv", rows(11)))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 11)
    assert database_state(institution) == state

    later = rows(13, score=lambda i: "9.25" if i == 2 else f"{i}.5")  # one changed value, two new students
    report = run(institution, write_file(tmp_path, "later.csv", later))
    assert (report.created, report.updated, report.unchanged) == (2, 1, 10)
    x002 = Student.objects.for_institution(institution).get(external_id="X002")
    assert StudentChange.objects.for_institution(institution).filter(student=x002).latest("id").changes == {
        "features.score": [2.5, 9.25]}
    assert set(stored(institution)) == {f"X{i:03d}" for i in range(1, 14)}
    assert stored(tenant_a.institution).keys() == {f"S{i:03d}" for i in range(1, 7)}  # the other tenant untouched


@pytest.mark.parametrize("score, label", [
    ("1e-07", "plain"),  # jsonb prints 0.0000001
    ("12345678901234567890", "plain"),  # float repr 1.2345678901234567e+19
    ("-0", "plain"),  # -0.0: jsonb prints 0.0
    ("2.50", "tab\there"),  # a control character inside a category
])
def test_values_jsonb_prints_differently_are_compared_by_value(tmp_path, score, label):
    institution = InstitutionFactory(slug="delta")
    quoted = f'"{label}"' if "\t" in label else label
    content = rows(5, score=lambda i: score if i == 3 else f"{i}.5", label=lambda i: quoted if i == 3 else "x")
    first = run(institution, write_file(tmp_path, "one.csv", content))
    assert (first.created, first.error_count) == (5, 0)
    state = database_state(institution)

    again = run(institution, write_file(tmp_path, "same.csv", content))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    assert database_state(institution) == state

    changed = content.replace("X003,Student 3", "X003,Student Three")
    report = run(institution, write_file(tmp_path, "changed.csv", changed))
    assert (report.created, report.updated, report.unchanged) == (0, 1, 4)
    x003 = Student.objects.for_institution(institution).get(external_id="X003")
    assert StudentChange.objects.for_institution(institution).filter(student=x003).latest("id").changes == {
        "name": ["Student 3", "Student Three"]}
    assert x003.features["label"] == label and float(x003.features["score"]) == float(score)


def test_a_student_written_between_validation_and_commit_is_compared_again(tenant_a, tmp_path):
    institution = InstitutionFactory(slug="epsilon")
    path = write_file(tmp_path, "one.csv", rows(8))
    written = []

    def progress(stage, done, total):
        if stage == "validating" and done and not written:
            # Someone creates one of the file's students while the file is being validated.
            written.append(student_save(institution=institution, student=None,
                                        data={"external_id": "X007", "name": "Typed by hand"})[0])

    report = run(institution, path, progress=progress)

    assert written and (report.created, report.updated, report.unchanged) == (7, 1, 0)
    students = stored(institution)
    assert len(students) == 8 and students["X007"][0] == "Student 7"
    x007 = Student.objects.for_institution(institution).get(external_id="X007")
    assert list(StudentChange.objects.for_institution(institution).filter(student=x007).order_by("id").values_list(
        "created", "source")) == [(True, ChangeSource.WEB), (False, ChangeSource.IMPORT)]


def test_statistics_that_miss_a_load_are_noticed(tenant_a):
    """Why an import may end with ANALYZE: with statistics from before a first import, the next
    import's chunk lookups scanned all of the institution's students per chunk (20-40 s for a
    no-op re-import of 100,000 rows) instead of probing the (institution, external_id) index."""
    institution = InstitutionFactory(slug="zeta")
    with connection.cursor() as cursor:
        cursor.execute(sql.STUDENTS_ANALYZE)  # statistics from before the load
    Student.objects.for_institution(institution).bulk_create(
        [Student(institution=institution, external_id=f"Z{i:05d}", features={"units_approved": 1.0})
         for i in range(20_000)], batch_size=5000)

    assert _statistics_stale(institution, 20_000)
    assert not _statistics_stale(institution, 5_000)  # small imports never ask

    with connection.cursor() as cursor:  # what _refresh_statistics runs after the import's commit
        cursor.execute(sql.STUDENTS_ANALYZE)

    assert not _statistics_stale(institution, 20_000)  # a re-import of the same file: no second ANALYZE
    writer = ChunkWriter(institution=institution, source=ChangeSource.IMPORT, job_id=None, actor_id=None)
    found = writer._existing([f"Z{i:05d}" for i in range(0, 20_000, 10)] + ["S001"])  # S001: tenant A's
    assert len(found) == 2000 and found["Z00010"][_STORED["external_id"]] == "Z00010"


def test_import_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    institution = InstitutionFactory(slug="eta")
    path = write_file(tmp_path, "one.csv", rows(4))
    assert gc.get_freeze_count() == 0
    assert run(institution, path).created == 4
    assert gc.get_freeze_count() == 0 and gc.isenabled()

    gc.freeze()  # as a pre-forking server may have done: the import must not undo it
    try:
        frozen = gc.get_freeze_count()
        assert run(institution, path).unchanged == 4
        assert gc.get_freeze_count() > frozen // 2  # still frozen (refcounting may free a few)
    finally:
        gc.unfreeze()


def _counting_students_while_validating(institution):
    """A progress callback that records, at each validation step, how many students the import's
    own transaction already holds for ``institution``."""
    seen = []

    def progress(stage, done, total):
        if stage == "validating" and done:
            seen.append(Student.objects.for_institution(institution).count())

    return seen, progress


def test_a_first_import_whose_last_rows_are_invalid_writes_nothing(tenant_a, tmp_path):
    # A first import moves its new students in chunk by chunk while it validates;
    # an error further down the file must still leave the institution exactly as it was.
    institution = InstitutionFactory(slug="theta")
    content = rows(11).replace("X010,Student 10,Enrolled", "X010,Student 10,Banana")
    before = database_state(institution, tenant_a.institution)
    seen, progress = _counting_students_while_validating(institution)

    report = run(institution, write_file(tmp_path, "bad.csv", content), progress=progress)

    assert report.error_count == 1 and not report.committed
    assert (report.created, report.updated, report.unchanged) == (0, 0, 0)
    assert report.errors[0].row == 11 and "Banana" in report.errors[0].value
    assert database_state(institution, tenant_a.institution) == before
    assert not Student.objects.for_institution(institution).exists()
    assert max(seen) == 9  # the chunks before the bad row were in, inside the rolled-back transaction


def test_a_first_import_of_only_the_valid_rows_writes_the_others(tmp_path):
    institution = InstitutionFactory(slug="iota")
    content = rows(11).replace("X004,Student 4,Dropout", "X004,Student 4,Banana")

    report = run(institution, write_file(tmp_path, "some-bad.csv", content), valid_rows_only=True)

    assert (report.created, report.skipped, report.error_count) == (10, 1, 1)
    assert set(stored(institution)) == {f"X{i:03d}" for i in range(1, 12)} - {"X004"}
    assert StudentChange.objects.for_institution(institution).filter(created=True).count() == 10


def test_a_first_import_moves_its_students_in_while_validating(tmp_path):
    institution = InstitutionFactory(slug="kappa")
    seen, progress = _counting_students_while_validating(institution)

    report = run(institution, write_file(tmp_path, "one.csv", rows(11)), progress=progress)

    assert (report.created, report.updated, report.unchanged) == (11, 0, 0)
    assert len(stored(institution)) == 11
    assert seen[0] == 3 and seen[-1] == 11  # chunk by chunk, before the commit


def test_a_later_import_writes_its_new_students_only_at_the_commit(tmp_path):
    # Stored students may change under a later import, so it moves nothing in before the whole
    # file has proved valid and the commit has checked that nobody wrote a student meanwhile.
    institution = InstitutionFactory(slug="lambda")
    run(institution, write_file(tmp_path, "one.csv", rows(4)))
    seen, progress = _counting_students_while_validating(institution)

    report = run(institution, write_file(tmp_path, "more.csv", rows(11)), progress=progress)

    assert (report.created, report.updated, report.unchanged) == (7, 0, 4)
    assert set(seen) == {4} and len(stored(institution)) == 11


@pytest.mark.django_db(transaction=True)
def test_an_import_jobs_progress_is_visible_to_other_sessions_before_its_commit(tenants, tmp_path):
    a, _b = tenants
    path = write_file(tmp_path, "one.csv", rows(11))
    upload = import_upload_create_from_path(institution=a.institution, path=path)
    upload.mapping = import_preview(institution=a.institution, path=path).mapping.as_dict()
    upload.save()
    job = import_upload_start(upload=upload, commit=True, dispatch=False)
    observer = connections.create_connection(DEFAULT_DB_ALIAS)  # another session: sees committed rows only
    seen = []  # (what the import reported, what another session read right after)

    def progress(stage, done, total):
        if connection.in_atomic_block and done:
            with observer.cursor() as cursor:
                cursor.execute("SELECT stage, progress_done FROM institutions_job WHERE id = %s", [job.pk])
                seen.append(((stage, done), cursor.fetchone()))

    try:
        report = import_job_run(institution=a.institution, job=job, progress=progress)
    finally:
        observer.close()

    assert report.created == 11
    assert len(seen) >= 2 and {reported[0] for reported, _observed in seen} == {"validating", "writing"}
    assert all(observed == reported for reported, observed in seen)
