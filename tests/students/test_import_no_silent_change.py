"""An import never changes stored data the administrator did not see coming: a file without ids
never updates existing students, a column blank in every row leaves stored values alone unless
clearing is asked for, and only plain decimal notation is read as a number."""

from __future__ import annotations

import pytest

from students.importing import ImportFileError, import_file, import_preview, mapping_from_dict
from students.models import Student

from .import_helpers import UCI_FILE, database_state, write_file

pytestmark = pytest.mark.django_db


def run(institution, path, *, commit=True, mapping=None):
    mapping = mapping if mapping is not None else import_preview(institution=institution, path=path).mapping
    return import_file(institution=institution, path=path, mapping=mapping, commit=commit)


def refused(institution, path, mapping=None, *, commit=True) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        run(institution, path, mapping=mapping, commit=commit)
    return caught.value


# --- files without ids -------------------------------------------------------------------------

def test_numbering_rows_is_not_suggested_once_the_institution_has_students(tenants):
    a, _b = tenants
    assert Student.objects.for_institution(a.institution).exists()
    assert import_preview(institution=a.institution, path=UCI_FILE).mapping.id_row_prefix == ""
    Student.objects.for_institution(a.institution).delete()
    assert import_preview(institution=a.institution, path=UCI_FILE).mapping.id_row_prefix == "UCI"


@pytest.mark.parametrize("commit", [True, False])
def test_a_file_numbered_by_rows_never_updates_existing_students(tenants, tmp_path, commit):
    # As in the report: a first import numbered the rows, then a cut of the same export, numbered
    # again, would have matched UCI-00001.. to other students and overwritten them.
    a, b = tenants
    Student.objects.for_institution(a.institution).delete()
    first = write_file(tmp_path, "first.csv", "units_approved\r\n1\r\n2\r\n3\r\n4\r\n")
    mapping = {"columns": {"units_approved": {"target": "feature", "feature": "units_approved"}},
               "id_row_prefix": "UCI"}
    assert run(a.institution, first, mapping=mapping_from_dict(mapping)).created == 4
    before = database_state(a.institution, b.institution)
    cut = write_file(tmp_path, "cut.csv", "units_approved\r\n9\r\n8\r\n7\r\n")

    error = refused(a.institution, cut, mapping_from_dict(mapping), commit=commit)

    assert error.code == "row_numbers_with_students"
    assert "already has students" in error.message and "map it as the external id" in error.message
    assert database_state(a.institution, b.institution) == before
