import pytest

from institutions.scoping import (
    InstitutionScopeMismatch,
    MissingInstitutionScope,
    current_institution,
    institution_scope,
)
from students.models import Student

pytestmark = pytest.mark.django_db


def test_tenant_manager_refuses_to_read_without_a_scope(tenants):
    with pytest.raises(MissingInstitutionScope):
        list(Student.objects.all())
    with pytest.raises(MissingInstitutionScope):
        Student.objects.count()
    with pytest.raises(MissingInstitutionScope):
        Student.objects.filter(external_id="S001").exists()


def test_scope_returns_only_the_scoped_institutions_rows(tenants):
    a, b = tenants
    with institution_scope(a.institution):
        ids = set(Student.objects.values_list("id", flat=True))
    assert ids == {s.id for s in a.students}
    assert not ids & {s.id for s in b.students}


def test_for_institution_works_without_an_active_scope(tenants):
    _a, b = tenants
    assert Student.objects.for_institution(b.institution).count() == len(b.students)
    assert set(Student.objects.for_institution(b.institution).values_list("institution_id", flat=True)) == {
        b.institution.id
    }


def test_nested_scope_restores_the_outer_one(tenants):
    a, b = tenants
    with institution_scope(a.institution):
        with institution_scope(b.institution):
            assert current_institution() == b.institution
            assert set(Student.objects.values_list("institution_id", flat=True)) == {b.institution.id}
        assert current_institution() == a.institution
        assert set(Student.objects.values_list("institution_id", flat=True)) == {a.institution.id}
    assert current_institution() is None


def test_scope_does_not_leak_after_an_exception(tenants):
    a, _ = tenants
    with pytest.raises(ZeroDivisionError), institution_scope(a.institution):
        _ = 1 / 0
    assert current_institution() is None
    with pytest.raises(MissingInstitutionScope):
        Student.objects.count()


def test_asking_for_another_institution_inside_a_scope_is_refused(tenants):
    a, b = tenants
    with institution_scope(a.institution), pytest.raises(InstitutionScopeMismatch):
        Student.objects.for_institution(b.institution)


def test_create_through_a_bound_queryset_fills_in_and_checks_the_institution(tenants):
    a, b = tenants
    student = Student.objects.for_institution(a.institution).create(external_id="NEW-1")
    assert student.institution_id == a.institution.id
    with pytest.raises(InstitutionScopeMismatch):
        Student.objects.for_institution(a.institution).create(external_id="NEW-2", institution=b.institution)
    with pytest.raises(InstitutionScopeMismatch):
        Student.objects.for_institution(a.institution).bulk_create([Student(institution=b.institution,
                                                                             external_id="NEW-3")])
    assert not Student.objects.for_institution(b.institution).filter(external_id__startswith="NEW").exists()


def test_unscoped_is_the_explicit_way_to_read_every_institution(tenants):
    a, b = tenants
    assert Student.objects.unscoped().count() == len(a.students) + len(b.students)


def test_same_external_id_may_exist_in_two_institutions(tenants):
    a, b = tenants
    assert {s.external_id for s in a.students} == {s.external_id for s in b.students}
